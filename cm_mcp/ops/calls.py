"""One function per kind of call: send the validated request, shape the answer for a context window.

No MCP here (the server wraps these), so they are tested directly and reused by the CLI.
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from datetime import UTC, datetime
from typing import Any, Literal, cast

from cm_mcp.api.client import CMClient
from cm_mcp.api.partitions import Partition, partitions_from_status
from cm_mcp.api.quota import QuotaTracker, next_utc_midnight
from cm_mcp.api.requests import (
    FILTERED_AGG,
    BatchStatusRequest,
    BillingQueryRequest,
    LogsAggsRequest,
    V1BatchUrlsRequest,
    V1LogsBatchRequest,
    V1LogsScrollRequest,
    WorkloadsAggsRequest,
)
from cm_mcp.api.responses import AggsResponse, daily_remaining
from cm_mcp.api.times import format_utc
from cm_mcp.ops.cached import CacheUse, cached_text, current_remaining
from cm_mcp.ops.cached import now as utc_now
from cm_mcp.ops.results import (
    AggsResult,
    BatchStatusResult,
    BatchSubmitResult,
    BillingResult,
    CallInfo,
    PartitionInfo,
    QuotaFamily,
    QuotaResult,
    Rendered,
    ScrollResult,
    header_line,
)
from cm_mcp.summarize import (
    render_aggs,
    render_logs,
    summarize_aggs,
    summarize_logs,
)
from cm_mcp.summarize.budget import envelope_json, summary_budget


async def aggregate(
    client: CMClient,
    request: LogsAggsRequest | WorkloadsAggsRequest,
    *,
    max_tokens: int,
    cache: CacheUse | None = None,
) -> Rendered:
    endpoint = request.ENDPOINT
    body = request.to_body()
    entry = await cache.lookup(endpoint, body) if cache is not None else None
    if entry is not None and entry.response is not None:
        assert cache is not None
        await cache.saved(endpoint)
        response = AggsResponse.model_validate(entry.response)
        call = CallInfo.of(endpoint, response.meta, current_remaining(client.quota, endpoint))
        call.cached = format_utc(entry.answered_at)
        header = header_line(call, cached_text(entry.answered_at))
    else:
        asked_at = utc_now()
        response = cast(AggsResponse, await client.call(endpoint, request))
        call = CallInfo.of(endpoint, response.meta, daily_remaining(response.model_dump(by_alias=True)))
        header = header_line(call)
        if cache is not None:
            answer = response.model_dump(mode="json", by_alias=True, exclude_none=True)
            await cache.remember(
                endpoint, body, answered_at=asked_at, request_id=response.meta.request_id, response=answer
            )
    aggregations: Mapping[str, Any] = response.data.aggregations
    total = response.data.total_documents
    unfiltered = None
    if request.filters:
        aggregations, total, unfiltered = _unwrap_filtered(aggregations, total)
        matched = "?" if total is None else f"{total:,}"
        window = "?" if unfiltered is None else f"{unfiltered:,}"
        header += (
            f"\nfilters applied (sent as one wrapping filter aggregation, no extra request): {matched} of "
            f"{window} documents in the window match {json.dumps(request.filters)}; totals below are theirs"
        )
    envelope = envelope_json(AggsResult, call=call, filters=request.filters, unfiltered_documents=unfiltered)
    summary = summarize_aggs(
        aggregations,
        total_documents=total,
        max_tokens=summary_budget(max_tokens, header, envelope),
        request_aggs=request.aggs,
    )
    result = AggsResult(call=call, summary=summary, filters=request.filters, unfiltered_documents=unfiltered)
    return Rendered(structured=result, text=f"{header}\n{render_aggs(summary)}")


def _unwrap_filtered(
    aggregations: Mapping[str, Any], total: int | None
) -> tuple[Mapping[str, Any], int | None, int | None]:
    """The caller's aggregations from inside the FILTERED_AGG wrapper, the filtered set's total (the
    wrapper's doc_count) and the window's total; as they came when the answer has no wrapper."""
    wrapper = aggregations.get(FILTERED_AGG)
    if not isinstance(wrapper, Mapping):
        return aggregations, total, None
    count = wrapper.get("doc_count")
    inner = {name: value for name, value in wrapper.items() if name not in ("doc_count", "meta")}
    return inner, count if isinstance(count, int) and not isinstance(count, bool) else None, total


async def batch_status(
    client: CMClient, request: BatchStatusRequest, *, kind: Literal["logs", "workloads"]
) -> Rendered:
    endpoint = request.ENDPOINT
    raw = await client.post(endpoint, request)
    partitions = partitions_from_status(raw, kind)
    return _status_result(endpoint, request.token, partitions, noun=kind)


def _status_result(endpoint: str, token: str, partitions: list[Partition], *, noun: str) -> Rendered:
    infos = [
        PartitionInfo(
            start=format_utc(p.start_time) if p.start_time else None,
            end=format_utc(p.end_time) if p.end_time else None,
            time_range=p.time_range_text if p.start_time is None else None,
            status=p.status or ("completed" if p.completed else "pending"),
            count=p.count,
            ready=p.ready,
        )
        for p in partitions
    ]
    done = bool(infos) and all(p.is_final for p in partitions)
    result = BatchStatusResult.of(endpoint, token, infos, done=done)
    counts, ready = result.counts, result.records_ready
    lines = [
        f"{endpoint} | {len(infos)} partitions: "
        + ", ".join(f"{n} {status}" for status, n in sorted(counts.items()))
        + f" | {ready:,} {noun} ready"
        + (" | all final" if done else " | poll again later")
    ]
    for info in infos:
        span = info.time_range or f"{info.start} .. {info.end}"
        count = "?" if info.count is None else f"{info.count:,}"
        lines.append(f"  {span}  {info.status:<10} {count:>10}  {'ready' if info.ready else ''}")
    return Rendered(structured=result, text="\n".join(lines))


async def billing(client: CMClient, request: BillingQueryRequest) -> Rendered:
    response = await client.call("billing_query", request)
    summary = response.summary.model_dump(by_alias=True, exclude_none=True)
    call = CallInfo(endpoint="billing_query", quota_remaining=response.daily_requests_remaining)
    lines = [header_line(call)] + [f"  {key}: {value}" for key, value in summary.items()]
    return Rendered(structured=BillingResult(call=call, summary=summary), text="\n".join(lines))


def quota_status(
    tracker: QuotaTracker,
    *,
    families: Collection[str] | None = None,
    now: datetime | None = None,
    saved: Mapping[str, int] | None = None,
) -> Rendered:
    """The quota of `families` (default: all), as last reported by the API, and the requests the
    response cache `saved` today."""
    now = now or datetime.now(UTC)
    shown = [
        QuotaFamily(
            family=family,
            remaining=state.remaining,
            seen_at=format_utc(state.seen_at) if state.seen_at else None,
            exhausted_until=format_utc(state.exhausted_until) if state.exhausted_until else None,
        )
        for family, state in sorted(tracker.snapshot().items())
        if families is None or family in families
    ]
    reset = next_utc_midnight(now)
    note = (
        "Only families used since the server started are known; others are unknown (not zero). "
        "Batch status polls are not counted by the API."
    )
    result = QuotaResult(
        families=shown, resets_at=format_utc(reset), note=note, saved_today=dict(saved or {})
    )
    lines = [f"quota (as last reported by the API; resets {reset:%Y-%m-%d %H:%M} UTC, assumed)"]
    lines += [
        f"  {f.family:<18} {'unknown' if f.remaining is None else f.remaining:>8}"
        + (f"  exhausted until {f.exhausted_until}" if f.exhausted_until else "")
        for f in shown
    ] or ["  no request made yet: every family unknown"]
    lines.append(note)
    if saved is not None:
        spared = sum(saved.values())
        detail = ", ".join(f"{family} {count}" for family, count in saved.items())
        lines.append(
            f"response cache: {spared} request(s) saved today"
            + (f" ({detail})" if detail else "")
            + "; a repeated call over a window that has settled is answered locally"
        )
    return Rendered(structured=result, text="\n".join(lines))


# --- V1 (deprecated) ------------------------------------------------------------------------------


async def scroll_logs_v1(client: CMClient, request: V1LogsScrollRequest, *, max_tokens: int) -> Rendered:
    response = await client.call("v1_logs_scroll", request)
    docs = [entry if isinstance(entry, dict) else {"message": str(entry)} for entry in response.logs]
    continuation = response.scroll_id if response.has_more is not False else None
    call = CallInfo(endpoint="v1_logs_scroll", quota_remaining=response.daily_requests_remaining)
    header = header_line(call)
    note = "V1 is deprecated: prefer logs_scroll. To continue, re-send the same arguments plus scroll_id."
    envelope = envelope_json(ScrollResult, call=call, scroll_id=continuation)
    summary = summarize_logs(
        docs,
        max_tokens=summary_budget(max_tokens, header, note, envelope),
        continuation=continuation,
        query=request.to_body(),
    )
    result = ScrollResult(call=call, scroll_id=continuation, summary=summary)
    return Rendered(structured=result, text=f"{header}\n{note}\n{render_logs(summary)}")


async def submit_batch_v1(client: CMClient, request: V1LogsBatchRequest) -> Rendered:
    response = await client.call("v1_logs_batch", request)
    call = CallInfo(endpoint="v1_logs_batch", quota_remaining=response.daily_requests_remaining)
    next_step = f'Get the URLs with logs_batch_urls_v1 {{"token": "{response.token}"}}.'
    result = BatchSubmitResult(call=call, token=response.token, next_step=next_step)
    return Rendered(
        structured=result, text=f"{header_line(call)}\nV1 export submitted (deprecated).\n{next_step}"
    )


async def batch_urls_v1(client: CMClient, request: V1BatchUrlsRequest) -> Rendered:
    raw = await client.post("v1_logs_batch_urls", request)
    return _status_result("v1_logs_batch_urls", request.token, partitions_from_status(raw, "v1"), noun="logs")
