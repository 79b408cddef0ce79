"""The export tools' path through the response cache, and what an export's result carries besides
its text: the budget it leaves its summary, and resource links to the stored result and its files.

An identical `*_batch` call over a settled window is answered by the export already stored (the
lookup is `ops.cached.stored_export`; `ops.exports.stored_outcome` renders it as `*_batch` does),
submitting nothing; a complete export is remembered for the next identical call.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
from mcp.types import ResourceLink
from pydantic import BaseModel

from cm_mcp.api import requests as rq
from cm_mcp.api.times import format_utc
from cm_mcp.ops import exports
from cm_mcp.ops.cached import cached_text, stored_export
from cm_mcp.ops.cached import now as utc_now
from cm_mcp.ops.results import BatchStatusResult, ExportOutcome, Rendered
from cm_mcp.store import ResultStore
from cm_mcp.summarize.budget import SAFETY_MARGIN, compact_json, envelope_json, estimate_tokens, seen_tokens

if TYPE_CHECKING:
    from cm_mcp.server.endpoint import ToolCall

BatchRequest = rq.LogsBatchRequest | rq.WorkloadsBatchRequest


async def export_or_stored(call: ToolCall, request: BatchRequest) -> Rendered:
    """An identical export over a settled window already stored answers at once (no request);
    otherwise export, and remember a complete export for the next identical call."""
    endpoint, body, cache = request.ENDPOINT, request.to_body(), call.cache
    if cache.read:
        found = await anyio.to_thread.run_sync(stored_export, call.store, cache.cache, endpoint, body)
        if found is not None:
            result, entry = found
            await cache.saved(endpoint)
            rendered = await exports.stored_outcome(
                result, call.store, export_budget(call.max_tokens, call.state.settings.data_dir)
            )
            marker = cached_text(entry.answered_at).replace("the API's answer of", "the export stored")
            outcome = rendered.structured.model_copy(update={"cached": format_utc(entry.answered_at)})
            return Rendered(structured=outcome, text=f"{marker}\n{rendered.text}")
    asked_at = utc_now()
    rendered = await exports.export(
        call.client,
        request,
        store=call.store,
        settings=call.state.settings,
        progress=call.progress,
        max_tokens=export_budget(call.max_tokens, call.state.settings.data_dir),
    )
    outcome = rendered.structured
    if isinstance(outcome, ExportOutcome) and outcome.complete:
        await cache.remember(endpoint, body, answered_at=asked_at, result_id=outcome.result_id)
    return rendered


#: What an export's structured content holds around its summary, at its longest (ops/exports.py pays
#: for its text; this is paid out of the budget it is given), plus the CACHED line and the result link.
_EXPORT_ENVELOPE = envelope_json(
    ExportOutcome,
    result_id="r20260101-000000-000000",
    resource_uri="cm://results/r20260101-000000-000000",
    complete=False,
    partitions=10_000,
    records=10**10,
    duplicates=10**10,
    failed_partitions=[],  # paid by ops/exports.py with its text
    elapsed_seconds=7200.123,
    index_state="building",
    cached="2026-01-01T00:00:00.000Z",
) + cached_text(utc_now())


#: Partition file links an export's budget keeps room for (more are added while the budget allows;
#: the result's resource lists every file).
FILE_LINKS_RESERVED = 3


def export_budget(max_tokens: int, data_dir: Path) -> int:
    """What the export's own summary and text may use of the caller's budget: less the structured
    envelope, the result link and room for FILE_LINKS_RESERVED file links."""
    file_link = (
        f"partition-0000.ndjson.gz {(data_dir / 'results' / 'r20260101-000000-000000' / 'files').as_uri()}"
    )
    reserved = FILE_LINKS_RESERVED * (
        estimate_tokens(file_link + "/partition-0000.ndjson.gz") + _LINK_OVERHEAD
    )
    return max_tokens - estimate_tokens(_EXPORT_ENVELOPE) - _LINK_TOKENS - reserved


async def export_links(rendered: Rendered, store: ResultStore, max_tokens: int) -> list[ResourceLink]:
    """For a finished export: a link to its resource, then its partition files as downloaded (for
    clients that can read local files) while they fit the budget; the resource lists them all."""
    links: list[ResourceLink] = []
    outcome: BaseModel | None = rendered.structured
    if isinstance(outcome, BatchStatusResult):  # a status call that finished the export (download=true)
        outcome = outcome.export
    if isinstance(outcome, ExportOutcome):
        result_id = outcome.result_id
        links.append(
            ResourceLink(
                name=f"result-{result_id}",
                uri=outcome.resource_uri,
                mime_type="application/json",
                description="The stored export: metadata and files (query it with results_search/results_aggs)",
            )
        )
        # The partition files as downloaded, for tools that can read local files, while they fit the
        # budget: the result's resource lists them all.
        used = seen_tokens(rendered.text, compact_json(rendered.structured)) + _LINK_TOKENS
        room = math.floor(max_tokens * (1 - SAFETY_MARGIN)) - used
        for path in await anyio.to_thread.run_sync(store.files, result_id):
            cost = estimate_tokens(f"{path.name} {path.as_uri()}") + _LINK_OVERHEAD
            if cost > room:
                break
            room -= cost
            links.append(
                ResourceLink(name=path.name, uri=path.as_uri(), mime_type=_FILE_TYPES.get(path.suffix))
            )
    return links


#: A resource link as a client may show it: its name, URI and description, and some framing.
_LINK_OVERHEAD = 8
_LINK_TOKENS = (
    estimate_tokens(
        "result-r20260101-000000-000000 cm://results/r20260101-000000-000000 The stored export: metadata "
        "and files (query it with results_search/results_aggs)"
    )
    + _LINK_OVERHEAD
)


_FILE_TYPES = {".gz": "application/gzip", ".ndjson": "application/x-ndjson", ".json": "application/json"}
