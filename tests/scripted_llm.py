"""A scripted model on 127.0.0.1 that speaks both real wire formats, for the agent's end-to-end tests.

- Anthropic Messages (`POST /v1/messages`): JSON, or SSE (`message_start`, `content_block_*` with
  `text_delta` and `input_json_delta` fragments split mid-JSON, `message_delta`, `message_stop`),
  with usage that emulates the prompt cache from the request's own `cache_control` breakpoints.
- OpenAI Chat Completions (`POST /v1/chat/completions`): JSON, or SSE chunks with `tool_calls`
  argument fragments keyed by index, a usage chunk when asked for, `data: [DONE]`.
- Errors in each provider's own shape: 429 with Retry-After, a context-length 400, a 401.

A script is a list of steps. Each step receives the request as it arrived (`Seen`: system prompt,
tools with their schemas, the conversation with tool calls and results, headers) and returns the next
reply; steps assert on what they see (tool results carrying the ids of the calls they answer, the
content expected) and build the next call from the previous result, as a model would. A failed
assertion is recorded in `failures` and answered with a 400 (the SDKs do not retry a 400), so a test
ends promptly and reports the script's own message.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import itertools
import json
import socket
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route


@dataclass
class SeenCall:
    id: str
    name: str
    arguments: dict[str, Any] | None
    raw: str


@dataclass
class SeenResult:
    call_id: str
    text: str
    is_error: bool


@dataclass
class SeenMessage:
    role: str
    text: str = ""
    calls: list[SeenCall] = field(default_factory=list)
    results: list[SeenResult] = field(default_factory=list)


@dataclass
class Seen:
    """One request as the scripted model received it, in a form both providers share."""

    provider: str
    stream: bool
    model: str
    system: str
    tools: list[dict[str, Any]]
    messages: list[SeenMessage]
    body: dict[str, Any]
    headers: dict[str, str]
    raw: bytes
    at: float

    @property
    def tokens(self) -> int:
        """Prompt size as the scripted model counts it: characters / 4 of everything sent."""
        return _tokens(self.body.get("system"), self.body.get("tools"), self.body.get("messages"))

    def tool(self, name: str) -> dict[str, Any]:
        for tool in self.tools:
            if tool["name"] == name:
                return tool
        raise AssertionError(f"tool {name!r} not offered; offered: {[t['name'] for t in self.tools]}")

    def last_results(self) -> list[SeenResult]:
        """Tool results of the newest user-side turn."""
        for message in reversed(self.messages):
            if message.role == "assistant":
                break
            if message.results:
                return message.results
        raise AssertionError("the newest turn carries no tool result")

    def result_for(self, call_id: str) -> SeenResult:
        for message in self.messages:
            for result in message.results:
                if result.call_id == call_id:
                    return result
        raise AssertionError(f"no tool result for call {call_id}")

    def calls(self) -> list[SeenCall]:
        return [call for message in self.messages for call in message.calls]

    def user_texts(self) -> list[str]:
        return [m.text for m in self.messages if m.role == "user" and m.text]


@dataclass
class Call:
    name: str
    arguments: dict[str, Any] | None = None
    #: arguments as raw text instead (e.g. malformed JSON)
    raw: str | None = None
    id: str | None = None

    def arguments_text(self) -> str:
        return self.raw if self.raw is not None else json.dumps(self.arguments or {})


@dataclass
class Reply:
    text: str = ""
    calls: list[Call] = field(default_factory=list)


@dataclass
class Fail:
    """An error response in the provider's shape: 'rate_limit', 'context' or 'auth'."""

    kind: str
    retry_after: str | None = None
    #: for 'auth': the key to echo back in the message, as some servers do
    echo: str | None = None


Step = Callable[[Seen], Reply | Fail]


