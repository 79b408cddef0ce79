"""The tools: one per endpoint (its request model is its input schema), the results tools, quota_status.

Each is an `EndpointTool` (server/endpoint.py turns it into an MCP tool: validation before any
request, errors, budget, progress) whose operation is a named function of the call and its request,
calling the `ops/` layer (API call or local store, summary within the token budget).
"""

from __future__ import annotations

from typing import Any, Literal

import anyio
from mcp.server.mcpserver.tools.base import Tool

from cm_mcp.api import requests as rq
from cm_mcp.api.endpoints import ENDPOINTS
from cm_mcp.api.settings import Settings
from cm_mcp.batch import JobState, job_status, job_summary
from cm_mcp.ops import calls, exports, scrolls, stored, triage
from cm_mcp.ops.fields import FieldsRequest, FieldsResult, fields
from cm_mcp.ops.results import (
    AggsResult,
    BatchStatusResult,
    BatchSubmitResult,
    BillingResult,
    ExportOutcome,
    QuotaResult,
    Rendered,
    ScrollResult,
)
from cm_mcp.server import exporting, names
from cm_mcp.server.endpoint import EndpointTool, ToolCall, endpoint_tool
from cm_mcp.server.schemas import DOWNLOAD_OPTION, FRESH_OPTION
from cm_mcp.triage.models import TriageResult
from cm_mcp.triage.requests import LogsTriageRequest, WorkloadsTriageRequest

# The operations behind the tools, each written once (logs and workloads share them).

AggsRequest = rq.LogsAggsRequest | rq.WorkloadsAggsRequest
BatchRequest = rq.LogsBatchRequest | rq.WorkloadsBatchRequest
ScrollRequest = rq.LogsScrollRequest | rq.WorkloadsScrollRequest


async def _aggregate(call: ToolCall, request: AggsRequest) -> Rendered:
    return await calls.aggregate(call.client, request, max_tokens=call.max_tokens, cache=call.cache)


async def _scroll(call: ToolCall, request: ScrollRequest) -> Rendered:
    return await scrolls.scroll(
        call.client, request, max_tokens=call.max_tokens, store=call.store, cache=call.cache
    )


async def _export(call: ToolCall, request: BatchRequest) -> Rendered:
    return await exporting.export_or_stored(call, request)


async def _logs_status(call: ToolCall, request: rq.LogsBatchStatusRequest) -> Rendered:
    return await _status_or_resume(call, request, "logs")


async def _workloads_status(call: ToolCall, request: rq.WorkloadsBatchStatusRequest) -> Rendered:
    return await _status_or_resume(call, request, "workloads")


async def _triage(call: ToolCall, request: triage.TriageRequest) -> Rendered:
    return await triage.triage(call.client, request, max_tokens=call.max_tokens, store=call.store)


async def _billing(call: ToolCall, request: rq.BillingQueryRequest) -> Rendered:
    return await calls.billing(call.client, request)


async def _scroll_logs_v1(call: ToolCall, request: rq.V1LogsScrollRequest) -> Rendered:
    return await calls.scroll_logs_v1(call.client, request, max_tokens=call.max_tokens)


async def _submit_batch_v1(call: ToolCall, request: rq.V1LogsBatchRequest) -> Rendered:
    return await calls.submit_batch_v1(call.client, request)


async def _batch_urls_v1(call: ToolCall, request: rq.V1BatchUrlsRequest) -> Rendered:
    return await calls.batch_urls_v1(call.client, request)


_DOWNLOAD = (("download", DOWNLOAD_OPTION),)
_FRESH = (("fresh", FRESH_OPTION),)

ENDPOINT_TOOLS: tuple[EndpointTool[Any], ...] = (
    EndpointTool(
        names.LOGS_TRIAGE,
        LogsTriageRequest,
        TriageResult,
        _triage,
        idempotent=True,
        meter="logs_scroll",
    ),
    EndpointTool(
        names.WORKLOADS_TRIAGE,
        WorkloadsTriageRequest,
        TriageResult,
        _triage,
        idempotent=True,
        meter="workloads_scroll",
    ),
    EndpointTool(
        names.LOGS_AGGS, rq.LogsAggsRequest, AggsResult, _aggregate, idempotent=True, options=_FRESH
    ),
    EndpointTool(
        names.LOGS_SCROLL, rq.LogsScrollRequest, ScrollResult, _scroll, idempotent=False, options=_FRESH
    ),
    EndpointTool(
        names.LOGS_BATCH, rq.LogsBatchRequest, ExportOutcome, _export, idempotent=False, options=_FRESH
    ),
    EndpointTool(
        names.LOGS_BATCH_STATUS,
        rq.LogsBatchStatusRequest,
        BatchStatusResult,
        _logs_status,
        idempotent=False,
        options=_DOWNLOAD,
    ),
    EndpointTool(
        names.WORKLOADS_AGGS, rq.WorkloadsAggsRequest, AggsResult, _aggregate, idempotent=True, options=_FRESH
    ),
    EndpointTool(
        names.WORKLOADS_SCROLL,
        rq.WorkloadsScrollRequest,
        ScrollResult,
        _scroll,
        idempotent=False,
        options=_FRESH,
    ),
    EndpointTool(
        names.WORKLOADS_BATCH,
        rq.WorkloadsBatchRequest,
        ExportOutcome,
        _export,
        idempotent=False,
        options=_FRESH,
    ),
    EndpointTool(
        names.WORKLOADS_BATCH_STATUS,
        rq.WorkloadsBatchStatusRequest,
        BatchStatusResult,
        _workloads_status,
        idempotent=False,
        options=_DOWNLOAD,
    ),
    EndpointTool(
        names.BILLING_QUERY, rq.BillingQueryRequest, BillingResult, _billing, idempotent=True, budgeted=False
    ),
)

