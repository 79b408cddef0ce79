"""Build MCP tools whose input schema IS an `api/` request model, validated by cm-mcp itself.

`MCPServer` normally derives a schema from a function's parameters and validates arguments with
pydantic's generic messages. We publish the request model's own schema instead and hand the raw
arguments to our handler, which validates them with `parse_request`: its errors name the JSON path,
the rule and a valid example, so the model corrects itself in one step and no quota is spent.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from mcp.server.mcpserver import Context
from mcp.server.mcpserver.tools.base import Tool
from mcp.server.mcpserver.utilities.func_metadata import ArgModelBase, FuncMetadata
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel, ConfigDict

from cm_mcp.api.budget import budget_problem
from cm_mcp.api.endpoints import Endpoint
from cm_mcp.api.errors import ValidationIssue
from cm_mcp.server.schemas import output_schema

Handler = Callable[[Context[Any, Any], dict[str, Any]], Awaitable[CallToolResult]]

#: The `_meta` key under which each tool publishes what a call costs (clients such as `cm-mcp ask`
#: approve calls by it): {"family": <quota family or null>, "cost": "free"|"aggs"|"scroll"|"batch"|"query"}.
QUOTA_META_KEY = "cm-mcp/quota"


class _RawArguments(ArgModelBase):
    """Accept any arguments and pass them on untouched as `arguments` (we validate them ourselves)."""

    model_config = ConfigDict(extra="allow", arbitrary_types_allowed=True)

    def model_dump_one_level(self) -> dict[str, Any]:
        return {"arguments": dict(self.__pydantic_extra__ or {})}


def sdk_tool(
    *,
    name: str,
    title: str,
    description: str,
    input_schema: dict[str, Any],
    output_model: type[BaseModel],
    handler: Handler,
    idempotent: bool,
    open_world: bool,
    endpoint: Endpoint | None,
) -> Tool:
    """The SDK's `Tool` for `handler`, publishing `input_schema` as is and passing raw arguments.

    `endpoint` is the API endpoint a call sends to (None: answered locally); its quota family and cost
    class go into the tool's `_meta`, so a client learns what a call costs from the server itself.
    """
    return Tool(
        fn=handler,
        name=name,
        title=title,
        description=description,
        parameters=input_schema,
        fn_metadata=FuncMetadata(arg_model=_RawArguments, output_schema=output_schema(output_model)),
        is_async=True,
        context_kwarg="ctx",
        annotations=ToolAnnotations(
            title=title, read_only_hint=True, open_world_hint=open_world, idempotent_hint=idempotent
        ),
        meta={QUOTA_META_KEY: quota_meta(endpoint)},
    )


def quota_meta(endpoint: Endpoint | None) -> dict[str, str | None]:
    """What one call of a tool sending to `endpoint` costs, derived from the endpoint table.

    Untracked endpoints (batch status polls) and local tools are free; otherwise the cost class is the
    kind of request, the last segment of its path (`/v2/logs/scroll` -> scroll, `/v1/query` -> query),
    so a new endpoint gets its class from its path without a second table here.
    """
    if endpoint is None or endpoint.family is None:
        return {"family": None, "cost": "free"}
    return {"family": endpoint.family, "cost": endpoint.path.rsplit("/", 1)[-1]}


def preparse_json_strings(arguments: dict[str, Any], schema: dict[str, Any]) -> dict[str, Any]:
    """Some clients send list/object arguments as JSON text (`"[\\"*\\"]"`); decode those."""
    properties = schema.get("properties", {})
    fixed = dict(arguments)
    for key, value in arguments.items():
        kind = properties.get(key, {}).get("type")
        if isinstance(value, str) and kind in ("array", "object"):
            try:
                decoded = json.loads(value)
            except ValueError:
                continue
            if isinstance(decoded, list | dict):
                fixed[key] = decoded
    return fixed


def text_result(text: str, structured: BaseModel | None = None) -> CallToolResult:
    return CallToolResult(
        content=[TextContent(text=text)],
        # None fields left out: structured content is paid for in tokens (schemas.output_schema)
        structured_content=structured.model_dump(mode="json", exclude_none=True)
        if structured is not None
        else None,
    )


def error_result(text: str) -> CallToolResult:
    return CallToolResult(content=[TextContent(text=text)], is_error=True)


def budget_issue(value: Any) -> ValidationIssue | None:
    """`max_tokens` is a server option (not sent upstream), in the one range of `cm_mcp.api.budget`."""
    problem = budget_problem(value)
    return None if problem is None else ValidationIssue(path="max_tokens", message=problem)