class ScriptedLLM:
    """Serve `steps` in order, one per model request (see the module docstring)."""

    def __init__(self, steps: Sequence[Step]) -> None:
        self.steps = list(steps)
        self.requests: list[Seen] = []
        self.failures: list[str] = []
        self.url = ""
        self._ids = itertools.count(1)
        self._cached_prefixes: set[str] = set()

    @property
    def openai_url(self) -> str:
        return self.url + "/v1"

    @property
    def done(self) -> bool:
        return len(self.requests) >= len(self.steps)

    def check(self) -> None:
        assert not self.failures, "the scripted model saw something wrong:\n" + "\n".join(self.failures)

    @contextlib.asynccontextmanager
    async def serve(self) -> AsyncIterator[ScriptedLLM]:
        app = Starlette(
            routes=[
                Route("/v1/messages", self._anthropic, methods=["POST"]),
                Route("/v1/chat/completions", self._openai, methods=["POST"]),
            ]
        )
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        sock.setblocking(False)
        server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
        task = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            deadline = time.monotonic() + 60
            while not server.started:
                if task.done():
                    task.result()
                assert time.monotonic() < deadline, "the scripted model did not start"
                await asyncio.sleep(0.01)
            self.url = f"http://127.0.0.1:{sock.getsockname()[1]}"
            yield self
        finally:
            server.should_exit = True
            with contextlib.suppress(Exception):
                await task
            sock.close()

    # --- one request ------------------------------------------------------------------------------

    def _next(self, seen: Seen) -> Reply | Fail | Response:
        index = len(self.requests)
        self.requests.append(seen)
        if index >= len(self.steps):
            self.failures.append(f"request {index + 1}: the script has only {len(self.steps)} steps")
            return JSONResponse({"error": {"type": "invalid_request_error", "message": "script over"}}, 400)
        try:
            return self.steps[index](seen)
        except AssertionError as exc:
            self.failures.append(f"step {index + 1} ({seen.provider}): {exc}")
            message = f"scripted model: step {index + 1} failed: {exc}"
            return JSONResponse({"error": {"type": "invalid_request_error", "message": message}}, 400)

    async def _anthropic(self, request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw)
        seen = _seen_anthropic(body, dict(request.headers), raw)
        outcome = self._next(seen)
        if isinstance(outcome, Response):
            return outcome
        if isinstance(outcome, Fail):
            return _anthropic_error(outcome)
        usage = self._anthropic_usage(body)
        message_id = f"msg_{next(self._ids):04d}"
        calls = [(call, call.id or f"toolu_{next(self._ids):04d}") for call in outcome.calls]
        stop = "tool_use" if calls else "end_turn"
        if not body.get("stream"):
            content: list[dict[str, Any]] = [{"type": "text", "text": outcome.text}] if outcome.text else []
            for call, call_id in calls:
                arguments: Any = call.arguments if call.raw is None else call.raw
                content.append({"type": "tool_use", "id": call_id, "name": call.name, "input": arguments})
            return JSONResponse(
                {
                    "id": message_id,
                    "type": "message",
                    "role": "assistant",
                    "model": body["model"],
                    "content": content,
                    "stop_reason": stop,
                    "stop_sequence": None,
                    "usage": usage,
                }
            )
        return StreamingResponse(
            _anthropic_events(message_id, body["model"], outcome.text, calls, stop, usage),
            media_type="text/event-stream",
        )

    async def _openai(self, request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw)
        seen = _seen_openai(body, dict(request.headers), raw)
        outcome = self._next(seen)
        if isinstance(outcome, Response):
            return outcome
        if isinstance(outcome, Fail):
            return _openai_error(outcome)
        prompt = seen.tokens
        usage = {"prompt_tokens": prompt, "completion_tokens": 20, "total_tokens": prompt + 20}
        completion_id = f"chatcmpl-{next(self._ids):04d}"
        calls = [(call, call.id or f"call_{next(self._ids):04d}") for call in outcome.calls]
        finish = "tool_calls" if calls else "stop"
        if not body.get("stream"):
            message: dict[str, Any] = {"role": "assistant", "content": outcome.text or None}
            if calls:
                message["tool_calls"] = [
                    {
                        "id": cid,
                        "type": "function",
                        "function": {"name": c.name, "arguments": c.arguments_text()},
                    }
                    for c, cid in calls
                ]
            return JSONResponse(
                {
                    "id": completion_id,
                    "object": "chat.completion",
                    "created": int(time.time()),
                    "model": body["model"],
                    "choices": [{"index": 0, "message": message, "finish_reason": finish}],
                    "usage": usage,
                }
            )
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunks = _openai_chunks(
            completion_id, body["model"], outcome.text, calls, finish, usage if with_usage else None
        )
        return StreamingResponse(chunks, media_type="text/event-stream")

    def _anthropic_usage(self, body: dict[str, Any]) -> dict[str, int]:
        """Prompt-cache emulation: a prefix up to a `cache_control` breakpoint seen before is read
        from the cache; the longest new one is written. `input_tokens` excludes both (as the API)."""
        segments = [*(body.get("tools") or []), *_system_blocks(body), *_message_blocks(body)]
        total = _tokens(body.get("system"), body.get("tools"), body.get("messages"))
        digests = [
            hashlib.sha256(
                json.dumps([_without_cache_control(s) for s in segments[: end + 1]], sort_keys=True).encode()
            ).hexdigest()
            for end in range(len(segments))
        ]
        read = write = 0
        written: set[str] = set()
        for index, segment in enumerate(segments):
            if not isinstance(segment, dict) or "cache_control" not in segment:
                continue
            # like the API: a hit on any block boundary up to 20 blocks before the breakpoint
            for end in range(index, max(-1, index - 20), -1):
                if digests[end] in self._cached_prefixes:
                    read = max(read, _tokens([_without_cache_control(s) for s in segments[: end + 1]]))
                    break
            write = max(write, _tokens([_without_cache_control(s) for s in segments[: index + 1]]))
            written.add(digests[index])
        self._cached_prefixes |= written
        write = max(0, write - read)
        return {
            "input_tokens": max(0, total - read - write),
            "output_tokens": 20,
            "cache_read_input_tokens": read,
            "cache_creation_input_tokens": write,
        }