V1_ENDPOINT_TOOLS: tuple[EndpointTool[Any], ...] = (
    EndpointTool(
        names.LOGS_SCROLL_V1, rq.V1LogsScrollRequest, ScrollResult, _scroll_logs_v1, idempotent=False
    ),
    EndpointTool(
        names.LOGS_BATCH_V1,
        rq.V1LogsBatchRequest,
        BatchSubmitResult,
        _submit_batch_v1,
        idempotent=False,
        budgeted=False,
    ),
    EndpointTool(
        names.LOGS_BATCH_URLS_V1,
        rq.V1BatchUrlsRequest,
        BatchStatusResult,
        _batch_urls_v1,
        idempotent=True,
        budgeted=False,
    ),
)


async def _status_or_resume(
    call: ToolCall, request: rq.BatchStatusRequest, kind: Literal["logs", "workloads"]
) -> Rendered:
    """Status of a token; with download=true, continue (or finish) its export locally."""
    state = call.state
    if call.download:
        return await exports.resume(
            state.client,
            request.token,
            store=state.store,
            settings=state.settings,
            progress=call.progress,
            max_tokens=exporting.export_budget(call.max_tokens, call.state.settings.data_dir),
            status_endpoint=request.ENDPOINT,
        )
    rendered = await calls.batch_status(state.client, request, kind=kind)
    job = await anyio.to_thread.run_sync(job_status, state.settings.data_dir, request.token)
    if job is None:
        return rendered
    local_state = job_summary(job)
    structured = rendered.structured.model_copy(update={"local": local_state})
    return Rendered(structured=structured, text=rendered.text + "\n" + _local_export_note(job, kind))


def _local_export_note(job: JobState, kind: Literal["logs", "workloads"]) -> str:
    """What this server holds of the token's export, and the next step that fits its phase (a finished
    export is queried locally; only an unfinished one is worth continuing)."""
    held = f"local export: {job.done_count} partition(s) done, {job.downloaded_records:,} records downloaded"
    if job.phase == "done" and job.result_id:
        return (
            f"{held}; complete, stored as result {job.result_id}: query it with results_search or "
            f"results_aggs (no quota)."
        )
    if job.phase == "expired":
        return f"{held} (phase expired): the token can no longer be downloaded; a new {kind}_batch would be needed."
    return f"{held} (phase {job.phase}); call again with download=true to continue it."


async def _quota(call: ToolCall, request: stored.NoArguments) -> Rendered:
    # Only the families this server has tools for: V1's are noise while CM_ENABLE_V1 is off.
    families = {
        ENDPOINTS[spec.meter or spec.model.ENDPOINT].family for spec in _endpoint_specs(call.state.settings)
    }
    saved = await anyio.to_thread.run_sync(call.state.cache.saved_today)
    return calls.quota_status(call.client.quota, families={f for f in families if f is not None}, saved=saved)


async def _results_list(call: ToolCall, request: stored.NoArguments) -> Rendered:
    return await stored.results_list(call.store, max_tokens=call.max_tokens)


async def _results_search(call: ToolCall, request: stored.ResultsSearchRequest) -> Rendered:
    return await stored.results_search(
        call.store, request, max_tokens=call.max_tokens, progress=call.progress
    )


async def _results_aggs(call: ToolCall, request: stored.ResultsAggsRequest) -> Rendered:
    return await stored.results_aggs(call.store, request, max_tokens=call.max_tokens, progress=call.progress)


async def _fields(call: ToolCall, request: FieldsRequest) -> Rendered:
    return await fields(call.store, request, max_tokens=call.max_tokens)


#: Tools answered locally: no API request, no quota.
LOCAL_TOOLS: tuple[EndpointTool[Any], ...] = (
    EndpointTool(
        names.QUOTA_STATUS,
        stored.NoArguments,
        QuotaResult,
        _quota,
        idempotent=True,
        budgeted=False,
        open_world=False,
    ),
    EndpointTool(
        names.RESULTS_LIST,
        stored.NoArguments,
        stored.ResultsList,
        _results_list,
        idempotent=True,
        open_world=False,
    ),
    EndpointTool(
        names.RESULTS_SEARCH,
        stored.ResultsSearchRequest,
        stored.LocalSearch,
        _results_search,
        idempotent=True,
        open_world=False,
    ),
    EndpointTool(
        names.RESULTS_AGGS,
        stored.ResultsAggsRequest,
        stored.LocalAggs,
        _results_aggs,
        idempotent=True,
        open_world=False,
    ),
    # not budgeted: a catalog is a few dozen lines, always within the default budget
    EndpointTool(
        names.FIELDS, FieldsRequest, FieldsResult, _fields, idempotent=True, budgeted=False, open_world=False
    ),
)


def _endpoint_specs(settings: Settings) -> tuple[EndpointTool[Any], ...]:
    """The API-backed tools this server exposes with `settings` (V1 only when CM_ENABLE_V1=1)."""
    return ENDPOINT_TOOLS + (V1_ENDPOINT_TOOLS if settings.enable_v1 else ())


def build_tools(settings: Settings) -> list[Tool]:
    """Every tool this server exposes with `settings`."""
    specs = _endpoint_specs(settings) + LOCAL_TOOLS
    return [endpoint_tool(spec, settings.default_max_tokens) for spec in specs]
