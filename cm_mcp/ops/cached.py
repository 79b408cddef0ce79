"""The response cache as the operations use it (see `cm_mcp.store.cache` for what is cached and what
"identical" means). No MCP here.

A cached answer goes through the same summary as a fresh one, for the call's own budget, and says
so: `CallInfo.cached` (or `ExportOutcome.cached`) holds when the API gave the answer, `request_id`
and `time_range` are that answer's, and `quota_remaining` is what the server knows now (a cached
answer spends nothing).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import anyio

from cm_mcp.api.endpoints import ENDPOINTS
from cm_mcp.api.quota import QuotaTracker
from cm_mcp.api.times import format_utc
from cm_mcp.batch import ExportResult
from cm_mcp.store import ResultInfo, ResultStore, StoreError
from cm_mcp.store.cache import CachedAnswer, ResponseCache, is_settled
from cm_mcp.store.files import iter_file_records

#: The file a scroll result's first page is stored in (store/builder.py `publish_one_page`).
FIRST_PAGE_FILE = "page-0001.ndjson"


@dataclass(frozen=True)
class CacheUse:
    """The cache for one call: `read` is False for `fresh: true` (ask the API; the new answer still
    replaces the cached one)."""

    cache: ResponseCache
    read: bool = True

    async def lookup(self, endpoint: str, body: Mapping[str, Any]) -> CachedAnswer | None:
        if not self.read:
            return None
        return await anyio.to_thread.run_sync(lambda: self.cache.lookup(endpoint, body))

    async def remember(self, endpoint: str, body: Mapping[str, Any], **answer: Any) -> None:
        await anyio.to_thread.run_sync(lambda: self.cache.put(endpoint, body, **answer))

    async def saved(self, endpoint: str) -> None:
        """Count the request this cache hit saved (quota_status reports them)."""
        family = ENDPOINTS[endpoint].family
        if family is not None:
            await anyio.to_thread.run_sync(lambda: self.cache.count_saved(family))

    async def forget(self, endpoint: str, body: Mapping[str, Any]) -> None:
        await anyio.to_thread.run_sync(lambda: self.cache.forget(endpoint, body))


def now() -> datetime:
    return datetime.now(UTC)


def current_remaining(quota: QuotaTracker, endpoint: str) -> int | None:
    """The family's remaining requests as the server knows them now (a cached answer spends none)."""
    family = ENDPOINTS[endpoint].family
    return quota.state(family).remaining if family is not None else None


def cached_text(answered_at: datetime) -> str:
    """The header part that says an answer is cached (the header's request_id is that answer's), and
    how to ask again."""
    return f"CACHED: no request sent; the API's answer of {format_utc(answered_at)}; fresh: true asks again"


async def first_page(store: ResultStore, entry: CachedAnswer) -> list[dict[str, Any]] | None:
    """The hits of the cached first page (the stored scroll result's first file); None when that
    result is no longer stored."""
    result_id = entry.result_id
    if result_id is None:
        return None

    def read() -> list[dict[str, Any]] | None:
        try:
            paths = store.files(result_id)
        except StoreError:
            return None
        page = next((path for path in paths if path.name == FIRST_PAGE_FILE), None)
        return list(iter_file_records(page)) if page is not None else None

    return await anyio.to_thread.run_sync(read)


def stored_export(
    store: ResultStore, cache: ResponseCache, endpoint: str, body: Mapping[str, Any]
) -> tuple[ExportResult, CachedAnswer] | None:
    """An export already stored for an identical request over a settled window (the export path's
    lookup: `*_batch` answers with it and submits nothing), or None. Blocking."""
    entry = cache.lookup(endpoint, body)
    if entry is None or entry.result_id is None:
        return None
    try:
        info = store.get(entry.result_id)
    except StoreError:
        cache.forget(endpoint, body)
        return None
    if info.source != "export" or not info.complete:
        return None
    return export_result_of(info), entry


def export_result_of(info: ResultInfo) -> ExportResult:
    """A stored export as `batch.run_export` returned it (what the export's summary is built from)."""
    return ExportResult(
        result_id=info.id,
        kind=info.kind,
        complete=info.complete,
        partitions=len(info.files) + len(info.failed_partitions),
        records=info.records,
        records_received=info.records_received,
        failed_partitions=info.failed_partitions,
        files=info.files,
        job="",
        index_state=info.index_state,
        # complete, so nothing to resume: the token (and its lifetime) no longer matter
        token_expires_at=info.created,
    )


def export_settled(body: Mapping[str, Any], submitted_at: datetime, cache: ResponseCache) -> bool:
    return is_settled(body, submitted_at, cache.settle)
