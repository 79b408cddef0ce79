"""`cm-mcp sandbox`: run the embedded Central Monitoring API sandbox.

When it accepts connections it prints exactly two lines to stdout and flushes:

    CM_API_URL=http://127.0.0.1:8766
    CM_API_TOKEN=<jwt>

so `eval "$(cm-mcp sandbox ... | head -2)"`-style wrappers and test harnesses can read them; every log
line goes to stderr. Only argparse is imported at module level (cm_mcp/cli.py imports this eagerly).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "sandbox",
        help="run the local Central Monitoring API sandbox (no credentials needed)",
        description="Serve a realistic Central Monitoring API with generated data, incidents and faults.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8766, help="port (0 = any free port; default 8766)")
    parser.add_argument("--seed", type=int, default=42, help="data seed (default 42)")
    parser.add_argument("--volume", type=int, default=None, help="logs per day across all applications")
    parser.add_argument("--scenarios", type=Path, default=None, help="JSON file of extra incidents")
    parser.add_argument(
        "--batch-seconds", type=float, default=None, help="time a batch job takes to complete (default 3)"
    )
    parser.add_argument(
        "--file-format", choices=("ndjson.gz", "ndjson", "json"), default=None, help="batch file format"
    )
    parser.add_argument(
        "--faults", default=None, help="fault spec, e.g. error_rate=0.2,latency_ms=50,expired_url"
    )
    parser.add_argument("--data-dir", type=Path, default=None, help="index cache and batch files directory")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import asyncio
    import signal

    from pydantic import ValidationError

    from cm_mcp.sandbox.config import SandboxConfig
    from cm_mcp.sandbox.faults import FaultParseError, parse_faults
    from cm_mcp.sandbox.incidents import ScenarioError
    from cm_mcp.sandbox.runner import serve_sandbox, serve_until_stopped

    try:
        values: dict[str, object] = {"host": args.host, "port": args.port, "seed": args.seed}
        optional = {
            "volume": args.volume,
            "scenarios_file": args.scenarios,
            "batch_seconds": args.batch_seconds,
            "file_format": args.file_format,
            "data_dir": args.data_dir,
        }
        values.update({key: value for key, value in optional.items() if value is not None})
        if args.faults:
            values["faults"] = parse_faults(args.faults)
        config = SandboxConfig.model_validate(values)
    except (ValidationError, FaultParseError) as exc:
        print(f"cm-mcp sandbox: invalid option: {exc}", file=sys.stderr)
        return 2

    async def main() -> None:
        async with serve_sandbox(config) as running:
            # Our own handlers: a stop on SIGINT/SIGTERM is a normal exit (status 0), where
            # uvicorn's would re-raise the signal after shutting down.
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGINT, signal.SIGTERM):
                loop.add_signal_handler(sig, running.stop)
            sys.stdout.write(f"CM_API_URL={running.url}\nCM_API_TOKEN={running.token}\n")
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
