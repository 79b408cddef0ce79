"""The one token budget: its range, the summary floor, the safety margin `fit` keeps, the estimate
every tool sizes its results with, and the helper that pays for a tool's header out of a caller's
budget.

Sizes are checked with the tests' own ruler (tests/token_ruler.py: the cl100k_base BPE tokenizer, or
a deliberately conservative estimate when it cannot load), never with `estimate_tokens` itself.
Whole tool results (text and structured content, 10 to 10,000 records) are measured the same way in
tests/test_token_economy.py.
"""

from __future__ import annotations

import json
import math

import pytest

from cm_mcp.api.budget import DEFAULT_TOKENS, MAX_TOKENS, MIN_TOKENS, SUMMARY_FLOOR, budget_problem
from cm_mcp.summarize import render_aggs, render_logs, summarize_aggs, summarize_logs
from cm_mcp.summarize.budget import SAFETY_MARGIN, estimate_tokens, fit, seen_tokens, summary_budget
from tests.token_ruler import count_tokens

#: What estimate_tokens must never count below (a budget it sizes would be exceeded) and how far
#: above the ruler it may go on this server's kind of text (more wastes the caller's budget).
MAX_OVERCOUNT = 1.8

#: Kinds of text a result holds, inline so the test always runs: aligned tables with counts and
#: timestamps, quoted log lines from several systems, JSON (structured content), non-ASCII messages.
SAMPLES = {
    "histogram table": "\n".join(
        f'  "2026-01-19T{hour:02d}:{minute:02d}:00.000Z"  {(hour * 97 + minute * 13) % 5000:>6,}'
        for hour in range(24)
        for minute in (0, 15, 30, 45)
    ),
    "template table": "\n".join(
        f"  {n:>2}  {n * 1234:>7,}  {n / 3:5.1%}  ERROR:{n * 7}  2026-01-19T00:{n:02d}:00.000Z → "
        f'2026-01-19T23:{n:02d}:59.999Z  "Connection to db-{n}.internal:5432 refused after <*> retries"'
        for n in range(1, 40)
    ),
    "log lines": "\n".join(
        [
            "081109 203615 148 INFO dfs.DataNode$PacketResponder: PacketResponder 1 for block "
            "blk_38865049064139660 terminating",
            "[Sun Dec 04 04:47:44 2005] [notice] workerEnv.init() ok /etc/httpd/conf/workers2.properties",
            "Jun 14 15:16:01 combo sshd(pam_unix)[19939]: authentication failure; logname= uid=0 euid=0 "
            "tty=NODEVssh ruser= rhost=218.188.2.4",
            "2026-01-19T00:00:01.123Z ERROR payment-api-7f9c6d5b4-x2x9z Timeout calling "
            "https://ledger.internal/v2/settle?id=8f3a2c1e after 30000 ms (attempt 3/3)",
            "1117838570 2005.06.03 R02-M1-N0-C:J12-U11 2005-06-03-15.42.50.675872 R02-M1-N0-C:J12-U11 "
            "RAS KERNEL INFO instruction cache parity error corrected",
        ]
        * 20
    ),
    "structured JSON": json.dumps(
        {
            "call": {
                "endpoint": "logs_scroll",
                "request_id": "10615c94-d835-413e-ad3f-57c5a4c2276b",
                "quota_remaining": 47,
                "time_range": {"start": "2026-01-19T00:00:00.000Z", "end": "2026-01-19T23:59:59.999Z"},
            },
            "summary": {
                "sections": [
                    {
                        "name": "by_domain",
                        "kind": "terms",
                        "buckets": [[f"host-{n}.example.com", n * 11] for n in range(40)],
                    }
                ]
            },
        },
        separators=(",", ":"),
    ),
    "non-ASCII messages": "Fehler beim Schreiben: Speicherplatz erschöpft — ошибка записи — 写入失败 ✓ " * 12,
}


