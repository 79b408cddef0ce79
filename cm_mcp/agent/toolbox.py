"""MCP client sessions: one `Client` per server, the tool catalogue, and calls that cannot hang.

Every call asks for progress (a progress callback, so a progress token is sent) and runs in a cancel
scope whose deadline is `idle_timeout` after the last sign of life (progress moves it) and never later
than `cap` after the start; `CallHandle.cancel()` (Ctrl-C) ends it at once. A cancelled call sends
`notifications/cancelled`, so the server stops it (an export stays resumable).

What a tool costs is read from the tool itself: cm-mcp's server publishes `_meta["cm-mcp/quota"]`
(`family`, `cost`) per tool; other servers' tools are priced by their `readOnlyHint` (see approval.py).
"""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from contextlib import AsyncExitStack
from dataclasses import dataclass, field
from typing import Any, Literal

import anyio
import httpx2
from mcp import Client, MCPError, StdioServerParameters
from mcp.types import CallToolResult, EmbeddedResource, ResourceLink, TextContent, TextResourceContents, Tool

from cm_mcp.agent.context import cap_text
from cm_mcp.agent.providers.base import ToolSpec
from cm_mcp.agent.redact import Redactor
from cm_mcp.agent.servers import ServerSpec

#: The `_meta` key of cm-mcp's tools (cm_mcp/server/tooling.py publishes it; we only read the wire).
QUOTA_META_KEY = "cm-mcp/quota"
#: Names both provider APIs accept for a tool.
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
#: Resource links shown in full before the rest are counted (an export links every partition file).
_LINKS_SHOWN = 3
#: Our own tools keep to their token budget (max 20,000); this is only a safety net.
OWN_RESULT_MAX_TOKENS = 24_000

ProgressSink = Callable[[float, float | None, str | None], Awaitable[None]]
CancelReason = Literal["user", "idle", "cap"]


@dataclass(frozen=True)
class ToolInfo:
    name: str  # as offered to the model (namespaced only on a clash)
    server: str
    remote_name: str
    description: str
    input_schema: dict[str, Any]
    #: free | aggs | query | scroll | batch (published by the server) or "unpriced" (other servers)
    cost: str
    family: str | None
    read_only: bool
    own: bool

    def spec(self) -> ToolSpec:
        return ToolSpec(self.name, self.description, self.input_schema)


@dataclass
class CallOutcome:
    text: str
    is_error: bool
    structured: dict[str, Any] | None
    elapsed: float
    cancelled: CancelReason | None = None


@dataclass
class CallHandle:
    """Lets another task (a Ctrl-C handler) cancel the running call."""

    scope: anyio.CancelScope | None = None
    reason: CancelReason | None = None

    def cancel(self, reason: CancelReason = "user") -> bool:
        if self.scope is None or self.scope.cancel_called:
            return False
        self.reason = reason
        self.scope.cancel()
        return True


