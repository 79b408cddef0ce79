"""Time values the API takes: ISO 8601 instants and OpenSearch date math.

LLMs are bad at clock arithmetic, so V2 `start_time`/`end_time` also accept date math (`now-6h`,
`now-1d/d`) which is resolved to an absolute UTC instant at call time. The reference examples use 0, 3
and 6 fractional digits (item 12), and `datetime.fromisoformat` rejects more than 6, so parsing here
accepts 0-9 digits and any offset, and always writes UTC with a `Z` suffix and millisecond precision.

Rounding (`/d`, `/h`, ...) follows OpenSearch range semantics: a start rounds down to the beginning of
the unit, an end rounds up to its last millisecond, so `now-1d/d`..`now-1d/d` covers all of yesterday.
"""

from __future__ import annotations

import calendar
import re
from datetime import UTC, datetime, timedelta
from typing import Literal

Rounding = Literal["down", "up"]

_ISO_RE = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})"
    r"(?:[T ](?P<h>\d{2}):(?P<m>\d{2})(?::(?P<s>\d{2})(?:[.,](?P<frac>\d{1,9}))?)?)?"
    r"(?P<tz>Z|z|[+-]\d{2}:?\d{2})?$"
)
_MATH_RE = re.compile(r"^(?P<anchor>now|.+?\|\|)(?P<ops>(?:[+-]\d+[yMwdhHms]|/[yMwdhHms])*)$")
_OP_RE = re.compile(r"([+-])(\d+)([yMwdhHms])|/([yMwdhHms])")
_UNIT_SECONDS = {"w": 604800, "d": 86400, "h": 3600, "H": 3600, "m": 60, "s": 1}


class TimeFormatError(ValueError):
    """A value is neither ISO 8601 nor OpenSearch date math."""


def parse_iso8601(value: str) -> datetime:
    """Parse ISO 8601 with 0-9 fractional digits and `Z` or an offset; naive values are taken as UTC."""
    match = _ISO_RE.match(value.strip())
    if not match:
        raise TimeFormatError(
            f"{value!r} is not an ISO 8601 time; use e.g. '2026-01-19T00:00:00Z' or date math like 'now-6h'"
        )
    year, month, day = (int(part) for part in match["date"].split("-"))
    frac = (match["frac"] or "0")[:6].ljust(6, "0")
    try:
        parsed = datetime(
            year,
            month,
            day,
            int(match["h"] or 0),
            int(match["m"] or 0),
            int(match["s"] or 0),
            int(frac),
            tzinfo=UTC,
        )
    except ValueError as exc:
        raise TimeFormatError(f"{value!r} is not a valid date/time: {exc}") from exc
    tz = match["tz"]
    if tz and tz not in ("Z", "z"):
        sign = 1 if tz[0] == "+" else -1
        digits = tz[1:].replace(":", "")
        offset = timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
        parsed -= sign * offset
    return parsed


def format_utc(moment: datetime) -> str:
    """UTC, millisecond precision, `Z` suffix: the form every API example accepts."""
    moment = moment.astimezone(UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def is_date_math(value: str) -> bool:
    """True for `now`-anchored (or `<date>||`-anchored) OpenSearch date math."""
    return bool(_MATH_RE.match(value.strip())) and (value.strip().startswith("now") or "||" in value)


def resolve_date_math(value: str, now: datetime, rounding: Rounding = "down") -> datetime:
    """Resolve `now-15m`, `now-1d/d`, `2026-01-01||+1M/M` against `now` (UTC)."""
    text = value.strip()
    match = _MATH_RE.match(text)
    if not match or not (text.startswith("now") or "||" in text):
        raise TimeFormatError(
            f"{value!r} is not OpenSearch date math; valid forms: 'now', 'now-15m', 'now-1d/d', 'now-2h/h'"
            " (units y M w d h m s)"
        )
    anchor = match["anchor"]
    moment = now.astimezone(UTC) if anchor == "now" else parse_iso8601(anchor[:-2])
    for sign, amount, unit, round_unit in _OP_RE.findall(match["ops"]):
        if round_unit:
            moment = _round(moment, round_unit, rounding)
        else:
            moment = shift(moment, int(amount) * (1 if sign == "+" else -1), unit)
    return moment


def resolve_time(value: str, now: datetime, rounding: Rounding = "down") -> datetime:
    """ISO 8601 or date math -> an aware UTC datetime."""
    text = value.strip()
    if text.startswith("now") or "||" in text:
        return resolve_date_math(text, now, rounding)
    return parse_iso8601(text)


def shift(moment: datetime, amount: int, unit: str) -> datetime:
    """`moment` moved by `amount` date-math units (y M w d h H m s); months clamp the day like Java."""
    if unit in ("y", "M"):
        months = amount * 12 if unit == "y" else amount
        total = moment.year * 12 + (moment.month - 1) + months
        year, month = divmod(total, 12)
        day = min(moment.day, calendar.monthrange(year, month + 1)[1])
        return moment.replace(year=year, month=month + 1, day=day)
    return moment + timedelta(seconds=amount * _UNIT_SECONDS[unit])


def _round(moment: datetime, unit: str, rounding: Rounding) -> datetime:
    start = floor_unit(moment, unit)
    if rounding == "down":
        return start
    return shift(start, 1, unit) - timedelta(milliseconds=1)


def floor_unit(moment: datetime, unit: str) -> datetime:
    """The start of the date-math unit holding `moment` (weeks start on Monday)."""
    if unit == "y":
        return moment.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "M":
        return moment.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    if unit == "w":
        day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
        return day - timedelta(days=day.weekday())
    if unit == "d":
        return moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit in ("h", "H"):
        return moment.replace(minute=0, second=0, microsecond=0)
    if unit == "m":
        return moment.replace(second=0, microsecond=0)
    return moment.replace(microsecond=0)
