"""From candidates, template counts and slow runs to ranked findings (or a quiet verdict).

Evidence, each against a bar the data set (stats.py), combined into one score (above 1: a finding):

- an error rise carried by new messages: the count beyond both the significance bar and the series'
  own ordinary day, AND the records of templates the whole application never logged in the baseline
  significant on their own (their scan against a baseline of none). The score is the weaker of the
  two: both must hold;
- a rise of familiar messages (or of warnings, new or not): bursts of familiar messages (retries,
  flapping gateways) and of warnings (deploys: readiness probes, drained connections) are what an
  ordinary day is made of, so the count must also beat the application's largest ordinary burst at
  that level (any scope's, in the baseline, placed on this series), by a margin: a single baseline
  day samples its largest burst poorly;
- a new error template on its own (a new error at an ordinary volume), when no rise holds it;
- runs of a workflow slower than its baseline's 95th percentile, clustered beyond chance (with the
  error margin: slow runs are what a long tail is made of).

The margins are calibrated on quiet days (sandbox seeds never used for the incident figures): just
above the largest familiar-burst score seen at that severity, so that an ordinary day stays quiet.
Warnings get the larger one: far more of them burst on an ordinary day.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from cm_mcp.api.times import format_utc
from cm_mcp.summarize.fields import normalize_level, severity
from cm_mcp.triage import stats
from cm_mcp.triage.analysis import Analysis, ShapeData
from cm_mcp.triage.detail import CandidateDetail, Detail, TemplateCount
from cm_mcp.triage.followups import follow_ups
from cm_mcp.triage.grid import Grid, from_ms, interval_name
from cm_mcp.triage.models import Finding, TemplateLine
from cm_mcp.triage.series import Scope
from cm_mcp.triage.target import Target
from cm_mcp.triage.templates import mine_terms

#: How far a rise of familiar messages must pass its bars, for errors (failed runs) and for warnings
#: (see the module doc): 1.15 x the largest such score of 15 quiet days (bench/triage.py, seeds 11-13):
#: 3.1 for errors, 6.1 for warnings.
ERROR_MARGIN: Final = 3.5
WARN_MARGIN: Final = 7.0
#: Severity (summarize.fields.SEVERITY) of errors and failed runs.
ERROR_SEVERITY: Final = 5
#: A sharpening value must carry this share of a finding's records (and more than its baseline share).
SHARPEN_SHARE: Final = 0.8
#: Points of a finding's sparkline at most (adjacent buckets are summed).
SPARK_POINTS: Final = 24
TEMPLATES_SHOWN: Final = 5


@dataclass
class Draft:
    """A finding before ranking (the model's fields plus what ranking needs)."""

    score: float
    kind: Literal["count", "new_template", "slow_runs"]
    scope: Scope
    sharpen: list[tuple[str, str]]
    level: str | None
    start_ms: int
    end_ms: int
    resolution_ms: int
    count: int
    expected: float
    baseline_records: int
    templates: list[TemplateLine]
    series: list[float]
    evidence: str
    split_field: str
    parts: dict[str, float] = field(default_factory=dict)


def _ratio(count: float, expected: float) -> float | None:
    return round(count / expected, 1) if expected > 0 else None


def _times(count: float, expected: float) -> str:
    ratio = _ratio(count, expected)
    return "never seen in the baseline" if ratio is None else f"x{ratio:g}"


def _template_lines(
    grid: Grid, counts: Sequence[TemplateCount], start_ms: int, end_ms: int
) -> list[TemplateLine]:
    lines = []
    for one in counts:
        inside = one.between(grid, start_ms, end_ms)
        if inside <= 0:
            continue
        lines.append(
            TemplateLine(
                template=one.check.template,
                count=inside,
                exact=True,
                baseline=one.baseline(grid),
                new=one.is_new(grid),
                example=one.mined.example,
            )
        )
    lines.sort(key=lambda line: line.count, reverse=True)
    return lines


def _sharpen(detail: CandidateDetail) -> list[tuple[str, str]]:
    """Fields whose one value carries the finding (and did not carry the baseline as much)."""
    sharper = []
    for name, values in detail.inside.items():
        total = sum(count for _, count in values)
        if not values or total <= 0:
            continue
        value, count = values[0]
        before = dict(detail.before.get(name, []))
        before_total = sum(before.values())
        before_share = before.get(value, 0) / before_total if before_total else 0.0
        if count / total >= SHARPEN_SHARE and before_share < 0.95:
            sharper.append((name, value))
    return sharper


def _spark(grid: Grid, counts: Sequence[float]) -> tuple[list[float], int]:
    window = [counts[i] for i in grid.window]
    step = max(1, math.ceil(len(window) / SPARK_POINTS))
    return [sum(window[i : i + step]) for i in range(0, len(window), step)], grid.interval_ms * step


def is_error(split: str | None) -> bool:
    """An error level or a failed state (None: a template of the shape's error messages)."""
    return split is None or severity(normalize_level(split)) >= ERROR_SEVERITY


def _new_evidence(
    grid: Grid, mine: Sequence[TemplateCount], start_ms: int, end_ms: int, observed: float
) -> float:
    """Records of templates new to the application within [start, end), at most `observed`."""
    return min(observed, float(sum(one.between(grid, start_ms, end_ms) for one in mine if one.is_new(grid))))


def _novelty_llr(grid: Grid, records: float, length: int) -> float:
    """LLR of `records` of never-seen templates in an interval of `length` buckets (a baseline of
    none, over all its buckets)."""
    exposure = max(1.0, len(grid.baseline) / max(1, length))
    return stats.two_sample_llr(records, 0.0, exposure) if records > 0 else 0.0


def count_findings(target: Target, analysis: Analysis, detail: Detail) -> list[Draft]:
    grid = analysis.grid
    template_bar = stats.significance_bar(
        max(1, len(detail.templates)) * stats.intervals_of(len(grid.window))
    )
    drafts = []
    for item in detail.candidates:
        candidate = item.candidate
        series = candidate.series
        error = is_error(series.split)
        mine = [
            one
            for one in detail.templates
            if one.check.scope == series.scope
            and (one.check.split == series.split or (one.check.split is None and error))
        ]
        segment = item.segment
        lines = _template_lines(grid, mine, segment.start_ms, segment.end_ms)
        if not lines and item.messages:  # no scroll: the detail's top messages, as templates
            lines = [
                TemplateLine(template=one.template, count=one.count, exact=False, example=one.example)
                for one in mine_terms(series.scope, series.split, item.messages)
            ]
        scan = candidate.scan
        new = _new_evidence(grid, mine, segment.start_ms, segment.end_ms, scan.observed)
        new_score = _novelty_llr(grid, new, scan.end - scan.start + 1) / template_bar
        novel = min(candidate.score, new_score) if error else 0.0
        familiar = candidate.familiar_score / (ERROR_MARGIN if error else WARN_MARGIN)
        rise = f"{series.split} {scan.observed:,.0f} vs {scan.expected:,.1f} expected ({_times(scan.observed, scan.expected)})"
        if novel >= familiar:
            score = novel
            evidence = f"{rise}; {new / max(1.0, scan.observed):.0%} of it in messages new to the application"
        else:
            score = familiar
            evidence = f"{rise}; beyond the largest ordinary burst of the baseline"
        spark, _ = _spark(grid, series.counts)
        drafts.append(
            Draft(
                score=score,
                kind="count",
                scope=series.scope,
                sharpen=_sharpen(item),
                level=series.split,
                start_ms=item.start_ms,
                end_ms=item.end_ms,
                resolution_ms=item.resolution_ms,
                count=int(scan.observed),
                expected=scan.expected,
                baseline_records=int(sum(series.counts[i] for i in grid.baseline)),
                templates=lines[:TEMPLATES_SHOWN],
                series=spark,
                evidence=evidence,
                split_field=series.split_field,
                parts={"rise": candidate.score, "new": new_score, "familiar": familiar},
            )
        )
    return drafts


def template_findings(target: Target, analysis: Analysis, detail: Detail) -> list[Draft]:
    """New templates significant on their own (a new message at an ordinary volume)."""
    grid = analysis.grid
    window = grid.window
    checks = [one for one in detail.templates if one.is_new(grid) and is_error(one.check.split)]
    if not checks:
        return []
    bar = stats.significance_bar(len(detail.templates) * stats.intervals_of(len(window)))
    drafts = []
    for one in checks:
        seen = [one.counts[i] for i in window]
        expected = stats.expectation(grid, one.counts, grid.baseline, window)
        found = stats.scan(seen, expected.values, expected.exposure)
        if found is None or found.llr <= 0:
            continue
        start = grid.bucket_start(window.start + found.start)
        end = min(grid.bucket_start(window.start + found.end + 1), grid.end_ms)
        spark, _ = _spark(grid, one.counts)
        line = TemplateLine(
            template=one.check.template,
            count=int(found.observed),
            exact=True,
            baseline=0,
            new=True,
            example=one.mined.example,
        )
        drafts.append(
            Draft(
                score=found.llr / bar,
                kind="new_template",
                scope=one.check.scope,
                sharpen=[],
                level=one.check.split,
                start_ms=start,
                end_ms=end,
                resolution_ms=grid.interval_ms,
                count=int(found.observed),
                expected=found.expected,
                baseline_records=0,
                templates=[line],
                series=spark,
                evidence=f"new template: {found.observed:,.0f} records, none anywhere in the application's baseline",
                split_field=target.split_field,
                parts={"new": found.llr / bar},
            )
        )
    return drafts


def slow_findings(target: Target, analysis: Analysis, shape: ShapeData, detail: Detail) -> list[Draft]:
    """Runs slower than the 95th percentile of their baseline, clustered beyond chance."""
    grid = analysis.grid
    window, baseline = grid.window, grid.baseline
    if not detail.slow:
        return []
    bar = stats.significance_bar(len(detail.slow) * stats.intervals_of(len(window)))
    drafts = []
    for check, counts in detail.slow:
        runs = shape.totals.get(check.scope)
        if runs is None:
            continue
        baseline_runs = sum(runs[i] for i in baseline)
        # by definition 5 % of the baseline's runs were slower than its 95th percentile
        share = max(sum(counts[i] for i in baseline), 1.0) / max(baseline_runs, 1.0)
        seen = [counts[i] for i in window]
        wanted = [runs[i] * share for i in window]
        window_runs = [runs[i] for i in window]

        def exposure(length: int, _runs: float = baseline_runs, _window: list[float] = window_runs) -> float:
            return max(1.0, _runs / max(1.0, sum(_window) * length / max(1, len(_window))))

        found = stats.scan(seen, wanted, exposure)
        if found is None:
            continue
        durations = shape.durations.get(check.scope, {})
        usual = durations.get("baseline", {}).get("50.0")
        now = durations.get("window", {}).get("50.0")
        median = f"; median run {now / 1000:,.0f} s vs {usual / 1000:,.0f} s usually" if usual and now else ""
        start = grid.bucket_start(window.start + found.start)
        spark, _ = _spark(grid, counts)
        drafts.append(
            Draft(
                score=found.llr / bar / ERROR_MARGIN,
                kind="slow_runs",
                scope=check.scope,
                sharpen=[],
                level=None,
                start_ms=start,
                end_ms=min(grid.bucket_start(window.start + found.end + 1), grid.end_ms),
                resolution_ms=grid.interval_ms,
                count=int(found.observed),
                expected=found.expected,
                baseline_records=int(sum(counts[i] for i in baseline)),
                templates=[],
                series=spark,
                evidence=f"{found.observed:,.0f} runs slower than {check.above_ms / 1000:,.0f} s (the baseline's 95th percentile) vs {found.expected:,.1f} expected{median}",
                split_field=target.split_field,
                parts={"slow": found.llr / bar, "familiar": found.llr / bar / ERROR_MARGIN},
            )
        )
    return drafts


def _overlaps(a: Draft, b: Draft) -> bool:
    same_level = a.level == b.level or a.level is None or b.level is None
    return a.scope == b.scope and same_level and a.start_ms < b.end_ms and b.start_ms < a.end_ms


def rank(
    target: Target,
    grid: Grid,
    drafts: list[Draft],
    *,
    max_findings: int,
    result_id: str | None,
    stored: set[tuple[Scope, str]],
) -> list[Finding]:
    """Findings above the bar, best first, one per series and time: a rise absorbs the new templates
    inside it (it has the finer window and all the templates); otherwise the strongest is kept."""
    counts = [draft for draft in drafts if draft.kind == "count"]
    merged: list[Draft] = []
    for draft in drafts:
        if draft.kind == "new_template":
            holder = next((one for one in counts if _overlaps(one, draft)), None)
            if holder is not None:
                holder.score = max(holder.score, draft.score)
                continue
        merged.append(draft)
    kept: list[Draft] = []
    for draft in sorted(merged, key=lambda d: d.score, reverse=True):
        if draft.score <= 1.0 or any(_overlaps(draft, other) for other in kept):
            continue
        kept.append(draft)
    findings = []
    for number, draft in enumerate(kept[:max_findings], start=1):
        extra: list[dict[str, Any]] = []
        if draft.level is not None:
            extra.append({"term": {draft.split_field: draft.level}})
        extra += [{"term": {name: value}} for name, value in draft.sharpen]
        findings.append(
            Finding(
                rank=number,
                score=round(draft.score, 2),
                kind=draft.kind,
                scope={**dict(draft.scope), **dict(draft.sharpen)},
                level=draft.level,
                start=format_utc(from_ms(draft.start_ms)),
                end=format_utc(from_ms(draft.end_ms)),
                resolution=interval_name(draft.resolution_ms),
                count=draft.count,
                expected=round(draft.expected, 1),
                ratio=_ratio(draft.count, draft.expected),
                baseline_records=draft.baseline_records,
                templates=draft.templates,
                series=[int(value) for value in draft.series],
                series_interval=interval_name(
                    grid.interval_ms * max(1, math.ceil(len(grid.window) / SPARK_POINTS))
                ),
                evidence=draft.evidence,
                scores={name: round(value, 2) for name, value in draft.parts.items()},
                follow_up=follow_ups(
                    target,
                    draft.scope,
                    extra,
                    draft.start_ms,
                    draft.end_ms,
                    draft.count,
                    result_id=result_id,
                    stored=(draft.scope, draft.level or "") in stored,
                ),
            )
        )
    return findings
