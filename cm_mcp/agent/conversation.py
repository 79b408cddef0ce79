"""The conversation in a provider-neutral form: what the transcript stores and both providers read.

A session started on Anthropic resumes on OpenAI (and back) because nothing here is in either wire
format; `providers/` translate these messages on every request.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field


class ToolCall(BaseModel):
    """One tool call as the model asked for it."""

    id: str
    name: str
    #: None when the model's arguments were not a JSON object (see `raw_arguments`)
    arguments: dict[str, Any] | None
    #: the arguments exactly as sent, kept when they did not parse (to quote them back to the model)
    raw_arguments: str | None = None


class UserMessage(BaseModel):
    kind: Literal["user"] = "user"
    text: str


class AssistantMessage(BaseModel):
    kind: Literal["assistant"] = "assistant"
    text: str = ""
    tool_calls: list[ToolCall] = Field(default_factory=list)


class ToolResult(BaseModel):
    """What the model reads back for one call (already capped, possibly shrunk later)."""

    call_id: str
    name: str
    text: str
    is_error: bool = False
    #: the evidence number ("#3") of a call that was sent to a server; None for calls never sent
    step: int | None = None
    #: the stored result behind it (scroll pages, exports): follow-ups read it at no quota
    result_id: str | None = None
    #: True once the text was replaced by its short form to save context
    shrunk: bool = False


class ToolResultsMessage(BaseModel):
    kind: Literal["tool_results"] = "tool_results"
    results: list[ToolResult]


class NoteMessage(BaseModel):
    """A message from the agent itself to the model (e.g. a correction); sent with the user role."""

    kind: Literal["note"] = "note"
    text: str


Message = Annotated[
    UserMessage | AssistantMessage | ToolResultsMessage | NoteMessage, Field(discriminator="kind")
]


def pending_calls(messages: list[Message]) -> list[ToolCall]:
    """Tool calls of the last assistant message that have no result yet (a history must never end
    with those: both providers reject a tool call without its result)."""
    if not messages or not isinstance(messages[-1], AssistantMessage):
        return []
    return list(messages[-1].tool_calls)
