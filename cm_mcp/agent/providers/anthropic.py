"""Anthropic Messages API through the official `anthropic` SDK.

Tools, the system prompt and the newest message carry `cache_control`, so a long session re-reads its
whole prefix from the prompt cache instead of paying for it on every turn; the per-request context
(time, quota, budget) is a last text block after the breakpoint, never part of the cached prefix.
Streaming reads the raw events and assembles tool inputs from their `input_json_delta` fragments
itself, so arguments that do not parse come back to the loop as such (never a crash).
"""

from __future__ import annotations

import json
import re
from typing import Any

import anthropic
import httpx2

from cm_mcp.agent.conversation import (
    AssistantMessage,
    Message,
    NoteMessage,
    ToolCall,
    ToolResultsMessage,
    UserMessage,
)
from cm_mcp.agent.providers.base import (
    ContextTooLong,
    ModelReply,
    ModelRequest,
    ProviderAuthError,
    ProviderError,
    ProviderRateLimited,
    ProviderRequestError,
    ProviderUnavailable,
    StopReason,
    TextSink,
    Usage,
    looks_like_context_error,
    tool_call_from_json,
)
from cm_mcp.agent.redact import Redactor

_EPHEMERAL = {"type": "ephemeral"}
_STOPS: dict[str, StopReason] = {"end_turn": "end", "tool_use": "tool_use", "max_tokens": "max_tokens"}
#: tool_use ids must match this; ids made by another provider (resumed sessions) are mapped onto it
_ID_CHARS = re.compile(r"[^a-zA-Z0-9_-]")


