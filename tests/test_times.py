"""ISO 8601 with 0-9 fractional digits and offsets; OpenSearch date math with rounding."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from cm_mcp.api.times import TimeFormatError, format_utc, is_date_math, parse_iso8601, resolve_time

NOW = datetime(2026, 3, 31, 12, 34, 56, 789000, tzinfo=UTC)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-19T00:00:00Z", "2026-01-19T00:00:00.000Z"),
        ("2026-01-19T00:00:00.5Z", "2026-01-19T00:00:00.500Z"),
        ("2026-01-20T03:52:06.960046Z", "2026-01-20T03:52:06.960Z"),
        ("2026-01-20T03:52:06.960046123Z", "2026-01-20T03:52:06.960Z"),
        ("2026-01-20T05:52:06+02:00", "2026-01-20T03:52:06.000Z"),
        ("2026-01-20T01:52:06-0200", "2026-01-20T03:52:06.000Z"),
        ("2026-01-20T03:52:06", "2026-01-20T03:52:06.000Z"),
        ("2026-01-20", "2026-01-20T00:00:00.000Z"),
    ],
)
def test_iso8601_forms(text: str, expected: str) -> None:
    assert format_utc(parse_iso8601(text)) == expected


@pytest.mark.parametrize("text", ["", "2026-13-01T00:00:00Z", "19/01/2026", "2026-01-19T25:00:00Z", "now"])
def test_iso8601_rejects(text: str) -> None:
    with pytest.raises(TimeFormatError):
        parse_iso8601(text)


@pytest.mark.parametrize(
    ("text", "rounding", "expected"),
    [
        ("now", "down", "2026-03-31T12:34:56.789Z"),
        ("now-15m", "down", "2026-03-31T12:19:56.789Z"),
        ("now-15m/m", "down", "2026-03-31T12:19:00.000Z"),
        ("now-1d/d", "down", "2026-03-30T00:00:00.000Z"),
        ("now-1d/d", "up", "2026-03-30T23:59:59.999Z"),
        ("now-2h/h", "down", "2026-03-31T10:00:00.000Z"),
        ("now/M", "down", "2026-03-01T00:00:00.000Z"),
        ("now-1M", "down", "2026-02-28T12:34:56.789Z"),
        ("now+1y/y", "up", "2027-12-31T23:59:59.999Z"),
        ("now/w", "down", "2026-03-30T00:00:00.000Z"),
        ("2026-01-01||+1M/d", "down", "2026-02-01T00:00:00.000Z"),
    ],
)
def test_date_math(text: str, rounding: str, expected: str) -> None:
    assert format_utc(resolve_time(text, NOW, rounding)) == expected  # type: ignore[arg-type]
    assert is_date_math(text)


@pytest.mark.parametrize("text", ["now-", "now-5x", "now-1d/", "yesterday", "nowish"])
def test_date_math_rejects(text: str) -> None:
    assert not is_date_math(text) or text == "now-"
    with pytest.raises(TimeFormatError):
        resolve_time(text, NOW)
