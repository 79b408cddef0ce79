"""Aggregation summaries: totals preserved exactly, histogram merging, nesting, metrics, budget."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from cm_mcp.summarize import estimate_tokens, render_aggs, summarize_aggs

HOUR = 3_600_000
T0 = 1_714_557_600_000


def terms(counts: list[int], other: int = 0) -> dict[str, Any]:
    buckets = [{"key": f"k{i}", "doc_count": c} for i, c in enumerate(sorted(counts, reverse=True))]
    return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": other, "buckets": buckets}


def histogram(counts: list[int]) -> dict[str, Any]:
    return {
        "buckets": [
            {"key_as_string": f"t{i}", "key": T0 + i * HOUR, "doc_count": c} for i, c in enumerate(counts)
        ]
    }


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=10**9), max_size=300),
    other=st.integers(min_value=0, max_value=10**9),
    budget=st.sampled_from([500, 1000, 4000]),
)
def test_terms_shown_plus_other_equals_original(counts: list[int], other: int, budget: int) -> None:
    summary = summarize_aggs({"by_host": terms(counts, other)}, total_documents=None, max_tokens=budget)
    section = summary.sections[0]
    assert sum(b.count for b in section.buckets) + section.other == sum(counts) + other
    assert section.total == sum(counts) + other
    assert estimate_tokens(render_aggs(summary)) <= budget


@settings(max_examples=60, deadline=None)
@given(
    counts=st.lists(st.integers(min_value=0, max_value=10**6), max_size=2000),
    budget=st.sampled_from([500, 4000]),
)
def test_histogram_merge_keeps_sum(counts: list[int], budget: int) -> None:
    request = {"over_time": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h"}}}
    summary = summarize_aggs(
        {"over_time": histogram(counts)}, total_documents=None, max_tokens=budget, request_aggs=request
    )
    section = summary.sections[0]
    assert section.kind == "date_histogram"
    assert sum(b.count for b in section.buckets) == sum(counts) == section.total
    assert estimate_tokens(render_aggs(summary)) <= budget


def test_histogram_few_buckets_kept_and_peaks_gaps_rises() -> None:
    few = summarize_aggs({"h": histogram([1, 2, 3])}, total_documents=6).sections[0]
    assert [b.count for b in few.buckets] == [1, 2, 3]
    assert few.merged == 1
    counts = [5] * 100 + [0] * 10 + [500] + [5] * 89
    section = summarize_aggs({"h": histogram(counts)}, total_documents=None).sections[0]
    assert section.merged > 1
    assert len(section.buckets) <= 48
    assert section.peaks[0].count == 500
    assert section.peaks[0].key_ms == T0 + 110 * HOUR
    assert section.gaps[0].buckets == 10
    assert section.gaps[0].start == "t100"
    assert section.rises[0].increase == 500
    assert section.rises[0].at == "t110"


def test_nested_aggregations_flattened_and_ranked() -> None:
    aggs = {
        "by_domain": {
            "sum_other_doc_count": 0,
            "buckets": [
                {
                    "key": "pay.example.com",
                    "doc_count": 10,
                    "by_level": {
                        "buckets": [{"key": "ERROR", "doc_count": 7}, {"key": "INFO", "doc_count": 3}]
                    },
                },
                {
                    "key": "web.example.com",
                    "doc_count": 9,
                    "by_level": {
                        "buckets": [{"key": "ERROR", "doc_count": 9, "p": {"values": {"95.0": 12.5}}}]
                    },
                },
            ],
        }
    }
    section = summarize_aggs(aggs, total_documents=19).sections[0]
    assert section.kind == "rows"
    assert [(r.key, r.count) for r in section.buckets] == [
        ("by_domain=web.example.com > by_level=ERROR", 9),
        ("by_domain=pay.example.com > by_level=ERROR", 7),
        ("by_domain=pay.example.com > by_level=INFO", 3),
    ]
    assert section.buckets[0].metrics == {"p.p95.0": 12.5}


def test_metrics_kept_exactly_and_single_bucket() -> None:
    aggs = {
        "avg_latency": {"value": 123.456789},
        "lat_stats": {"count": 3, "min": 1.0, "max": 9.5, "avg": 4.25, "sum": 12.75},
        "lat_pct": {"values": {"50.0": 3.0, "99.0": 9.25}},
        "hosts": {"value": 42},
        "errors": {"doc_count": 17, "by_code": terms([10, 5], 2)},
    }
    summary = summarize_aggs(aggs, total_documents=100)
    by_name = {s.name: s for s in summary.sections}
    assert by_name["avg_latency"].values == {"value": 123.456789}
    assert by_name["lat_stats"].values == {"count": 3, "min": 1.0, "max": 9.5, "avg": 4.25, "sum": 12.75}
    assert by_name["lat_pct"].values == {"p50.0": 3.0, "p99.0": 9.25}
    assert by_name["errors"].count == 17
    assert by_name["errors"].children[0].total == 17
    assert summary.total_documents == 100
    assert "123.457" in render_aggs(summary)


def test_terms_note_when_buckets_miss_documents() -> None:
    section = summarize_aggs({"by_host": terms([50, 30], 0)}, total_documents=100).sections[0]
    assert section.note
    assert "20" in section.note


def test_request_aggs_disambiguates_histogram() -> None:
    body = {"buckets": [{"key": T0 + i * 60_000, "doc_count": i} for i in range(5)]}
    request = {"per_min": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1m"}}}
    section = summarize_aggs({"per_min": body}, total_documents=None, request_aggs=request).sections[0]
    assert section.kind == "date_histogram"
    assert section.interval == "1m"
