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

from cm_mcp import __version__
from cm_mcp.api.redaction import install_log_redaction

Handler = Callable[[argparse.Namespace], int]

#: Modules that add subcommands: each has `register(subparsers)`, imports only argparse at module
#: level, and sets `handler` (which may import heavy things) on its parser via `set_defaults`.
SUBCOMMAND_MODULES = (
    "cm_mcp.sandbox.cli",
    "cm_mcp.server.cli",
    "cm_mcp.agent.cli",
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
    except Exception as exc:  # only invalid settings are turned into a message; the rest re-raises
        from cm_mcp.api.settings import describe_invalid_settings

        message = describe_invalid_settings(exc)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
