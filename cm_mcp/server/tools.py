"""The tools: one per endpoint (its request model is its input schema), the results tools, quota_status.

Each tool: raw arguments -> `parse_request` with its request model (an invalid call gets an isError
naming the field, the rule and a valid example; nothing is sent) -> the `ops/` operation (API call or
local store, summary within the token budget) -> structured content + compact text.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any, Generic, Literal, TypeVar

import anyio
from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools.base import Tool
from mcp.types import CallToolResult
from pydantic import BaseModel

from cm_mcp.api import requests as rq
from cm_mcp.api.client import CMClient
from cm_mcp.api.endpoints import ENDPOINTS
from cm_mcp.api.errors import CMError, RequestValidationError, ValidationIssue
from cm_mcp.api.settings import Settings
from cm_mcp.batch import JobState, ProgressEvent, job_status, job_summary
from cm_mcp.ops import calls, exports, scrolls, stored, triage
from cm_mcp.ops.cached import CacheUse
from cm_mcp.ops.explain import explain_failure, explain_validation
from cm_mcp.ops.fields import FieldsRequest, FieldsResult, fields
from cm_mcp.ops.results import (
    AggsResult,
    BatchStatusResult,
    BatchSubmitResult,
    BillingResult,
    ExportOutcome,
    Progress,
    QuotaResult,
    Rendered,
    ScrollResult,
)
from cm_mcp.server import exporting, names
from cm_mcp.server.descriptions import DESCRIPTIONS, TITLES
from cm_mcp.server.schemas import DOWNLOAD_OPTION, FRESH_OPTION, MAX_TOKENS_PROPERTY, input_schema
from cm_mcp.server.tooling import (
    budget_issue,
    error_result,
    preparse_json_strings,
    sdk_tool,
    text_result,
)
from cm_mcp.store import ResultStore
from cm_mcp.store.cache import ResponseCache
from cm_mcp.triage.models import TriageResult
from cm_mcp.triage.requests import LogsTriageRequest, WorkloadsTriageRequest

logger = logging.getLogger("cm_mcp.server")


@dataclass
class AppState:
    """What every tool call shares for the life of the server."""

    settings: Settings
    client: CMClient
    store: ResultStore
    cache: ResponseCache


@dataclass(frozen=True)
class ToolCall:
    """What an operation gets besides its validated request: the server's state and this call's
    server-side options (never sent upstream)."""

    state: AppState
    #: the token budget of the result (the caller's max_tokens, or CM_MAX_TOKENS)
    max_tokens: int
    progress: Progress
    #: `download` of the *_batch_status tools: continue the export locally
    download: bool = False
    #: `fresh` of the cacheable tools: ask the API even when the response cache holds the answer
    fresh: bool = False

    @property
    def client(self) -> CMClient:
        return self.state.client

    @property
    def store(self) -> ResultStore:
        return self.state.store

    @property
    def cache(self) -> CacheUse:
        return CacheUse(self.state.cache, read=not self.fresh)


RequestT = TypeVar("RequestT", bound=rq.APIRequest)
Operation = Callable[[ToolCall, RequestT], Awaitable[Rendered]]


@dataclass(frozen=True)
class EndpointTool(Generic[RequestT]):
    """A tool: its request model is its input schema, its operation answers a validated request."""

    name: str
    model: type[RequestT]
    output: type[BaseModel]
    operation: Operation[RequestT]
    _: KW_ONLY  # the flags below read as what they are, never as bare positional booleans
    idempotent: bool
    budgeted: bool = True
    #: server-side options (not sent upstream) and their schemas
    options: tuple[tuple[str, dict[str, Any]], ...] = ()
    #: False for tools answered from the local store (no API request)
    open_world: bool = True
    #: the endpoint whose quota a call spends at most, when not the model's own (the triage tools
    #: send aggregations and at most one scroll: they are priced as that scroll)
    meter: str | None = None


# The operations behind the tools, each written once (logs and workloads share them).

AggsRequest = rq.LogsAggsRequest | rq.WorkloadsAggsRequest
BatchRequest = rq.LogsBatchRequest | rq.WorkloadsBatchRequest


async def _aggregate(call: ToolCall, request: AggsRequest) -> Rendered:
    return await calls.aggregate(call.client, request, max_tokens=call.max_tokens, cache=call.cache)


async def _scroll_logs(call: ToolCall, request: rq.LogsScrollRequest) -> Rendered:
    return await scrolls.scroll_logs(
        call.client, request, max_tokens=call.max_tokens, store=call.store, cache=call.cache
    )


async def _scroll_workloads(call: ToolCall, request: rq.WorkloadsScrollRequest) -> Rendered:
    return await scrolls.scroll_workloads(
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
        names.LOGS_SCROLL, rq.LogsScrollRequest, ScrollResult, _scroll_logs, idempotent=False, options=_FRESH
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
        _scroll_workloads,
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


def state_of(ctx: Context[Any, Any]) -> AppState:
    state = ctx.request_context.lifespan_context
    assert isinstance(state, AppState)
    return state


def _endpoint_tool(spec: EndpointTool[Any], default_budget: int) -> Tool:
    extra = dict(spec.options)
    if spec.budgeted:
        extra["max_tokens"] = MAX_TOKENS_PROPERTY
    schema = input_schema(spec.model, extra=extra)

    async def handler(ctx: Context[Any, Any], arguments: dict[str, Any]) -> CallToolResult:
        state = state_of(ctx)
        args = preparse_json_strings(arguments, schema)
        budget = args.pop("max_tokens", default_budget) if spec.budgeted else default_budget
        options = {name: args.pop(name) for name, _ in spec.options if name in args}
        problems = [issue for issue in (budget_issue(budget), *_option_issues(options)) if issue]
        try:
            request = rq.parse_request(spec.model, args)
        except RequestValidationError as exc:
            exc.issues.extend(problems)
            return error_result(explain_validation(exc, tool=spec.name))
        if problems:
            invalid = RequestValidationError(problems, spec.model.__name__, example=spec.model.EXAMPLE)
            return error_result(explain_validation(invalid, tool=spec.name))
        call = ToolCall(
            state,
            int(budget),
            _progress(ctx),
            download=bool(options.get("download", False)),
            fresh=bool(options.get("fresh", False)),
        )
        try:
            rendered = await spec.operation(call, request)
        except CMError as exc:  # the one root of every domain error (api/errors.py)
            logger.info("%s failed: %s", spec.name, type(exc).__name__)
            return error_result(explain_failure(exc, tool=spec.name))
        result = text_result(rendered.text, rendered.structured)
        result.content.extend(await exporting.export_links(rendered, state.store, call.max_tokens))
        return result

    return sdk_tool(
        name=spec.name,
        title=TITLES[spec.name],
        description=DESCRIPTIONS[spec.name],
        input_schema=schema,
        output_model=spec.output,
        handler=handler,
        idempotent=spec.idempotent,
        open_world=spec.open_world,
        endpoint=ENDPOINTS.get(spec.meter or spec.model.ENDPOINT),
    )


def _option_issues(options: dict[str, Any]) -> list[ValidationIssue]:
    return [
        ValidationIssue(path=name, message="must be true or false")
        for name, value in options.items()
        if not isinstance(value, bool)
    ]


def _progress(ctx: Context[Any, Any]) -> Progress:
    """Batch progress events as MCP progress notifications (a no-op without a progress token)."""

    last: list[float] = []

    async def report(event: ProgressEvent) -> None:
        # MCP progress must increase: a poll that changed nothing repeats the value, so skip it
        if last and event.progress <= last[-1]:
            return
        last.append(event.progress)
        await ctx.report_progress(event.progress, total=event.total, message=event.message)

    return report


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
    return [_endpoint_tool(spec, settings.default_max_tokens) for spec in specs]
