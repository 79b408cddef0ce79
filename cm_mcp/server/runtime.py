"""Running the server: stdio/HTTP serving, one-off calls through a real MCP client, schema files.

`--sandbox` starts the embedded sandbox API in-process and points the client at it with its own
token, so Claude Desktop (or `cm-mcp call`) works with zero credentials.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import anyio
from pydantic import SecretStr

from cm_mcp.api.redaction import register_secret
from cm_mcp.api.settings import Settings

if TYPE_CHECKING:
    from mcp.types import ContentBlock

# Lazy imports below: each command imports what it uses (`serve` never loads the MCP client,
# `tools` never the server app, the sandbox only with --sandbox).


def sandbox_config(args: argparse.Namespace, settings: Settings) -> Any:
    from cm_mcp.sandbox.cli import config_options
    from cm_mcp.sandbox.config import SandboxConfig

    return SandboxConfig(port=0, data_dir=Path(settings.data_dir), **config_options(args))


def pointed_at(settings: Settings, url: str, token: str) -> Settings:
    """`settings` aimed at a sandbox: its URL, its token, and downloads allowed from it (its presigned
    URLs point at the address the client called, so that host *and port*)."""
    register_secret(token)
    host_and_port = urlsplit(url).netloc
    return settings.model_copy(
        update={
            "api_url": url,
            "api_token": SecretStr(token),
            "api_token_file": None,
            "download_allowed_hosts": [*settings.download_allowed_hosts, host_and_port],
        }
    )


@asynccontextmanager
async def backend(args: argparse.Namespace) -> AsyncIterator[Settings]:
    """Settings for the API to use: the environment's, or a sandbox started for this command."""
    settings = Settings()
    if not getattr(args, "sandbox", False):
        yield settings
        return
    from cm_mcp.sandbox.runner import serve_sandbox

    print("starting the sandbox API (first start builds its index)...", file=sys.stderr)
    async with serve_sandbox(sandbox_config(args, settings)) as running:
        yield pointed_at(settings, running.url, running.token)


def serve(args: argparse.Namespace) -> int:
    from cm_mcp.server.app import build_server

    settings = Settings()
    http_options = None
    if args.transport == "streamable-http":
        from cm_mcp.server.http import HttpConfigError, HttpOptions

        try:  # before the sandbox starts: a refused configuration must cost nothing
            http_options = HttpOptions.resolve(
                settings,
                host=args.host,
                port=args.port,
                stateless=args.stateless,
                allowed_hosts=args.allowed_host,
                allowed_origins=args.allowed_origin,
            )
        except HttpConfigError as exc:
            print(f"cm-mcp serve: {exc}", file=sys.stderr)
            return 2
    handle = None
    if args.sandbox:
        from cm_mcp.sandbox.runner import start_sandbox_thread

        # initialize is answered at once; a first start builds the data meanwhile (tool calls wait)
        handle = start_sandbox_thread(sandbox_config(args, settings), build_in_background=True)
        settings = pointed_at(settings, handle.url, handle.token)  # the runner logs where and when ready
    server = build_server(settings)
    try:
        if http_options is None:
            server.run("stdio")
        else:
            anyio.run(_serve_http, server, settings, http_options)
    finally:
        if handle is not None:
            handle.stop()
    return 0


async def _serve_http(server: Any, settings: Settings, options: Any) -> None:
    from cm_mcp.server.http import build_http_app, describe, running_http

    app = build_http_app(server, settings, options)
    async with running_http(app, options.host, options.port, handle_signals=True) as running:
        print(describe(options, settings, running.url), file=sys.stderr, flush=True)
        await running.finished.wait()


def list_tools() -> int:
    from cm_mcp.server.tools import build_tools

    for tool in build_tools(Settings(enable_v1=True)):
        print(f"{tool.name:24} {tool.title}")
    return 0


def call_tool(args: argparse.Namespace) -> int:
    try:
        arguments = json.loads(args.arguments)
    except ValueError as exc:
        print(f"arguments must be a JSON object: {exc}", file=sys.stderr)
        return 2
    if not isinstance(arguments, dict):
        print("arguments must be a JSON object", file=sys.stderr)
        return 2
    return anyio.run(_call, args, arguments)


async def _call(args: argparse.Namespace, arguments: dict[str, Any]) -> int:
    from mcp import Client

    from cm_mcp.server.app import build_server
    from cm_mcp.server.progress import ProgressBar

    async with backend(args) as settings, Client(build_server(settings)) as client:
        with ProgressBar() as bar:
            result = await client.call_tool(args.tool, arguments, progress_callback=bar.update)
    if args.json and result.structured_content is not None:
        print(json.dumps(result.structured_content, indent=2))
    else:
        for block in result.content:
            print(block_text(block))
    return 1 if result.is_error else 0


def block_text(block: ContentBlock) -> str:
    """A content block for a terminal: text as it is, a resource link as one readable line."""
    from mcp.types import ResourceLink, TextContent

    if isinstance(block, TextContent):
        return block.text
    if isinstance(block, ResourceLink):
        about = f"  ({block.description})" if block.description else ""
        return f"-> {block.name}: {block.uri}{about}"
    return block.model_dump_json(exclude_none=True)


def schema_documents() -> dict[str, dict[str, Any]]:
    """One JSON document per tool (V1 included): what `tools/list` publishes."""
    from cm_mcp.server.app import build_server

    server = build_server(Settings(enable_v1=True))
    tools = anyio.run(server.list_tools)
    return {tool.name: tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in tools}


def write_schemas(directory: str, *, check: bool) -> int:
    folder = Path(directory)
    documents = {
        f"{name}.json": json.dumps(doc, indent=2, sort_keys=True) + "\n"
        for name, doc in schema_documents().items()
    }
    if check:
        existing = {path.name: path.read_text() for path in folder.glob("*.json")} if folder.exists() else {}
        stale = sorted(
            name for name in documents.keys() | existing.keys() if documents.get(name) != existing.get(name)
        )
        if stale:
            print(f"tool_schemas/ is stale ({', '.join(stale)}): run `cm-mcp schemas`", file=sys.stderr)
            return 1
        print(f"{len(documents)} tool schemas are current")
        return 0
    folder.mkdir(parents=True, exist_ok=True)
    for path in folder.glob("*.json"):
        if path.name not in documents:
            path.unlink()
    for name, text in documents.items():
        (folder / name).write_text(text)
    print(f"wrote {len(documents)} tool schemas to {folder}/")
    return 0
