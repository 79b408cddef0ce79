"""What every tool is made of: the spec of a tool (`EndpointTool`: request model, output model,
operation, flags), the context an operation gets (`ToolCall`: the server's state, the budget, progress,
server-side options), and `endpoint_tool`, which turns a spec into an MCP tool: raw arguments ->
`parse_request` (an invalid call gets an isError naming every field and the rule; nothing is sent) ->
the operation -> structured content + text, with export links within the budget."""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import KW_ONLY, dataclass
from typing import Any, Generic, TypeVar

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools.base import Tool
from mcp.types import CallToolResult
from pydantic import BaseModel

from cm_mcp.api import requests as rq
from cm_mcp.api.client import CMClient
from cm_mcp.api.endpoints import ENDPOINTS
from cm_mcp.api.errors import CMError, RequestValidationError, ValidationIssue
from cm_mcp.api.settings import Settings
from cm_mcp.batch import ProgressEvent
from cm_mcp.ops.cached import CacheUse
from cm_mcp.ops.explain import explain_failure, explain_validation
from cm_mcp.ops.results import Progress, Rendered
from cm_mcp.server import exporting
from cm_mcp.server.descriptions import DESCRIPTIONS, TITLES
from cm_mcp.server.schemas import MAX_TOKENS_PROPERTY, input_schema
from cm_mcp.server.tooling import (
    budget_issue,
    error_result,
    preparse_json_strings,
    sdk_tool,
    text_result,
)
from cm_mcp.store import ResultStore
from cm_mcp.store.cache import ResponseCache

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


def state_of(ctx: Context[Any, Any]) -> AppState:
    state = ctx.request_context.lifespan_context
    assert isinstance(state, AppState)
    return state


def endpoint_tool(spec: EndpointTool[Any], default_budget: int) -> Tool:
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
            progress_of(ctx),
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


def progress_of(ctx: Context[Any, Any]) -> Progress:
    """Batch progress events as MCP progress notifications (a no-op without a progress token)."""

    last: list[float] = []

    async def report(event: ProgressEvent) -> None:
        # MCP progress must increase: a poll that changed nothing repeats the value, so skip it
        if last and event.progress <= last[-1]:
            return
        last.append(event.progress)
        await ctx.report_progress(event.progress, total=event.total, message=event.message)

    return report
