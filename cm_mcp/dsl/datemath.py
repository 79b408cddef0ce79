"""Timestamps as epoch milliseconds: ISO 8601 parsing and OpenSearch date math ("now-1d/d")."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cm_mcp.api import times
from cm_mcp.dsl.errors import DSLError


def to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        # Naive datetimes are UTC by project convention (every timestamp in the API is UTC).
        dt = dt.replace(tzinfo=UTC)
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def iso_ms(ms: int) -> str:
    """`key_as_string` style: 2026-11-26T10:00:00.123Z."""
    return times.format_utc(from_ms(ms))


def parse_iso_ms(text: str) -> int:
    """ISO 8601 (date only, or date-time with Z/offset) to epoch ms; raises ValueError."""
    return to_ms(times.parse_iso8601(text))  # 0-9 fractional digits, Z or an offset


# One implementation of date-math units for the whole project (api/ is the bottom layer).
floor_unit = times.floor_unit
add_unit = times.shift


def parse_date(value: object, *, now: datetime, round_up: bool, path: str, fmt: str | None = None) -> int:
    """A range bound on @timestamp to epoch ms.

    `round_up` follows OpenSearch: for gt/lte a rounded expression ("now/d") resolves to the last
    millisecond of the unit, for gte/lt to the first.
    """
    if isinstance(value, bool):
        raise DSLError(path, f"expected a date, got {value!r}")
    if isinstance(value, int | float):
        # Numbers are epoch millis unless the format says seconds (OpenSearch epoch_second).
        return int(value * 1000) if fmt == "epoch_second" else int(value)
    if not isinstance(value, str):
        raise DSLError(path, f"expected a date string, got {value!r}")
    text = value.strip()
    if text.startswith("now"):
        anchor, expr = to_ms(now), text[3:]
    else:
        anchor_text, sep, expr = text.partition("||")
        if not sep:
            expr = ""
        if fmt in ("epoch_millis", "epoch_second") and anchor_text.lstrip("-").isdigit():
            anchor = int(anchor_text) * (1000 if fmt == "epoch_second" else 1)
        else:
            try:
                anchor = parse_iso_ms(anchor_text)
            except ValueError:
                raise DSLError(
                    path, f"cannot parse date {value!r} (ISO 8601 or now-based date math)"
                ) from None
    return _apply_math(anchor, expr, round_up=round_up, path=path, original=text)


def _apply_math(anchor: int, expr: str, *, round_up: bool, path: str, original: str) -> int:
    """`anchor` moved by the date-math operations in `expr` ("-1d/d"), via `times.resolve_date_math`."""
    try:
        moment = times.resolve_date_math("now" + expr, from_ms(anchor), "up" if round_up else "down")
    except times.TimeFormatError:
        raise DSLError(path, f"bad date math {original!r} (e.g. now-15m, now-1d/d, now/h)") from None
    except (OverflowError, ValueError):  # e.g. epoch seconds given in milliseconds: beyond year 9999
        raise DSLError(path, f"date {original!r} is out of range (check its unit and format)") from None
    return to_ms(moment)
