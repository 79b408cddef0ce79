"""Which MCP servers the agent talks to: cm-mcp's own (a `cm-mcp serve` child over stdio) and those of
`--mcp-config` (the `mcpServers` JSON of claude_desktop_config.json: `command`/`args`/`env`/`cwd`, or
`url`/`headers` for streamable HTTP).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: The name our own server's tools are known under (namespaced as `cm__<tool>` only on a clash).
OWN_SERVER = "cm"


@dataclass(frozen=True)
class ServerSpec:
    name: str
    command: str | None = None
    args: list[str] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    cwd: str | None = None
    url: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    #: True for cm-mcp's own server (its tools publish their quota cost)
    own: bool = False


class ServerConfigError(ValueError):
    """An unreadable or invalid --mcp-config: the message names the file, the server and the field."""


def own_server(*, sandbox: bool, sandbox_args: Sequence[str] = ()) -> ServerSpec:
    """`cm-mcp serve [--sandbox SANDBOX_ARGS...]` as a child of this Python, with the CM_* environment
    it needs (`sandbox_args`: --seed, --volume, --scenarios, --quota, --faults as the user gave them).

    The stdio child inherits only a minimal environment (HOME, PATH, ...), so the API settings are
    passed on explicitly; the provider keys are not (the server has no use for them).
    """
    args = ["-m", "cm_mcp.cli", "serve"]
    if sandbox:
        args += ["--sandbox", *sandbox_args]
    env = {k: v for k, v in os.environ.items() if k.startswith("CM_") and not k.startswith("CM_AGENT_")}
    return ServerSpec(name=OWN_SERVER, command=sys.executable, args=args, env=env, cwd=os.getcwd(), own=True)


def load_mcp_config(path: str | Path) -> list[ServerSpec]:
    """The servers of a `{"mcpServers": {...}}` file, in file order (entries with "disabled": true skipped)."""
    file = Path(path).expanduser()
    try:
        document = json.loads(file.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ServerConfigError(f"--mcp-config {file}: cannot read it ({exc.strerror or exc})") from None
    except ValueError as exc:
        raise ServerConfigError(f"--mcp-config {file}: not valid JSON ({exc})") from None
    servers = document.get("mcpServers") if isinstance(document, dict) else None
    if not isinstance(servers, dict):
        raise ServerConfigError(
            f'--mcp-config {file}: expected an object {{"mcpServers": {{"name": {{...}}}}}}'
        )
    specs = []
    for name, entry in servers.items():
        if not isinstance(entry, dict):
            raise ServerConfigError(f"--mcp-config {file}: server {name!r} must be an object")
        if entry.get("disabled") is True:
            continue
        specs.append(_spec(file, str(name), entry))
    return specs


def _spec(file: Path, name: str, entry: dict[str, Any]) -> ServerSpec:
    where = f"--mcp-config {file}: server {name!r}"
    if name == OWN_SERVER:
        raise ServerConfigError(f"{where}: the name {OWN_SERVER!r} is cm-mcp's own server; choose another")
    kind = entry.get("type", "http" if "url" in entry else "stdio")
    if kind in ("http", "streamable-http", "streamable_http"):
        url = entry.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise ServerConfigError(f"{where}: 'url' must be an http(s) URL")
        return ServerSpec(
            name=name, url=url, headers=_strings(entry.get("headers", {}), f"{where}: 'headers'")
        )
    if kind != "stdio":
        raise ServerConfigError(f"{where}: type {kind!r} is not supported (use stdio or http)")
    command = entry.get("command")
    if not isinstance(command, str) or not command:
        raise ServerConfigError(f"{where}: 'command' (the program to run) is required")
    args = entry.get("args", [])
    if not isinstance(args, list) or not all(isinstance(arg, str) for arg in args):
        raise ServerConfigError(f"{where}: 'args' must be a list of strings")
    cwd = entry.get("cwd")
    if cwd is not None and not isinstance(cwd, str):
        raise ServerConfigError(f"{where}: 'cwd' must be a string")
    return ServerSpec(
        name=name, command=command, args=args, env=_strings(entry.get("env", {}), f"{where}: 'env'"), cwd=cwd
    )


def _strings(value: Any, where: str) -> dict[str, str]:
    if not isinstance(value, dict) or not all(isinstance(v, str) for v in value.values()):
        raise ServerConfigError(f"{where} must be an object of strings")
    return {str(k): v for k, v in value.items()}
