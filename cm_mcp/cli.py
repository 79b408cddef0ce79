"""The `cm-mcp` command.

Subcommands import their layer lazily so `cm-mcp --version` stays instant and so the stdio server
never pays for the sandbox's imports unless asked to. Logs go to stderr: in stdio mode stdout is the
protocol channel.
"""

from __future__ import annotations

import argparse
import atexit
import importlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from types import FrameType

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


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised like Ctrl-C so every `finally` runs (e.g. the embedded sandbox removes its
    temporary batch files); the signal's default action would end the process without any cleanup."""


def _terminate(_signum: int, _frame: FrameType | None) -> None:
    raise Terminated


def _interrupt(_signum: int, _frame: FrameType | None) -> None:
    # Python's own behaviour, but not its handler object: asyncio.run() replaces that one with a handler
    # that only cancels the main task, and the stdio server then waits on its stdin reader forever.
    raise KeyboardInterrupt


#: Installed for the time a command runs (a command may install its own, e.g. `cm-mcp sandbox`).
_STOPS: dict[signal.Signals, Callable[[int, FrameType | None], None]] = {
    signal.SIGTERM: _terminate,
    signal.SIGINT: _interrupt,
}

#: After an interruption, how long other threads get to finish before the process exits anyway.
STOP_GRACE_SECONDS = 2.0


def _exit_when_stuck(code: int) -> None:
    """Exit with `code` even if a worker thread is stuck (the stdio server's stdin reader only returns at
    EOF), once the `finally` blocks have run; the interpreter would otherwise wait for it forever."""
    deadline = time.monotonic() + STOP_GRACE_SECONDS
    for thread in threading.enumerate():
        if thread is not threading.current_thread() and not thread.daemon:
            thread.join(max(0.0, deadline - time.monotonic()))
    if any(
        t.is_alive() and not t.daemon and t is not threading.current_thread() for t in threading.enumerate()
    ):
        atexit._run_exitfuncs()
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)


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
    previous = {sig: signal.signal(sig, stop) for sig, stop in _STOPS.items()}
    try:
        return handler(args)
    except KeyboardInterrupt as stop:  # Ctrl-C or SIGTERM: cleaned up on the way out, not a crash
        code = 143 if isinstance(stop, Terminated) else 130
        _exit_when_stuck(code)
        return code
    except Exception as exc:  # only invalid settings are turned into a message; the rest re-raises
        from cm_mcp.api.settings import describe_invalid_settings

        message = describe_invalid_settings(exc)
        if message is None:
            raise
        print(message, file=sys.stderr)
        return 2
    finally:
        for sig, handler_before in previous.items():
            signal.signal(sig, handler_before)


if __name__ == "__main__":
    sys.exit(main())
