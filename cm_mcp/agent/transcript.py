"""Sessions as append-only JSONL files under `CM_DATA_DIR/sessions/<id>.jsonl`.

One event per line, written and flushed as it happens (a crash loses at most the line being written),
every value passed through the redactor first, so a key or JWT never reaches the disk. Events:

    session     provider, model, base URL, servers, tools with their cost, limits (resume: resumed_from)
    user        question number, text
    request     one model request: turn, estimated prompt tokens, message count
    usage       tokens in/out and cache reads/writes as the provider reported them
    assistant   text and tool calls (id, name, arguments as parsed, raw text when they did not parse)
    tool_call   evidence step, call id, tool, server, arguments, cost class, quota family, approval
    progress    step, progress, total, message, elapsed (at most every PROGRESS_EVERY_SECONDS)
    tool_result step (None for calls never sent), call id, error flag, the text the model read,
                result_id, request_id, quota_remaining, time window, elapsed, cancellation
    approval    tool, kind (budget / write), the user's choice and reason
    note        a message from the agent to the model (corrections)
    shrink      evidence steps whose results were shrunk to save context
    quota       cm-mcp's quota_status before / after a question
    error       a provider or tool-layer failure
    end         question number, status, reason, exit code
    clear       the conversation was cleared (/clear)

Nothing in it is provider-specific: `restore` rebuilds the neutral conversation, so a session started
on one provider resumes on another.
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TextIO

from cm_mcp.agent.context import short_form
from cm_mcp.agent.conversation import (
    AssistantMessage,
    Message,
    NoteMessage,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
    pending_calls,
)
from cm_mcp.agent.redact import Redactor

SESSION_ID = re.compile(r"^s\d{8}-\d{6}-[0-9a-f]{6}$")
PROGRESS_EVERY_SECONDS = 2.0


def sessions_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "sessions"


def new_session_id(now: datetime | None = None) -> str:
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    return f"s{moment:%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"


def utc_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")[:-4] + "Z"


class Transcript:
    """Appends redacted events to one session file."""

    def __init__(self, path: Path, redactor: Redactor) -> None:
        self.path = path
        self.session_id = path.stem
        self._redactor = redactor
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO | None = path.open("a", encoding="utf-8")

    def write(self, event: str, **fields: Any) -> None:
        if self._file is None:
            return
        record = self._redactor.data({"t": utc_stamp(), "type": event, **fields})
        self._file.write(json.dumps(record, ensure_ascii=False, default=str) + "\n")
        self._file.flush()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
            self._file = None


class SessionNotFound(LookupError):
    pass


def find_session(data_dir: Path, ref: str) -> Path:
    """A session file from a path, an id, or a unique prefix of an id."""
    candidate = Path(ref).expanduser()
    if candidate.suffix == ".jsonl" and candidate.is_file():
        return candidate
    folder = sessions_dir(data_dir)
    exact = folder / f"{ref}.jsonl"
    if exact.is_file():
        return exact
    matches = sorted(folder.glob(f"{ref}*.jsonl")) if folder.is_dir() and ref else []
    if len(matches) == 1:
        return matches[0]
    if matches:
        names = ", ".join(p.stem for p in matches[:5])
        raise SessionNotFound(f"session {ref!r} is ambiguous: {names}{' ...' if len(matches) > 5 else ''}")
    raise SessionNotFound(f"no session {ref!r} in {folder} (cm-mcp replay --list shows them)")


def list_sessions(data_dir: Path, limit: int = 20) -> list[tuple[str, str]]:
    """(id, first question) of the newest sessions."""
    folder = sessions_dir(data_dir)
    if not folder.is_dir():
        return []
    found = []
    for path in sorted(folder.glob("s*.jsonl"), reverse=True)[:limit]:
        first = next((e.get("text", "") for e in read_events(path) if e.get("type") == "user"), "")
        found.append((path.stem, first))
    return found


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every event of a session; a torn last line (a crash mid-write) is skipped."""
    events = []
    with path.open(encoding="utf-8") as file:
        for line in file:
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if isinstance(event, dict):
                events.append(event)
    return events


@dataclass
class Restored:
    """A session rebuilt from its events: the conversation and where numbering continues."""

    messages: list[Message] = field(default_factory=list)
    next_step: int = 1
    questions: int = 0


def restore(events: list[dict[str, Any]]) -> Restored:
    state = Restored()
    for event in events:
        kind = event.get("type")
        if kind == "user":
            _close_pending(state.messages)
            state.messages.append(UserMessage(text=event["text"]))
            state.questions = max(state.questions, int(event.get("question") or 0))
        elif kind == "assistant":
            calls = [ToolCall.model_validate(call) for call in event.get("tool_calls", [])]
            state.messages.append(AssistantMessage(text=event.get("text", ""), tool_calls=calls))
        elif kind == "tool_result":
            _add_result(state.messages, ToolResult.model_validate(_result_fields(event)))
            if event.get("step") is not None:
                state.next_step = max(state.next_step, int(event["step"]) + 1)
        elif kind == "note":
            _close_pending(state.messages)
            state.messages.append(NoteMessage(text=event["text"]))
        elif kind == "shrink":
            _shrink_steps(state.messages, set(event.get("steps") or ()))
        elif kind == "clear":
            state.messages = []
    _close_pending(state.messages)
    return state


def _result_fields(event: dict[str, Any]) -> dict[str, Any]:
    keys = ("call_id", "name", "text", "is_error", "step", "result_id")
    fields = {key: event[key] for key in keys if key in event}
    if event.get("step") is not None:  # the model read each sent call's result under its number
        fields["text"] = f"[#{event['step']}] {fields.get('text', '')}"
    return fields


def _add_result(messages: list[Message], result: ToolResult) -> None:
    if messages and isinstance(messages[-1], ToolResultsMessage):
        messages[-1].results.append(result)
    else:
        messages.append(ToolResultsMessage(results=[result]))


def _close_pending(messages: list[Message]) -> None:
    """A session cut off mid-call has calls without results: both providers reject such a history,
    so each gets an error result saying so."""
    answered = set()
    if messages and isinstance(messages[-1], ToolResultsMessage):
        answered = {r.call_id for r in messages[-1].results}
        calls = pending_calls(messages[:-1])
    else:
        calls = pending_calls(messages)
    missing = [call for call in calls if call.id not in answered]
    for call in missing:
        text = "No result: the session ended before this call finished."
        _add_result(messages, ToolResult(call_id=call.id, name=call.name, text=text, is_error=True))


def _shrink_steps(messages: list[Message], steps: set[int]) -> None:
    for message in messages:
        if isinstance(message, ToolResultsMessage):
            for result in message.results:
                if result.step in steps and not result.shrunk:
                    result.text = short_form(result)
                    result.shrunk = True
