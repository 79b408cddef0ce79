"""`cm-mcp sandbox`: run the embedded Central Monitoring API sandbox, and the sandbox options of the
commands that start one (`serve --sandbox`, `call --sandbox`, `demo`: see `add_sandbox_options`).

When it accepts connections, `cm-mcp sandbox` prints one line to stdout and flushes it:

    export CM_API_URL=http://127.0.0.1:8766 CM_API_TOKEN=<jwt> CM_DOWNLOAD_ALLOWED_HOSTS=127.0.0.1:8766

every setting a client needs, in a form a shell can `eval`; every log line goes to stderr. The process
keeps serving, so read the line rather than wait for the command to end (bash):

    exec 3< <(cm-mcp sandbox)        # start it in the background
    read -r line <&3 && eval "$line"  # returns as soon as it serves
    cm-mcp serve                      # or any client: it now talks to the sandbox

Only argparse is imported at module level (cm_mcp/cli.py imports this eagerly).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any


def _quota(text: str) -> tuple[str, int]:
    """``FAMILY=N`` (an endpoint family, or ``all``) -> (family, N), or a clear argparse error."""
    from cm_mcp.sandbox.quotas import DEFAULT_LIMITS

    counted = [name for name, limit in DEFAULT_LIMITS.items() if limit is not None]
    family, sep, value = text.partition("=")
    family = family.strip()
    if not sep:
        raise argparse.ArgumentTypeError(f"expected FAMILY=N (e.g. logs_scroll=1000), got {text!r}")
    if family not in (*counted, "all"):
        free = sorted(set(DEFAULT_LIMITS) - set(counted))
        hint = f" ({family} is free: status polls are not counted)" if family in free else ""
        raise argparse.ArgumentTypeError(
            f"unknown quota family {family!r}{hint}; use one of: {', '.join(counted)}, or all"
        )
    try:
        limit = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{family}: the daily limit must be a whole number, got {value!r}"
        ) from None
    if not 0 <= limit <= 1_000_000_000:
        raise argparse.ArgumentTypeError(
            f"{family}: the daily limit must be between 0 and 1000000000, got {limit}"
        )
    return family, limit


def _faults(text: str) -> str:
    """The text itself once it parses (so a child `serve --sandbox` can be handed it unchanged)."""
    from cm_mcp.sandbox.faults import FaultParseError, parse_faults

    try:
        parse_faults(text)
    except FaultParseError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def add_sandbox_options(parser: argparse.ArgumentParser) -> None:
    """The data, quota and fault options of every command that can start a sandbox."""
    parser.add_argument("--seed", type=int, default=None, help="sandbox data seed (default 42)")
    parser.add_argument(
        "--volume", type=int, default=None, help="sandbox logs per day across all applications"
    )
    parser.add_argument(
        "--scenarios", type=Path, default=None, help="sandbox: a JSON file of extra incidents"
    )
    parser.add_argument(
        "--quota",
        type=_quota,
        action="append",
        default=[],
        metavar="FAMILY=N",
        help="sandbox daily request limit of an endpoint family (e.g. logs_scroll=1000, or all=100000); repeatable",
    )
    parser.add_argument(
        "--faults",
        type=_faults,
        default=None,
        help="sandbox faults, e.g. error_rate=0.2,latency_ms=50,expired_url",
    )


def config_options(args: argparse.Namespace) -> dict[str, Any]:
    """The SandboxConfig fields set by `add_sandbox_options` (only those given)."""
    from cm_mcp.sandbox.faults import parse_faults
    from cm_mcp.sandbox.quotas import DEFAULT_LIMITS

    options: dict[str, Any] = {}
    if args.seed is not None:
        options["seed"] = args.seed
    if args.volume is not None:
        options["volume"] = args.volume
    if args.scenarios is not None:
        options["scenarios_file"] = Path(args.scenarios)
    if args.faults is not None:
        options["faults"] = parse_faults(args.faults)
    if args.quota:
        limits: dict[str, int | None] = {}
        for family, limit in args.quota:  # in order: `all=10 logs_scroll=2` limits logs_scroll to 2
            counted = [name for name, default in DEFAULT_LIMITS.items() if default is not None]
            limits.update(dict.fromkeys(counted, limit) if family == "all" else {family: limit})
        options["quota_limits"] = limits
    return options


def sandbox_argv(args: argparse.Namespace) -> list[str]:
    """The options of `add_sandbox_options` that were given, as command-line arguments again (for a
    child `cm-mcp serve --sandbox`, e.g. the chat agent's own server)."""
    argv: list[str] = []
    for name in ("seed", "volume", "scenarios", "faults"):
        value = getattr(args, name, None)
        if value is not None:
            argv += [f"--{name}", str(value)]
    for family, limit in getattr(args, "quota", None) or []:
        argv += ["--quota", f"{family}={limit}"]
    return argv


def misplaced_sandbox_options(args: argparse.Namespace) -> str | None:
    """A clear error when sandbox options were given without --sandbox (they would be ignored
    silently, and the command would run against the configured API instead)."""
    if getattr(args, "sandbox", False):
        return None
    given = sandbox_argv(args)[::2]
    if not given:
        return None
    names = ", ".join(dict.fromkeys(given))
    return f"{names}: sandbox options only apply with --sandbox (add --sandbox, or leave them out)"


def client_environment(url: str, token: str) -> dict[str, str]:
    """Every setting a client of the sandbox at `url` needs (CM_* variables)."""
    from urllib.parse import urlsplit

    # Presigned URLs point at the address the client called: that host *and port* (an allow-list
    # entry without a port admits the scheme's default port only).
    return {
        "CM_API_URL": url,
        "CM_API_TOKEN": token,
        "CM_DOWNLOAD_ALLOWED_HOSTS": urlsplit(url).netloc.lower(),
    }


def export_line(environment: dict[str, str]) -> str:
    import shlex

    return "export " + " ".join(f"{name}={shlex.quote(value)}" for name, value in environment.items())


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="run the local Central Monitoring API sandbox (no credentials needed)",
        description="Serve a realistic Central Monitoring API with generated data, incidents and faults. "
        "Prints `export CM_API_URL=... CM_API_TOKEN=... CM_DOWNLOAD_ALLOWED_HOSTS=...` once it serves.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8766, help="port (0 = any free port; default 8766)")
    add_sandbox_options(parser)
    parser.add_argument(
        "--batch-seconds", type=float, default=None, help="time a batch job takes to complete (default 3)"
    )
    parser.add_argument(
        "--file-format", choices=("ndjson.gz", "ndjson", "json"), default=None, help="batch file format"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="index cache and batch files directory")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from pydantic import ValidationError

    from cm_mcp.sandbox.config import SandboxConfig
    from cm_mcp.sandbox.incidents import ScenarioError
    from cm_mcp.sandbox.runner import serve_sandbox, serve_until_stopped

    try:
        values: dict[str, object] = {"host": args.host, "port": args.port, **config_options(args)}
        optional = {
            "batch_seconds": args.batch_seconds,
            "file_format": args.file_format,
            "data_dir": args.data_dir,
        }
        values.update({key: value for key, value in optional.items() if value is not None})
        config = SandboxConfig.model_validate(values)
    except ValidationError as exc:
        print(f"cm-mcp sandbox: invalid option: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        async with serve_sandbox(config) as running:
            # Our own handlers: a stop on SIGINT/SIGTERM is a normal exit (status 0) that removes the
            # batch files, where uvicorn's would re-raise the signal after shutting down.
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, running.stop)
            sys.stdout.write(export_line(client_environment(running.url, running.token)) + "\n")
            sys.stdout.flush()
            print(f"cm-mcp sandbox: serving {running.url} (Ctrl-C to stop)", file=sys.stderr)
            await serve_until_stopped(running)

    try:
        asyncio.run(main())
    except ScenarioError as exc:
        print(f"cm-mcp sandbox: {exc}", file=sys.stderr)
        return 2
    except OSError as exc:  # port in use, unwritable data dir...
        print(f"cm-mcp sandbox: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        pass
    return 0
