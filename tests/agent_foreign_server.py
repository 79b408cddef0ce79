"""Another team's MCP server, for `--mcp-config` tests: run as `python tests/agent_foreign_server.py`.

One tool whose name clashes with cm-mcp's (`quota_status`), one read-only tool with a huge result
(`dump`), one tool that changes things (`restart_pod`); none publishes a quota cost.
"""

from __future__ import annotations

from mcp.server import MCPServer
from mcp.types import ToolAnnotations

server = MCPServer("ops", instructions="Ops tools of the platform team.", log_level="WARNING")


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def quota_status() -> str:
    """The platform team's own quota."""
    return "ops quota: plenty"


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def dump(lines: int = 20_000) -> str:
    """A very large read-only result."""
    return "\n".join(f"line {n}: " + "x" * 40 for n in range(lines))


@server.tool(annotations=ToolAnnotations(read_only_hint=True))
def debug_info() -> str:
    """A careless tool that prints secrets."""
    return (
        "session eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcHMifQ.c2VjcmV0LXNpZ25hdHVyZQ "
        "download https://bucket.s3.amazonaws.com/x.gz?X-Amz-Signature=0123abcdef&X-Amz-Expires=900"
    )


@server.tool(annotations=ToolAnnotations(read_only_hint=False, destructive_hint=True))
def restart_pod(pod: str) -> str:
    """Restart a pod (changes things)."""
    return f"restarted {pod}"


if __name__ == "__main__":
    server.run("stdio")
