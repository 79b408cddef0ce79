"""Timestamps as epoch milliseconds: ISO 8601 parsing and OpenSearch date math ("now-1d/d")."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

from cm_mcp.dsl.errors import DSLError

_UNIT_RE = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")
_FIXED_MS = {"w": 604_800_000, "d": 86_400_000, "h": 3_600_000, "H": 3_600_000, "m": 60_000, "s": 1000}


def to_ms(dt: datetime) -> int:
    if dt.tzinfo is None:
        # Naive datetimes are UTC by project convention (every timestamp in the API is UTC).
        dt = dt.replace(tzinfo=UTC)
    return (dt - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(milliseconds=1)


def from_ms(ms: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(milliseconds=ms)


def iso_ms(ms: int) -> str:
    """`key_as_string` style: 2026-11-26T10:00:00.123Z."""
    return from_ms(ms).strftime("%Y-%m-%dT%H:%M:%S.") + f"{ms % 1000:03d}Z"


def parse_iso_ms(text: str) -> int:
    """ISO 8601 (date only, or date-time with Z/offset) to epoch ms; raises ValueError."""
    s = text.strip()
    if s.endswith(("Z", "z")):
        s = s[:-1] + "+00:00"
    return to_ms(datetime.fromisoformat(s))


def _add_months(dt: datetime, months: int) -> datetime:
    total = dt.year * 12 + (dt.month - 1) + months
    year, month = divmod(total, 12)
    # Clamp the day like Java time does (Jan 31 + 1M = Feb 28/29).
    for day in (dt.day, 30, 29, 28):
        try:
            return dt.replace(year=year, month=month + 1, day=day)
        except ValueError:
            continue
    raise AssertionError("unreachable")


def floor_unit(dt: datetime, unit: str) -> datetime:
    if unit == "y":
        return dt.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return dt.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        day = dt.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday())  # ISO weeks start on Monday
    if unit == "d":
        return dt.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in ("h", "H"):
        return dt.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return dt.replace(second=0, microsecond=0)
    return dt.replace(microsecond=0)  # "s"


def add_unit(dt: datetime, n: int, unit: str) -> datetime:
    if unit == "y":
        return _add_months(dt, 12 * n)
    if unit == "M":
        return _add_months(dt, n)
    return dt + timedelta(milliseconds=n * _FIXED_MS[unit])


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
    dt = from_ms(anchor)
    pos = 0
    while pos < len(expr):
        m = _UNIT_RE.match(expr, pos)
        if m is None:
            raise DSLError(path, f"bad date math {original!r} (e.g. now-15m, now-1d/d, now/h)")
        if m.group(4):
            unit = m.group(4)
            start = floor_unit(dt, unit)
            dt = add_unit(start, 1, unit) - timedelta(milliseconds=1) if round_up else start
        else:
            n = int(m.group(2)) * (1 if m.group(1) == "+" else -1)
            dt = add_unit(dt, n, m.group(3))
        pos = m.end()
    return to_ms(dt)
