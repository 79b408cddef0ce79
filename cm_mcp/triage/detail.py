"""The detail request (the second and last aggregation): planned from the candidates and the mined
templates, read back into per-candidate facts.

For each candidate: its records by each sharpening field in its window and in the baseline (does one
service or function carry it?), its onset and end on a finer histogram, and, when no scroll was spent,
its most frequent messages. For each template: its count per bucket in its series over both periods.
For workloads: runs of each domain x workflow slower than the 95th percentile of its baseline, per
bucket.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

from cm_mcp.api.buckets import MAX_BUCKETS
from cm_mcp.triage import stats
from cm_mcp.triage.analysis import Analysis, Candidate, ShapeData
from cm_mcp.triage.grid import Grid
from cm_mcp.triage.queries import (
    Segment,
    SlowCheck,
    TemplateCheck,
    detail_aggs,
    fine_interval,
    template_filter,
)
from cm_mcp.triage.sampling import candidate_buckets
from cm_mcp.triage.series import buckets_of, count_of, histogram, terms_counts
from cm_mcp.triage.target import Target
from cm_mcp.triage.templates import Mined

#: Candidates described in detail, best first (the findings come from these).
DETAILED_CANDIDATES: Final = 8
#: Templates counted per candidate, and in all (each costs one histogram in the response).
TEMPLATES_PER_CANDIDATE: Final = 4
MAX_TEMPLATE_CHECKS: Final = 40
#: Records a template must have been mined from for its quoted values to count as part of it.
SPECIFIC_FROM: Final = 5
#: A baseline of fewer runs than this says too little about a workflow's usual duration.
MIN_BASELINE_RUNS: Final = 20
#: The percentile (of `queries.DURATION_PERCENTILES`) that bounds a workflow's usual duration.
USUAL_PERCENTILE: Final = "95.0"


@dataclass
class DetailPlan:
    candidates: list[Candidate]
    segments: list[Segment]
    templates: list[TemplateCheck]
    mined: list[Mined]
    slow: list[SlowCheck]
    fine_ms: int
    aggs: dict[str, Any]


def plan_detail(
    target: Target,
    analysis: Analysis,
    shape: ShapeData,
    mined: Mapping[tuple[Any, str | None], list[Mined]],
    *,
    with_messages: bool,
) -> DetailPlan:
    grid = analysis.grid
    chosen = analysis.candidates[:DETAILED_CANDIDATES]
    segments = []
    for candidate in chosen:
        first, last = candidate_buckets(grid, candidate)
        segments.append(
            Segment(
                candidate.series.scope,
                candidate.series.split,
                grid.bucket_start(first),
                grid.bucket_start(last + 1),
            )
        )
    checks: list[TemplateCheck] = []
    kept: list[Mined] = []
    seen: set[tuple[Any, str | None, str]] = set()

    def add(one: Mined) -> None:
        key = (one.scope, one.split, one.template)
        built = template_filter(target.message_field, one.template, generalize=one.count < SPECIFIC_FROM)
        if key in seen or built is None or len(checks) >= MAX_TEMPLATE_CHECKS:
            return
        seen.add(key)
        checks.append(TemplateCheck(one.scope, one.split, one.template, built))
        kept.append(one)

    for candidate, segment in zip(chosen, segments, strict=True):
        inside = [
            one
            for one in mined.get(candidate.series.key, [])
            if not one.times or any(segment.start_ms <= ms < segment.end_ms for ms in one.times)
        ]
        for one in inside[:TEMPLATES_PER_CANDIDATE]:
            add(one)
    # then the sweep: every series' templates, the rarest first (a new message is rare)
    rest = sorted((one for group in mined.values() for one in group), key=lambda one: one.count)
    for one in rest:
        add(one)
    slow: list[SlowCheck] = []
    if target.kind == "workloads":
        for scope, periods in shape.durations.items():
            usual = periods.get("baseline", {}).get(USUAL_PERCENTILE)
            runs = sum(shape.totals.get(scope, [0.0])[i] for i in grid.baseline)
            if usual is not None and runs >= MIN_BASELINE_RUNS:
                slow.append(SlowCheck(scope, usual))
    histograms = (2 * len(checks) + len(slow)) * (grid.size + 1)
    fine_ms = fine_interval(grid, len(segments), max(0, int(MAX_BUCKETS * 0.9) - histograms))
    aggs = detail_aggs(target, grid, segments, checks, slow, fine_ms=fine_ms, messages=with_messages)
    return DetailPlan(chosen, segments, checks, kept, slow, fine_ms, aggs)


@dataclass
class TemplateCount:
    check: TemplateCheck
    mined: Mined
    #: per grid bucket: in the check's scope, and in the whole application
    counts: list[float]
    app_counts: list[float]

    def baseline(self, grid: Grid) -> int:
        return int(sum(self.counts[i] for i in grid.baseline))

    def app_baseline(self, grid: Grid) -> int:
        return int(sum(self.app_counts[i] for i in grid.baseline))

    def is_new(self, grid: Grid) -> bool:
        """Absent from the whole application's baseline (not merely from this scope's)."""
        return self.app_baseline(grid) == 0

    def between(self, grid: Grid, start_ms: int, end_ms: int) -> int:
        first, last = grid.index(start_ms), grid.index(end_ms - 1)
        return int(sum(self.counts[i] for i in range(max(0, first), min(grid.size, last + 1))))


@dataclass
class CandidateDetail:
    candidate: Candidate
    segment: Segment
    #: refined onset and end (epoch ms) on the fine histogram, and its interval
    start_ms: int
    end_ms: int
    resolution_ms: int
    #: sharpening field -> [(value, count)] in the window, and in the baseline
    inside: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    before: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    messages: list[tuple[str, int]] = field(default_factory=list)
    count: int = 0


@dataclass
class Detail:
    candidates: list[CandidateDetail]
    templates: list[TemplateCount]
    #: scope -> slow runs per grid bucket, and the bound they passed
    slow: list[tuple[SlowCheck, list[float]]]


def read_detail(target: Target, grid: Grid, plan: DetailPlan, aggregations: Mapping[str, Any]) -> Detail:
    details = []
    for index, (candidate, segment) in enumerate(zip(plan.candidates, plan.segments, strict=True)):
        inside = aggregations.get(f"c{index}") or {}
        before = aggregations.get(f"c{index}b") or {}
        fine = histogram_between(aggregations.get(f"c{index}f"), plan.fine_ms, segment, grid)
        start, end = refine(candidate, segment, fine, plan.fine_ms, grid)
        refined = (start, end) != (segment.start_ms, segment.end_ms) or plan.fine_ms < grid.interval_ms
        details.append(
            CandidateDetail(
                candidate=candidate,
                segment=segment,
                start_ms=start,
                end_ms=end,
                resolution_ms=plan.fine_ms if refined and fine else grid.interval_ms,
                inside={
                    name: terms_counts(inside.get(f"x{n}")) for n, name in enumerate(target.sharpen_fields)
                },
                before={
                    name: terms_counts(before.get(f"x{n}")) for n, name in enumerate(target.sharpen_fields)
                },
                messages=terms_counts(inside.get("m")),
                count=count_of(inside),
            )
        )
    templates = []
    for index, (check, mined) in enumerate(zip(plan.templates, plan.mined, strict=True)):
        body = aggregations.get(f"p{index}") or {}
        in_scope = histogram(grid, (body.get("s") or {}).get("t"))
        templates.append(TemplateCount(check, mined, in_scope, histogram(grid, body.get("t"))))
    slow = [
        (check, histogram(grid, (aggregations.get(f"d{index}") or {}).get("t")))
        for index, check in enumerate(plan.slow)
    ]
    return Detail(details, templates, slow)


def histogram_between(body: Any, fine_ms: int, segment: Segment, grid: Grid) -> list[tuple[int, float]]:
    """(bucket start ms, count) of a fine histogram over the segment padded by one grid bucket."""
    start = segment.start_ms - grid.interval_ms
    end = segment.end_ms + grid.interval_ms
    counts: dict[int, float] = {}
    for bucket in buckets_of((body or {}).get("t") if isinstance(body, Mapping) else None):
        key = bucket.get("key")
        if isinstance(key, int | float) and start <= key < end:
            counts[int(key)] = counts.get(int(key), 0.0) + count_of(bucket)
    return [(ms, counts.get(ms, 0.0)) for ms in range(start - start % fine_ms, end, fine_ms)]


def refine(
    candidate: Candidate, segment: Segment, fine: Sequence[tuple[int, float]], fine_ms: int, grid: Grid
) -> tuple[int, int]:
    """Onset and end on the fine histogram: the scan again, over the padded segment, against the
    candidate's expected rate spread evenly over the fine buckets."""
    if not fine or fine_ms >= grid.interval_ms:
        return segment.start_ms, segment.end_ms
    scan = candidate.scan
    rate = scan.expected / max(1, scan.end - scan.start + 1) * fine_ms / grid.interval_ms
    observed = [count for _, count in fine]
    found = stats.scan(observed, [rate] * len(observed), lambda length: 1e6 / length)
    if found is None:
        return segment.start_ms, segment.end_ms
    return fine[found.start][0], fine[found.end][0] + fine_ms
