"""Fuzzed tool calls through a real MCP session (tests/fuzz_harness.py has the strategies and oracle).

CI runs FUZZ_EXAMPLES derandomised examples (the same ones every run, so a red build is reproducible);
bench/fuzz.py runs 10,000+ random ones and prints the figures.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz_harness import FuzzSession, fuzz_session, tool_calls

#: Examples in CI: a few thousand, about half a minute on a loaded 2-core machine.
FUZZ_EXAMPLES = int(os.environ.get("CM_FUZZ_EXAMPLES", "3000"))


@pytest.fixture(scope="module")
def session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[FuzzSession]:
    data_dir: Path = tmp_path_factory.mktemp("fuzz")
    with fuzz_session(data_dir) as running:
        yield running
    print(f"\nfuzz: {running.stats.line()}")  # shown with -s; the assertions below are what count


def test_fuzzed_tool_calls_are_answered_or_refused_with_reasons_and_never_sent_when_invalid(
    session: FuzzSession,
) -> None:
    problems: list[str] = []

    @settings(
        max_examples=FUZZ_EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(data=st.data())
    def one_call(data: st.DataObject) -> None:
        tool, arguments, invalid = data.draw(tool_calls(session.result_id))
        session.stats.cases += 1
        found = session.call(tool, arguments, invalid=invalid)
        problems.extend(found)
        assert not found, found

    one_call()
    stats = session.stats
    assert stats.unhandled_errors == 0 and stats.unexplained_errors == 0
    assert stats.upstream_requests_for_invalid_input == 0
    # the fuzz reaches both sides: refusals, and calls that went upstream and came back
    assert stats.refused_locally > FUZZ_EXAMPLES // 5
    assert stats.outcomes["ok"] > FUZZ_EXAMPLES // 20
    assert stats.upstream_requests > FUZZ_EXAMPLES // 20
    assert not problems
