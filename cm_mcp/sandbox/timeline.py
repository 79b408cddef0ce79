"""The sandbox's clock: the data window, its hourly slots, timestamps, and the rule that hides the future.

Why the data runs to the end of the current hour but is cut at the real now:
- the documents depend only on the `DataSpec`, and `DataSpec.create` pins its window to the current
  UTC hour, so every start within one hour yields the same documents and reuses the cached index
  (building it is the slow part of a start);
- a real API never returns a record written after the moment it answers, so the sandbox serves none:
  every query carries `visible_filter(now)` (``@timestamp <= now``, applied by the routes), scroll
  pages and batch partitions keep the cut of the request that opened them, and every ground-truth
  count (incidents, `expected_counts`) is the count at a given instant. Records written in the rest
  of the hour appear as the clock reaches them, as new logs would.
- scenario times (``now-5h``) resolve against the *start* of the current hour (`DataSpec.anchor`),
  so an incident that ends by ``now`` is entirely in the past whatever the minute of the start.

One approximation is left: a workload's state is decided once, as of the end of the hour (a run still
going then is RUNNING), so a run started minutes before the real now may already show its final state
and duration. Deciding it per request would make scroll pages disagree with aggregations.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Final

HOUR_MS: Final = 3_600_000
DAY_MS: Final = 24 * HOUR_MS
#: "MM:SS" for every second of an hour and ".mmmZ" for every millisecond: a timestamp is an hour's
#: prefix ("YYYY-MM-DDTHH:") plus two lookups (the generator's hot loops inline this).
MMSS: Final = [f"{s // 60:02d}:{s % 60:02d}" for s in range(3600)]
MS: Final = [f".{ms:03d}Z" for ms in range(1000)]


def floor_hour(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def epoch_ms(t: datetime) -> int:
    return int(t.timestamp() * 1000)


def visible_filter(now: datetime) -> dict[str, Any]:
    """The filter every sandbox query carries: nothing stamped after `now` exists yet."""
    return {"range": {"@timestamp": {"lte": format_ms(epoch_ms(now))}}}


@dataclass(frozen=True)
class Slot:
    """One clock hour of the data window, or the part of it inside the window."""

    hour_ms: int  # clock-aligned start of the hour (epoch ms)
    lo: int  # offsets inside the hour covered by the window: [lo, hi)
    hi: int
    prefix: str  # "YYYY-MM-DDTHH:"
    month: str  # "YYYY.MM"
    hour: int  # UTC hour of day
    weekday: int  # 0 = Monday
    day: int  # days since the window's first day (0-based)

    @property
    def coverage(self) -> float:
        return (self.hi - self.lo) / HOUR_MS


def slots(start: datetime, end: datetime) -> list[Slot]:
    """The clock hours overlapping [start, end), in order."""
    start_ms, end_ms = epoch_ms(start), epoch_ms(end)
    first_day = start_ms - start_ms % DAY_MS
    out = []
    hour_ms = start_ms - start_ms % HOUR_MS
    while hour_ms < end_ms:
        lo, hi = max(start_ms - hour_ms, 0), min(end_ms - hour_ms, HOUR_MS)
        dt = datetime.fromtimestamp(hour_ms / 1000, UTC)
        prefix, month = dt.strftime("%Y-%m-%dT%H:"), dt.strftime("%Y.%m")
        out.append(
            Slot(hour_ms, lo, hi, prefix, month, dt.hour, dt.weekday(), (hour_ms - first_day) // DAY_MS)
        )
        hour_ms += HOUR_MS
    return out


def days(start: datetime, end: datetime) -> list[int]:
    """Epoch ms of every UTC midnight starting a day that overlaps [start, end)."""
    start_ms, end_ms = epoch_ms(start), epoch_ms(end)
    day = start_ms - start_ms % DAY_MS
    out = []
    while day < end_ms:
        out.append(day)
        day += DAY_MS
    return out


def allocate(total: int, weights: list[float]) -> list[int]:
    """Split `total` into integers proportional to `weights` (largest remainder: sums exactly)."""
    s = sum(weights)
    if total <= 0 or s <= 0:
        return [0] * len(weights)
    raw = [total * w / s for w in weights]
    counts = [int(r) for r in raw]
    short = total - sum(counts)
    for i in sorted(range(len(raw)), key=lambda i: counts[i] - raw[i])[:short]:
        counts[i] += 1
    return counts


def format_slot(slot: Slot, offset: int) -> str:
    """The timestamp `offset` ms into `slot`: ``YYYY-MM-DDTHH:MM:SS.mmmZ`` (the hot path)."""
    return slot.prefix + MMSS[offset // 1000] + MS[offset % 1000]


@lru_cache(maxsize=4096)
def _hour_prefix(hour_ms: int) -> str:
    return datetime.fromtimestamp(hour_ms / 1000, UTC).strftime("%Y-%m-%dT%H:")


def format_ms(ms: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.mmmZ`` of an epoch-ms instant."""
    offset = ms % HOUR_MS
    return _hour_prefix(ms - offset) + MMSS[offset // 1000] + MS[offset % 1000]


def month_of(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y.%m")
