"""The MCP server: one thin tool per endpoint over `ops/`, plus quota_status.

Each tool: raw arguments -> `parse_request` with the endpoint's request model (an invalid call gets an
isError naming the field, the rule and a valid example, and no request is sent) -> the `ops/`
operation (API call, summary within the token budget) -> structured content + compact text.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, TypeVar

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult
from pydantic import BaseModel

from cm_mcp import __version__
from cm_mcp.api import requests as rq
from cm_mcp.api.client import CMClient
from cm_mcp.api.errors import CMError, RequestValidationError
from cm_mcp.api.settings import Settings
from cm_mcp.ops import calls
from cm_mcp.ops.explain import explain, explain_validation
from cm_mcp.ops.results import (
    AggsResult,
    BatchStatusResult,
    BatchSubmitResult,
    BillingResult,
    QuotaResult,
    Rendered,
    ScrollResult,
)
from cm_mcp.server import names
from cm_mcp.server.descriptions import DESCRIPTIONS, SERVER_INSTRUCTIONS, TITLES
from cm_mcp.server.schemas import MAX_TOKENS_PROPERTY, input_schema
from cm_mcp.server.tooling import (
    ToolDefinition,
    budget_issue,
    error_result,
    preparse_json_strings,
    text_result,
)

logger = logging.getLogger("cm_mcp.server")

Req = TypeVar("Req", bound=rq.APIRequest)


@dataclass
class AppState:
    """What every tool call shares for the life of the server."""

    settings: Settings
    client: CMClient


Operation = Callable[[AppState, Any, int], Awaitable[Rendered]]


@dataclass(frozen=True)
class EndpointTool:
    """A tool backed by one API endpoint: its request model is its input schema."""

    name: str
    model: type[rq.APIRequest]
    output: type[BaseModel]
    operation: Operation
    idempotent: bool
    budgeted: bool = True


ENDPOINT_TOOLS: tuple[EndpointTool, ...] = (
    EndpointTool(
        names.LOGS_AGGS,
        rq.LogsAggsRequest,
        AggsResult,
        lambda s, r, b: calls.aggregate(s.client, r, max_tokens=b),
        True,
    ),
    EndpointTool(
        names.LOGS_SCROLL,
        rq.LogsScrollRequest,
        ScrollResult,
        lambda s, r, b: calls.scroll_logs(s.client, r, max_tokens=b),
        False,
    ),
    EndpointTool(
        names.LOGS_BATCH,
        rq.LogsBatchRequest,
        BatchSubmitResult,
        lambda s, r, b: calls.submit_batch(s.client, r),
        False,
        False,
    ),
    EndpointTool(
        names.LOGS_BATCH_STATUS,
        rq.LogsBatchStatusRequest,
        BatchStatusResult,
        lambda s, r, b: calls.batch_status(s.client, r, kind="logs"),
        True,
        False,
    ),
    EndpointTool(
        names.WORKLOADS_AGGS,
        rq.WorkloadsAggsRequest,
        AggsResult,
        lambda s, r, b: calls.aggregate(s.client, r, max_tokens=b),
        True,
    ),
    EndpointTool(
        names.WORKLOADS_SCROLL,
        rq.WorkloadsScrollRequest,
        ScrollResult,
        lambda s, r, b: calls.scroll_workloads(s.client, r, max_tokens=b),
        False,
    ),
    EndpointTool(
        names.WORKLOADS_BATCH,
        rq.WorkloadsBatchRequest,
        BatchSubmitResult,
        lambda s, r, b: calls.submit_batch(s.client, r),
        False,
        False,
    ),
    EndpointTool(
        names.WORKLOADS_BATCH_STATUS,
        rq.WorkloadsBatchStatusRequest,
        BatchStatusResult,
        lambda s, r, b: calls.batch_status(s.client, r, kind="workloads"),
        True,
        False,
    ),
    EndpointTool(
        names.BILLING_QUERY,
        rq.BillingQueryRequest,
        BillingResult,
        lambda s, r, b: calls.billing(s.client, r),
        True,
        False,
    ),
)

V1_ENDPOINT_TOOLS: tuple[EndpointTool, ...] = (
    EndpointTool(
        names.LOGS_SCROLL_V1,
        rq.V1LogsScrollRequest,
        ScrollResult,
        lambda s, r, b: calls.scroll_logs_v1(s.client, r, max_tokens=b),
        False,
    ),
    EndpointTool(
        names.LOGS_BATCH_V1,
        rq.V1LogsBatchRequest,
        BatchSubmitResult,
        lambda s, r, b: calls.submit_batch_v1(s.client, r),
        False,
        False,
    ),
    EndpointTool(
        names.LOGS_BATCH_URLS_V1,
        rq.V1BatchUrlsRequest,
        BatchStatusResult,
        lambda s, r, b: calls.batch_urls_v1(s.client, r),
        True,
        False,
    ),
)


def _state(ctx: Context[Any, Any]) -> AppState:
    state = ctx.request_context.lifespan_context
    assert isinstance(state, AppState)
    return state


def _endpoint_definition(spec: EndpointTool, default_budget: int) -> ToolDefinition:
    extra = {"max_tokens": MAX_TOKENS_PROPERTY} if spec.budgeted else {}
    schema = input_schema(spec.model, extra=extra)

    async def handler(ctx: Context[Any, Any], arguments: dict[str, Any]) -> CallToolResult:
        state = _state(ctx)
        args = preparse_json_strings(arguments, schema)
        budget = args.pop("max_tokens", default_budget) if spec.budgeted else default_budget
        try:
            problem = budget_issue(budget)
            request = rq.parse_request(spec.model, args)
        except RequestValidationError as exc:
            if problem:
                exc.issues.append(problem)
            return error_result(explain_validation(exc, tool=spec.name))
        if problem:
            return error_result(
                explain_validation(
                    RequestValidationError([problem], spec.model.__name__, example=spec.model.EXAMPLE),
                    tool=spec.name,
                )
            )
        try:
            rendered = await spec.operation(state, request, int(budget))
        except CMError as exc:
            logger.info("%s failed: %s", spec.name, type(exc).__name__)
            return error_result(explain(exc, tool=spec.name))
        return text_result(rendered.text, rendered.structured)

    return ToolDefinition(
        name=spec.name,
        title=TITLES[spec.name],
        description=DESCRIPTIONS[spec.name],
        input_schema=schema,
        output_model=spec.output,
        handler=handler,
        idempotent=spec.idempotent,
    )


def _quota_definition() -> ToolDefinition:
    async def handler(ctx: Context[Any, Any], arguments: dict[str, Any]) -> CallToolResult:
        if arguments:
            return error_result(f"quota_status takes no arguments (got {sorted(arguments)}).")
        rendered = calls.quota_status(_state(ctx).client.quota)
        return text_result(rendered.text, rendered.structured)

    return ToolDefinition(
        name=names.QUOTA_STATUS,
        title=TITLES[names.QUOTA_STATUS],
        description=DESCRIPTIONS[names.QUOTA_STATUS],
        input_schema={"type": "object", "properties": {}, "additionalProperties": False},
        output_model=QuotaResult,
        handler=handler,
        idempotent=True,
        open_world=False,
    )


def tool_definitions(settings: Settings) -> list[ToolDefinition]:
    """Every tool this server exposes with `settings` (V1 only when CM_ENABLE_V1=1)."""
    specs = ENDPOINT_TOOLS + (V1_ENDPOINT_TOOLS if settings.enable_v1 else ())
    budget = settings.default_max_tokens
    return [_endpoint_definition(spec, budget) for spec in specs] + [_quota_definition()]


def build_server(settings: Settings | None = None, *, client: CMClient | None = None) -> MCPServer[AppState]:
    """The MCP server. `client` lets tests and the sandbox mode inject a ready API client."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        if client is not None:
            yield AppState(settings=settings, client=client)
            return
        async with CMClient(settings) as owned:
            yield AppState(settings=settings, client=owned)

    return MCPServer(
        "cm-mcp",
        version=__version__,
        instructions=SERVER_INSTRUCTIONS,
        lifespan=lifespan,
        tools=[definition.build() for definition in tool_definitions(settings)],
        log_level="WARNING",
    )
