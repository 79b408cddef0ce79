"""The MCP server: the tools of `tools.py`; stored results as resources (`cm://results/{id}`, listed
newest first and paginated by `resources/list`); the field catalog (`cm://fields/{application}/
{app_type}`); the `investigate` prompt; completions for the prompt's arguments and the templates'
variables. One API client, one local result store and one response cache for the life of the server.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

import anyio
from mcp import MCPError
from mcp.server.context import ServerRequestContext
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import (
    INVALID_PARAMS,
    CompleteRequestParams,
    CompleteResult,
    Completion,
    ListResourcesResult,
    PaginatedRequestParams,
    PromptReference,
    ResourceTemplateReference,
)
from pydantic import Field

from cm_mcp import __version__
from cm_mcp.api.client import CMClient
from cm_mcp.api.fields import Application
from cm_mcp.api.settings import Settings
from cm_mcp.server import catalog
from cm_mcp.server.descriptions import SERVER_INSTRUCTIONS
from cm_mcp.server.endpoint import AppState, state_of
from cm_mcp.server.prompts import render_investigation
from cm_mcp.server.tools import build_tools
from cm_mcp.store import ResultStore, StoreError
from cm_mcp.store.cache import ResponseCache
from cm_mcp.store.catalog import field_catalog

RESULTS_TEMPLATE = "cm://results/{result_id}"
FIELDS_TEMPLATE = "cm://fields/{application}/{app_type}{?kind}"
KINDS = ("logs", "workloads")


def build_server(settings: Settings | None = None, *, client: CMClient | None = None) -> MCPServer[AppState]:
    """The MCP server. `client` lets tests and the sandbox mode inject a ready API client."""
    settings = settings or Settings()

    @asynccontextmanager
    async def lifespan(_: MCPServer[AppState]) -> AsyncIterator[AppState]:
        store = ResultStore(settings.data_dir)
        settle = timedelta(seconds=settings.cache_settle_seconds)
        if client is not None:
            cache = ResponseCache(settings.data_dir, api_url=client.api_url, settle=settle)
            yield AppState(settings=settings, client=client, store=store, cache=cache)
            return
        async with CMClient(settings) as owned:
            cache = ResponseCache(settings.data_dir, api_url=owned.api_url, settle=settle)
            yield AppState(settings=settings, client=owned, store=store, cache=cache)

    server: MCPServer[AppState] = MCPServer(
        "cm-mcp",
        version=__version__,
        instructions=SERVER_INSTRUCTIONS,
        lifespan=lifespan,
        tools=build_tools(settings),
        log_level="WARNING",
    )

    @server.resource(
        RESULTS_TEMPLATE,
        mime_type="application/json",
        description="A stored result (export or scroll pages): metadata, counts, files, missing partitions",
    )
    async def stored_result(result_id: str, ctx: Context[Any, Any]) -> str:
        store = state_of(ctx).store
        try:
            info = await anyio.to_thread.run_sync(store.get, result_id)
        except StoreError as exc:
            raise ResourceError(str(exc)) from exc
        return info.model_dump_json(indent=2)

    @server.resource(
        FIELDS_TEMPLATE,
        mime_type="application/json",
        description="Field catalog of an application's documents (kind=workloads for atr workloads): "
        "name, type, share present, examples; from stored data, else the documented fields",
    )
    async def fields(application: str, app_type: str, ctx: Context[Any, Any], kind: str = "logs") -> str:
        problem = _scope_problem(application, app_type, kind)
        if problem:
            raise ResourceError(problem)
        store = state_of(ctx).store
        found = await anyio.to_thread.run_sync(lambda: field_catalog(store, kind, application, app_type))  # type: ignore[arg-type]
        return found.model_dump_json(indent=1, exclude_none=True)

    async def list_resources(
        ctx: ServerRequestContext[AppState], params: PaginatedRequestParams
    ) -> ListResourcesResult:
        """Stored results, newest first, RESOURCES_PAGE a page; the first page also lists the field
        catalogs of the scopes stored results hold."""
        store = ctx.lifespan_context.store
        infos = await anyio.to_thread.run_sync(store.list)
        try:
            page, next_cursor = catalog.result_page(infos, params.cursor)
        except catalog.CursorError as exc:
            raise MCPError(code=INVALID_PARAMS, message=str(exc)) from exc
        listed = [catalog.result_resource(info) for info in page]
        if params.cursor is None:
            listed = catalog.catalog_resources(infos) + listed
        return ListResourcesResult(resources=listed, next_cursor=next_cursor)

    # The SDK's own handler lists static resources only: replaced through the low-level server's
    # handler table (the hook MCPServer.completion() itself uses).
    server._lowlevel_server.add_request_handler("resources/list", PaginatedRequestParams, list_resources)

    async def complete(ctx: ServerRequestContext[AppState], params: CompleteRequestParams) -> CompleteResult:
        """Values for the prompt's arguments and the templates' variables: the documented ones, then
        what stored data holds (SDK's `completion()` hands no request context, hence the handler)."""
        state = ctx.lifespan_context
        filled = dict(params.context.arguments or {}) if params.context is not None else {}
        name = params.argument.name
        values = await anyio.to_thread.run_sync(lambda: _completion_values(state, params.ref, name, filled))
        found = catalog.matching(values or [], params.argument.value)
        return CompleteResult(completion=Completion(values=found, total=len(found), has_more=False))

    # Registering the handler also advertises the `completions` capability.
    server._lowlevel_server.add_request_handler("completion/complete", CompleteRequestParams, complete)

    @server.prompt(title="Investigate an incident")
    def investigate(
        application: Annotated[str, Field(description="atr, klewer, quasar or eventops")] = "atr",
        app_type: Annotated[
            str, Field(description="ec2, kubernetes or serverless (eventops)")
        ] = "kubernetes",
        domain: Annotated[
            str | None, Field(description="ec2/kubernetes: a domain, e.g. pay.example.com")
        ] = None,
        log_group: Annotated[str | None, Field(description="serverless: a log group")] = None,
        tenant: Annotated[str | None, Field(description="serverless: a tenant")] = None,
        stage: Annotated[str | None, Field(description="serverless: a stage, e.g. prod")] = None,
        start_time: Annotated[str, Field(description="ISO 8601 or date math")] = "now-24h",
        end_time: Annotated[str, Field(description="ISO 8601 or date math")] = "now",
        question: Annotated[str | None, Field(description="what the engineer wants to know")] = None,
    ) -> str:
        """A step-by-step investigation plan that spends the quota well: aggs, then a narrow scroll."""
        return render_investigation(
            application=application,
            app_type=app_type,
            domain=domain,
            serverless={"log_group": log_group, "tenant": tenant, "stage": stage},
            start_time=start_time,
            end_time=end_time,
            question=question,
        )

    return server


def _scope_problem(application: str, app_type: str, kind: str) -> str | None:
    if kind not in KINDS:
        return f"kind must be logs or workloads, got {kind!r}"
    if application not in {app.value for app in Application}:
        return f"unknown application {application!r}: one of {', '.join(app.value for app in Application)}"
    if app_type not in catalog.app_types(application, kind):
        return f"{application} {kind} take app_type {' or '.join(catalog.app_types(application, kind))}, not {app_type!r}"
    if kind == "workloads" and application != Application.ATR:
        return "only atr has workloads"
    return None


def _completion_values(
    state: AppState, ref: PromptReference | ResourceTemplateReference, name: str, filled: dict[str, str]
) -> list[str] | None:
    """Every value known for argument `name` of `ref` (documented values, then stored data)."""
    infos = state.store.list()
    application = filled.get("application")
    if isinstance(ref, ResourceTemplateReference) and ref.uri == RESULTS_TEMPLATE:
        return [info.id for info in infos] if name == "result_id" else None
    is_fields = isinstance(ref, ResourceTemplateReference) and ref.uri == FIELDS_TEMPLATE
    if not is_fields and not (isinstance(ref, PromptReference) and ref.name == "investigate"):
        return None
    if name == "application":
        return ["atr"] if filled.get("kind") == "workloads" else catalog.applications(infos)
    if name == "app_type":
        return catalog.app_types(application, filled.get("kind", "logs"))
    if name == "kind" and is_fields:
        return list(KINDS)
    if is_fields:
        return None
    if name in catalog.SCOPE_FIELDS:
        return catalog.scope_values(state.store, infos, name, application)
    if name == "start_time":
        return list(catalog.START_TIMES)
    if name == "end_time":
        return list(catalog.END_TIMES)
    return None
