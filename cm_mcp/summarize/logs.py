"""Summaries of log hits shaped for a model's context window (see `summarize_logs`)."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cm_mcp.api.fields import MESSAGE_FIELD, TIMESTAMP_FIELD, WORKFLOW_NAME_FIELD, WORKLOAD_STATE_FIELD

from .analysis import Analysis, Group, LevelSource, analyse
from .budget import clamp_budget, fit
from .fields import get_field, raw_level, raw_state, severity, source_of
from .models import LogSummary, Omitted, SampleRecord, TemplateSummary, Totals
from .text import to_text, truncate

_MAX_SAMPLE = 25
_MAX_TEMPLATES = 40
_MAX_LEVELS = 12
_EXAMPLE_LENGTHS = (400, 200, 120, 60, 30)


@dataclass(frozen=True)
class _Shape:
    sample: int
    templates: int
    example: int


def _build(
    analysis: Analysis,
    shape: _Shape,
    *,
    matched: int,
    max_tokens: int,
    more: _More,
    group_by: str,
) -> LogSummary:
    returned = len(analysis.hits)
    order = analysis.order
    truncated = 0
    templates: list[TemplateSummary] = []
    for gid in order[: shape.templates]:
        group = analysis.groups[gid]
        example_text, cut = truncate(
            analysis.message_of(source_of(analysis.hits[group.representative])), shape.example
        )
        template_text, cut_t = truncate(analysis.texts[gid], shape.example)
        truncated += cut + cut_t
        templates.append(
            TemplateSummary(
                template=template_text,
                count=group.count,
                share=round(group.count / returned, 4) if returned else 0.0,
                first_seen=group.first[1] if group.first else None,
                last_seen=group.last[1] if group.last else None,
                levels=dict(sorted(group.levels.items(), key=lambda kv: (-severity(kv[0]), -kv[1]))),
                example=example_text,
            )
        )
    # Sample: one record per template in rank order (covering the templates), then each template's latest.
    picks: list[int] = []
    seen: set[int] = set()
    for pool in (
        [analysis.groups[g].representative for g in order],
        [analysis.groups[g].latest for g in order],
    ):
        for index in pool:
            if len(picks) >= shape.sample:
                break
            if index >= 0 and index not in seen:
                seen.add(index)
                picks.append(index)
    sample: list[SampleRecord] = []
    for index in picks:
        doc = source_of(analysis.hits[index])
        message, cut = truncate(analysis.message_of(doc), shape.example)
        truncated += cut
        extra: dict[str, str] = {}
        for name in analysis.field_names:
            value = get_field(doc, name)
            if value is not None:
                extra[name], cut = truncate(to_text(value), max(30, shape.example // 2))
                truncated += cut
        raw_ts = get_field(doc, TIMESTAMP_FIELD)
        sample.append(
            SampleRecord(
                timestamp=to_text(raw_ts) if raw_ts is not None else None,
                level=analysis.record_levels[index],
                message=message,
                template=rank
                if (rank := analysis.rank[analysis.record_groups[index]]) < shape.templates
                else None,
                fields=extra,
            )
        )
    sample.sort(key=lambda r: (-severity(r.level), r.timestamp or ""))
    levels = analysis.ranked_levels
    omitted_templates = [analysis.groups[g] for g in order[shape.templates :]]
    omitted = Omitted(
        records=matched - len(sample),
        templates=len(omitted_templates),
        levels=max(0, len(levels) - _MAX_LEVELS),
        truncated_messages=truncated,
        continuation=more.continuation,
        how_to_get_more=_how_to_get_more(analysis, omitted_templates, matched, returned, more),
    )
    return LogSummary(
        kind=analysis.kind,
        group_by=group_by,
        max_tokens=max_tokens,
        totals=Totals(
            matched=matched,
            returned=returned,
            first_timestamp=analysis.first[1] if analysis.first else None,
            last_timestamp=analysis.last[1] if analysis.last else None,
        ),
        levels=dict(levels[:_MAX_LEVELS]),
        templates=templates,
        sample=sample,
        omitted=omitted,
    )


@dataclass(frozen=True)
class _More:
    """Where the records a summary leaves out can be had: the next page (`continuation`), the same
    upstream query narrowed (`same_query`), or the result they are stored in (`local_result_id`)."""

    continuation: str | None
    same_query: bool
    local_result_id: str | None


def _how_to_get_more(
    analysis: Analysis,
    omitted_templates: list[Group],
    matched: int,
    returned: int,
    more: _More,
) -> str:
    if more.continuation:
        return f"fetch the next page with continuation (scroll_id) {more.continuation!r}"
    # Point at the most severe thing left out, with a filter narrow enough to return it whole.
    target = omitted_templates[0] if omitted_templates else None
    if target is None:
        level = max(analysis.levels, key=lambda lv: (severity(lv), analysis.levels[lv]), default="ERROR")
        first, last = analysis.first, analysis.last
    else:
        level = max(target.levels, key=lambda lv: (severity(lv), target.levels[lv]))
        first, last = target.first, target.last
    counted = "every matched record is counted above; " if matched <= returned and target is None else ""
    if more.local_result_id:
        # Stored data: the narrower query is a ready results_search call, at no quota.
        filters: list[dict[str, Any]] = [] if (term := _level_term(analysis, level)) is None else [term]
        if first and last:
            filters.append({"range": {TIMESTAMP_FIELD: {"gte": first[1], "lte": last[1]}}})
        call = {"result_id": more.local_result_id, "filters": filters, "size": 1000}
        return f"{counted}to read more records (stored locally, no quota): results_search {json.dumps(call)}"
    window = f" and {TIMESTAMP_FIELD} between {first[1]} and {last[1]}" if first and last else ""
    base = "the same query" if more.same_query else "a query"
    noun = "state" if analysis.kind == "workloads" else "level"
    return f"{counted}to read more records, narrow {base}: add a filter on {noun} {level}{window}"


def _level_term(analysis: Analysis, level: str) -> dict[str, Any] | None:
    """A term filter matching `level` as the data stores it (field and spelling of a record)."""
    for hit, record_level in zip(analysis.hits, analysis.record_levels, strict=True):
        if record_level == level and (found := analysis.level_source(source_of(hit))) is not None:
            return {"term": {found[0]: found[1]}}
    return None


def _shapes(templates: int, candidates: int) -> list[_Shape]:
    """Budget-fitting order: shrink the sample, then the template count, then example lengths."""
    t0 = min(templates, _MAX_TEMPLATES)
    s0 = min(candidates, _MAX_SAMPLE)
    shapes = [_Shape(s, t0, _EXAMPLE_LENGTHS[0]) for s in _descending(s0)]
    shapes += [_Shape(0, t, _EXAMPLE_LENGTHS[0]) for t in _descending(t0)[1:] if t > 0]
    shapes += [_Shape(0, min(1, t0), e) for e in _EXAMPLE_LENGTHS[1:]]
    shapes.append(_Shape(0, 0, _EXAMPLE_LENGTHS[-1]))
    return shapes


def _descending(start: int) -> list[int]:
    values = []
    value = start
    while value > 0:
        values.append(value)
        value = value - max(1, value // 4)
    return [*values, 0]


def _summarize(
    hits: Sequence[Mapping[str, Any]],
    *,
    message_of: Callable[[Mapping[str, Any]], str],
    use_templates: bool,
    group_by: str,
    total_matched: int | None,
    max_tokens: int,
    fields: Sequence[str] | None,
    more: _More,
    level_source: LevelSource,
    kind: str,
) -> LogSummary:
    from .render import render_logs  # render imports the models only; local import avoids a cycle

    budget = clamp_budget(max_tokens)
    analysis = analyse(hits, message_of, fields, use_templates, level_source, kind)
    matched = max(total_matched if total_matched is not None else len(hits), len(hits))

    def build(shape: _Shape) -> LogSummary:
        return _build(
            analysis,
            shape,
            matched=matched,
            max_tokens=budget,
            more=more,
            group_by=group_by,
        )

    summary, _ = fit(_shapes(len(analysis.groups), 2 * len(analysis.groups)), build, render_logs, budget)
    return summary


def _message(doc: Mapping[str, Any]) -> str:
    value = doc.get(MESSAGE_FIELD)
    if type(value) is str and value.isprintable():  # nothing for `clean` to remove: the common case
        return value
    return to_text(get_field(doc, MESSAGE_FIELD))


def summarize_logs(
    hits: Sequence[Mapping[str, Any]],
    *,
    total_matched: int | None = None,
    max_tokens: int = 4000,
    fields: Sequence[str] | None = None,
    continuation: str | None = None,
    query: Mapping[str, Any] | None = None,
    local_result_id: str | None = None,
) -> LogSummary:
    """Summarise log hits (OpenSearch envelopes or bare documents) within `max_tokens` when rendered.

    Messages are grouped into templates (see templates.py); templates are ranked most severe,
    then most frequent; the sample covers the templates, most severe first. Whatever does not fit the
    budget is counted in `omitted`, with a way to get it: the next page (`continuation`), a narrower
    `query`, or for data already stored locally (`local_result_id`) a ready results_search call.
    """
    return _summarize(
        hits,
        message_of=_message,
        use_templates=True,
        level_source=raw_level,
        kind="logs",
        group_by="template",
        total_matched=total_matched,
        max_tokens=max_tokens,
        fields=fields,
        more=_More(continuation, query is not None, local_result_id),
    )


def summarize_records(
    hits: Sequence[Mapping[str, Any]],
    *,
    group_by: Sequence[str] = (WORKFLOW_NAME_FIELD, WORKLOAD_STATE_FIELD),
    total_matched: int | None = None,
    max_tokens: int = 4000,
    fields: Sequence[str] | None = None,
    continuation: str | None = None,
    query: Mapping[str, Any] | None = None,
    local_result_id: str | None = None,
) -> LogSummary:
    """Like `summarize_logs` for documents without a message (workloads): groups are the values of
    `group_by` fields instead of templates, each record's "message" is those values, and its
    `workload.state` stands for the level (FAILED and TIMED_OUT rank first)."""

    def values_of(doc: Mapping[str, Any]) -> str:
        return " ".join(f"{name}={to_text(get_field(doc, name)) or '-'}" for name in group_by)

    return _summarize(
        hits,
        message_of=values_of,
        use_templates=False,
        level_source=raw_state,  # a failed run ranks like an ERROR line (fields.SEVERITY)
        kind="workloads",
        group_by=",".join(group_by),
        total_matched=total_matched,
        max_tokens=max_tokens,
        fields=fields,
        more=_More(continuation, query is not None, local_result_id),
    )
