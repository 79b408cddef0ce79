"""`cm-mcp serve | tools | call | schemas | triage | demo`: the MCP server's commands.

Only argparse is imported at module level (the CLI imports this module to build its parser); each
handler imports what it needs. Everything but protocol and requested output goes to stderr.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any


def register(subparsers: Any) -> None:
    serve = subparsers.add_parser("serve", help="run the MCP server (stdio by default)")
    serve.add_argument("--sandbox", action="store_true", help="start the embedded sandbox API and use it")
    serve.add_argument("--transport", choices=["stdio", "streamable-http"], default="stdio")
    serve.add_argument(
        "--host",
        default="127.0.0.1",
        help="streamable-http: address to bind; anything but loopback needs CM_HTTP_TOKEN(_FILE)",
    )
    serve.add_argument("--port", type=int, default=8765, help="streamable-http: port (0: any free one)")
    serve.add_argument(
        "--stateless",
        action="store_true",
        help="streamable-http: keep no session in the server, so replicas need no affinity (CM_HTTP_STATELESS)",
    )
    serve.add_argument(
        "--allowed-host",
        action="append",
        default=[],
        metavar="NAME[:PORT]",
        help="streamable-http: a Host header to accept besides loopback (repeatable; adds to CM_HTTP_ALLOWED_HOSTS)",
    )
    serve.add_argument(
        "--allowed-origin",
        action="append",
        default=[],
        metavar="URL",
        help="streamable-http: an Origin to accept, e.g. https://app.example.com (repeatable; adds to CM_HTTP_ALLOWED_ORIGINS)",
    )
    _sandbox_options(serve)
    serve.set_defaults(handler=_serve)

    tools = subparsers.add_parser("tools", help="list the tools (one line each)")
    tools.set_defaults(handler=_tools)

    call = subparsers.add_parser("call", help="call one tool through a real MCP client session")
    call.add_argument("tool")
    call.add_argument("arguments", nargs="?", default="{}", help="JSON object of arguments")
    call.add_argument("--sandbox", action="store_true", help="run against the embedded sandbox")
    call.add_argument("--json", action="store_true", help="print the structured result as JSON")
    _sandbox_options(call)
    call.set_defaults(handler=_call)

    schemas = subparsers.add_parser("schemas", help="write tool_schemas/*.json (or --check they are current)")
    schemas.add_argument("--check", action="store_true", help="fail if tool_schemas/ is stale")
    schemas.add_argument("--dir", default="tool_schemas")
    schemas.set_defaults(handler=_schemas)

    triage = subparsers.add_parser(
        "triage", help="what is abnormal: ranked findings of logs_triage/workloads_triage as a table"
    )
    triage.add_argument("--sandbox", action="store_true", help="run against the embedded sandbox")
    triage.add_argument("--application", required=True, help="atr, klewer, quasar or eventops")
    triage.add_argument("--app-type", required=True, help="ec2, kubernetes or serverless")
    triage.add_argument("--workloads", action="store_true", help="triage atr workloads instead of logs")
    for option, what in (
        ("--domain", "a domain (repeatable; default all)"),
        ("--log-group", "serverless: a log group (repeatable; default all)"),
        ("--tenant", "serverless: a tenant (repeatable; default all)"),
        ("--stage", "serverless: a stage (repeatable; default all)"),
    ):
        triage.add_argument(option, action="append", default=[], help=what)
    triage.add_argument("--since", default="now-24h", help="window start (default now-24h)")
    triage.add_argument("--until", default="now", help="window end (default now)")
    triage.add_argument("--baseline-start", help="baseline start (default: the period before, as long)")
    triage.add_argument("--baseline-end", help="baseline end (at or before --since)")
    triage.add_argument("--max-findings", type=int, default=5)
    triage.add_argument("--json", action="store_true", help="print the structured result as JSON")
    _sandbox_options(triage)
    triage.set_defaults(handler=_triage)

    demo = subparsers.add_parser("demo", help="a scripted investigation on the sandbox, step by step")
    _sandbox_options(demo)
    demo.set_defaults(handler=_demo)


def _sandbox_options(parser: argparse.ArgumentParser) -> None:
    # One definition for every command that can start a sandbox (and `cm-mcp sandbox` itself).
    from cm_mcp.sandbox.cli import add_sandbox_options

    add_sandbox_options(parser)


def _without_sandbox_options(args: argparse.Namespace) -> bool:
    """False (after saying why) when sandbox options came without --sandbox."""
    from cm_mcp.sandbox.cli import misplaced_sandbox_options

    problem = misplaced_sandbox_options(args)
    if problem:
        print(f"cm-mcp {args.command}: {problem}", file=sys.stderr)
    return problem is None


def _serve(args: argparse.Namespace) -> int:
    from cm_mcp.server.runtime import serve

    if not _without_sandbox_options(args):
        return 2
    return serve(args)


def _tools(args: argparse.Namespace) -> int:
    from cm_mcp.server.runtime import list_tools

    return list_tools()


def _call(args: argparse.Namespace) -> int:
    from cm_mcp.server.runtime import call_tool

    if not _without_sandbox_options(args):
        return 2
    return call_tool(args)


def _schemas(args: argparse.Namespace) -> int:
    from cm_mcp.server.runtime import write_schemas

    return write_schemas(args.dir, check=args.check)


def _triage(args: argparse.Namespace) -> int:
    from cm_mcp.server.triage_report import run_triage

    if not _without_sandbox_options(args):
        return 2
    return run_triage(args)


def _demo(args: argparse.Namespace) -> int:
    from cm_mcp.server.demo import run_demo

    return run_demo(args)
