"""`cm-mcp replay SESSION`: a saved session re-rendered from its transcript (no model, no API request).

The same renderer serves `/export md` in the REPL; `--format json` (and `/export json`) give the
events themselves, already redacted when they were written.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from cm_mcp.agent.transcript import SessionNotFound, find_session, list_sessions, read_events

_RESULT_LINES = 40


def replay(args: argparse.Namespace) -> int:
    from cm_mcp.agent.run import SetupError, data_dir

    try:
        folder = data_dir()
    except SetupError as exc:
        print(f"cm-mcp: {exc}", file=sys.stderr)
        return 1
    if args.list or not args.session:
        sessions = list_sessions(folder)
        if not sessions:
            print(f"no sessions in {folder / 'sessions'}", file=sys.stderr)
            return 0 if args.list else 1
        for session_id, question in sessions:
            print(f"{session_id}  {question[:100]}")
        return 0
    try:
        path = find_session(folder, args.session)
    except SessionNotFound as exc:
        print(f"cm-mcp: {exc}", file=sys.stderr)
        return 1
    events = read_events(path)
    if args.report:
        from cm_mcp.agent.report import write_report

        write_report(events, Path(args.report))
        print(f"report written to {args.report}", file=sys.stderr)
        return 0
    sys.stdout.write(render_json(events) if args.format == "json" else render_markdown(events))
    return 0


def render_json(events: list[dict[str, Any]]) -> str:
    return json.dumps(events, indent=1, ensure_ascii=False) + "\n"


def render_markdown(events: list[dict[str, Any]]) -> str:
    lines: list[str] = []
    totals = {"requests": 0, "input": 0, "cached": 0, "output": 0}
    for event in events:
        lines += _event_lines(event, totals)
    lines += [
        "",
        f"_{totals['requests']} model request(s): {totals['input']:,} tokens in ({totals['cached']:,} from "
        f"cache), {totals['output']:,} out_",
    ]
    return "\n".join(lines).strip() + "\n"


def _event_lines(event: dict[str, Any], totals: dict[str, int]) -> list[str]:
    kind = event.get("type")
    if kind == "session":
        verb = "resumed" if event.get("resumed") else "started"
        servers = ", ".join(event.get("servers", []))
        return [
            f"# Session {event.get('id')} ({verb} {event.get('t')}, {event.get('provider')} "
            f"`{event.get('model')}`, servers: {servers})",
            "",
        ]
    if kind == "user":
        return ["", f"## Question {event.get('question')}", "", event.get("text", ""), ""]
    if kind == "assistant" and event.get("text"):
        return [f"**model:** {event['text']}", ""]
    if kind == "tool_call":
        arguments = json.dumps(event.get("arguments", {}), ensure_ascii=False)
        approval = f", approved: {event['approval']}" if event.get("approval") not in (None, "auto") else ""
        return [
            f"→ **#{event.get('step')} {event.get('tool')}** `{arguments}` ({event.get('cost')}{approval})"
        ]
    if kind == "tool_result":
        return _result_lines(event)
    if kind == "approval":
        why = f" ({event['why']})" if event.get("why") else ""
        return [f"? asked: {event.get('reason')} → **{event.get('choice')}**{why}", ""]
    if kind == "note":
        return [f"_agent to model: {event.get('text')}_", ""]
    if kind == "shrink":
        return [f"_older results shrunk to save context: {event.get('steps')}_", ""]
    if kind == "error":
        return [f"**error ({event.get('kind')}):** {event.get('message')}", ""]
    if kind == "answer":
        return ["### Answer", "", event.get("text", ""), ""]
    if kind == "end" and event.get("status") != "answered":
        return [f"_stopped: {event.get('status')}: {event.get('reason')}_", ""]
    if kind == "usage":
        totals["requests"] += 1
        totals["input"] += int(event.get("input_tokens") or 0) + int(event.get("cache_read_tokens") or 0)
        totals["input"] += int(event.get("cache_write_tokens") or 0)
        totals["cached"] += int(event.get("cache_read_tokens") or 0)
        totals["output"] += int(event.get("output_tokens") or 0)
    if kind == "clear":
        return ["", "--- conversation cleared ---", ""]
    return []


def _result_lines(event: dict[str, Any]) -> list[str]:
    text = event.get("text", "")
    if event.get("step") is None:
        return [f"✗ `{event.get('name')}` not run: {text}", ""]
    status = "error" if event.get("is_error") else "ok"
    stored = f", result `{event['result_id']}`" if event.get("result_id") else ""
    elapsed = f" in {event['elapsed']} s" if event.get("elapsed") is not None else ""
    body = text.splitlines()
    shown = body[:_RESULT_LINES] + (
        [f"... ({len(body) - _RESULT_LINES} more lines)"] if len(body) > _RESULT_LINES else []
    )
    return [f"← #{event.get('step')} {status}{elapsed}{stored}", "", "```text", *shown, "```", ""]
