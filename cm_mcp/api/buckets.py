"""The bucket limit of an aggregation response, checked before the request is sent.

OpenSearch refuses to build more than `search.max_buckets` buckets (65,535) in one response; the API
then answers 500 and the request is spent. A `date_histogram`'s bucket count is known in advance:
the window divided by the interval (buckets align to the epoch, so a window cut by boundaries gets
one more). Nested under a bucket aggregation it is repeated for every parent bucket, so the count
multiplies by the parents' sizes (a `terms` size, default 10, is counted as if every term exists:
the worst case, which is what a dense log index reaches). Only requests with a date histogram are
refused: a `terms` size alone is an upper bound the field's cardinality may never reach.

Interval syntax follows OpenSearch: `fixed_interval` is a number and one of ms, s, m, h, d;
`calendar_interval` is exactly one calendar unit (1m, 1h, 1d, 1w, 1M, 1q, 1y or minute..year); the
legacy `interval` takes either (or milliseconds as a number).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

#: OpenSearch's default `search.max_buckets`: the most buckets one response may hold.
MAX_BUCKETS: Final = 65_535
#: OpenSearch's default `terms` size.
DEFAULT_TERMS_SIZE: Final = 10

INTERVAL_KEYS: Final = ("fixed_interval", "calendar_interval", "interval")
FIXED_UNITS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
#: Calendar units by every accepted spelling -> (unit, milliseconds when fixed-length).
CALENDAR_UNITS: Final = {
    "minute": ("m", 60_000), "1m": ("m", 60_000),
    "hour": ("h", 3_600_000), "1h": ("h", 3_600_000),
    "day": ("d", 86_400_000), "1d": ("d", 86_400_000),
    "week": ("w", 604_800_000), "1w": ("w", 604_800_000),
    "month": ("M", 0), "1M": ("M", 0),
    "quarter": ("q", 0), "1q": ("q", 0),
    "year": ("y", 0), "1y": ("y", 0),
}  # fmt: skip
#: Intervals suggested when one is too fine, smallest first.
FIXED_LADDER: Final = (
    "1s", "2s", "5s", "10s", "15s", "30s", "1m", "2m", "5m", "10m", "15m", "30m",
    "1h", "2h", "3h", "6h", "12h", "1d", "2d", "7d", "30d", "90d", "365d",
)  # fmt: skip
CALENDAR_LADDER: Final = ("1m", "1h", "1d", "1w", "1M", "1q", "1y")

_FIXED_RE: Final = re.compile(r"^(\d+)(ms|s|m|h|d)$")
_CALENDAR_LIKE_RE: Final = re.compile(r"^\d+[wMqy]$")
#: 1970-01-01 was a Thursday; ISO weeks (OpenSearch's) start on Monday 1970-01-05.
_WEEK_OFFSET_MS: Final = 4 * 86_400_000

Issue = tuple[str, str]


@dataclass(frozen=True)
class Interval:
    """A parsed histogram interval: fixed milliseconds, or one calendar unit (`w`, `M`, `q`, `y`...)."""

    kind: Literal["fixed", "calendar"]
    millis: int  # 0 for the variable-length calendar units M, q, y
    unit: str = ""

    def buckets(self, start: datetime, end: datetime) -> int:
        """Buckets between `start` and `end` (both included), aligned as OpenSearch aligns them."""
        if self.unit in ("M", "q", "y"):
            months = {"M": 1, "q": 3, "y": 12}[self.unit]
            first = (start.year * 12 + start.month - 1) // months
            last = (end.year * 12 + end.month - 1) // months
            return last - first + 1
        offset = _WEEK_OFFSET_MS if self.unit == "w" else 0
        begin, finish = _epoch_ms(start) - offset, _epoch_ms(end) - offset
        return finish // self.millis - begin // self.millis + 1


def parse_interval(key: str, value: Any) -> Interval | str:
    """The interval under `key` of a date_histogram, or what is wrong with it."""
    if key == "fixed_interval":
        return _fixed(value) or (
            "fixed intervals are in ms, s, m, h or d; for weeks, months, quarters or years use "
            "calendar_interval ('1w', '1M', '1q', '1y')"
            if isinstance(value, str) and _CALENDAR_LIKE_RE.match(value.strip())
            else "must be a whole number and a unit (ms, s, m, h, d) above zero, e.g. '30s', '5m', '1h'"
        )
    if key == "calendar_interval":
        return _calendar(value) or (
            "calendar intervals are one unit: 1m, 1h, 1d, 1w, 1M, 1q, 1y (or minute, hour, day, week, "
            "month, quarter, year); for a multiple such as '2d' use fixed_interval"
        )
    if isinstance(value, int) and not isinstance(value, bool):  # legacy `interval`: milliseconds
        return Interval("fixed", value) if value > 0 else "a numeric interval is milliseconds above zero"
    return (
        _calendar(value)
        or _fixed(value)
        or "must be an interval such as '30s', '5m', '1h' or a calendar unit ('1d', '1M')"
    )


def _fixed(value: Any) -> Interval | None:
    match = _FIXED_RE.match(value.strip()) if isinstance(value, str) else None
    if match is None or int(match[1]) == 0:
        return None
    return Interval("fixed", int(match[1]) * FIXED_UNITS[match[2]])


def _calendar(value: Any) -> Interval | None:
    if not isinstance(value, str) or value.strip() not in CALENDAR_UNITS:
        return None
    unit, millis = CALENDAR_UNITS[value.strip()]
    return Interval("calendar", millis, unit)


def _epoch_ms(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1000)


# --- counting ----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Histogram:
    path: str  # JSON path of its interval key, relative to the checked `aggs`
    key: str
    interval: Interval
    body_id: int  # identifies the node when another interval is tried for it
    parents: int  # buckets above it (product of the enclosing bucket aggregations' sizes)


def bucket_limit_issues(aggs: Mapping[str, Any], start: datetime, end: datetime) -> list[Issue]:
    """Problems with `aggs` (already structurally valid) over the window: one per date histogram when
    the whole response would hold more than MAX_BUCKETS buckets, with the smallest interval that fits."""
    histograms: list[_Histogram] = []
    total = _count(aggs, start, end, {}, histograms, "", 1)
    if total <= MAX_BUCKETS:
        return []
    issues = []
    for histogram in histograms:
        own = histogram.interval.buckets(start, end)
        fits = _smallest_fit(aggs, start, end, histogram)
        scale = (
            f" x {histogram.parents:,} parent buckets (terms sizes count in full)"
            if histogram.parents > 1
            else ""
        )
        advice = (
            f"the smallest interval that fits is '{fits}'"
            if fits
            else "no interval fits with these parent aggregations"
        )
        if histogram.parents > 1:
            advice += ", or lower the enclosing terms size"
        issues.append(
            (
                histogram.path,
                f"{own:,} buckets over the window{scale}: {total:,} buckets in all, above OpenSearch's "
                f"limit of {MAX_BUCKETS:,} per response (the API would fail with a 500); {advice}",
            )
        )
    return issues


def _smallest_fit(
    aggs: Mapping[str, Any], start: datetime, end: datetime, histogram: _Histogram
) -> str | None:
    ladder = CALENDAR_LADDER if histogram.key == "calendar_interval" else FIXED_LADDER
    current = histogram.interval.buckets(start, end)
    for candidate in ladder:
        interval = parse_interval(histogram.key, candidate)
        assert isinstance(interval, Interval)
        coarser = interval.buckets(start, end) < current
        if coarser and _count(aggs, start, end, {histogram.body_id: interval}, [], "", 1) <= MAX_BUCKETS:
            return candidate
    return None


def _count(
    aggs: Mapping[str, Any],
    start: datetime,
    end: datetime,
    overrides: Mapping[int, Interval],
    histograms: list[_Histogram],
    path: str,
    parents: int,
) -> int:
    """Buckets `aggs` produce under `parents` parent buckets (collecting the date histograms)."""
    total = 0
    for name, spec in aggs.items():
        kind = next(key for key in spec if key not in ("aggs", "aggregations"))
        body = spec[kind]
        where = f"{path}.{name}" if path else str(name)
        own = _own_buckets(kind, body, start, end, overrides, histograms, f"{where}.{kind}", parents)
        total += parents * own
        sub = spec.get("aggs", spec.get("aggregations"))
        if isinstance(sub, Mapping):
            total += _count(sub, start, end, overrides, histograms, f"{where}.aggs", parents * max(own, 1))
    return total


def _own_buckets(
    kind: str,
    body: Any,
    start: datetime,
    end: datetime,
    overrides: Mapping[int, Interval],
    histograms: list[_Histogram],
    path: str,
    parents: int,
) -> int:
    """Buckets one aggregation adds per parent bucket (0 for metrics and single-bucket `filter`)."""
    if kind == "date_histogram":
        key = next(key for key in INTERVAL_KEYS if key in body)
        interval = overrides.get(id(body)) or parse_interval(key, body[key])
        assert isinstance(interval, Interval)  # structurally valid: checked before counting
        histograms.append(_Histogram(f"{path}.{key}", key, interval, id(body), parents))
        return interval.buckets(start, end)
    if kind == "terms":
        return int(body.get("size", DEFAULT_TERMS_SIZE))
    if kind == "range":
        return len(body.get("ranges", []))
    if kind == "filters":
        return len(body.get("filters", {})) + (1 if body.get("other_bucket") else 0)
    # histogram (range of values unknown), missing, filter, metrics: nothing a window can tell
    return 0
