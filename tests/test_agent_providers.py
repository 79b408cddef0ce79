"""Both provider adapters through the real SDKs against the scripted model over HTTP, and their
exchanges as vcrpy cassettes (recorded from the scripted model with the key headers filtered, replayed
with nothing listening)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest
import vcr

from cm_mcp.agent.conversation import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
)
from cm_mcp.agent.providers import make_provider
from cm_mcp.agent.providers.base import ModelReply, ModelRequest, Provider, ToolSpec
from cm_mcp.agent.redact import Redactor
from cm_mcp.agent.settings import Credentials
from tests.agent_scripts import ANTHROPIC_KEY, OPENAI_KEY
from tests.scripted_llm import Call, Reply, ScriptedLLM, Seen

pytestmark = pytest.mark.anyio

PROVIDERS = ["anthropic", "openai"]
CASSETTES = Path(__file__).resolve().parents[1] / "cassettes" / "agent"
TOOLS = [
    ToolSpec("logs_aggs", "Aggregate logs.", {"type": "object", "properties": {"aggs": {"type": "object"}}}),
    ToolSpec("quota_status", "Quota left.", {"type": "object", "properties": {}}),
]
ARGUMENTS = {"application": "atr", "aggs": {"levels": {"terms": {"field": "regex.extractions.logLevel"}}}}


def provider(name: str, url: str, *, stream: bool, notices: list[str] | None = None) -> Provider:
    key = ANTHROPIC_KEY if name == "anthropic" else OPENAI_KEY
    creds = Credentials(name, key, url)  # type: ignore[arg-type]
    sink = notices.append if notices is not None else None
    return make_provider(
        creds, model="m-1", stream=stream, max_retries=1, redactor=Redactor([key]), notice=sink
    )


def base_url(llm: ScriptedLLM, name: str) -> str:
    return llm.url if name == "anthropic" else llm.openai_url


def request(messages: list[Message], context: str = "status: 5 left") -> ModelRequest:
    return ModelRequest(
        system="You investigate.", context=context, messages=messages, tools=TOOLS, max_output_tokens=512
    )


async def exchange(model: Provider) -> list[ModelReply]:
    """Three turns: text + a call, a call whose arguments are not JSON, an answer."""
    messages: list[Message] = [UserMessage(text="what broke?")]
    replies = []
    deltas: list[str] = []
    for _ in range(3):
        reply = await model.complete(request(messages), on_text=deltas.append)
        replies.append(reply)
        messages.append(AssistantMessage(text=reply.text, tool_calls=reply.tool_calls))
        if reply.tool_calls:
            results = [
                ToolResult(call_id=c.id, name=c.name, text=f"result of {c.name}") for c in reply.tool_calls
            ]
            messages.append(ToolResultsMessage(results=results))
    if deltas:
        assert "".join(deltas) == "".join(r.text for r in replies), "streamed deltas differ from the reply"
    return replies


def script() -> list[Any]:
    def answer(seen: Seen) -> Reply:
        results = seen.last_results()
        assert [r.text for r in results] == ["result of logs_aggs"], results
        return Reply("Errors peaked at 03:00 [#1].")

    return [
        lambda seen: Reply("Looking at levels first.", [Call("logs_aggs", ARGUMENTS)]),
        lambda seen: Reply("", [Call("logs_aggs", raw='{"application": "atr", "aggs": {"lev')]),
        answer,
    ]


def check(replies: list[ModelReply]) -> None:
    first, malformed, last = replies
    assert first.text == "Looking at levels first." and first.stop == "tool_use"
    assert [(c.name, c.arguments) for c in first.tool_calls] == [("logs_aggs", ARGUMENTS)]
    (broken,) = malformed.tool_calls
    assert broken.arguments is None and broken.raw_arguments == '{"application": "atr", "aggs": {"lev'
    assert last.text == "Errors peaked at 03:00 [#1]." and last.stop == "end" and not last.tool_calls
    assert all(r.usage.output_tokens == 20 for r in replies)


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("name", PROVIDERS)
async def test_text_calls_and_arguments_that_are_not_json_streamed_or_not(name: str, stream: bool) -> None:
    llm = ScriptedLLM(script())
    async with llm.serve():
        model = provider(name, base_url(llm, name), stream=stream)
        try:
            replies = await exchange(model)
        finally:
            await model.aclose()
    llm.check()
    check(replies)
    assert all(seen.stream is stream for seen in llm.requests)
    assert all(seen.tools[0]["schema"] == TOOLS[0].input_schema for seen in llm.requests)


async def test_anthropic_requests_keep_a_cacheable_prefix_and_the_status_note_after_it() -> None:
    llm = ScriptedLLM(script())
    async with llm.serve():
        model = provider("anthropic", llm.url, stream=True)
        try:
            replies = await exchange(model)
        finally:
            await model.aclose()
    llm.check()
    for seen in llm.requests:
        body = seen.body
        assert body["tools"][-1]["cache_control"] == {"type": "ephemeral"}
        assert "cache_control" not in body["tools"][0]
        assert body["system"] == [
            {"type": "text", "text": "You investigate.", "cache_control": {"type": "ephemeral"}}
        ]
        last = body["messages"][-1]["content"]
        assert last[-1] == {"type": "text", "text": "status: 5 left"}, "the status note is not the last block"
        assert last[-2]["cache_control"] == {"type": "ephemeral"}, "no breakpoint on the newest message"
    # each request reads everything the one before it sent (tools, system, conversation) from the cache
    reads = [r.usage.cache_read_tokens for r in replies]
    assert reads[0] == 0 and reads[1] > 0 and reads[2] > reads[1], reads
    assert (
        replies[2].usage.input_tokens < replies[2].usage.cache_read_tokens
    )  # only the new turn and the note


async def test_openai_sends_one_system_message_and_the_status_note_last() -> None:
    llm = ScriptedLLM(script())
    async with llm.serve():
        model = provider("openai", llm.openai_url, stream=True)
        try:
            await exchange(model)
        finally:
            await model.aclose()
    roles = [m["role"] for m in llm.requests[1].body["messages"]]
    assert roles == ["system", "user", "assistant", "tool", "user"]
    assert llm.requests[1].body["messages"][-1]["content"] == "status: 5 left"
    assert llm.requests[0].body["stream_options"] == {"include_usage": True}
    assert llm.requests[0].body["max_tokens"] == 512  # a compatible server, not api.openai.com


async def test_a_history_made_on_openai_replays_on_anthropic() -> None:
    """Tool call ids of another provider are mapped onto the ids the Messages API accepts."""
    history: list[Message] = [
        UserMessage(text="what broke?"),
        AssistantMessage(text="", tool_calls=[ToolCall(id="call.9f:x", name="quota_status", arguments={})]),
        ToolResultsMessage(
            results=[ToolResult(call_id="call.9f:x", name="quota_status", text="49 left", step=1)]
        ),
    ]

    def check_ids(seen: Seen) -> Reply:
        (call,) = seen.calls()
        assert call.id == "call_9f_x" and seen.result_for("call_9f_x").text == "49 left"
        return Reply("49 left [#1].")

    llm = ScriptedLLM([check_ids])
    async with llm.serve():
        model = provider("anthropic", llm.url, stream=False)
        try:
            reply = await model.complete(request(history))
        finally:
            await model.aclose()
    llm.check()
    assert reply.text == "49 left [#1]."


# --- cassettes ------------------------------------------------------------------------------------


def cassette(path: Path, mode: str) -> Any:
    return vcr.VCR(
        record_mode=mode,
        match_on=["method", "path"],  # the scripted model's port differs between recording and replay
        filter_headers=["authorization", "x-api-key"],
        decode_compressed_response=True,
    ).use_cassette(str(path))


@pytest.mark.parametrize("stream", [True, False])
@pytest.mark.parametrize("name", PROVIDERS)
async def test_recorded_exchanges_hold_no_key_and_replay_offline(
    name: str, stream: bool, tmp_path: Path
) -> None:
    file = f"{name}_{'stream' if stream else 'json'}.yaml"
    # CM_RECORD_CASSETTES=1 refreshes the committed cassettes; otherwise record into a temporary file
    recorded = CASSETTES / file if os.environ.get("CM_RECORD_CASSETTES") else tmp_path / file
    llm = ScriptedLLM(script())
    async with llm.serve():
        model = provider(name, base_url(llm, name), stream=stream)
        try:
            with cassette(recorded, "all"):
                check(await exchange(model))
        finally:
            await model.aclose()
    text = recorded.read_text()
    assert ANTHROPIC_KEY not in text and OPENAI_KEY not in text
    assert "x-api-key" not in text.lower() and "authorization" not in text.lower()
    for path in (recorded, CASSETTES / file):  # the fresh recording, and the committed one
        nothing_listens = "http://127.0.0.1:9" + ("" if name == "anthropic" else "/v1")
        model = provider(name, nothing_listens, stream=stream)
        try:
            with cassette(path, "none") as played:
                check(await exchange(model))
            assert played.play_count == 3 and played.all_played
        finally:
            await model.aclose()
    body = json.loads(cassette_requests(CASSETTES / file)[0])
    assert body["model"] == "m-1" and body.get("stream", False) is stream


def cassette_requests(path: Path) -> list[str]:
    import yaml

    return [item["request"]["body"] for item in yaml.safe_load(path.read_text())["interactions"]]
