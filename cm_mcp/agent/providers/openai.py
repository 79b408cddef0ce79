"""OpenAI Chat Completions (and every server that speaks it) through the official `openai` SDK.

With `--base-url` the same adapter serves Ollama, vLLM, llama.cpp server, LM Studio, OpenRouter and a
LiteLLM proxy. Streamed `tool_calls` arrive as fragments keyed by index (id and name first, the
arguments in pieces); they are joined here and parsed once, so arguments that are not JSON come back
to the loop as such. One system message (several chat templates of local models reject a second);
the per-request context (time, quota, budget) is a last user message, so the prefix before it stays
the same from request to request and servers that cache prefixes reuse it.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import openai

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

_STOPS: dict[str, StopReason] = {"stop": "end", "tool_calls": "tool_use", "length": "max_tokens"}
#: the official API wants `max_completion_tokens` (newer models refuse `max_tokens`); compatible
#: servers (Ollama, vLLM, llama.cpp) have long understood `max_tokens`
_OFFICIAL_HOST = "api.openai.com"


class OpenAIProvider:
    name = "openai"

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
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=base_url,
            http_client=http_client,
            max_retries=max_retries,
            timeout=http_client.timeout.read,
        )
        self._official = _OFFICIAL_HOST in str(self._client.base_url)

    async def aclose(self) -> None:
        await self._client.close()

    async def complete(self, request: ModelRequest, on_text: TextSink | None = None) -> ModelReply:
        params = self.request_params(request)
        try:
            if self._stream:
                return await self._streamed(params, on_text)
            completion = await self._client.chat.completions.create(**params)
        except openai.APIError as exc:
            raise self._error(exc) from None
        return _reply_of(completion)

    def request_params(self, request: ModelRequest) -> dict[str, Any]:
        messages = [{"role": "system", "content": request.system}, *wire_messages(request.messages)]
        if request.context:
            messages.append({"role": "user", "content": request.context})
        params: dict[str, Any] = {"model": self.model, "messages": messages}
        if request.tools:
            params["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": tool.name,
                        "description": tool.description,
                        "parameters": tool.input_schema,
                    },
                }
                for tool in request.tools
            ]
        limit_key = "max_completion_tokens" if self._official else "max_tokens"
        params[limit_key] = request.max_output_tokens
        return params

    async def _streamed(self, params: dict[str, Any], on_text: TextSink | None) -> ModelReply:
        text: list[str] = []
        slots: dict[int, dict[str, Any]] = {}  # index -> {"id", "name", "arguments": [fragments]}
        usage = Usage()
        raw_stop: str | None = None
        stream = await self._client.chat.completions.create(
            **params, stream=True, stream_options={"include_usage": True}
        )
        async for chunk in stream:
            if chunk.usage is not None:
                usage = _usage_of(chunk.usage)
            for choice in chunk.choices:
                delta = choice.delta
                if delta.content:
                    text.append(delta.content)
                    if on_text is not None:
                        on_text(delta.content)
                for fragment in delta.tool_calls or ():
                    slot = slots.setdefault(fragment.index, {"id": None, "name": "", "arguments": []})
                    if fragment.id:
                        slot["id"] = fragment.id
                    if fragment.function is not None:
                        if fragment.function.name:
                            slot["name"] = fragment.function.name
                        if fragment.function.arguments:
                            slot["arguments"].append(fragment.function.arguments)
                if choice.finish_reason:
                    raw_stop = choice.finish_reason
        calls = [
            tool_call_from_json(slot["id"] or f"call_{index}", slot["name"], "".join(slot["arguments"]))
            for index, slot in sorted(slots.items())
        ]
        stop = "tool_use" if calls and raw_stop == "stop" else _STOPS.get(raw_stop or "", "other")
        return ModelReply(text="".join(text), tool_calls=calls, usage=usage, stop=stop, raw_stop=raw_stop)

    def _error(self, exc: openai.APIError) -> ProviderError:
        message = self._redactor.text(_message_of(exc))
        where = str(self._client.base_url)
        if isinstance(exc, openai.AuthenticationError | openai.PermissionDeniedError):
            return ProviderAuthError(f"{where} rejected the API key (OPENAI_API_KEY): {message}")
        if isinstance(exc, openai.RateLimitError):
            return ProviderRateLimited(f"rate limit (429) at {where} after retries: {message}")
        if isinstance(exc, openai.APIConnectionError):
            return ProviderUnavailable(f"cannot reach {where}: {message}")
        if isinstance(exc, openai.APIStatusError) and exc.status_code >= 500:
            return ProviderUnavailable(f"{where} failed with {exc.status_code} after retries: {message}")
        if looks_like_context_error(message):
            return ContextTooLong(f"the conversation does not fit the model's context: {message}")
        status = getattr(exc, "status_code", None)
        return ProviderRequestError(f"{where} refused the request ({status}): {message}")


def wire_messages(messages: list[Message]) -> list[dict[str, Any]]:
    wire: list[dict[str, Any]] = []
    for message in messages:
        if isinstance(message, UserMessage | NoteMessage):
            wire.append({"role": "user", "content": message.text})
        elif isinstance(message, AssistantMessage):
            turn: dict[str, Any] = {"role": "assistant", "content": message.text or None}
            if message.tool_calls:
                turn["tool_calls"] = [
                    {
                        "id": call.id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": _arguments_text(call)},
                    }
                    for call in message.tool_calls
                ]
            wire.append(turn)
        else:
            assert isinstance(message, ToolResultsMessage)
            wire += [
                {
                    "role": "tool",
                    "tool_call_id": result.call_id,
                    # Chat Completions has no error flag: say it in the text
                    "content": f"ERROR: {result.text}" if result.is_error else result.text,
                }
                for result in message.results
            ]
    return wire


def _arguments_text(call: ToolCall) -> str:
    if call.arguments is not None:
        return json.dumps(call.arguments, ensure_ascii=False)
    return call.raw_arguments or "{}"


def _reply_of(completion: Any) -> ModelReply:
    if not completion.choices:
        raise ProviderRequestError("the model returned no choices")
    choice = completion.choices[0]
    message = choice.message
    calls = [
        tool_call_from_json(call.id or f"call_{index}", call.function.name, call.function.arguments or "")
        for index, call in enumerate(message.tool_calls or ())
        if getattr(call, "function", None) is not None
    ]
    raw_stop = choice.finish_reason
    stop = "tool_use" if calls and raw_stop == "stop" else _STOPS.get(raw_stop or "", "other")
    usage = _usage_of(completion.usage) if completion.usage is not None else Usage()
    return ModelReply(text=message.content or "", tool_calls=calls, usage=usage, stop=stop, raw_stop=raw_stop)


def _usage_of(usage: Any) -> Usage:
    details = getattr(usage, "prompt_tokens_details", None)
    cached = getattr(details, "cached_tokens", None) or 0
    return Usage(
        input_tokens=usage.prompt_tokens or 0,
        output_tokens=usage.completion_tokens or 0,
        cache_read_tokens=cached,
    )


def _message_of(exc: openai.APIError) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        error = body.get("error", body)
        if isinstance(error, dict) and isinstance(error.get("message"), str):
            code = error.get("code")
            return f"{error['message']}" + (f" ({code})" if code else "")
    return str(getattr(exc, "message", exc))
