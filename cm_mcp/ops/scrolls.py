"""The scroll tools: a first page (from the API, or from the response cache over a settled window)
or a continuation, kept in the local store and summarised for a context window. No MCP here."""

from __future__ import annotations

import asyncio
from datetime import datetime
from typing import Any, Literal

import anyio

from cm_mcp.api.client import CMClient
from cm_mcp.api.requests import LogsScrollRequest, WorkloadsScrollRequest
from cm_mcp.api.responses import V2Meta
from cm_mcp.api.times import format_utc
from cm_mcp.ops.cached import CacheUse, cached_text, current_remaining, first_page
from cm_mcp.ops.cached import now as utc_now
from cm_mcp.ops.fieldcheck import no_match_note
from cm_mcp.ops.results import CallInfo, Rendered, ScrollResult, header_line
from cm_mcp.store import ResultStore
from cm_mcp.store.scroll import KeptPage
from cm_mcp.summarize import render_logs, summarize_logs, summarize_records
from cm_mcp.summarize.budget import envelope_json, summary_budget


async def _keep_page(
    store: ResultStore | None,
    request: LogsScrollRequest | WorkloadsScrollRequest,
    hits: list[dict[str, Any]],
    scroll_id: str | None,
    total: int | None,
) -> KeptPage | None:
    """Keep the page in the local store (follow-ups on it cost no request): its result id at once.

    The store's background writer files and indexes the page once `write()` is called (after the
    summary: both need the GIL); every read of the result (results_search/aggs, the next page)
    waits for that write.
    """
    if store is None:
        return None
    kind: Literal["logs", "workloads"] = "logs" if isinstance(request, LogsScrollRequest) else "workloads"
    return await anyio.to_thread.run_sync(
        lambda: store.keep_scroll_page(
            request.to_body(), hits, kind=kind, next_scroll_id=scroll_id, upstream_total=total, start=False
        )
    )


async def scroll(
    client: CMClient,
    request: LogsScrollRequest | WorkloadsScrollRequest,
    *,
    max_tokens: int,
    store: ResultStore | None = None,
    cache: CacheUse | None = None,
) -> Rendered:
    """One scroll page: from the response cache when it can, else from the API (then kept and cached)."""
    if (cached := await _cached_page(client, request, max_tokens, store, cache)) is not None:
        return cached
    asked_at = utc_now()
    if isinstance(request, LogsScrollRequest):
        page = await client.scroll_page("logs_scroll", request)
        total: int | None = page.count  # logs: data.count is the total match count (item 19)
    else:
        page = await client.scroll_page("workloads_scroll", request)
        # workloads: data.count is the page size, the total is meta.workloads_available (item 19)
        total = page.meta.workloads_available
    rendered = await _scroll_page(request, page.meta, page.hits, total, max_tokens, store)
    await _remember_page(cache, request, rendered, page.meta, total, asked_at)
    return rendered


async def _cached_page(
    client: CMClient,
    request: LogsScrollRequest | WorkloadsScrollRequest,
    max_tokens: int,
    store: ResultStore | None,
    cache: CacheUse | None,
) -> Rendered | None:
    """A first page answered before over a settled window, from its stored result (no request).
    Its scroll context is long gone upstream, so it offers no scroll_id: the result holds every page
    read then, and `fresh: true` starts the scroll again."""
    if cache is None or store is None or request.is_continuation:
        return None
    body = request.to_body()
    entry = await cache.lookup(request.ENDPOINT, body)
    if entry is None:
        return None
    hits = await first_page(store, entry)
    if hits is None:  # the stored result was evicted: ask the API
        await cache.forget(request.ENDPOINT, body)
        return None
    await cache.saved(request.ENDPOINT)
    meta = V2Meta.model_validate(entry.meta or {})
    call = CallInfo.of(request.ENDPOINT, meta, current_remaining(client.quota, request.ENDPOINT))
    call.cached = format_utc(entry.answered_at)
    return await _summarised_page(
        request,
        meta.model_copy(update={"scroll_id": None}),
        hits,
        entry.total,
        max_tokens,
        store,
        entry.result_id,
        cached=cached_text(entry.answered_at),
        call=call,
    )


