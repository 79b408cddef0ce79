"""The time grid a triage works on: one histogram interval over the baseline and the window.

Both periods are read from ONE aggregation request spanning baseline start .. window end, so they
share the histogram's buckets. OpenSearch aligns fixed-interval buckets to the epoch, so the window's
start is moved down to a bucket boundary (the window grows by less than one bucket; the result says
which window was analysed) and the baseline ends where the window starts. The last bucket usually
ends at `now`, part-way: its `coverage` (the share of the bucket inside the request) scales what is
expected of it, so a bucket still filling never looks like a drop.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

MINUTE_MS: Final = 60_000
HOUR_MS: Final = 60 * MINUTE_MS
DAY_MS: Final = 24 * HOUR_MS

#: Histogram intervals a triage may use, finest first (each divides a day, so time-of-day slots line
#: up from one day to the next: the seasonal comparison needs that).
INTERVALS: Final = (
    ("1m", MINUTE_MS),
    ("2m", 2 * MINUTE_MS),
    ("5m", 5 * MINUTE_MS),
    ("10m", 10 * MINUTE_MS),
    ("15m", 15 * MINUTE_MS),
    ("30m", 30 * MINUTE_MS),
    ("1h", HOUR_MS),
    ("2h", 2 * HOUR_MS),
    ("3h", 3 * HOUR_MS),
    ("6h", 6 * HOUR_MS),
    ("12h", 12 * HOUR_MS),
    ("1d", DAY_MS),
)
#: The window is cut into at most this many buckets: fine enough to place an onset within ~1 % of
#: the window (10 minutes of a day), coarse enough that a few hundred series scan in well under a
#: second and a bucket of a quiet stream still holds a few records.
MAX_WINDOW_BUCKETS: Final = 150


def epoch_ms(moment: datetime) -> int:
    return int(moment.astimezone(UTC).timestamp() * 1000)


def from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)


def interval_name(interval_ms: int) -> str:
    for name, millis in INTERVALS:
        if millis == interval_ms:
            return name
    return f"{interval_ms // 1000}s"


def choose_interval(window_ms: int, *, max_buckets: int = MAX_WINDOW_BUCKETS) -> int:
    """The finest interval that cuts the window into at most `max_buckets` buckets."""
    for _, millis in INTERVALS:
        if window_ms / millis <= max_buckets:
            return millis
    return INTERVALS[-1][1]


def coarser(interval_ms: int) -> int | None:
    """The next interval up the ladder (None at the top)."""
    for _, millis in INTERVALS:
        if millis > interval_ms:
            return millis
    return None


@dataclass(frozen=True)
class Grid:
    """Buckets of `interval_ms` from `start_ms` (aligned); the baseline and the window as bucket ranges.

    Times are epoch milliseconds. `window_start_ms` is aligned; `end_ms` is the request's end (the
    last bucket may be partial); the baseline is [baseline_start_ms, baseline_end_ms), aligned too.
    """

    interval_ms: int
    baseline_start_ms: int
    baseline_end_ms: int
    window_start_ms: int
    end_ms: int

    @classmethod
    def build(
        cls,
        *,
        window_start: datetime,
        window_end: datetime,
        baseline_start: datetime,
        baseline_end: datetime,
        interval_ms: int,
    ) -> Grid:
        """Align the periods to `interval_ms` (starts move down to a bucket boundary)."""
        start = epoch_ms(window_start) // interval_ms * interval_ms
        b_end = min(epoch_ms(baseline_end), start)
        b_end = b_end // interval_ms * interval_ms
        b_start = epoch_ms(baseline_start) // interval_ms * interval_ms
        return cls(interval_ms, min(b_start, b_end - interval_ms), b_end, start, epoch_ms(window_end))

    # -- buckets --------------------------------------------------------------------------------------
    @property
    def first_ms(self) -> int:
        return self.baseline_start_ms

    @property
    def size(self) -> int:
        """Buckets from the baseline's first to the window's last (partial) one."""
        return -(-(self.end_ms - self.first_ms) // self.interval_ms)

    def index(self, ms: int) -> int:
        return (ms - self.first_ms) // self.interval_ms

    def bucket_start(self, index: int) -> int:
        return self.first_ms + index * self.interval_ms

    @property
    def window(self) -> range:
        return range(self.index(self.window_start_ms), self.size)

    @property
    def baseline(self) -> range:
        return range(0, self.index(self.baseline_end_ms))

    def coverage(self, index: int) -> float:
        """Share of bucket `index` inside the analysed periods (the last one may be partial)."""
        start = self.bucket_start(index)
        inside = min(start + self.interval_ms, self.end_ms) - start
        in_gap = index < self.index(self.window_start_ms) and start >= self.baseline_end_ms
        return 0.0 if in_gap else max(0.0, min(1.0, inside / self.interval_ms))

    def slot(self, index: int) -> int | None:
        """Time-of-day slot of bucket `index` (None when the interval does not divide a day)."""
        if DAY_MS % self.interval_ms:
            return None
        return (self.bucket_start(index) % DAY_MS) // self.interval_ms

    @property
    def slots_per_day(self) -> int | None:
        return DAY_MS // self.interval_ms if DAY_MS % self.interval_ms == 0 else None

    @property
    def window_ms(self) -> int:
        return self.end_ms - self.window_start_ms

    @property
    def baseline_ms(self) -> int:
        return self.baseline_end_ms - self.baseline_start_ms

    @property
    def interval(self) -> str:
        return interval_name(self.interval_ms)
