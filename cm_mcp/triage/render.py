"""The triage as text for a model (and a person), and the fitting of text + structured content into
the caller's token budget: fewer templates, shorter examples, fewer follow-ups, then fewer findings,
always saying what was left out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Final

from cm_mcp.summarize.budget import estimate_tokens, fit
from cm_mcp.summarize.text import truncate
from cm_mcp.triage.models import Finding, TriageResult

SPARKS: Final = "▁▂▃▄▅▆▇█"


def sparkline(values: list[int]) -> str:
    if not values:
        return ""
    top = max(values)
    if top <= 0:
        return SPARKS[0] * len(values)
    return "".join(
        SPARKS[min(len(SPARKS) - 1, (len(SPARKS) - 1) * value // top)] if value else " " for value in values
    )


def _short(iso: str) -> str:
    """2026-12-06T04:00:00.000Z -> 2026-12-06T04:00Z."""
    return iso[:16] + "Z" if len(iso) >= 16 else iso


def _scope(finding: Finding) -> str:
    return " ".join(f"{name}={value}" for name, value in finding.scope.items())


def _finding_lines(finding: Finding) -> list[str]:
    ratio = f" (x{finding.ratio:g})" if finding.ratio is not None else ""
    what = finding.level or finding.kind
    lines = [
        f"#{finding.rank} score {finding.score:g} | {_scope(finding)} | {what} | {_short(finding.start)} .. "
        f"{_short(finding.end)} ({finding.resolution}) | {finding.count:,} vs {finding.expected:,.1f} expected{ratio}"
        f" | baseline {finding.baseline_records:,}",
        f"   {finding.evidence}",
    ]
    if finding.series:
        lines.append(
            f"   per {finding.series_interval}: {sparkline(finding.series)} (max {max(finding.series):,})"
        )
    for line in finding.templates:
        mark = "NEW " if line.new else ("    " if line.new is False else "  ? ")
        count = f"{line.count:,}" if line.exact else f">={line.count:,}"
        example = f'  e.g. "{line.example}"' if line.example and line.example != line.template else ""
        lines.append(f"   {mark}{count:>7}  {line.template}{example}")
    for call in finding.follow_up:
        lines.append(f"   next: {call.tool} {json.dumps(call.arguments, separators=(',', ':'))}")
    return lines


def render(result: TriageResult) -> str:
    lines = [
        f"{result.kind}_triage {result.application}/{result.app_type} "
        + " ".join(f"{name}={','.join(values)}" for name, values in result.scope.items())
        + f" | window {_short(result.window['start'])} .. {_short(result.window['end'])} vs baseline "
        f"{_short(result.baseline['start'])} .. {_short(result.baseline['end'])} ({result.interval} buckets"
        + (", time-of-day aware)" if result.seasonal else ")"),
        "spent: "
        + ", ".join(f"{count} {name}" for name, count in result.spent.requests.items())
        + f" | {result.spent.scroll}",
        result.summary,
    ]
    for finding in result.findings:
        lines += _finding_lines(finding)
    if result.result_id:
        lines.append(f"the scroll's records are kept as result {result.result_id} (results_search: no quota)")
    lines += [f"note: {note}" for note in result.notes]
    if result.omitted:
        lines.append(f"omitted: {result.omitted}")
    return "\n".join(lines)


@dataclass(frozen=True)
class _Shape:
    findings: int
    templates: int
    example: int
    follow_ups: int
    series: bool


def _shapes(findings: int) -> list[_Shape]:
    shapes = [
        _Shape(findings, 5, 200, 3, True),
        _Shape(findings, 3, 120, 2, True),
        _Shape(findings, 3, 60, 1, True),
        _Shape(findings, 2, 0, 1, False),
        _Shape(findings, 1, 0, 1, False),
    ]
    shapes += [_Shape(n, 1, 0, 1, False) for n in range(findings - 1, 0, -1)]
    shapes.append(_Shape(0, 0, 0, 0, False))
    return shapes


def _trimmed(result: TriageResult, shape: _Shape) -> TriageResult:
    findings = []
    for finding in result.findings[: shape.findings]:
        templates = [
            line.model_copy(
                update={"example": truncate(line.example, shape.example)[0] if shape.example else ""}
            )
            for line in finding.templates[: shape.templates]
        ]
        findings.append(
            finding.model_copy(
                update={
                    "templates": templates,
                    "follow_up": finding.follow_up[: shape.follow_ups],
                    "series": finding.series if shape.series else [],
                }
            )
        )
    left = []
    dropped = len(result.findings) - len(findings)
    if dropped:
        left.append(f"{dropped} finding(s) (raise max_tokens or lower max_findings)")
    cut_templates = sum(len(f.templates) for f in result.findings[: shape.findings]) - sum(
        len(f.templates) for f in findings
    )
    if cut_templates:
        left.append(f"{cut_templates} template line(s)")
    cut_calls = sum(len(f.follow_up) for f in result.findings[: shape.findings]) - sum(
        len(f.follow_up) for f in findings
    )
    if cut_calls:
        left.append(f"{cut_calls} follow-up call(s)")
    omitted = "; ".join(left) + " left out to fit max_tokens" if left else None
    return result.model_copy(update={"findings": findings, "omitted": omitted})


def fit_result(result: TriageResult, max_tokens: int) -> tuple[TriageResult, str]:
    """The result and its text, together (text + structured content) within `max_tokens`."""

    def build(shape: _Shape) -> tuple[TriageResult, str]:
        trimmed = _trimmed(result, shape)
        return trimmed, render(trimmed)

    def both(built: tuple[TriageResult, str]) -> str:
        structured, text = built
        return text + "\n" + structured.model_dump_json()

    (fitted, text), _ = fit(_shapes(len(result.findings)), build, both, max_tokens)
    return fitted, text


def tokens_of(result: TriageResult, text: str) -> int:
    return estimate_tokens(text) + estimate_tokens(result.model_dump_json())