# --- request parsing ------------------------------------------------------------------------------


def _seen_anthropic(body: dict[str, Any], headers: dict[str, str], raw: bytes) -> Seen:
    messages: list[SeenMessage] = []
    for turn in body.get("messages", []):
        content = turn["content"]
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        seen = SeenMessage(role=turn["role"])
        texts = []
        for block in blocks:
            if block["type"] == "text":
                texts.append(block["text"])
            elif block["type"] == "tool_use":
                seen.calls.append(
                    SeenCall(block["id"], block["name"], block["input"], json.dumps(block["input"]))
                )
            elif block["type"] == "tool_result":
                text = block.get("content", "")
                if isinstance(text, list):
                    text = "".join(part.get("text", "") for part in text)
                seen.results.append(SeenResult(block["tool_use_id"], text, bool(block.get("is_error"))))
        seen.text = "\n".join(texts)
        messages.append(seen)
    tools = [
        {"name": t["name"], "description": t.get("description", ""), "schema": t["input_schema"]}
        for t in body.get("tools") or []
    ]
    system = "\n".join(block["text"] for block in _system_blocks(body))
    return Seen(
        "anthropic",
        bool(body.get("stream")),
        body["model"],
        system,
        tools,
        messages,
        body,
        headers,
        raw,
        time.monotonic(),
    )


def _seen_openai(body: dict[str, Any], headers: dict[str, str], raw: bytes) -> Seen:
    messages: list[SeenMessage] = []
    system: list[str] = []
    for turn in body.get("messages", []):
        role = turn["role"]
        if role == "system":
            system.append(turn["content"])
        elif role == "tool":
            text = turn["content"]
            result = SeenResult(
                turn["tool_call_id"], text.removeprefix("ERROR: "), text.startswith("ERROR: ")
            )
            if messages and messages[-1].role == "user" and messages[-1].results and not messages[-1].text:
                messages[-1].results.append(result)
            else:
                messages.append(SeenMessage(role="user", results=[result]))
        elif role == "assistant":
            seen = SeenMessage(role="assistant", text=turn.get("content") or "")
            for call in turn.get("tool_calls") or []:
                raw_arguments = call["function"]["arguments"]
                try:
                    arguments = json.loads(raw_arguments)
                except ValueError:
                    arguments = None
                seen.calls.append(SeenCall(call["id"], call["function"]["name"], arguments, raw_arguments))
            messages.append(seen)
        else:
            messages.append(SeenMessage(role="user", text=turn["content"]))
    tools = [
        {
            "name": t["function"]["name"],
            "description": t["function"].get("description", ""),
            "schema": t["function"]["parameters"],
        }
        for t in body.get("tools") or []
    ]
    return Seen(
        "openai",
        bool(body.get("stream")),
        body["model"],
        "\n".join(system),
        tools,
        messages,
        body,
        headers,
        raw,
        time.monotonic(),
    )


def _system_blocks(body: dict[str, Any]) -> list[dict[str, Any]]:
    system = body.get("system") or []
    return [{"type": "text", "text": system}] if isinstance(system, str) else list(system)


def _message_blocks(body: dict[str, Any]) -> list[Any]:
    blocks: list[Any] = []
    for turn in body.get("messages", []):
        content = turn["content"]
        blocks += [content] if isinstance(content, str) else content
    return blocks


def _without_cache_control(segment: Any) -> Any:
    return (
        {k: v for k, v in segment.items() if k != "cache_control"} if isinstance(segment, dict) else segment
    )


def _tokens(*parts: Any) -> int:
    return (len(json.dumps(parts)) + 3) // 4


# --- responses ------------------------------------------------------------------------------------


