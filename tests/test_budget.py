"""The one token budget: its range, the summary floor, the safety margin `fit` keeps, and the helper
every tool uses to pay for its header out of a caller's budget.

Sizes are checked with this file's own ruler (characters / 3.6: denser than the implementation's
characters / 4, as JSON-heavy text is with BPE tokenizers), never with `estimate_tokens` alone.
"""

from __future__ import annotations

import math

import pytest

from cm_mcp.api.budget import DEFAULT_TOKENS, MAX_TOKENS, MIN_TOKENS, SUMMARY_FLOOR, budget_problem
from cm_mcp.summarize import render_aggs, summarize_aggs
from cm_mcp.summarize.budget import SAFETY_MARGIN, fit, summary_budget

#: A tokenizer that counts 10% more tokens than characters / 4: what the margin must absorb.
DENSE_CHARS_PER_TOKEN = 3.6


def dense_tokens(text: str) -> int:
    return math.ceil(len(text) / DENSE_CHARS_PER_TOKEN)


def test_the_range_default_and_floor_are_consistent() -> None:
    assert SUMMARY_FLOOR < MIN_TOKENS <= DEFAULT_TOKENS <= MAX_TOKENS
    assert budget_problem(MIN_TOKENS) is None and budget_problem(MAX_TOKENS) is None
    for bad in (MIN_TOKENS - 1, MAX_TOKENS + 1, True, "4000", 4000.0, None):
        assert budget_problem(bad) is not None


@pytest.mark.parametrize("budget", [SUMMARY_FLOOR, MIN_TOKENS, DEFAULT_TOKENS, MAX_TOKENS])
def test_fit_keeps_a_real_safety_margin(budget: int) -> None:
    """fit() promised "a small safety margin" and kept none: it accepted 4 x budget characters."""
    sizes = list(range(4 * budget + 100, 0, -7))  # candidate lengths, largest first
    _, text = fit(sizes, lambda n: n, lambda n: "x" * n, budget)
    assert dense_tokens(text) <= budget
    assert len(text) >= 4 * budget * (1 - SAFETY_MARGIN) - 7  # the margin, not much more


@pytest.mark.parametrize("budget", [500, 4000])
def test_a_full_aggregation_summary_fits_a_denser_tokenizer(budget: int) -> None:
    buckets = [{"key": f"host-{n:04d}.pay.example.com", "doc_count": 10_000 - n} for n in range(3000)]
    summary = summarize_aggs(
        {"by_host": {"buckets": buckets, "sum_other_doc_count": 0}}, total_documents=None, max_tokens=budget
    )
    assert dense_tokens(render_aggs(summary)) <= budget


def test_summary_budget_pays_for_what_the_tool_adds_and_keeps_the_floor() -> None:
    header = "logs_aggs | window 2026-01-19T00:00:00.000Z .. 2026-01-19T23:59:59.999Z | request_id r-1"
    note = "page kept locally as result r20260119-000000-abcdef (results_search: no quota)"
    assert summary_budget(4000, header, note) == 4000 - math.ceil(len(header) / 4) - math.ceil(len(note) / 4)
    assert summary_budget(4000) == 4000
    assert summary_budget(MIN_TOKENS, "x" * 10_000) == SUMMARY_FLOOR  # never below the floor
