"""The `cm-mcp` command.

Subcommands import their layer lazily so `cm-mcp --version` stays instant and so the stdio server
never pays for the sandbox's imports unless asked to. Logs go to stderr: in stdio mode stdout is the
protocol channel.
"""

from __future__ import annotations

import argparse
import importlib
import logging
import sys
from collections.abc import Callable, Sequence

from pydantic import ValidationError

from cm_mcp import __version__
from cm_mcp.api.redaction import install_log_redaction

Handler = Callable[[argparse.Namespace], int]

#: Modules that add subcommands: each has `register(subparsers)`, imports only argparse at module
#: level, and sets `handler` (which may import heavy things) on its parser via `set_defaults`.
SUBCOMMAND_MODULES = (
    "cm_mcp.sandbox.cli",
    "cm_mcp.server.cli",
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cm-mcp",
        description="Investigate incidents through the Central Monitoring API from any MCP client.",
    )
    parser.add_argument("--version", action="version", version=f"cm-mcp {__version__}")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging (to stderr)")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in SUBCOMMAND_MODULES:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as exc:  # a layer not built yet must not break the others
            if exc.name != name:
                raise
            continue
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    # Before anything logs: no record from any logger (ours, httpx2, uvicorn, mcp) shows a secret.
    install_log_redaction()
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        stream=sys.stderr,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    handler: Handler | None = getattr(args, "handler", None)
    if handler is None:
        parser.print_help()
        return 0
    try:
        return handler(args)
    except ValidationError as exc:
        if exc.title != "Settings":
            raise
        # A configuration mistake: the rule, per setting, without a traceback (and without the input,
        # which may be a token: Settings hides inputs in its errors).
        problems = "\n".join(f"  {_problem(error['loc'], error['msg'])}" for error in exc.errors())
        print(f"cm-mcp: invalid configuration:\n{problems}", file=sys.stderr)
        return 2


def _problem(location: tuple[int | str, ...], message: str) -> str:
    field = str(location[0]) if location else "?"
    name = "CM_MAX_TOKENS" if field == "default_max_tokens" else f"CM_{field.upper()}"
    message = message.removeprefix("Value error, ")
    return message if name in message else f"{name}: {message}"


if __name__ == "__main__":
    sys.exit(main())
