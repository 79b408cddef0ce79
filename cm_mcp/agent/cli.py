"""`cm-mcp ask | chat | replay`: the agent's commands.

Only argparse is imported here (the CLI imports this module to build its parser, and `cm-mcp serve`
must not pay for the agent); each handler imports what it needs.
"""

from __future__ import annotations

import argparse
from typing import Any

from cm_mcp.sandbox.cli import add_sandbox_options


def register(subparsers: Any) -> None:
    ask = subparsers.add_parser(
        "ask",
        help="one investigation by the chat agent: the answer on stdout, the work on stderr",
        description="Exit codes: 0 answered, 1 set-up failed, 2 turn or budget limit, 3 API quota "
        "exhausted, 4 provider error, 130 interrupted.",
    )
    ask.add_argument("question")
    ask.add_argument(
        "--report", metavar="FILE", help="also write an evidence-linked incident report (Markdown)"
    )
    _shared(ask)
    ask.set_defaults(handler=_ask)

    chat = subparsers.add_parser("chat", help="the chat agent as a REPL (/help lists its commands)")
    _shared(chat)
    chat.set_defaults(handler=_chat)

    replay = subparsers.add_parser(
        "replay", help="re-render a saved agent session from its transcript (no model, no API request)"
    )
    replay.add_argument("session", nargs="?", help="a session id (or unique prefix) or a .jsonl path")
    replay.add_argument("--list", action="store_true", help="list the newest sessions")
    replay.add_argument("--format", choices=["md", "json"], default="md")
    replay.add_argument("--report", metavar="FILE", help="write the session's incident report instead")
    replay.set_defaults(handler=_replay)


def _shared(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--provider", choices=["anthropic", "openai"], help="default: the one whose key is set"
    )
    parser.add_argument("--model", help="default: claude-sonnet-4-5 / gpt-4.1 (CM_AGENT_MODEL)")
    parser.add_argument("--base-url", help="the provider's URL (Ollama: http://localhost:11434/v1)")
    parser.add_argument("--max-turns", type=int, metavar="N", help="model requests per question (default 12)")
    parser.add_argument(
        "--budget",
        type=int,
        metavar="N",
        help="scroll/batch API requests per question without asking (default 5)",
    )
    parser.add_argument(
        "--yes",
        action="store_true",
        help="approve tools of other servers that are not read-only (never the budget)",
    )
    parser.add_argument(
        "--context-tokens", type=int, metavar="N", help="the model's context window (default 128000)"
    )
    parser.add_argument("--no-stream", action="store_true", help="ask the provider for whole replies")
    parser.add_argument("--mcp-config", metavar="FILE", help='more MCP servers: {"mcpServers": {...}} JSON')
    parser.add_argument("--resume", metavar="ID", help="continue a saved session (any provider)")
    parser.add_argument("--sandbox", action="store_true", help="investigate the embedded sandbox API")
    add_sandbox_options(parser)  # the same --seed/--volume/--scenarios/--quota/--faults as serve --sandbox


def _ask(args: argparse.Namespace) -> int:
    from cm_mcp.agent.run import ask

    return ask(args)


def _chat(args: argparse.Namespace) -> int:
    from cm_mcp.agent.repl import chat

    code: int = chat(args)
    return code


def _replay(args: argparse.Namespace) -> int:
    from cm_mcp.agent.replay import replay

    code: int = replay(args)
    return code
