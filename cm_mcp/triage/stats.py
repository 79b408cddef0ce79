"""The statistics of a triage: what a series should have counted, and how far it strayed, where.

Every series is a count per histogram bucket (one scope x one level, or one workflow x one state).

Expected counts (`expectation`): the baseline's rate at the same time of day when the baseline covers
a whole day or more (daily seasonality: a shop's evening peak is not an anomaly), else its flat rate.
Each value is a mean over the neighbouring hour on either side without the buckets no Poisson rate
near their median could produce, so one burst in the baseline neither sets the expectation nor hides
an incident; a peak at exactly that time of day (a nightly job) is expected to repeat. `level_factor` then
scales a scope's expectation by how busy it is today against the baseline (a Monday after a Sunday),
a median of per-bucket ratios of the scope's whole traffic, which an incident confined to a few
buckets cannot move.

How far (`scan`): the Poisson scan statistic (Kulldorff), i.e. the log-likelihood ratio of "the rate
in [a, b] is raised" against "it is the expected rate", maximised over every interval of the window.
It finds a 5-minute burst of thousands and a six-hour ramp of a few extra per bucket alike, and its
best interval *is* the change point: onset and end at the histogram's resolution. The expectation
itself is an estimate from the baseline's counts, so the test is the two-sample one: the window's count
against the baseline's evidence behind its expectation. A stream that logged no error yesterday and
five today is then not significant (as a binomial test would say), where a plug-in Poisson test would
call it a thousand-fold rise.

How far counts as abnormal (`Calibration`): no fixed threshold. Two bars, both from the data:
- significance: the LLR a Poisson series would exceed by chance in any of the intervals scanned, with
  a family-wise error rate ALPHA (the scan statistic's tail, P(max LLR > x) <= pairs x e^-x);
- the series' own ordinary day: the same scan run over the baseline against the window's profile
  (the roles swapped). Real streams are burstier than Poisson (retry blips, deploys, error flaps);
  the largest excursion of a normal day says how large "normal" gets for *this* stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

from cm_mcp.triage.grid import HOUR_MS, Grid

#: Family-wise false-alarm rate of the significance bar, over every interval of every series scanned.
ALPHA: Final = 0.01
#: A value this many Poisson standard deviations (plus one record) above the median of the values
#: behind one expected count is a burst, left out of the average.
OUTLIER_SIGMAS: Final = 4.0
#: A baseline bucket this many Poisson standard deviations above its neighbourhood (plus one record)
#: is a peak of the day (a cron job) that the same time of day is expected to repeat.
PEAK_SIGMAS: Final = 2.0
#: Half-width of the smoothing around each time-of-day slot.
SMOOTH_MS: Final = HOUR_MS
#: A scope's activity today against its baseline is believed within this factor either way; beyond
#: it the difference is the anomaly itself (a flood, a stream gone quiet) rather than a busier day.
LEVEL_FACTOR_RANGE: Final = 4.0


@dataclass(frozen=True)
class Expectation:
    """Expected counts for a range of buckets, and how much baseline stands behind them."""

    values: list[float]
    seasonal: bool
    #: whole baseline buckets the values were averaged from
    baseline_buckets: int
    #: seasonal: buckets averaged on either side of a slot, and the baseline's length in days
    half: int = 0
    days: float = 0.0

    def exposure(self, length: int) -> float:
        """Baseline buckets behind an interval of `length` buckets, per bucket of it: the ratio of
        the two samples the test compares (a whole flat baseline for any interval; for a seasonal one,
        the slots the interval spans plus the smoothing on either side, on every baseline day)."""
        if self.seasonal:
            behind = min(float(self.baseline_buckets), (length + 2 * self.half) * self.days)
        else:
            behind = float(self.baseline_buckets)
        return max(1.0, behind) / max(1, length)


def _robust_mean(values: list[float]) -> tuple[float, int]:
    """The mean of `values` without the ones a Poisson rate around their median could not produce
    (a burst); and how many values were kept. Sparse series keep everything: a 1 among 0s is noise."""
    if not values:
        return 0.0, 0
    ordered = sorted(values)
    middle = len(ordered) // 2
    median = ordered[middle] if len(ordered) % 2 else (ordered[middle - 1] + ordered[middle]) / 2
    cap = median + OUTLIER_SIGMAS * math.sqrt(median + 1) + 1
    kept = [value for value in ordered if value <= cap]
    return sum(kept) / len(kept), len(kept)


def expectation(grid: Grid, counts: Sequence[float], source: range, target: range) -> Expectation:
    """Expected counts of the buckets in `target` from the counts in `source` (see the module doc)."""
    full = [i for i in source if grid.coverage(i) >= 1.0]
    rates = {i: counts[i] for i in full}
    per_day = grid.slots_per_day
    days = len(full) / per_day if per_day else 0.0
    if per_day and days >= 1.0:
        half = max(1, round(SMOOTH_MS / grid.interval_ms))
        by_slot: dict[int, list[float]] = {}
        for i in full:
            slot = grid.slot(i)
            assert slot is not None
            by_slot.setdefault(slot, []).append(rates[i])
        mean_at = {slot: sum(values) / len(values) for slot, values in by_slot.items()}
        values = []
        for i in target:
            slot = grid.slot(i)
            assert slot is not None
            near = [
                value
                for shift in range(-half, half + 1)
                for value in by_slot.get((slot + shift) % per_day, ())
            ]
            level, _ = _robust_mean(near)
            # A peak at this time of day in the baseline (a nightly job) is expected again: the
            # trimmed mean alone would call tonight's run an anomaly.
            spot = max(mean_at.get((slot + shift) % per_day, 0.0) for shift in (-1, 0, 1))
            if spot > level + PEAK_SIGMAS * math.sqrt(level) + 1:
                level = spot
            values.append(level * grid.coverage(i))
        return Expectation(values, seasonal=True, baseline_buckets=len(full), half=half, days=days)
    flat, _ = _robust_mean(list(rates.values()))
    return Expectation([flat * grid.coverage(i) for i in target], seasonal=False, baseline_buckets=len(full))


def level_factor(observed: Sequence[float], expected: Sequence[float]) -> float:
    """How much busier the target is than expected, robustly: the median ratio of the buckets'
    totals (each +1, so quiet buckets say little), within LEVEL_FACTOR_RANGE."""
    ratios = sorted(
        (seen + 1.0) / (wanted + 1.0) for seen, wanted in zip(observed, expected, strict=True) if wanted > 0
    )
    if not ratios:
        return 1.0
    middle = len(ratios) // 2
    median = ratios[middle] if len(ratios) % 2 else (ratios[middle - 1] + ratios[middle]) / 2
    return max(1 / LEVEL_FACTOR_RANGE, min(LEVEL_FACTOR_RANGE, median))


@dataclass(frozen=True)
class Scan:
    """The most anomalous interval [start, end] (bucket offsets, inclusive) of a series."""

    llr: float
    start: int
    end: int
    observed: float
    expected: float

    @property
    def ratio(self) -> float:
        return self.observed / self.expected if self.expected > 0 else math.inf


def two_sample_llr(observed: float, expected: float, exposure: float) -> float:
    """LLR of "the window's rate is raised" for `observed` against `expected`, which was estimated
    from `expected * exposure` baseline records (0 when the window is not above its share)."""
    if observed <= expected:
        return 0.0
    reference = expected * exposure
    total = observed + reference
    share = 1.0 / (1.0 + exposure)  # the window's share of `total` if nothing changed
    llr = observed * math.log(observed / (total * share))
    if reference > 0:
        llr += reference * math.log(reference / (total * (1 - share)))
    return max(0.0, llr)


def scan(
    observed: Sequence[float], expected: Sequence[float], exposure: Callable[[int], float]
) -> Scan | None:
    """The interval with the largest two-sample LLR (None when no bucket is above expectation).

    An optimal interval starts and ends on a bucket above expectation, so only those are tried:
    O(k^2) for k such buckets, at most the window's length squared.
    """
    above = [i for i, (seen, wanted) in enumerate(zip(observed, expected, strict=True)) if seen > wanted]
    if not above:
        return None
    seen_sum = [0.0]
    wanted_sum = [0.0]
    for seen, wanted in zip(observed, expected, strict=True):
        seen_sum.append(seen_sum[-1] + seen)
        wanted_sum.append(wanted_sum[-1] + wanted)
    best: Scan | None = None
    for first, start in enumerate(above):
        for end in above[first:]:
            total = seen_sum[end + 1] - seen_sum[start]
            wanted = wanted_sum[end + 1] - wanted_sum[start]
            llr = two_sample_llr(total, wanted, exposure(end - start + 1))
            if best is None or llr > best.llr:
                best = Scan(llr, start, end, total, wanted)
    return best


def scans(
    observed: Sequence[float], expected: Sequence[float], exposure: Callable[[int], float], *, most: int
) -> list[Scan]:
    """Up to `most` disjoint anomalous intervals, strongest first: the best, then the best of what is
    left once it is set to its expectation (a nightly job must not hide an afternoon's incident)."""
    left = list(observed)
    found: list[Scan] = []
    while len(found) < most:
        best = scan(left, expected, exposure)
        if best is None or best.llr <= 0:
            break
        found.append(best)
        for index in range(best.start, best.end + 1):
            left[index] = min(left[index], expected[index])
    return found


def significance_bar(intervals: int, alpha: float = ALPHA) -> float:
    """The LLR that any of `intervals` Poisson intervals exceeds by chance with probability `alpha`
    (the scan statistic's tail bound, P(max > x) <= intervals * e^-x)."""
    return math.log(max(1, intervals) / alpha)


def intervals_of(buckets: int) -> int:
    return buckets * (buckets + 1) // 2