def test_the_range_default_and_floor_are_consistent() -> None:
    assert SUMMARY_FLOOR < MIN_TOKENS <= DEFAULT_TOKENS <= MAX_TOKENS
    assert budget_problem(MIN_TOKENS) is None and budget_problem(MAX_TOKENS) is None
    for bad in (MIN_TOKENS - 1, MAX_TOKENS + 1, True, "4000", 4000.0, None):
        assert budget_problem(bad) is not None


@pytest.mark.parametrize("name", sorted(SAMPLES))
def test_the_estimate_never_counts_below_a_real_tokenizer(name: str) -> None:
    """Characters / 4 counted 0.44-1.1x of cl100k_base on such text: a 4,000-token result was up to
    9,000 real tokens. Halving the estimate (characters / 8) fails here at once."""
    text = SAMPLES[name]
    real = count_tokens(text)
    assert real <= estimate_tokens(text) <= MAX_OVERCOUNT * real, (estimate_tokens(text), real)


@pytest.mark.parametrize("budget", [SUMMARY_FLOOR, MIN_TOKENS, DEFAULT_TOKENS, MAX_TOKENS])
def test_fit_keeps_a_real_safety_margin(budget: int) -> None:
    """The text `fit` picks stays within the budget less its margin as a real tokenizer counts it,
    and uses a fair part of it."""
    lines = SAMPLES["log lines"].splitlines()[:5] * (1 + budget // 60)  # about 3x the budget
    sizes = list(range(len(lines), 0, -max(1, len(lines) // 100)))  # lines kept, largest first
    _, text = fit(sizes, lambda n: n, lambda n: "\n".join(lines[:n]), budget)
    assert count_tokens(text) <= math.floor(budget * (1 - SAFETY_MARGIN))
    step = count_tokens("\n".join(lines[: max(1, len(lines) // 100)])) + 1
    assert count_tokens(text) >= budget * (1 - SAFETY_MARGIN) / MAX_OVERCOUNT - step


@pytest.mark.parametrize("budget", [500, 4000])
def test_a_full_aggregation_summary_fits_with_its_structured_form(budget: int) -> None:
    buckets = [{"key": f"host-{n:04d}.pay.example.com", "doc_count": 10_000 - n} for n in range(3000)]
    summary = summarize_aggs(
        {"by_host": {"buckets": buckets, "sum_other_doc_count": 0}}, total_documents=None, max_tokens=budget
    )
    assert count_tokens(render_aggs(summary)) + count_tokens(summary.structured_json()) <= budget
    assert summary.sections[0].buckets, "the largest buckets are kept"


@pytest.mark.parametrize("budget", [500, 4000])
def test_a_log_summary_fits_with_its_structured_form(budget: int) -> None:
    hits = [
        {
            "_id": str(n),
            "_source": {
                "@timestamp": f"2026-01-19T{n % 24:02d}:{n % 60:02d}:00.000Z",
                "regex.extractions.logLevel": ("ERROR", "WARN", "INFO")[n % 3],
                "message": SAMPLES["log lines"].splitlines()[n % 5].replace("3", str(n)),
            },
        }
        for n in range(2000)
    ]
    summary = summarize_logs(hits, total_matched=5000, max_tokens=budget)
    assert count_tokens(render_logs(summary)) + count_tokens(summary.structured_json()) <= budget


def test_seen_tokens_counts_text_and_structured_content() -> None:
    text, structured = SAMPLES["template table"], SAMPLES["structured JSON"]
    assert seen_tokens(text, structured) == estimate_tokens(text) + estimate_tokens(structured)
    assert seen_tokens(text) == estimate_tokens(text)


def test_summary_budget_pays_for_what_the_tool_adds_and_keeps_the_floor() -> None:
    header = "logs_aggs | window 2026-01-19T00:00:00.000Z .. 2026-01-19T23:59:59.999Z | request_id r-1"
    note = "page kept locally as result r20260119-000000-abcdef (results_search: no quota)"
    assert summary_budget(4000, header, note) == 4000 - estimate_tokens(header) - estimate_tokens(note)
    assert summary_budget(4000) == 4000
    assert summary_budget(MIN_TOKENS, "x" * 10_000) == SUMMARY_FLOOR  # never below the floor
