"""One small interface in front of both provider SDKs, and one typed error tree.

A provider turns a `ModelRequest` (system prompt, neutral messages, tools) into a `ModelReply` (text,
tool calls, usage, stop reason), streaming text deltas to a callback as they arrive. Retries of 429 /
5xx / connection errors are the SDK's (it honours Retry-After); what reaches the loop is one of the
`ProviderError`s below, with a message that never holds a key.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from cm_mcp.agent.conversation import Message, ToolCall

StopReason = Literal["end", "tool_use", "max_tokens", "other"]
TextSink = Callable[[str], None]


@dataclass(frozen=True)
class ToolSpec:
    """A tool as offered to the model."""

    name: str
    description: str
    input_schema: dict[str, Any]


@dataclass
class ModelRequest:
    #: the system prompt: the same all session (prompt-cached)
    system: str
    #: what changes per request (time, quota, budget): sent after the newest message and never kept
    #: in the history, so the prefix before it (tools, system, conversation) stays cacheable
    context: str
    messages: list[Message]
    tools: list[ToolSpec]
    max_output_tokens: int


@dataclass
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0

    def add(self, other: Usage) -> None:
        self.input_tokens += other.input_tokens
        self.output_tokens += other.output_tokens
        self.cache_read_tokens += other.cache_read_tokens
        self.cache_write_tokens += other.cache_write_tokens


@dataclass
class ModelReply:
    text: str
    tool_calls: list[ToolCall]
    usage: Usage
    stop: StopReason
    #: the provider's own stop reason, for the transcript
    raw_stop: str | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Provider(Protocol):
    name: str
    model: str

    async def complete(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelReply: ...

    async def aclose(self) -> None: ...


class ProviderError(Exception):
    """A provider failure the agent reports in one line (exit code 4 for `cm-mcp ask`)."""

    kind = "provider"


class ProviderConfigError(ProviderError):
    """Bad or missing configuration (a missing key names its variable); raised before any request."""

    kind = "config"


class ProviderAuthError(ProviderError):
    kind = "auth"


class ProviderRateLimited(ProviderError):
    """429 after the SDK's own retries (which honour Retry-After)."""

    kind = "rate_limited"


class ContextTooLong(ProviderError):
    """The request does not fit the model's context window."""

    kind = "context_length"


class ProviderUnavailable(ProviderError):
    """Connection failures, timeouts and 5xx after retries."""

    kind = "unavailable"


class ProviderRequestError(ProviderError):
    """Any other refusal (400, 404 model not found, ...)."""

    kind = "request"


def looks_like_context_error(message: str) -> bool:
    """Both APIs (and OpenAI-compatible servers) say "context length" / "too long" in their own words."""
    lowered = message.lower()
    return any(
        marker in lowered
        for marker in (
            "context_length_exceeded",
            "context length",
            "context window",
            "prompt is too long",
            "maximum context",
            "too many tokens",
        )
    )


def tool_call_from_json(call_id: str, name: str, raw: str) -> ToolCall:
    """A tool call from its arguments as JSON text; text that is not a JSON object is kept as is
    (`arguments=None`) so the loop can quote it back to the model instead of failing."""
    if not raw.strip():
        return ToolCall(id=call_id, name=name, arguments={})
    try:
        arguments = json.loads(raw)
    except ValueError:
        return ToolCall(id=call_id, name=name, arguments=None, raw_arguments=raw)
    if not isinstance(arguments, dict):
        return ToolCall(id=call_id, name=name, arguments=None, raw_arguments=raw)
    return ToolCall(id=call_id, name=name, arguments=arguments)