async def _remember_page(
    cache: CacheUse | None,
    request: LogsScrollRequest | WorkloadsScrollRequest,
    rendered: Rendered,
    meta: V2Meta,
    total: int | None,
    asked_at: datetime,
) -> None:
    result_id = getattr(rendered.structured, "result_id", None)
    if cache is None or request.is_continuation or result_id is None:
        return
    await cache.remember(
        request.ENDPOINT,
        request.to_body(),
        answered_at=asked_at,
        request_id=meta.request_id,
        result_id=result_id,
        meta=meta.model_dump(mode="json", exclude_none=True),
        total=total,
    )


async def _scroll_page(
    request: LogsScrollRequest | WorkloadsScrollRequest,
    meta: V2Meta,
    hits: list[dict[str, Any]],
    total: int | None,
    max_tokens: int,
    store: ResultStore | None,
) -> Rendered:
    """One scroll page: kept in the store, summarised (templates for logs, field groups for workloads).

    The page's result id is decided first; storing it starts when this task next yields to the event
    loop after returning, i.e. once the server has serialised the answer and is sending it (the
    writer's Python work competes for the GIL), so the answer waits for neither files nor index.
    """
    scroll_id = meta.scroll_id or None
    kept = await _keep_page(store, request, hits, scroll_id, total)
    try:
        if not hits and kept is not None:
            kept.write()  # the no-match note reads the store, which waits for this page
        result_id = kept.result_id if kept is not None else None
        return await _summarised_page(request, meta, hits, total, max_tokens, store, result_id)
    finally:
        if kept is not None:
            _write_soon(kept)


def _write_soon(kept: KeptPage) -> None:
    try:
        asyncio.get_running_loop().call_soon(kept.write)
    except RuntimeError:  # no running asyncio loop (another backend): now
        kept.write()


async def _summarised_page(
    request: LogsScrollRequest | WorkloadsScrollRequest,
    meta: V2Meta,
    hits: list[dict[str, Any]],
    total: int | None,
    max_tokens: int,
    store: ResultStore | None,
    result_id: str | None,
    *,
    cached: str | None = None,
    call: CallInfo | None = None,
) -> Rendered:
    scroll_id = meta.scroll_id or None
    if call is None:
        call = CallInfo.of(
            request.ENDPOINT, meta, meta.rate_limit.daily_remaining if meta.rate_limit else None
        )
    note = await anyio.to_thread.run_sync(no_match_note, store, request) if not hits else None
    header = header_line(call, cached)
    noted = f"\nnote: {note}" if note else ""
    if cached and result_id:
        kept_line = (
            f"\nthis first page is stored as result {result_id} with every page read after it then "
            "(results_search/results_aggs: no quota); its scroll has expired: fresh: true starts it again"
        )
    elif result_id:
        kept_line = f"\npage kept locally as result {result_id} (results_search/results_aggs: no quota)"
    else:
        kept_line = ""
    envelope = envelope_json(ScrollResult, call=call, scroll_id=scroll_id, result_id=result_id, note=note)
    summarize = summarize_logs if isinstance(request, LogsScrollRequest) else summarize_records
    summary = summarize(
        hits,
        total_matched=total,
        max_tokens=summary_budget(max_tokens, header, noted, kept_line, envelope),
        fields=request.fields,
        continuation=scroll_id,
        query=None if request.is_continuation else request.to_body(),
        # The last page: every matched record is in the stored result, so reading more is free.
        local_result_id=result_id if scroll_id is None else None,
    )
    result = ScrollResult(call=call, scroll_id=scroll_id, result_id=result_id, summary=summary, note=note)
    return Rendered(structured=result, text=f"{header}\n{render_logs(summary)}{noted}{kept_line}")
