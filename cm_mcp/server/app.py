"""The MCP server: the tools of `tools.py`, the `cm://results/{id}` resource and the `investigate`
prompt, over one API client and one local result store for the life of the server."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import timedelta
from typing import Annotated, Any

import anyio
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from pydantic import Field

from cm_mcp import __version__
from cm_mcp.api.client import CMClient
from cm_mcp.api.settings import Settings
from cm_mcp.server.descriptions import SERVER_INSTRUCTIONS
from cm_mcp.server.prompts import render_investigation
from cm_mcp.server.tools import AppState, build_tools, state_of
from cm_mcp.store import ResultStore, StoreError
from cm_mcp.store.cache import ResponseCache


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
        "cm://results/{result_id}",
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

    @server.prompt(title="Investigate an incident")
    def investigate(
        application: Annotated[str, Field(description="atr, klewer, quasar or eventops")] = "atr",
        app_type: Annotated[str, Field(description="ec2, kubernetes or serverless")] = "kubernetes",
        domain: Annotated[str | None, Field(description="a domain, e.g. pay.example.com")] = None,
        start_time: Annotated[str, Field(description="ISO 8601 or date math")] = "now-24h",
        end_time: Annotated[str, Field(description="ISO 8601 or date math")] = "now",
        question: Annotated[str | None, Field(description="what the engineer wants to know")] = None,
    ) -> str:
        """A step-by-step investigation plan that spends the quota well: aggs, then a narrow scroll."""
        return render_investigation(
            application=application,
            app_type=app_type,
            domain=domain,
            start_time=start_time,
            end_time=end_time,
            question=question,
        )

    return server
