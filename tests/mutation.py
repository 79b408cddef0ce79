"""The mutation exercise of issue 13: break a behaviour on purpose, run the tests that claim to guard
it, and check that they fail.

    .venv/bin/python -m tests.mutation            # every mutant (a few minutes)
    .venv/bin/python -m tests.mutation --only progress-guard-server

Each mutant replaces one exact piece of source text (it must occur exactly once: a mutant whose text
has moved is reported, never skipped silently), runs its tests, then restores the file. No mutant's
tests read `../shared` (test_summarize_loghub is never among them): each is caught by tests that run
on a fresh clone. The table it prints
(mutant, what it breaks, the test that caught it) goes in the issue's note. Exit status 1 when a
mutant survived or no longer applies.

It edits the checkout in place (and always restores it): run it on a clean tree, not beside an editor.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Mutant:
    name: str
    breaks: str
    path: str
    old: str
    new: str
    tests: tuple[str, ...]


MUTANTS = (
    Mutant(
        "budget-ruler-halved",
        "the budget counts half the tokens (summaries twice the size they claim)",
        "cm_mcp/summarize/budget.py",
        "    return math.ceil(pieces * ESTIMATE_FACTOR)\n",
        "    return math.ceil(pieces * ESTIMATE_FACTOR) // 2\n",
        ("tests/test_token_economy.py", "tests/test_budget.py"),
    ),
    Mutant(
        "budget-text-only",
        "the budget ignores structured content (clients forwarding both overshoot)",
        "cm_mcp/summarize/budget.py",
        "    if isinstance(structured, BaseModel):\n        structured = compact_json(structured)\n",
        "    structured = None\n",
        ("tests/test_token_economy.py", "tests/test_budget.py"),
    ),
    Mutant(
        "max-tokens-setting-unchecked",
        "CM_MAX_TOKENS outside the tools' range is accepted at start-up",
        "cm_mcp/api/settings.py",
        "        if budget_problem(number) is not None:\n",
        "        if False:\n",
        ("tests/test_settings.py", "tests/test_budget.py"),
    ),
    Mutant(
        "template-post-merge-off",
        "templates are not merged after mining (one event split into many)",
        "cm_mcp/summarize/templates.py",
        "            merge = merge_key(template) if self._options.post_merge else (str(index),)\n",
        "            merge = (str(index),)\n",
        ("tests/test_summarize_templates.py",),
    ),
    Mutant(
        "template-word-as-variable",
        'a column of two constant words becomes a variable ("VM Stopped" merged with "VM Started")',
        "cm_mcp/summarize/templates.py",
        "        return 2 * once >= distinct\n    return False\n",
        "        return 2 * once >= distinct\n    return True\n",
        ("tests/test_summarize_templates.py",),
    ),
    Mutant(
        "template-mask-swallows-key",
        'a value column loses its shared key ("rhost=<*>" becomes "<*>")',
        "cm_mcp/summarize/templates.py",
        "    prefix = first[:size]\n",
        '    prefix = ""\n',
        ("tests/test_summarize_templates.py",),
    ),
    Mutant(
        "progress-guard-server",
        "the server forwards a repeated progress value (MCP progress must increase)",
        "cm_mcp/server/endpoint.py",
        "        if last and event.progress <= last[-1]:\n",
        "        if last and event.progress < last[-1]:\n",
        ("tests/test_progress.py",),
    ),
    Mutant(
        "progress-guard-reporter",
        "heartbeats repeat the previous value",
        "cm_mcp/batch/progress.py",
        "            if value <= self._last:\n",
        "            if value < self._last:\n",
        ("tests/test_progress.py", "tests/test_batch_progress.py"),
    ),
    Mutant(
        "poll-interval-uncapped",
        "status polls wait ever longer (a finished partition noticed hours late)",
        "cm_mcp/batch/run.py",
        "                interval = min(interval * self.limits.poll_growth, self.limits.poll_max)\n",
        "                interval = interval * self.limits.poll_growth\n",
        ("tests/test_batch_export.py::test_poll_intervals_grow_and_are_bounded",),
    ),
    Mutant(
        "record-key-ignores-id",
        "exports and the store de-duplicate by content instead of the API's _id",
        "cm_mcp/store/formats.py",
        "        key = str(doc_id) if doc_id else synthetic_id(source)\n",
        "        key = synthetic_id(source)\n",
        ("tests/test_batch_dedup.py", "tests/test_store_results.py"),
    ),
    Mutant(
        "aggs-filters-dropped",
        "filters on an aggs tool are silently ignored (totals of the unfiltered set)",
        "cm_mcp/api/request_parts.py",
        '        if filters:\n            body["aggs"] = {FILTERED_AGG:',
        '        if False:\n            body["aggs"] = {FILTERED_AGG:',
        ("tests/test_requests.py", "tests/test_server_tools.py"),
    ),
    Mutant(
        "cache-unsettled-windows",
        "the response cache answers windows that may still receive logs",
        "cm_mcp/store/cache.py",
        "    return end is not None and end + settle <= answered_at\n",
        "    return end is not None\n",
        ("tests/test_cache.py",),
    ),
    Mutant(
        "sandbox-serves-the-future",
        "the sandbox returns records stamped after now",
        "cm_mcp/sandbox/timeline.py",
        '    return {"range": {"@timestamp": {"lte": format_ms(epoch_ms(now))}}}\n',
        '    return {"range": {"@timestamp": {"lte": format_ms(epoch_ms(now) + 86_400_000)}}}\n',
        ("tests/test_sandbox_now.py",),
    ),
    Mutant(
        "http-bearer-unchecked",
        "streamable HTTP accepts any bearer token",
        "cm_mcp/server/http.py",
        '        if not hmac.compare_digest(presented, expected.encode("ascii")):\n',
        "        if False:\n",
        ("tests/test_http_transport.py",),
    ),
    Mutant(
        "log-redaction-off",
        "log lines keep JWTs, bearer tokens and URL signatures",
        "cm_mcp/api/redaction.py",
        '    return _QUERY.sub(f"?{REDACTED}", redact(text, _known_secrets))\n',
        "    return text\n",
        ("tests/test_log_redaction.py",),
    ),
    Mutant(
        "range-to-inclusive",
        "a range bucket counts values equal to its `to` (OpenSearch's `to` is exclusive)",
        "cm_mcp/dsl/buckets.py",
        "None if hi is None else (hi, False))",
        "None if hi is None else (hi, True))",
        ("tests/test_dsl_engine.py",),
    ),
    Mutant(
        "triage-smallest-budget-crowded",
        "the briefest triage text keeps the scroll's spending prose (the first finding no longer fits 1,000)",
        "cm_mcp/triage/render.py",
        '        + ("" if brief else f" | {result.spent.scroll}"),\n',
        '        + f" | {result.spent.scroll}",\n',
        (
            "tests/test_triage_scenarios.py::"
            "test_a_small_budget_keeps_the_first_finding_and_says_what_was_left_out",
        ),
    ),
)


def _run_tests(tests: tuple[str, ...]) -> tuple[bool, str]:
    """(failed, the first failing test's id) of `tests`."""
    assert not any("loghub" in test for test in tests), "mutants are caught without ../shared"
    command = [sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", "-o", "addopts=", *tests]
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=1800)
    failed = re.search(r"^FAILED (\S+)", done.stdout, re.MULTILINE)
    return done.returncode != 0, failed.group(1) if failed else done.stdout.strip().splitlines()[-1]


def run(mutant: Mutant) -> tuple[str, str]:
    path = ROOT / mutant.path
    original = path.read_text(encoding="utf-8")
    if original.count(mutant.old) != 1:
        return "NOT APPLIED", f"the text to mutate occurs {original.count(mutant.old)} times"
    try:
        path.write_text(original.replace(mutant.old, mutant.new), encoding="utf-8")
        failed, evidence = _run_tests(mutant.tests)
    finally:
        path.write_text(original, encoding="utf-8")
    return ("caught" if failed else "SURVIVED"), evidence


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", action="append", default=[], help="run this mutant (repeatable)")
    args = parser.parse_args(argv)
    chosen = [m for m in MUTANTS if not args.only or m.name in args.only]
    print("| mutant | what it breaks | outcome | caught by |\n|---|---|---|---|", flush=True)
    bad = 0
    for mutant in chosen:
        outcome, evidence = run(mutant)
        bad += outcome != "caught"
        print(f"| {mutant.name} | {mutant.breaks} | {outcome} | `{evidence}` |", flush=True)
    return 1 if bad else 0


if __name__ == "__main__":
    raise SystemExit(main())
