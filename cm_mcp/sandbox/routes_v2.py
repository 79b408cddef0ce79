"""The eight V2 endpoints. Each handler gets a `Call` that is already authenticated, validated and
counted against the quota (see `state.SandboxState.gate`); engine work runs in a worker thread.
Every selection is cut at the request's time (`state.visible`): nothing stamped later is served.

Documented choices (the reference is silent or inconsistent; item numbers are its open questions):
- scroll: results in (@timestamp, _id) order; `meta.scroll_id` only while more results remain (the
  last page has none, 20); the id stays the same for the whole scroll and expires after 5 minutes
  idle (404 `{"message": ...}`); continuations count against the quota like any request.
  Logs: `data.count` = total matches on every page; workloads: `data.count` = this page's size and
  `meta.workloads_available` = total (19).
- `meta.time_range` is the effective window: the request's, normalised to UTC milliseconds (13).
- echoes (32): logs scroll none; logs batch app_type + domain or log_group/tenant/stage; logs aggs
  application too; workloads app_type + domain.
- batch: the window is split into ceil(count / target_per_partition) equal, contiguous time slices
  listed in time order, complete from the first poll (27); slice i covers [start_time, end_time) and
  the last one also includes its end_time; counts are final from the first poll (26) and add up to
  the query's count. `presigned_url` is the string "null" until `completed` (25); failed partitions
  (fault injection) are `status: "failed"`, `completed: false`. A token works only on the status
  endpoint of the family that issued it (31).
- aggs: `data.total_documents` = documents matching the request before aggregation; an aggregation
  the engine cannot run is a 400 naming its path (`aggs.<name>...`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Final

import anyio
from starlette.responses import Response

from cm_mcp.api.requests import (
    BatchStatusRequest,
    LogsAggsRequest,
    LogsBatchRequest,
    LogsScrollRequest,
    WorkloadsAggsRequest,
    WorkloadsBatchRequest,
    WorkloadsScrollRequest,
)
from cm_mcp.api.times import format_utc
from cm_mcp.dsl import DSLError
from cm_mcp.sandbox.batchjobs import TOKEN_UNKNOWN_MESSAGE, PartitionStatus, TokenUnknown, split_time_range
from cm_mcp.sandbox.engine import Kind, Selection, logs_selection, workloads_selection
from cm_mcp.sandbox.responses import SCROLL_UNKNOWN_MESSAGE, error_response, json_response
from cm_mcp.sandbox.scrolls import ScrollUnknown
from cm_mcp.sandbox.state import Call, Handler, SandboxState, visible

NULL_URL: Final = "null"  # the string, not JSON null (reference item 25)
DEFAULT_V2_PAGE: Final = 100


# --- shared by V1 and V2 -----------------------------------------------------------------------------


@dataclass(frozen=True)
class ScrollPage:
    selection: Selection
    hits: list[dict[str, Any]]
    total: int
    #: the id to continue with; None on the last page
    scroll_id: str | None


def scroll_page(
    state: SandboxState,
    call: Call,
    kind: Kind,
    scroll_id: str | None,
    make_selection: Callable[[], Selection],
    size: int,
) -> ScrollPage:
    """The first page of a new scroll, or the next page of `scroll_id`; raises ScrollUnknown."""
    engine, scrolls, now = state.engine, state.scrolls, call.now.timestamp()
    sid: str | None
    if scroll_id is not None:
        ctx = scrolls.next(scroll_id, now)
        sel: Selection = ctx.query
        if sel.kind != kind or ctx.exhausted:  # a logs scroll_id sent to workloads (or vice versa)
            raise ScrollUnknown(scroll_id)
        hits, cursor = engine.page(sel, ctx.page_size, ctx.cursor)
        ctx = scrolls.advance(ctx.scroll_id, cursor, len(hits), now)
        total, sid = ctx.total, ctx.scroll_id
        if cursor is None or ctx.returned >= total:  # that was the last page
            scrolls.close(sid)
            sid = None
    else:
        sel = visible(make_selection(), call.now)
        total = engine.count(sel)
        hits, cursor = engine.page(sel, size)
        sid = None
        if cursor is not None and len(hits) < total:
            sid = scrolls.open(sel, total, size, cursor, now, returned=len(hits))
    return ScrollPage(sel, hits, total, sid)


def submit_batch(state: SandboxState, call: Call, job_kind: str, sel: Selection) -> str:
    """Count, split into partitions, register the job; its token. The job exports what exists at the
    time of the call (partitions keep that cut, however long the job takes)."""
    engine = state.engine
    sel = visible(sel, call.now)
    total = engine.count(sel)
    windows = split_time_range(sel.start, sel.end, total, state.config.target_per_partition)
    parts = engine.partitions(sel, windows, total)
    return state.batches.submit(
        job_kind,
        [part for part, _, _, _ in parts],
        [(start, end, count) for _, start, end, count in parts],
        now=call.now.timestamp(),
    )


async def read_page(
    state: SandboxState,
    call: Call,
    kind: Kind,
    scroll_id: str | None,
    make_selection: Callable[[], Selection],
    size: int,
) -> ScrollPage | Response:
    """`scroll_page` off the event loop; an unknown or expired scroll_id becomes the 404 answer."""
    try:
        page: ScrollPage = await in_thread(
            lambda: scroll_page(state, call, kind, scroll_id, make_selection, size)
        )
    except ScrollUnknown:
        return _not_found(call, SCROLL_UNKNOWN_MESSAGE)
    return page


def job_statuses(state: SandboxState, call: Call, job_kind: str, token: str) -> list[PartitionStatus]:
    """Partition states of `token`; raises TokenUnknown (also for another family's token)."""
    job = state.batches.get(token, call.now.timestamp())
    if job.kind != job_kind:
        raise TokenUnknown(token)
    return state.published(job, call.now)


def url_of(state: SandboxState, call: Call, status: PartitionStatus) -> str:
    return state.presigned_url(call.base_url, status.object_key, call.now) if status.completed else NULL_URL


async def in_thread(fn: Callable[[], Any]) -> Any:
    return await anyio.to_thread.run_sync(fn)


def _not_found(call: Call, message: str) -> Response:
    return error_response(call.endpoint, 404, message, request_id=call.request_id)


# --- logs --------------------------------------------------------------------------------------------


async def logs_scroll(state: SandboxState, call: Call) -> Response:
    req = call.request
    assert isinstance(req, LogsScrollRequest)
    page = await read_page(
        state, call, "logs", req.scroll_id, lambda: logs_selection(req, call.now), req.size or DEFAULT_V2_PAGE
    )
    if isinstance(page, Response):
        return page
    meta = state.meta(call, page.selection, scroll_id=page.scroll_id)
    return json_response({"data": {"logs": page.hits, "count": page.total}, "meta": meta})


async def logs_batch(state: SandboxState, call: Call) -> Response:
    req = call.request
    assert isinstance(req, LogsBatchRequest)
    return await _batch(state, call, logs_selection(req, call.now))


async def logs_batch_status(state: SandboxState, call: Call) -> Response:
    return await _batch_status(state, call, "logs", "log_count")


async def logs_aggs(state: SandboxState, call: Call) -> Response:
    req = call.request
    assert isinstance(req, LogsAggsRequest)
    sel = logs_selection(req, call.now)
    return await _aggs(state, call, sel, req.aggs, {"application": req.application, **sel.echo})


# --- workloads ---------------------------------------------------------------------------------------


async def workloads_scroll(state: SandboxState, call: Call) -> Response:
    req = call.request
    assert isinstance(req, WorkloadsScrollRequest)
    page = await read_page(
        state,
        call,
        "workloads",
        req.scroll_id,
        lambda: workloads_selection(req, call.now),
        req.size or DEFAULT_V2_PAGE,
    )
    if isinstance(page, Response):
        return page
    sel = page.selection
    meta = state.meta(call, sel, **sel.echo, scroll_id=page.scroll_id, workloads_available=page.total)
    return json_response({"data": {"workloads": page.hits, "count": len(page.hits)}, "meta": meta})


async def workloads_batch(state: SandboxState, call: Call) -> Response:
    req = call.request
    assert isinstance(req, WorkloadsBatchRequest)
    return await _batch(state, call, workloads_selection(req, call.now))


async def workloads_batch_status(state: SandboxState, call: Call) -> Response:
    return await _batch_status(state, call, "workloads", "workload_count")


async def workloads_aggs(state: SandboxState, call: Call) -> Response:
    req = call.request
    assert isinstance(req, WorkloadsAggsRequest)
    sel = workloads_selection(req, call.now)
    return await _aggs(state, call, sel, req.aggs, dict(sel.echo))


# --- shared V2 bodies --------------------------------------------------------------------------------


async def _batch(state: SandboxState, call: Call, sel: Selection) -> Response:
    """Submit a batch job over `sel` (a logs or workloads job, by its kind); the token answer."""
    token = await in_thread(lambda: submit_batch(state, call, sel.kind, sel))
    return json_response({"data": {"token": token}, "meta": state.meta(call, sel, **sel.echo)})


async def _batch_status(state: SandboxState, call: Call, job_kind: str, count_key: str) -> Response:
    req = call.request
    assert isinstance(req, BatchStatusRequest)
    try:
        statuses: list[PartitionStatus] = await in_thread(
            lambda: job_statuses(state, call, job_kind, req.token)
        )
    except TokenUnknown:
        return _not_found(call, TOKEN_UNKNOWN_MESSAGE)
    entries = [
        {
            "start_time": format_utc(status.partition.start),
            "end_time": format_utc(status.partition.end),
            count_key: status.partition.count,
            "presigned_url": url_of(state, call, status),
            "completed": status.completed,
            "status": status.state,
        }
        for status in statuses
    ]
    return json_response({"presigned_urls": entries})


async def _aggs(
    state: SandboxState, call: Call, sel: Selection, aggs: dict[str, Any], echo: dict[str, Any]
) -> Response:
    now_sel = visible(sel, call.now)

    def run() -> tuple[dict[str, Any], int]:
        return state.engine.aggregate(now_sel, aggs), state.engine.count(now_sel)

    try:
        aggregations, total = await in_thread(run)
    except DSLError as exc:
        return error_response(call.endpoint, 400, str(exc), request_id=call.request_id, invalid_input=True)
    body = {
        "data": {"aggregations": aggregations, "total_documents": total},
        "meta": state.meta(call, sel, **echo),
    }
    return json_response(body)


HANDLERS: Final[dict[str, Handler]] = {
    "logs_scroll": logs_scroll,
    "logs_batch": logs_batch,
    "logs_batch_status": logs_batch_status,
    "logs_aggs": logs_aggs,
    "workloads_scroll": workloads_scroll,
    "workloads_batch": workloads_batch,
    "workloads_batch_status": workloads_batch_status,
    "workloads_aggs": workloads_aggs,
}
