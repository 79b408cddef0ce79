"""Fuzz every tool through a real MCP session and print the figures (issue 9's "Done when").

    .venv/bin/python bench/fuzz.py [--examples 10000] [--seed N]

Random examples (a new seed each run unless --seed), the same strategies and oracle as
tests/test_fuzz.py (tests/fuzz_harness.py). Prints cases, calls, requests refused locally, upstream
requests (all, and for invalid input: the goal is zero), unhandled and unexplained errors (goal zero),
the outcome counts by cause, and every problem found (the first 20). Exit status 1 when any.
"""

from __future__ import annotations

import argparse
import logging
import random
import sys
import tempfile
import time
from pathlib import Path

from hypothesis import HealthCheck, given, seed, settings
from hypothesis import strategies as st

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.fuzz_harness import fuzz_session, tool_calls


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--examples", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=None)
    args = parser.parse_args()
    logging.disable(logging.WARNING)  # every explained upstream failure logs a warning: noise here
    run_seed = args.seed if args.seed is not None else random.randrange(2**32)
    problems: list[str] = []
    with tempfile.TemporaryDirectory() as folder, fuzz_session(Path(folder)) as session:

        @seed(run_seed)
        @settings(
            max_examples=args.examples,
            database=None,
            deadline=None,
            suppress_health_check=list(HealthCheck),
        )
        @given(data=st.data())
        def one_call(data: st.DataObject) -> None:
            tool, arguments, invalid = data.draw(tool_calls(session.result_id))
            session.stats.cases += 1
            problems.extend(session.call(tool, arguments, invalid=invalid))  # collected, not raised:
            # raising would make Hypothesis shrink and stop; the bench reports every problem instead

        started = time.perf_counter()
        one_call()
        elapsed = time.perf_counter() - started
        stats = session.stats
        print(f"seed {run_seed}: {stats.line()}")
        print(f"{elapsed:.1f} s, {stats.calls / elapsed:.0f} calls/s")
        print("outcomes: " + ", ".join(f"{name} {count:,}" for name, count in stats.outcomes.most_common()))
        print(
            "upstream requests by path: "
            + ", ".join(f"{p} {n:,}" for p, n in session.upstream.paths.most_common())
        )
    for problem in problems[:20]:
        print(f"PROBLEM: {problem}")
    if len(problems) > 20:
        print(f"... and {len(problems) - 20} more")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
