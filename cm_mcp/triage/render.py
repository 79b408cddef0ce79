"""The triage as text for a model (and a person), and the fitting of text + structured content into
the caller's token budget: fewer templates, shorter examples, fewer follow-ups, then fewer findings,
always saying what was left out."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Final

from cm_mcp.summarize.budget import compact_json, estimate_tokens, fit
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
        + (f" | baseline {finding.baseline_records:,}" if finding.evidence else ""),
    ]
    if finding.evidence:
        lines.append(f"   {finding.evidence}")
    if finding.series:
        lines.append(
            f"   per {finding.series_interval}: {sparkline(finding.series)} (max {max(finding.series):,})"
        )
    for line in finding.templates:
        # one real message per template (the structured content has the template's mask too)
        mark = "NEW " if line.new else ("    " if line.new is False else "  ? ")
        count = f"{line.count:,}" if line.exact else f">={line.count:,}"
        lines.append(f"   {mark}{count:>7}  {line.example or line.template}")
    for call in finding.follow_up:
        lines.append(f"   next: {call.tool} {json.dumps(call.arguments, separators=(',', ':'))}")
    return lines


def render(result: TriageResult, *, brief: bool = False) -> str:
    """The text of a result; `brief` (the smallest budgets) leaves the spending explanation to the
    structured content and keeps the request counts."""
    lines = [
        f"{result.kind}_triage {result.application}/{result.app_type} "
        + " ".join(f"{name}={','.join(values)}" for name, values in result.scope.items())
        + f" | window {_short(result.window['start'])} .. {_short(result.window['end'])} vs baseline "
        f"{_short(result.baseline['start'])} .. {_short(result.baseline['end'])} ({result.interval} buckets"
        + (", time-of-day aware)" if result.seasonal else ")"),
        "spent: "
        + ", ".join(f"{count} {name}" for name, count in result.spent.requests.items())
        + ("" if brief else f" | {result.spent.scroll}"),
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
    #: the findings' figures only: no evidence sentence, no scores, examples without their masks
    brief: bool = False


def _shapes(findings: int) -> list[_Shape]:
    # examples are the evidence (what the messages say): they are shortened last, after the other
    # templates, the sparkline and the extra follow-ups, and before whole findings go
    shapes = [
        _Shape(findings, 5, 200, 3, True),
        _Shape(findings, 3, 160, 2, True),
        _Shape(findings, 3, 120, 1, True),
        _Shape(findings, 2, 120, 1, True),
        _Shape(findings, 2, 120, 1, False),
        _Shape(findings, 1, 100, 1, False),
        _Shape(findings, 1, 100, 1, False, brief=True),
    ]
    shapes += [_Shape(n, 1, 80, 1, False, brief=True) for n in range(findings - 1, 0, -1)]
    if findings:  # the first finding alone, as short as it gets (the smallest budget holds it)
        shapes.append(_Shape(1, 1, 50, 0, False, brief=True))
        shapes.append(_Shape(1, 0, 0, 0, False, brief=True))
    shapes.append(_Shape(0, 0, 0, 0, False))
    return shapes


def _trimmed(result: TriageResult, shape: _Shape) -> TriageResult:
    findings = []
    for finding in result.findings[: shape.findings]:
        templates = []
        for line in finding.templates[: shape.templates]:
            example = truncate(line.example, shape.example)[0] if shape.example else ""
            mask = "" if shape.brief and example else line.template
            templates.append(line.model_copy(update={"example": example, "template": mask}))
        brief: dict[str, Any] = {"evidence": "", "scores": {}, "series_interval": ""} if shape.brief else {}
        findings.append(
            finding.model_copy(
                update={
                    "templates": templates,
                    "follow_up": finding.follow_up[: shape.follow_ups],
                    "series": finding.series if shape.series else [],
                    **brief,
                }
            )
        )
    left = []
    dropped = len(result.findings) - len(findings)
    if dropped:
        left.append(f"{dropped} finding(s)")
    cut_templates = sum(len(f.templates) for f in result.findings[: shape.findings]) - sum(
        len(f.templates) for f in findings
    )
    if cut_templates:
        left.append(f"{cut_templates} template(s)")
    cut_calls = sum(len(f.follow_up) for f in result.findings[: shape.findings]) - sum(
        len(f.follow_up) for f in findings
    )
    if cut_calls:
        left.append(f"{cut_calls} follow-up(s)")
    if shape.brief and findings:
        left.append("evidence, scores, masks")
    omitted = "left out to fit max_tokens (raise it for more): " + ", ".join(left) if left else None
    return result.model_copy(update={"findings": findings, "omitted": omitted})


def fit_result(result: TriageResult, max_tokens: int) -> tuple[TriageResult, str]:
    """The result and its text, together (text + structured content) within `max_tokens`."""

    def build(shape: _Shape) -> tuple[TriageResult, str]:
        trimmed = _trimmed(result, shape)
        return trimmed, render(trimmed, brief=shape.brief)

    def both(built: tuple[TriageResult, str]) -> str:
        structured, text = built
        return text + "\n" + compact_json(structured)  # the structured content as it is sent

    (fitted, text), _ = fit(_shapes(len(result.findings)), build, both, max_tokens)
    return fitted, text


def tokens_of(result: TriageResult, text: str) -> int:
    return estimate_tokens(text) + estimate_tokens(compact_json(result))