@dataclass
class Toolbox:
    redactor: Redactor
    tools: dict[str, ToolInfo] = field(default_factory=dict)
    instructions: dict[str, str] = field(default_factory=dict)
    _clients: dict[str, Client] = field(default_factory=dict)
    _stack: AsyncExitStack = field(default_factory=AsyncExitStack)

    async def __aenter__(self) -> Toolbox:
        await self._stack.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._stack.__aexit__(*exc)  # type: ignore[arg-type]

    async def connect(self, spec: ServerSpec, target: Any = None) -> None:
        """Open a session to `spec` (or to `target`, an MCP server object or transport) and list its tools."""
        client = await self._stack.enter_async_context(Client(target or await self._target(spec)))
        self._clients[spec.name] = client
        if client.instructions:
            self.instructions[spec.name] = client.instructions
        cursor: str | None = None
        while True:
            page = await client.list_tools(cursor=cursor)
            for tool in page.tools:
                self._add(spec, tool)
            cursor = page.next_cursor
            if cursor is None:
                break

    async def _target(self, spec: ServerSpec) -> Any:
        if spec.url is not None:
            from mcp.client.streamable_http import streamable_http_client

            http = await self._stack.enter_async_context(httpx2.AsyncClient(headers=spec.headers, timeout=60))
            return streamable_http_client(spec.url, http_client=http)
        assert spec.command is not None
        return StdioServerParameters(command=spec.command, args=spec.args, env=spec.env or None, cwd=spec.cwd)

    def _add(self, spec: ServerSpec, tool: Tool) -> None:
        name = _NAME_CHARS.sub("_", tool.name)[:64]
        if name in self.tools:  # a clash: the newcomer is namespaced by its server
            name = _NAME_CHARS.sub("_", f"{spec.name}__{tool.name}")[:64]
        published = (tool.meta or {}).get(QUOTA_META_KEY)
        price: dict[str, Any] = published if isinstance(published, dict) else {}
        priced = isinstance(price.get("cost"), str)
        annotations = tool.annotations
        self.tools[name] = ToolInfo(
            name=name,
            server=spec.name,
            remote_name=tool.name,
            description=tool.description or tool.title or tool.name,
            input_schema=tool.input_schema,
            cost=str(price["cost"]) if priced else "unpriced",
            family=price.get("family") if priced else None,
            read_only=bool(annotations and annotations.read_only_hint),
            own=spec.own,
        )

    def specs(self) -> list[ToolSpec]:
        return [tool.spec() for tool in self.tools.values()]

    def own_tool(self, remote_name: str) -> ToolInfo | None:
        return next((t for t in self.tools.values() if t.own and t.remote_name == remote_name), None)

    async def call(
        self,
        tool: ToolInfo,
        arguments: dict[str, Any],
        *,
        on_progress: ProgressSink | None = None,
        idle_timeout: float,
        cap: float,
        handle: CallHandle | None = None,
        max_tokens: int,
    ) -> CallOutcome:
        """Run one tool call; failures of any kind come back as an error outcome, never raised."""
        handle = handle or CallHandle()
        started = anyio.current_time()
        clock = time.monotonic()
        result: CallToolResult | None = None
        failure: str | None = None
        with anyio.CancelScope(deadline=started + min(idle_timeout, cap)) as scope:
            handle.scope, handle.reason = scope, None

            async def progress_seen(progress: float, total: float | None, message: str | None) -> None:
                scope.deadline = min(started + cap, anyio.current_time() + idle_timeout)
                if on_progress is not None:
                    await on_progress(progress, total, message)

            try:
                result = await self._clients[tool.server].call_tool(
                    tool.remote_name, arguments, progress_callback=progress_seen
                )
            except MCPError as exc:
                failure = f"MCP error {exc.code} from server {tool.server!r}: {exc.message}"
            except Exception as exc:  # a dead server process, a broken transport: report, do not crash
                failure = f"the MCP server {tool.server!r} failed: {type(exc).__name__}: {exc}"
        handle.scope = None
        elapsed = time.monotonic() - clock
        if result is None and failure is None:  # the scope was cancelled
            reason: CancelReason = handle.reason or (
                "cap" if anyio.current_time() >= started + cap else "idle"
            )
            return CallOutcome(_cancelled_text(reason, idle_timeout, cap), True, None, elapsed, reason)
        if result is None:
            return CallOutcome(self.redactor.text(failure or "failed"), True, None, elapsed)
        limit = max(max_tokens, OWN_RESULT_MAX_TOKENS) if tool.own else max_tokens
        text = cap_text(self.redactor.text(result_text(result)), limit)
        structured = result.structured_content if isinstance(result.structured_content, dict) else None
        return CallOutcome(text, bool(result.is_error), structured, elapsed)

    async def quota(self) -> dict[str, Any] | None:
        """cm-mcp's `quota_status` (answered locally by the server: no API request), or None."""
        tool = self.own_tool("quota_status")
        if tool is None:
            return None
        try:
            with anyio.fail_after(30):
                result = await self._clients[tool.server].call_tool(tool.remote_name, {})
        except Exception:  # quota is informative; never let it break a question
            return None
        return result.structured_content if not result.is_error else None


def result_text(result: CallToolResult) -> str:
    """The content blocks as the model reads them: text as is, resource links as short lines."""
    lines: list[str] = []
    links = 0
    for block in result.content:
        if isinstance(block, TextContent):
            lines.append(block.text)
        elif isinstance(block, ResourceLink):
            links += 1
            if links <= _LINKS_SHOWN:
                about = f" ({block.description})" if block.description else ""
                lines.append(f"-> {block.name}: {block.uri}{about}")
        elif isinstance(block, EmbeddedResource) and isinstance(block.resource, TextResourceContents):
            lines.append(block.resource.text)
        else:
            lines.append(f"[{block.type} content omitted]")
    if links > _LINKS_SHOWN:
        lines.append(f"(+{links - _LINKS_SHOWN} more resource links)")
    if not lines and result.structured_content is not None:
        import json

        lines.append(json.dumps(result.structured_content))
    return "\n".join(lines) or "(no output)"


def _cancelled_text(reason: CancelReason, idle_timeout: float, cap: float) -> str:
    why = {
        "user": "cancelled by the user (Ctrl-C)",
        "idle": f"cancelled after {idle_timeout:g} s without progress",
        "cap": f"cancelled: it ran for the maximum of {cap:g} s",
    }[reason]
    return (
        f"The call was {why}; the server was told to stop. An export that was cut off stays resumable at "
        "no quota: results_list shows the call that continues it."
    )
