"""From the shape aggregation to ranked candidates: every severe series scanned against its baseline.

A candidate is the most anomalous interval of one series (stats.scan) with its two bars: the
significance bar (shared by every series of the triage: it grows with the number of intervals
scanned) and the series' own ordinary day (the same scan of the baseline against the window's
profile). Its `score` is the LLR over the higher bar: above 1, the count alone is abnormal.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from cm_mcp.summarize.fields import normalize_level, severity
from cm_mcp.triage import stats
from cm_mcp.triage.grid import Grid
from cm_mcp.triage.queries import SCOPE_NAMES
from cm_mcp.triage.series import (
    Scope,
    Series,
    beyond_sizes,
    buckets_of,
    histogram,
    key_text,
    nested,
    other_of,
    terms_counts,
)
from cm_mcp.triage.target import Target

#: Severity (summarize.fields.SEVERITY) from which a split value is scanned: WARN and worse for logs,
#: FAILED and TIMED_OUT for workloads (CANCELLED is a person's decision, not a fault).
MIN_SEVERITY = {"logs": 4, "workloads": 5}
#: Anomalous intervals looked for per series (disjoint, strongest first).
INTERVALS_PER_SERIES = 3


@dataclass
class ShapeData:
    grid: Grid
    totals: dict[Scope, list[float]] = field(default_factory=dict)
    series: list[Series] = field(default_factory=list)
    #: scope -> [(message, count)] of its severe records in the window, most frequent first
    messages: dict[Scope, list[tuple[str, int]]] = field(default_factory=dict)
    #: records in scopes beyond the terms sizes (not analysed)
    other_records: int = 0
    #: workloads: scope -> {"baseline": {"50.0": ms, "95.0": ms}, "window": {...}}
    durations: dict[Scope, dict[str, dict[str, float]]] = field(default_factory=dict)


def read_shape(target: Target, grid: Grid, aggregations: Mapping[str, Any]) -> ShapeData:
    names = SCOPE_NAMES[: len(target.scope_fields)]
    levels = aggregations.get("lv")
    shape = ShapeData(
        grid=grid,
        other_records=other_of(levels) + sum(beyond_sizes(level, names) for level in buckets_of(levels)),
    )
    scanned = MIN_SEVERITY[target.kind]
    for level in buckets_of(aggregations.get("lv")):
        split = key_text(level)
        for scope, bucket in nested(level, names, target.scope_fields):
            counts = histogram(grid, bucket.get("t"))
            total = shape.totals.setdefault(scope, [0.0] * grid.size)
            for index, count in enumerate(counts):
                total[index] += count
            if severity(normalize_level(split)) >= scanned:
                shape.series.append(Series(scope, target.split_field, split, counts))
    for scope, bucket in nested(aggregations.get("wm"), names, target.scope_fields):
        shape.messages[scope] = terms_counts(bucket.get("m"))
    for period, name in (("baseline", "bd"), ("window", "wd")):
        for scope, bucket in nested(aggregations.get(name), names, target.scope_fields):
            values = (bucket.get("d") or {}).get("values")
            if isinstance(values, Mapping):
                found = {str(k): float(v) for k, v in values.items() if isinstance(v, int | float)}
                shape.durations.setdefault(scope, {})[period] = _percent_keys(found)
    return shape


def _percent_keys(values: Mapping[str, float]) -> dict[str, float]:
    """Percentile keys as '50.0'/'95.0' whatever the answer wrote ('50', '50.0')."""
    return {f"{float(key):.1f}": value for key, value in values.items()}


@dataclass
class Candidate:
    series: Series
    #: expected counts of the window's buckets (level factor applied)
    expected: list[float]
    scan: stats.Scan
    #: LLR of the series' largest excursion in the baseline (its ordinary day)
    null: float
    bar: float
    level_factor: float
    seasonal: bool
    #: records above expectation in the series' largest baseline excursion
    null_excess: float = 0.0
    #: the LLR this interval would reach if the application's largest ordinary excursion at this
    #: level (any scope's, in the baseline) had landed on it: the bar for a rise of familiar messages
    familiar_bar: float = 0.0

    @property
    def score(self) -> float:
        return self.scan.llr / self.bar if self.bar > 0 else 0.0

    @property
    def familiar_score(self) -> float:
        bar = max(self.bar, self.familiar_bar)
        return self.scan.llr / bar if bar > 0 else 0.0


@dataclass
class Analysis:
    grid: Grid
    candidates: list[Candidate]
    significance: float
    series_scanned: int
    #: window / baseline records per split value, over every scanned series
    window_records: dict[str, int]
    baseline_records: dict[str, int]
    scopes: int


def _scaled(values: list[float], factor: float) -> list[float]:
    return [value * factor for value in values]


def _per_bucket(expectation: stats.Expectation, factor: float) -> Callable[[int], float]:
    """The two-sample exposure of an interval of `length` buckets, with the level factor applied
    (a busier day raises what is expected, not the baseline evidence behind it)."""

    def exposure(length: int) -> float:
        return expectation.exposure(length) / factor

    return exposure


def analyse(shape: ShapeData) -> Analysis:
    grid = shape.grid
    window, baseline = grid.window, grid.baseline
    factors: dict[Scope, tuple[float, float]] = {}
    for scope, total in shape.totals.items():
        expected_total = stats.expectation(grid, total, baseline, window).values
        reference_total = stats.expectation(grid, total, window, baseline).values
        factors[scope] = (
            stats.level_factor([total[i] for i in window], expected_total),
            stats.level_factor([total[i] for i in baseline], reference_total),
        )
    significance = stats.significance_bar(len(shape.series) * stats.intervals_of(len(window)))
    candidates: list[Candidate] = []
    exposures: list[Callable[[int], float]] = []
    #: per split value: the largest excursion (records above expectation) of any series in the baseline
    largest: dict[str, float] = {}
    window_records: dict[str, int] = {}
    baseline_records: dict[str, int] = {}
    for series in shape.series:
        counts = series.counts
        seen = [counts[i] for i in window]
        before = [counts[i] for i in baseline]
        window_records[series.split] = window_records.get(series.split, 0) + int(sum(seen))
        baseline_records[series.split] = baseline_records.get(series.split, 0) + int(sum(before))
        factor, null_factor = factors.get(series.scope, (1.0, 1.0))
        expected = stats.expectation(grid, counts, baseline, window)
        wanted = _scaled(expected.values, factor)
        found = stats.scans(
            seen,
            wanted,
            _per_bucket(expected, factor),
            most=INTERVALS_PER_SERIES,
        )
        if not found:
            continue
        reference = stats.expectation(grid, counts, window, baseline)
        null_scan = stats.scan(
            before,
            _scaled(reference.values, null_factor),
            _per_bucket(reference, null_factor),
        )
        null = null_scan.llr if null_scan is not None else 0.0
        excess = null_scan.observed - null_scan.expected if null_scan is not None else 0.0
        largest[series.split] = max(largest.get(series.split, 0.0), excess)
        for interval in found:
            candidates.append(
                Candidate(
                    series=series,
                    expected=wanted,
                    scan=interval,
                    null=null,
                    bar=max(significance, null),
                    level_factor=factor,
                    seasonal=expected.seasonal,
                    null_excess=excess,
                )
            )
            exposures.append(_per_bucket(expected, factor))
    for candidate, exposure in zip(candidates, exposures, strict=True):
        scan = candidate.scan
        burst = largest.get(candidate.series.split, 0.0)
        length = scan.end - scan.start + 1
        candidate.familiar_bar = stats.two_sample_llr(scan.expected + burst, scan.expected, exposure(length))
    candidates.sort(key=lambda candidate: candidate.score, reverse=True)
    return Analysis(
        grid=grid,
        candidates=candidates,
        significance=significance,
        series_scanned=len(shape.series),
        window_records=window_records,
        baseline_records=baseline_records,
        scopes=len(shape.totals),
    )
