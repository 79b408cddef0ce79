"""`logs_triage` and `workloads_triage`: what is abnormal here, in at most three API requests.

The requests and the spending rules live here; the statistics are in `cm_mcp.triage` (no HTTP there).

1. aggregation: the shape (every scope's histograms over baseline + window) -> ranked candidates;
2. scroll, at most one, only when the scroll quota allows (the quota tracker's last word; unknown is
   allowed and said so; SCROLL_RESERVE requests are left for the follow-ups the findings propose):
   the candidates' onsets and a sweep of the window's severe records -> message templates. Without
   it, templates come from the aggregations' top messages;
3. aggregation: the detail (sharpening fields, finer onsets, every template's count in both periods,
   slow runs) -> findings.

Every request is built from the api/ request models, so the same rules check it before it is sent.
A failed scroll or detail request leaves a triage with less detail, not none (said in its notes).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final, Literal, cast

import anyio

from cm_mcp.api.client import CMClient
from cm_mcp.api.errors import CMError
from cm_mcp.api.quota import QuotaTracker
from cm_mcp.api.requests import (
    LogsAggsRequest,
    LogsScrollRequest,
    WorkloadsAggsRequest,
    WorkloadsScrollRequest,
)
from cm_mcp.api.responses import AggsResponse
from cm_mcp.api.times import format_utc
from cm_mcp.api.validation import parse_request
from cm_mcp.ops.results import Rendered
from cm_mcp.store import ResultStore
from cm_mcp.triage.analysis import Analysis, ShapeData, analyse, read_shape
from cm_mcp.triage.detail import Detail, plan_detail, read_detail
from cm_mcp.triage.findings import count_findings, rank, slow_findings, template_findings
from cm_mcp.triage.grid import Grid, choose_interval, from_ms
from cm_mcp.triage.models import Figures, Spent, TriageResult
from cm_mcp.triage.queries import fit_shape
from cm_mcp.triage.render import fit_result
from cm_mcp.triage.requests import LogsTriageRequest, WorkloadsTriageRequest
from cm_mcp.triage.sampling import plan_scroll, read_records
from cm_mcp.triage.series import Scope, scope_text
from cm_mcp.triage.target import Target, logs_target, workloads_target
from cm_mcp.triage.templates import Mined, mine_records, mine_terms

logger = logging.getLogger("cm_mcp.ops")

#: Scroll requests a triage leaves untouched: the findings propose scrolls, and the last requests of
#: the day are the user's, not the triage's.
SCROLL_RESERVE: Final = 3

TriageRequest = LogsTriageRequest | WorkloadsTriageRequest


@dataclass
class _Ledger:
    """Requests sent, per endpoint (successful or not: a sent request may have been counted)."""

    sent: dict[str, int] = field(default_factory=dict)

    def count(self, endpoint: str) -> None:
        self.sent[endpoint] = self.sent.get(endpoint, 0) + 1


def _target(request: TriageRequest) -> Target:
    if isinstance(request, WorkloadsTriageRequest):
        assert request.app_type is not None
        return workloads_target(request.app_type, domain=request.domain)
    assert request.application is not None
    assert request.app_type is not None
    return logs_target(
        request.application.value,
        request.app_type.value,
        domain=request.domain,
        log_group=request.log_group,
        tenant=request.tenant,
        stage=request.stage,
    )


def _scope_arguments(request: TriageRequest) -> dict[str, list[str]]:
    names = (
        ("domain",)
        if isinstance(request, WorkloadsTriageRequest)
        else ("domain", "log_group", "tenant", "stage")
    )
    return {name: list(value) for name in names if (value := getattr(request, name, None)) is not None}


def scroll_decision(quota: QuotaTracker, family: str) -> tuple[bool, str]:
    """Whether the triage may spend its one scroll request, and the reason in words."""
    if quota.exhausted_until(family) is not None:
        return False, f"no scroll ({family} quota exhausted): templates from aggregation message terms"
    remaining = quota.state(family).remaining
    if remaining is None:
        return True, f"{family} quota unknown (no scroll seen since start): one scroll allowed"
    if remaining <= SCROLL_RESERVE:
        return False, (
            f"no scroll ({remaining} {family} requests left, {SCROLL_RESERVE} kept for follow-ups): "
            "templates from aggregation message terms"
        )
    return True, f"{family} quota {remaining} left before this triage"


async def triage(
    client: CMClient,
    request: TriageRequest,
    *,
    max_tokens: int,
    store: ResultStore | None = None,
    now: datetime | None = None,
) -> Rendered:
    now = now or datetime.now(UTC)
    target = _target(request)
    window_start, window_end, baseline_start, baseline_end = request.windows(now)
    grid = Grid.build(
        window_start=window_start,
        window_end=window_end,
        baseline_start=baseline_start,
        baseline_end=baseline_end,
        interval_ms=choose_interval(int((window_end - window_start).total_seconds() * 1000)),
    )
    grid, shape_aggs = fit_shape(target, grid)
    ledger = _Ledger()
    notes: list[str] = []
    scroll_endpoint = "logs_scroll" if target.kind == "logs" else "workloads_scroll"
    scope_args = _scope_arguments(request)

    aggregations = await _aggregate(client, target, scope_args, grid, shape_aggs, ledger, now)
    shape = read_shape(target, grid, aggregations)
    analysis = await anyio.to_thread.run_sync(analyse, shape)

    allowed, scroll_note = scroll_decision(client.quota, scroll_endpoint)
    mined: dict[tuple[Scope, str | None], list[Mined]] = {}
    result_id: str | None = None
    sampled: set[tuple[Scope, str]] = set()
    plan = plan_scroll(target, analysis, shape.series) if allowed else None
    if allowed and plan is None:
        scroll_note = "no scroll needed (no severe records in the window)"
    if plan is not None:
        try:
            hits, result_id = await _scroll(client, target, scope_args, plan, ledger, store, now)
        except CMError as exc:
            notes.append(
                f"the scroll failed ({type(exc).__name__}: {exc}); templates from aggregation message terms"
            )
            logger.info("triage scroll failed: %s", type(exc).__name__)
        else:
            records = read_records(target, hits)
            mined.update(await anyio.to_thread.run_sync(mine_records, records))
            sampled = {(record.scope, record.split) for record in records}
            scroll_note = f"{scroll_note}; 1 scroll of {len(hits):,} records for templates"
    if not mined:
        for scope, terms in shape.messages.items():
            mined[(scope, None)] = mine_terms(scope, None, terms)

    detail: Detail | None = None
    plan_b = plan_detail(target, analysis, shape, mined, with_messages=not sampled)
    try:
        detail_aggs = (
            await _aggregate(client, target, scope_args, grid, plan_b.aggs, ledger, now)
            if plan_b.aggs
            else {}
        )
        detail = read_detail(target, grid, plan_b, detail_aggs)
    except CMError as exc:
        notes.append(
            f"the detail request failed ({type(exc).__name__}: {exc}); findings from the shape alone"
        )
        logger.info("triage detail failed: %s", type(exc).__name__)
    result = await anyio.to_thread.run_sync(
        lambda: _result(
            target,
            request,
            scope_args,
            shape,
            analysis,
            detail,
            ledger,
            scroll_note,
            notes,
            result_id,
            sampled,
            scroll_endpoint,
        )
    )
    fitted, text = fit_result(result, max_tokens)
    return Rendered(structured=fitted, text=text)


def _scoped(target: Target, scope_args: dict[str, list[str]], start_ms: int, end_ms: int) -> dict[str, Any]:
    """The arguments every request of a triage shares: its application, scope and a window."""
    return {
        "application": target.application,
        "app_type": target.app_type,
        **scope_args,
        "start_time": format_utc(from_ms(start_ms)),
        "end_time": format_utc(from_ms(end_ms)),
    }


async def _aggregate(
    client: CMClient,
    target: Target,
    scope_args: dict[str, list[str]],
    grid: Grid,
    aggs: dict[str, Any],
    ledger: _Ledger,
    now: datetime,
) -> Mapping[str, Any]:
    model = LogsAggsRequest if target.kind == "logs" else WorkloadsAggsRequest
    arguments = {**_scoped(target, scope_args, grid.first_ms, grid.end_ms), "aggs": aggs}
    request = parse_request(model, arguments, now=now)  # the same rules as logs_aggs, before sending
    ledger.count(request.ENDPOINT)
    response = cast(AggsResponse, await client.call(request.ENDPOINT, request))
    return response.data.aggregations


async def _scroll(
    client: CMClient,
    target: Target,
    scope_args: dict[str, list[str]],
    plan: Any,
    ledger: _Ledger,
    store: ResultStore | None,
    now: datetime,
) -> tuple[list[dict[str, Any]], str | None]:
    model = LogsScrollRequest if target.kind == "logs" else WorkloadsScrollRequest
    arguments = {
        **_scoped(target, scope_args, plan.start_ms, plan.end_ms),
        "size": plan.size,
        "filters": plan.filters,
    }
    request = parse_request(model, arguments, now=now)
    ledger.count(request.ENDPOINT)
    if isinstance(request, LogsScrollRequest):
        logs = await client.call("logs_scroll", request)
        hits = [hit.model_dump(by_alias=True) for hit in logs.data.logs]
        scroll_id, total = logs.meta.scroll_id, logs.data.count
    else:
        workloads = await client.call("workloads_scroll", request)
        hits = [hit.model_dump(by_alias=True) for hit in workloads.data.workloads]
        scroll_id, total = workloads.meta.scroll_id, workloads.meta.workloads_available
    if store is None or not hits:
        return hits, None
    kind: Literal["logs", "workloads"] = target.kind
    kept = await anyio.to_thread.run_sync(
        lambda: store.keep_scroll_page(
            request.to_body(), hits, kind=kind, next_scroll_id=scroll_id or None, upstream_total=total
        )
    )
    return hits, kept.result_id


def _result(
    target: Target,
    request: TriageRequest,
    scope_args: dict[str, list[str]],
    shape: ShapeData,
    analysis: Analysis,
    detail: Detail | None,
    ledger: _Ledger,
    scroll_note: str,
    notes: list[str],
    result_id: str | None,
    sampled: set[tuple[Scope, str]],
    scroll_endpoint: str,
) -> TriageResult:
    grid = analysis.grid
    drafts = []
    if detail is not None:
        drafts += count_findings(target, analysis, detail)
        drafts += template_findings(target, analysis, detail)
        drafts += slow_findings(target, analysis, shape, detail)
    findings = rank(
        target, grid, drafts, max_findings=request.max_findings, result_id=result_id, stored=sampled
    )
    # the highest score on the scale findings are kept by (> 1), margins applied: a quiet window's
    # figures must not show a score above the bar it says nothing passed
    best_draft = max(drafts, key=lambda draft: draft.score, default=None)
    best = analysis.candidates[0] if analysis.candidates else None
    if best_draft is not None:
        best_score, where = (
            best_draft.score,
            (
                f"{scope_text(best_draft.scope)} {best_draft.level or ''} at "
                f"{format_utc(from_ms(best_draft.start_ms))}: {best_draft.evidence}"
            ),
        )
    elif best is not None:  # no detail: the shape's own score
        best_score, where = (
            best.score,
            (
                f"{scope_text(best.series.scope)} {best.series.split} at "
                f"{format_utc(from_ms(grid.bucket_start(grid.window.start + best.scan.start)))}"
            ),
        )
    else:
        best_score, where = 0.0, None
    figures = Figures(
        scopes=analysis.scopes,
        series_scanned=analysis.series_scanned,
        window_records=analysis.window_records,
        baseline_records=analysis.baseline_records,
        significance_bar=round(analysis.significance, 1),
        best_score=round(best_score, 2),
        best=None if findings else where,  # with findings, the best is finding #1
        not_analysed=shape.other_records,
    )
    if shape.other_records:
        notes.append(
            f"{shape.other_records:,} records in scopes beyond the terms sizes were not analysed: narrow the scope"
        )
    return TriageResult(
        kind=target.kind,
        application=target.application,
        app_type=target.app_type,
        scope=scope_args,
        window={"start": format_utc(from_ms(grid.window_start_ms)), "end": format_utc(from_ms(grid.end_ms))},
        baseline={
            "start": format_utc(from_ms(grid.baseline_start_ms)),
            "end": format_utc(from_ms(grid.baseline_end_ms)),
        },
        interval=grid.interval,
        seasonal=bool(grid.slots_per_day) and grid.baseline_ms >= 86_400_000,
        quiet=not findings,
        summary=_summary(findings, figures),
        findings=findings,
        figures=figures,
        spent=Spent(requests=dict(ledger.sent), scroll=scroll_note),
        result_id=result_id,
        notes=notes,
    )


def _summary(findings: list[Any], figures: Figures) -> str:
    levels = ", ".join(
        f"{name} {figures.window_records.get(name, 0):,} vs {figures.baseline_records.get(name, 0):,}"
        for name in sorted(set(figures.window_records) | set(figures.baseline_records))
    )
    scanned = f"{figures.scopes} scopes, {figures.series_scanned} severe series scanned (window vs baseline: {levels or 'none'})"
    if findings:
        return f"{len(findings)} finding(s), most abnormal first; {scanned}"
    best = f"; highest score {figures.best_score:g} ({figures.best})" if figures.best else ""
    return f"quiet: nothing abnormal. {scanned}; significance bar {figures.significance_bar:g}{best}, findings need > 1"