def _pieces(text: str, size: int) -> Iterator[str]:
    """`text` in pieces of `size` characters: JSON split mid-token, as the real APIs stream it."""
    for start in range(0, len(text), size):
        yield text[start : start + size]


def _sse(event: str | None, data: dict[str, Any] | str) -> bytes:
    payload = data if isinstance(data, str) else json.dumps(data)
    return ((f"event: {event}\n" if event else "") + f"data: {payload}\n\n").encode()


async def _anthropic_events(
    message_id: str, model: str, text: str, calls: list[tuple[Call, str]], stop: str, usage: dict[str, int]
) -> AsyncIterator[bytes]:
    start_usage = {**usage, "output_tokens": 1}
    message = {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": start_usage,
    }
    yield _sse("message_start", {"type": "message_start", "message": message})
    yield _sse("ping", {"type": "ping"})
    index = 0
    if text:
        yield _sse(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        for piece in _pieces(text, 16):
            yield _sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": piece}},
            )
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": 0})
        index = 1
    for offset, (call, call_id) in enumerate(calls):
        block = {"type": "tool_use", "id": call_id, "name": call.name, "input": {}}
        yield _sse(
            "content_block_start",
            {"type": "content_block_start", "index": index + offset, "content_block": block},
        )
        for piece in _pieces(call.arguments_text(), 7):
            delta = {"type": "input_json_delta", "partial_json": piece}
            yield _sse(
                "content_block_delta",
                {"type": "content_block_delta", "index": index + offset, "delta": delta},
            )
            await asyncio.sleep(0)
        yield _sse("content_block_stop", {"type": "content_block_stop", "index": index + offset})
    delta = {
        "type": "message_delta",
        "delta": {"stop_reason": stop, "stop_sequence": None},
        "usage": {"output_tokens": usage["output_tokens"]},
    }
    yield _sse("message_delta", delta)
    yield _sse("message_stop", {"type": "message_stop"})


async def _openai_chunks(
    completion_id: str,
    model: str,
    text: str,
    calls: list[tuple[Call, str]],
    finish: str,
    usage: dict[str, int] | None,
) -> AsyncIterator[bytes]:
    def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> bytes:
        return _sse(
            None,
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish_reason}],
            },
        )

    yield chunk({"role": "assistant", "content": ""})
    for piece in _pieces(text, 16):
        yield chunk({"content": piece})
    for index, (call, call_id) in enumerate(calls):
        yield chunk(
            {
                "tool_calls": [
                    {
                        "index": index,
                        "id": call_id,
                        "type": "function",
                        "function": {"name": call.name, "arguments": ""},
                    }
                ]
            }
        )
        for piece in _pieces(call.arguments_text(), 7):
            yield chunk({"tool_calls": [{"index": index, "function": {"arguments": piece}}]})
            await asyncio.sleep(0)
    yield chunk({}, finish)
    if usage is not None:
        yield _sse(
            None,
            {
                "id": completion_id,
                "object": "chat.completion.chunk",
                "created": int(time.time()),
                "model": model,
                "choices": [],
                "usage": usage,
            },
        )
    yield _sse(None, "[DONE]")


def _anthropic_error(fail: Fail) -> Response:
    headers = {"retry-after": fail.retry_after} if fail.retry_after is not None else {}
    kinds = {
        "rate_limit": (
            429,
            "rate_limit_error",
            "Number of request tokens has exceeded your per-minute rate limit",
        ),
        "context": (400, "invalid_request_error", "prompt is too long: 212043 tokens > 200000 maximum"),
        "auth": (401, "authentication_error", f"invalid x-api-key {fail.echo or ''}".strip()),
    }
    status, kind, message = kinds[fail.kind]
    return JSONResponse(
        {"type": "error", "error": {"type": kind, "message": message}}, status, headers=headers
    )


def _openai_error(fail: Fail) -> Response:
    headers = {"retry-after": fail.retry_after} if fail.retry_after is not None else {}
    context = (
        "This model's maximum context length is 128000 tokens. However, your messages resulted in 131072 "
        "tokens. Please reduce the length of the messages."
    )
    key = f"Incorrect API key provided: {fail.echo}" if fail.echo else "Incorrect API key provided"
    kinds = {
        "rate_limit": (429, "requests", "rate_limit_exceeded", "Rate limit reached for requests"),
        "context": (400, "invalid_request_error", "context_length_exceeded", context),
        "auth": (401, "invalid_request_error", "invalid_api_key", key),
    }
    status, kind, code, message = kinds[fail.kind]
    error = {"message": message, "type": kind, "param": None, "code": code}
    return JSONResponse({"error": error}, status, headers=headers)
