from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cm_mcp.dsl import SUPPORTED_AGGREGATIONS, SUPPORTED_FILTERS, DSLError, supported_aggregation_types
from cm_mcp.dsl.datemath import iso_ms, parse_date, parse_iso_ms
from cm_mcp.dsl.query import _range_syntax, tokenize

NOW = datetime(2026, 11, 26, 10, 37, 12, 345000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("expr", "round_up", "expected"),
    [
        ("now", False, "2026-11-26T10:37:12.345Z"),
        ("now-15m", False, "2026-11-26T10:22:12.345Z"),
        ("now-1d/d", False, "2026-11-25T00:00:00.000Z"),
        ("now-1d/d", True, "2026-11-25T23:59:59.999Z"),
        ("now-2h/h", False, "2026-11-26T08:00:00.000Z"),
        ("now/M", False, "2026-11-01T00:00:00.000Z"),
        ("now+1M/M", True, "2026-12-31T23:59:59.999Z"),
        ("now/w", False, "2026-11-23T00:00:00.000Z"),
        ("2026-01-31T00:00:00Z||+1M", False, "2026-02-28T00:00:00.000Z"),
        ("2026-11-26", False, "2026-11-26T00:00:00.000Z"),
    ],
)
def test_date_math(expr: str, round_up: bool, expected: str) -> None:
    assert iso_ms(parse_date(expr, now=NOW, round_up=round_up, path="x")) == expected


def test_iso_offsets_and_errors() -> None:
    assert parse_iso_ms("2026-11-26T12:00:00+02:00") == parse_iso_ms("2026-11-26T10:00:00Z")
    with pytest.raises(DSLError, match=r"r\.gte"):
        parse_date("now-3x", now=NOW, round_up=False, path="r.gte")


def test_range_syntax_never_mixes_int_and_float_bounds() -> None:
    # tantivy 0.27 panics on [2 TO 7.5]; the integral bound is nudged to the adjacent double.
    assert _range_syntax((2.0, True), (7.5, True)) == "{1.9999999999999998 TO 7.5]"
    assert _range_syntax((2.5, False), (7.0, False)) == "{2.5 TO 6.999999999999999]"
    assert _range_syntax((2.0, True), None) == "[2 TO *]"


def test_tokenize_and_catalog() -> None:
    assert tokenize("GET /api/v1_x Payment-FAILED") == ["get", "api", "v1", "x", "payment", "failed"]
    assert supported_aggregation_types() == SUPPORTED_AGGREGATIONS
    assert SUPPORTED_FILTERS == ("term", "terms", "range", "exists", "bool", "match", "match_phrase")


def test_out_of_range_epoch_is_a_clear_error_not_a_crash() -> None:
    from cm_mcp.dsl.datemath import parse_date
    from cm_mcp.dsl.errors import DSLError

    now = datetime(2026, 11, 26, tzinfo=UTC)
    with pytest.raises(DSLError, match="out of range"):
        parse_date(
            "1700000000000",
            now=now,
            round_up=False,
            path="filters[0].range.@timestamp.gte",
            fmt="epoch_second",
        )