class AnthropicProvider:
    name = "anthropic"

    def __init__(
        self,
        *,
        model: str,
        api_key: str,
        base_url: str | None,
        http_client: httpx2.AsyncClient,
        stream: bool,
        max_retries: int,
        redactor: Redactor,
    ) -> None:
        self.model = model
        self._stream = stream
        self._redactor = redactor
        self._http = http_client
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=base_url,
            http_client=http_client,
            max_retries=max_retries,
            timeout=http_client.timeout.read,
        )

    async def aclose(self) -> None:
        await self._client.close()

    async def complete(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelReply:
        params = self.request_params(request)
        try:
            if self._stream:
                return await self._streamed(params, on_text)
            message = await self._client.messages.create(**params)
        except anthropic.APIError as exc:
            raise self._error(exc) from None
        return _reply_of(message)

    def request_params(self, request: ModelRequest) -> dict[str, Any]:
        tools: list[dict[str, Any]] = [
            {"name": tool.name, "description": tool.description, "input_schema": tool.input_schema}
            for tool in request.tools
        ]
        if tools:
            tools[-1]["cache_control"] = _EPHEMERAL
        system = [{"type": "text", "text": request.system, "cache_control": _EPHEMERAL}]
        return {
            "model": self.model,
            "max_tokens": request.max_output_tokens,
            "system": system,
            "tools": tools,
            "messages": wire_messages(request.messages, context=request.context),
        }

    async def _streamed(self, params: dict[str, Any], on_text: TextSink | None) -> ModelReply:
        text: list[str] = []
        blocks: dict[int, dict[str, Any]] = {}  # index -> tool_use block being assembled
        usage = Usage()
        raw_stop: str | None = None
        stream = await self._client.messages.create(**params, stream=True)
        async for event in stream:
            if event.type == "message_start":
                usage = _usage_of(event.message.usage)
            elif event.type == "content_block_start" and event.content_block.type == "tool_use":
                block = event.content_block
                blocks[event.index] = {"id": block.id, "name": block.name, "json": []}
            elif event.type == "content_block_delta":
                if event.delta.type == "text_delta":
                    text.append(event.delta.text)
                    if on_text is not None:
                        on_text(event.delta.text)
                elif event.delta.type == "input_json_delta" and event.index in blocks:
                    blocks[event.index]["json"].append(event.delta.partial_json)
            elif event.type == "message_delta":
                raw_stop = event.delta.stop_reason
                usage.output_tokens = event.usage.output_tokens
        calls = [
            tool_call_from_json(b["id"], b["name"], "".join(b["json"])) for _, b in sorted(blocks.items())
        ]
        stop = _STOPS.get(raw_stop or "", "other")
        return ModelReply(text="".join(text), tool_calls=calls, usage=usage, stop=stop, raw_stop=raw_stop)

    def _error(self, exc: anthropic.APIError) -> ProviderError:
        message = self._redactor.text(_message_of(exc))
        if isinstance(exc, anthropic.AuthenticationError | anthropic.PermissionDeniedError):
            return ProviderAuthError(f"Anthropic rejected the API key (ANTHROPIC_API_KEY): {message}")
        if isinstance(exc, anthropic.RateLimitError):
            return ProviderRateLimited(f"Anthropic rate limit (429) after retries: {message}")
        if isinstance(exc, anthropic.APIConnectionError):
            return ProviderUnavailable(f"cannot reach Anthropic at {self._client.base_url}: {message}")
        if isinstance(exc, anthropic.APIStatusError) and exc.status_code >= 500:
            return ProviderUnavailable(f"Anthropic failed with {exc.status_code} after retries: {message}")
        if looks_like_context_error(message):
            return ContextTooLong(f"the conversation does not fit the model's context: {message}")
        status = getattr(exc, "status_code", None)
        return ProviderRequestError(f"Anthropic refused the request ({status}): {message}")


def wire_messages(messages: list[Message], *, context: str = "") -> list[dict[str, Any]]:
    """Neutral messages -> Messages API turns: consecutive user-side messages merge into one turn
    (tool results first, as the API requires), the newest block gets a cache breakpoint, and
    `context` follows it as a last text block."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role, blocks = _blocks_of(message)
        if turns and turns[-1]["role"] == role == "user":
            turns[-1]["content"].extend(blocks)
        elif blocks:
            turns.append({"role": role, "content": blocks})
    if turns and turns[-1]["content"]:
        turns[-1]["content"][-1] = {**turns[-1]["content"][-1], "cache_control": _EPHEMERAL}
    if context:
        if turns and turns[-1]["role"] == "user":
            turns[-1]["content"].append({"type": "text", "text": context})
        else:
            turns.append({"role": "user", "content": [{"type": "text", "text": context}]})
    return turns


def _blocks_of(message: Message) -> tuple[str, list[dict[str, Any]]]:
    if isinstance(message, UserMessage | NoteMessage):
        return "user", [{"type": "text", "text": message.text}]
    if isinstance(message, AssistantMessage):
        blocks: list[dict[str, Any]] = [{"type": "text", "text": message.text}] if message.text else []
        blocks += [
            {"type": "tool_use", "id": wire_id(call.id), "name": call.name, "input": call.arguments or {}}
            for call in message.tool_calls
        ]
        return "assistant", blocks
    assert isinstance(message, ToolResultsMessage)
    return "user", [
        {
            "type": "tool_result",
            "tool_use_id": wire_id(result.call_id),
            "content": result.text,
            "is_error": result.is_error,
        }
        for result in message.results
    ]


def wire_id(call_id: str) -> str:
    return _ID_CHARS.sub("_", call_id)[:64] or "call"


def _reply_of(message: Any) -> ModelReply:
    text: list[str] = []
    calls: list[ToolCall] = []
    for block in message.content:
        if block.type == "text":
            text.append(block.text)
        elif block.type == "tool_use":
            arguments = block.input if isinstance(block.input, dict) else None
            raw = None if arguments is not None else _raw_text(block.input)
            calls.append(ToolCall(id=block.id, name=block.name, arguments=arguments, raw_arguments=raw))
    raw_stop = message.stop_reason
    return ModelReply(
        text="".join(text),
        tool_calls=calls,
        usage=_usage_of(message.usage),
        stop=_STOPS.get(raw_stop or "", "other"),
        raw_stop=raw_stop,
    )


def _usage_of(usage: Any) -> Usage:
    return Usage(
        input_tokens=usage.input_tokens or 0,
        output_tokens=usage.output_tokens or 0,
        cache_read_tokens=getattr(usage, "cache_read_input_tokens", None) or 0,
        cache_write_tokens=getattr(usage, "cache_creation_input_tokens", None) or 0,
    )


def _message_of(exc: anthropic.APIError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            return str(error["message"])
    return str(exc.message if hasattr(exc, "message") else exc)


def _raw_text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value)
