"""The MCP surface through real client sessions: tools/list, validation before upstream, errors."""

from __future__ import annotations

import json
import sys
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx2
import jwt
import pytest
from mcp import Client, StdioServerParameters

from cm_mcp.api.client import CMClient
from cm_mcp.api.requests import REQUEST_MODELS
from cm_mcp.api.settings import Settings
from cm_mcp.server.app import build_server
from cm_mcp.server.runtime import schema_documents
from tests.token_ruler import count_tokens, model_tokens

pytestmark = pytest.mark.anyio

TOKEN = jwt.encode(
    {"sub": "tester", "exp": 4_102_444_800}, "a-secret-for-tests-only-32-bytes!!", algorithm="HS256"
)
V2_TOOLS = {
    "logs_triage",
    "workloads_triage",
    "logs_scroll",
    "logs_aggs",
    "logs_batch",
    "logs_batch_status",
    "workloads_scroll",
    "workloads_aggs",
    "workloads_batch",
    "workloads_batch_status",
    "billing_query",
    "quota_status",
    "results_list",
    "results_search",
    "results_aggs",
    "fields",
}
LOCAL_TOOLS = {"quota_status", "results_list", "results_search", "results_aggs", "fields"}
#: A valid logs_aggs call (the arguments most tests need).
AGGS_CALL: dict[str, Any] = {
    "application": "atr",
    "app_type": "kubernetes",
    "domain": ["*"],
    "start_time": "now-1h",
    "end_time": "now",
    "aggs": {"l": {"terms": {"field": "x"}}},
}
V1_TOOLS = {"logs_scroll_v1", "logs_batch_v1", "logs_batch_urls_v1"}


class Upstream:
    """An httpx2 transport standing in for the API: records every request, answers with `reply`."""

    def __init__(self, reply: Callable[[httpx2.Request], httpx2.Response]) -> None:
        self.requests: list[httpx2.Request] = []
        self._reply = reply

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        return self._reply(request)


def _settings(**changes: Any) -> Settings:
    options: dict[str, Any] = {"max_retries": 1, "retry_base_delay": 0.01, **changes}
    return Settings(api_url="https://api.test", api_token=TOKEN, **options)


async def _session(upstream: Upstream, **changes: Any) -> AsyncIterator[Client]:
    settings = _settings(**changes)
    async with (
        CMClient(settings, transport=httpx2.MockTransport(upstream)) as api,
        Client(build_server(settings, client=api), raise_exceptions=True) as client,
    ):
        yield client


def _ok(_: httpx2.Request) -> httpx2.Response:
    return httpx2.Response(200, json={"data": {"aggregations": {}, "total_documents": 0}, "meta": {}})


async def test_tools_list_names_schemas_annotations_and_size() -> None:
    upstream = Upstream(_ok)
    async for client in _session(upstream):
        tools = (await client.list_tools()).tools
        assert {tool.name for tool in tools} == V2_TOOLS
        for tool in tools:
            assert tool.description and tool.title
            assert tool.input_schema["type"] == "object"
            assert tool.output_schema is not None and tool.output_schema["type"] == "object"
            annotations = tool.annotations
            assert annotations is not None and annotations.read_only_hint is True
            assert annotations.title == tool.title
            assert annotations.open_world_hint is (tool.name not in LOCAL_TOOLS)
        by_name = {tool.name: tool for tool in tools}
        # the input schema is the request model's (one source of truth), plus the server's options
        scroll = by_name["logs_scroll"].input_schema["properties"]
        assert set(scroll) == set(REQUEST_MODELS["logs_scroll"].model_fields) | {"max_tokens", "fresh"}
        assert scroll["app_type"]["enum"] == ["ec2", "kubernetes", "serverless"]
        assert by_name["logs_aggs"].annotations.idempotent_hint is True  # type: ignore[union-attr]
        for aggs_tool in ("logs_aggs", "workloads_aggs"):  # filters are taken, and the description says how
            assert "filters" in by_name[aggs_tool].input_schema["properties"]
            assert "wrapping filter aggregation" in (by_name[aggs_tool].description or "")
        assert set(by_name["logs_aggs"].input_schema["required"]) == {
            "application",
            "app_type",
            "start_time",
            "end_time",
            "aggs",
        }
        assert by_name["logs_batch"].annotations.idempotent_hint is False  # type: ignore[union-attr]
        # What a model pays for on every turn: each tool as a provider receives it (name, description,
        # input schema; Anthropic's and OpenAI's tool formats carry no output schema or annotations).
        size = sum(
            count_tokens(
                json.dumps(
                    {"name": t.name, "description": t.description, "input_schema": t.input_schema},
                    separators=(",", ":"),
                )
            )
            for t in tools
        )
        assert size < 6000, f"the tool definitions are {size} tokens"
    assert upstream.requests == []


async def test_v1_tools_only_when_enabled() -> None:
    async for client in _session(Upstream(_ok), enable_v1=True):
        tools = {tool.name: tool for tool in (await client.list_tools()).tools}
        assert set(tools) >= V1_TOOLS
        assert all("DEPRECATED" in tools[name].description for name in V1_TOOLS)  # type: ignore[operator]


INVALID_CALLS = [
    ("logs_scroll", {"application": "atr", "app_type": "serverless", "size": 10}, "app_type"),
    (
        "logs_scroll",
        {
            "application": "atr",
            "app_type": "kubernetes",
            "domain": ["*", "a"],
            "size": 1,
            "start_time": "now-1h",
            "end_time": "now",
        },
        "domain",
    ),
    (
        "logs_aggs",
        {
            "application": "atr",
            "app_type": "kubernetes",
            "domain": ["*"],
            "start_time": "now-1h",
            "end_time": "now",
            "aggs": {"x": {"significant_terms": {"field": "a"}}},
        },
        "aggs.x.significant_terms",
    ),
    (
        "logs_scroll",
        {
            "application": "atr",
            "app_type": "kubernetes",
            "domain": ["*"],
            "size": 5,
            "start_time": "now",
            "end_time": "now-1h",
        },
        "end_time",
    ),
    (
        "logs_scroll",
        {
            "application": "atr",
            "app_type": "kubernetes",
            "domain": ["*"],
            "size": 5,
            "start_time": "now-1h",
            "end_time": "now",
            "filters": [{"bool": {"must": [{"range": {"x": {"gtt": 1}}}]}}],
        },
        "filters[0].bool.must[0].range.x.gtt",
    ),
    (
        "workloads_scroll",
        {
            "application": "klewer",
            "app_type": "ec2",
            "domain": ["*"],
            "start_time": "now-1h",
            "end_time": "now",
        },
        "application",
    ),
    ("logs_batch_status", {"token": "   "}, "token"),
    ("billing_query", {"domain": "a.com", "time_range": "yesterday"}, "time_range"),
    (
        "logs_aggs",
        {
            **AGGS_CALL,
            "max_tokens": 50,
        },
        "max_tokens",
    ),
    ("logs_scroll", {"aplication": "atr"}, "aplication"),
]


@pytest.mark.parametrize(("tool", "arguments", "path"), INVALID_CALLS)
async def test_invalid_arguments_name_the_field_and_send_nothing(
    tool: str, arguments: dict[str, Any], path: str
) -> None:
    upstream = Upstream(_ok)
    async for client in _session(upstream):
        result = await client.call_tool(tool, arguments)
        text = result.content[0].text  # type: ignore[union-attr]
        assert result.is_error
        assert f"- {path}:" in text
        assert "nothing was sent" in text
        assert "A valid call:" in text or tool == "quota_status"
    assert upstream.requests == [], "an invalid call must not reach the API"


async def test_json_encoded_list_arguments_are_accepted() -> None:
    """Some clients send arrays as JSON text; that is decoded, not rejected."""
    upstream = Upstream(_ok)
    async for client in _session(upstream):
        result = await client.call_tool(
            "logs_aggs",
            {
                "application": "atr",
                "app_type": "kubernetes",
                "domain": '["*"]',
                "start_time": "now-1h",
                "end_time": "now",
                "aggs": '{"l": {"terms": {"field": "x"}}}',
            },
        )
        assert not result.is_error, result.content
    assert len(upstream.requests) == 1
    assert json.loads(upstream.requests[0].content)["domain"] == ["*"]


@pytest.mark.parametrize(
    ("status", "body", "headers", "words"),
    [
        (401, {"message": "Unauthorized"}, {}, ["JWT", "CM_API_TOKEN"]),
        (429, {"message": "Too Many Requests"}, {}, ["quota", "resets", "quota_status"]),
        (503, {"message": "unavailable"}, {}, ["503", "after 2 attempts"]),
    ],
)
async def test_upstream_failures_say_what_to_do(
    status: int, body: dict[str, Any], headers: dict[str, str], words: list[str]
) -> None:
    upstream = Upstream(lambda _: httpx2.Response(status, json=body, headers=headers))
    async for client in _session(upstream):
        result = await client.call_tool(
            "logs_aggs",
            dict(AGGS_CALL),
        )
        text = result.content[0].text  # type: ignore[union-attr]
        assert result.is_error
        for word in words:
            assert word in text, text
        assert TOKEN not in text
    assert upstream.requests, "the call was sent"


def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def _aggs_failure(reply: Callable[[httpx2.Request], httpx2.Response], **changes: Any) -> str:
    upstream = Upstream(reply)
    texts = []
    async for client in _session(upstream, **changes):
        result = await client.call_tool("logs_aggs", dict(AGGS_CALL))
        assert result.is_error
        texts.append(_text(result))
    assert upstream.requests, "the call was sent"
    return texts[0]


async def test_a_single_500_does_not_claim_retries() -> None:
    """Only 502/503/504, timeouts and resets are retried: a 500 said "even after retries" (issue 9)."""
    text = await _aggs_failure(lambda _: httpx2.Response(500, json={"message": "boom"}))
    assert "500" in text and "boom" in text
    assert "after retries" not in text and "even after" not in text
    assert "1 attempt" in text and "not retried" in text
    assert text.startswith("Upstream failure:")


async def test_a_malformed_upstream_body_does_not_blame_the_arguments() -> None:
    for reply in (
        lambda _: httpx2.Response(200, content=b'{"data": {"aggregations": '),  # cut off
        lambda _: httpx2.Response(200, content=b"<html><body>Gateway login</body></html>"),
        lambda _: httpx2.Response(200, json={"data": {"total_documents": "many"}}),  # wrong shape
    ):
        text = await _aggs_failure(reply)
        assert "argument" not in text.lower(), text
        assert text.startswith("Upstream response:"), text
        assert "request_id" in text or "report" in text


async def test_a_body_over_the_size_limit_says_how_to_ask_for_less() -> None:
    text = await _aggs_failure(
        lambda _: httpx2.Response(200, content=b"{" + b" " * 5000 + b"}"), max_response_bytes=1000
    )
    assert text.startswith("Upstream response too large:")
    assert "CM_MAX_RESPONSE_BYTES" in text and "narrow" in text


async def test_arguments_the_api_rejects_are_blamed_on_the_arguments() -> None:
    text = await _aggs_failure(lambda _: httpx2.Response(400, json={"detail": "unknown field x"}))
    assert text.startswith("Arguments rejected upstream:") and "unknown field x" in text


async def test_a_throttle_with_retry_after_is_not_called_a_spent_daily_quota() -> None:
    text = await _aggs_failure(
        lambda _: httpx2.Response(429, json={"message": "slow down"}, headers={"Retry-After": "90"})
    )
    assert text.startswith("Quota:")
    assert "is spent" not in text and "90 s" in text


async def test_an_unreachable_api_says_how_many_attempts() -> None:
    def refuse(_: httpx2.Request) -> httpx2.Response:
        raise httpx2.ConnectError("connection refused")

    text = await _aggs_failure(refuse, max_retries=0)
    assert text.startswith("Network:") and "1 attempt" in text and "after retrying" not in text
    text = await _aggs_failure(refuse, max_retries=2)
    assert "3 attempts" in text


async def test_v1_batch_urls_401_is_ambiguous_and_says_so() -> None:
    """Reference item 39: "Invalid or missing token" may be the JWT or the batch token."""
    upstream = Upstream(
        lambda _: httpx2.Response(401, content=b'{"status_code" : 401\n"detail": "Invalid or missing token"}')
    )
    async for client in _session(upstream, enable_v1=True):
        result = await client.call_tool("logs_batch_urls_v1", {"token": "1OTk3LCJpc3MiOi"})
        text = _text(result)
        assert result.is_error
        assert "batch token" in text and "JWT" in text and "ambiguous" in text
        assert "logs_batch_v1" in text  # how to get a fresh batch token
        assert not text.startswith("Authentication: the API rejected the JWT")


async def test_expired_batch_token_says_resubmit() -> None:
    upstream = Upstream(
        lambda _: httpx2.Response(
            404, json={"message": "No record of this token. Note: Tokens expire after 2 hours"}
        )
    )
    async for client in _session(upstream):
        result = await client.call_tool("logs_batch_status", {"token": "abc"})
        text = result.content[0].text  # type: ignore[union-attr]
        assert result.is_error and "logs_batch" in text and "2 hours" in text


async def test_expired_jwt_fails_without_a_request() -> None:
    expired = jwt.encode(
        {"sub": "x", "exp": 1_000_000_000}, "a-secret-for-tests-only-32-bytes!!", algorithm="HS256"
    )
    upstream = Upstream(_ok)
    settings = Settings(api_url="https://api.test", api_token=expired)
    async with (
        CMClient(settings, transport=httpx2.MockTransport(upstream)) as api,
        Client(build_server(settings, client=api)) as client,
    ):
        result = await client.call_tool(
            "billing_query", {"domain": "pay.example.com", "time_range": "now-1d"}
        )
    text = result.content[0].text  # type: ignore[union-attr]
    assert result.is_error and "expired" in text.lower() and "nothing was sent" in text.lower()
    assert expired not in text
    assert upstream.requests == []


async def test_quota_status_costs_nothing_and_reports_what_was_seen() -> None:
    def reply(_: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(
            200,
            json={
                "data": {"aggregations": {}, "total_documents": 0},
                "meta": {"rate_limit": {"daily_remaining": 41}},
            },
        )

    upstream = Upstream(reply)
    async for client in _session(upstream):
        await client.call_tool(
            "logs_aggs",
            dict(AGGS_CALL),
        )
        result = await client.call_tool("quota_status", {})
        families = {f["family"]: f for f in result.structured_content["families"]}  # type: ignore[index]
        assert families["logs_aggs"]["remaining"] == 41
        assert families["logs_scroll"].get("remaining") is None  # unknown: left out
        assert not [name for name in families if name.startswith("v1_")]  # no V1 tools, no V1 quota
        assert "billing_query" in families  # /v1/query is a V1 path but always a tool
    async for client in _session(upstream, enable_v1=True):
        result = await client.call_tool("quota_status", {})
        listed = {f["family"] for f in result.structured_content["families"]}  # type: ignore[index]
        assert {"v1_logs_scroll", "v1_logs_batch"} <= listed
    assert len(upstream.requests) == 1


def test_schema_files_match_the_server() -> None:
    """tool_schemas/ is what tools/list publishes (CI runs `cm-mcp schemas --check` too)."""
    from pathlib import Path

    folder = Path(__file__).parents[1] / "tool_schemas"
    documents = schema_documents()
    assert {path.stem for path in folder.glob("*.json")} == set(documents)
    for name, document in documents.items():
        assert json.loads((folder / f"{name}.json").read_text()) == document


async def test_stdio_server_lists_tools_and_keeps_stdout_clean(tmp_path: Any) -> None:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "cm_mcp.cli", "serve"],
        env={
            "CM_API_URL": "http://127.0.0.1:9",
            "CM_API_TOKEN": TOKEN,
            "CM_DATA_DIR": str(tmp_path),
            "PATH": "",
        },
    )
    async with Client(params) as client:
        tools = (await client.list_tools()).tools
        assert {tool.name for tool in tools} == V2_TOOLS
        result = await client.call_tool("logs_scroll", {"size": 0})
        assert result.is_error and "size" in result.content[0].text  # type: ignore[union-attr]


async def test_investigation_prompt_renders_with_real_field_names() -> None:
    async for client in _session(Upstream(_ok)):
        prompts = {prompt.name for prompt in (await client.list_prompts()).prompts}
        assert "investigate" in prompts
        got = await client.get_prompt(
            "investigate", {"application": "klewer", "domain": "shop.example.com", "question": "why 500s?"}
        )
        text = got.messages[0].content.text  # type: ignore[union-attr]
        assert "klewer.domain_name" in text
        assert "shop.example.com" in text
        assert "why 500s?" in text
        assert "logs_aggs" in text
        # triage is the first step, on the prompt's scope
        assert text.index("logs_triage") < text.index("logs_aggs")
        assert 'domain `["shop.example.com"]`' in text
        serverless = await client.get_prompt(
            "investigate", {"application": "eventops", "app_type": "serverless"}
        )
        assert "logLevel" in serverless.messages[0].content.text  # type: ignore[union-attr]


def test_serve_sandbox_writes_nothing_but_protocol_to_stdout(tmp_path: Any) -> None:
    """Raw JSON-RPC over stdio with the embedded sandbox: every stdout line must be a protocol message."""
    import os
    import subprocess
    import threading

    messages = [
        {
            "jsonrpc": "2.0",
            "id": 1,
            "method": "initialize",
            "params": {
                "protocolVersion": "2025-11-25",
                "capabilities": {},
                "clientInfo": {"name": "t", "version": "1"},
            },
        },
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {
            "jsonrpc": "2.0",
            "id": 2,
            "method": "tools/call",
            "params": {
                "name": "logs_aggs",
                "arguments": {
                    "application": "atr",
                    "app_type": "kubernetes",
                    "domain": ["*"],
                    "start_time": "now-1d",
                    "end_time": "now",
                    "aggs": {"levels": {"terms": {"field": "regex.extractions.logLevel"}}},
                },
            },
        },
    ]
    env = {**os.environ, "CM_DATA_DIR": str(tmp_path)}
    with subprocess.Popen(
        [sys.executable, "-m", "cm_mcp.cli", "serve", "--sandbox", "--volume", "1000"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        env=env,
        text=True,
    ) as server:
        assert server.stdin is not None
        assert server.stdout is not None
        for message in messages:
            server.stdin.write(json.dumps(message) + "\n")
            server.stdin.flush()
        lines = []
        watchdog = threading.Timer(60, server.kill)  # a silent server must fail the test, not hang it
        watchdog.start()
        try:
            for line in server.stdout:
                lines.append(line)
                if json.loads(line).get("id") == 2:
                    break
        finally:
            watchdog.cancel()
            server.kill()
    parsed = [json.loads(line) for line in lines]  # any non-JSON line fails here
    answer = parsed[-1]
    assert answer["id"] == 2
    assert answer["result"]["isError"] is False
    assert "levels" in answer["result"]["content"][0]["text"]


async def test_summary_of_100k_logs_stays_within_budget(tmp_path: Any) -> None:
    """results_search over a stored result of 100,000 logs: the whole text fits max_tokens."""
    from cm_mcp.store import ResultStore

    levels = ["INFO", "INFO", "INFO", "WARN", "ERROR", "DEBUG"]
    hits = [
        {
            "_index": "logs-atr-2026.11",
            "_id": f"id-{n}",
            "_source": {
                "@timestamp": f"2026-11-25T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}.000Z",
                "message": [
                    f"GET /api/orders/{n} -> 200 in {n % 900}ms",
                    f"upstream connect error to 10.0.{n % 250}.{n % 7}:8443 after {n % 5000}ms",
                    f"user u{n % 977} logged in from 192.168.{n % 200}.{n % 13}",
                    f"cache miss for key session:{n:x} (ttl {n % 300}s)",
                ][n % 4]
                + " " * (n % 3),
                "regex": {"extractions": {"logLevel": levels[n % len(levels)]}},
            },
        }
        for n in range(100_000)
    ]
    info = ResultStore(tmp_path).create(kind="logs", source="scroll", request={"test": True}, hits=hits)
    async for client in _session(Upstream(_ok), data_dir=tmp_path):
        for budget in (1000, 4000):
            result = await client.call_tool(
                "results_search", {"result_id": info.id, "size": 100_000, "max_tokens": budget}
            )
            text = "\n".join(getattr(block, "text", "") for block in result.content)
            assert not result.is_error, text
            assert sum(model_tokens(result)) <= budget, (model_tokens(result), text)
            summary = result.structured_content["summary"]  # type: ignore[index]
            assert summary["returned"] == 100_000
            assert sum(summary["levels"].values()) == 100_000
            assert "4 templates" in text or "of 4," in text  # how many there are, shown or not
            assert "to get more: " in text
            if budget >= 1000:  # the minimum budget holds counts and the way on; more holds templates
                assert len(summary["templates"]) >= 1
            if budget >= 4000:
                assert "upstream connect error" in text


async def test_filters_on_logs_aggs_are_wrapped_and_totals_are_the_filtered_sets() -> None:
    """Issue 12: `filters` on an aggs tool was refused; it is now sent as one wrapping filter
    aggregation (no extra request), said so in the result, and the totals are the filtered set's."""

    def reply(request: httpx2.Request) -> httpx2.Response:
        body = json.loads(request.content)
        wrapper = body["aggs"]["filtered"]
        assert wrapper["filter"] == {"bool": {"filter": [{"term": {"regex.extractions.logLevel": "ERROR"}}]}}
        assert set(wrapper["aggs"]) == {"l"}
        inner = {"l": {"buckets": [{"key": "pay.example.com", "doc_count": 5}], "sum_other_doc_count": 2}}
        return httpx2.Response(
            200,
            json={"data": {"aggregations": {"filtered": {"doc_count": 7, **inner}}, "total_documents": 100}},
        )

    upstream = Upstream(reply)
    filters = [{"term": {"regex.extractions.logLevel": "ERROR"}}]
    async for client in _session(upstream):
        result = await client.call_tool("logs_aggs", {**AGGS_CALL, "filters": filters})
        text = _text(result)
        assert not result.is_error, text
        structured = result.structured_content
        assert structured is not None
        assert structured["summary"]["total_documents"] == 7  # the filtered set
        assert structured["filters"] == filters and structured["unfiltered_documents"] == 100
        assert [section["name"] for section in structured["summary"]["sections"]] == ["l"]  # unwrapped
        assert "filters applied" in text and "7 of 100" in text
        assert "filtered" not in {section["name"] for section in structured["summary"]["sections"]}
    assert len(upstream.requests) == 1


async def test_filters_on_aggs_against_the_sandbox_count_exactly_what_a_filter_aggregation_counts(
    sandbox: Any,
) -> None:
    """The same question asked both ways over real HTTP gives the same exact numbers."""
    window = {"application": "atr", "app_type": "kubernetes", "domain": ["*"], "start_time": "now-1d/d"}
    window["end_time"] = "now-1d/d"  # all of yesterday: a frozen window
    level = "regex.extractions.logLevel"
    by_domain = {"d": {"terms": {"field": "atr.domain_name", "size": 50}}}
    settings = Settings(api_url=sandbox.url, api_token=sandbox.token)
    async with (
        CMClient(settings) as api,
        Client(build_server(settings, client=api), raise_exceptions=True) as client,
    ):
        filtered = await client.call_tool(
            "logs_aggs", {**window, "aggs": by_domain, "filters": [{"term": {level: "ERROR"}}]}
        )
        explicit = await client.call_tool(
            "logs_aggs",
            {**window, "aggs": {"e": {"filter": {"term": {level: "ERROR"}}, "aggs": by_domain}}},
        )
    assert not filtered.is_error and not explicit.is_error, _text(filtered) + _text(explicit)
    got = filtered.structured_content["summary"]  # type: ignore[index]
    want = explicit.structured_content["summary"]["sections"][0]  # type: ignore[index]
    assert got["total_documents"] == want["count"] > 0
    assert got["sections"][0]["buckets"] == want["children"][0]["buckets"]
    assert got["sections"][0]["total"] == want["count"]


@pytest.mark.parametrize(
    "result_id",
    ["r" * 300, "../../etc/passwd", "r20261126-101500-a1b2c3/../x", "", " ", "R20261126-101500-A1B2C3"],
)
async def test_a_malformed_result_id_is_refused_by_its_pattern(result_id: str, tmp_path: Any) -> None:
    """A 300-character result_id crashed results_search/results_aggs with OSError (issue 9)."""
    async for client in _session(Upstream(_ok), data_dir=tmp_path):
        for tool, extra in (
            ("results_search", {}),
            ("results_aggs", {"aggs": {"l": {"terms": {"field": "x"}}}}),
        ):
            result = await client.call_tool(tool, {"result_id": result_id, **extra})
            text = _text(result)
            assert result.is_error and "- result_id:" in text, text
            assert "Error executing tool" not in text


async def test_a_well_formed_unknown_result_id_says_how_to_find_the_right_one(tmp_path: Any) -> None:
    from cm_mcp.store import ResultStore

    assert "new_id" in dir(ResultStore)
    async for client in _session(Upstream(_ok), data_dir=tmp_path):
        fresh = ResultStore(tmp_path).new_id()  # the store's own id format passes the pattern
        result = await client.call_tool("results_search", {"result_id": fresh})
        text = _text(result)
        assert result.is_error and text.startswith("Local store:") and "results_list" in text, text


def test_tool_operations_take_named_typed_parameters() -> None:
    """Issue 13: operations were `(s, r, b, p, o)` lambdas; each is now a named function of the call
    context and its tool's own request model (which mypy checks against the tool's model)."""
    import inspect
    import typing

    from cm_mcp.server import tools

    specs = tools.ENDPOINT_TOOLS + tools.V1_ENDPOINT_TOOLS + tools.LOCAL_TOOLS
    for spec in specs:
        operation = spec.operation
        assert operation.__name__ != "<lambda>", spec.name
        assert list(inspect.signature(operation).parameters) == ["call", "request"], spec.name
        hints = typing.get_type_hints(operation)
        assert hints["call"] is tools.ToolCall
        accepted = typing.get_args(hints["request"]) or (hints["request"],)
        assert spec.model in accepted, (spec.name, hints["request"])


async def test_a_filter_the_local_engine_cannot_run_is_refused_naming_it(tmp_path: Any) -> None:
    """Found by the fuzz test: results_search with a range on a text field (or bad date math) raised
    the local engine's DSLError, outside the error tree: the client saw "Error executing tool"."""
    from cm_mcp.store import ResultStore
    from tests.fuzz_harness import STORED_HITS

    info = ResultStore(tmp_path).create(kind="logs", source="scroll", request={"t": 1}, hits=STORED_HITS)
    async for client in _session(Upstream(_ok), data_dir=tmp_path):
        for tool, extra in (
            ("results_search", {}),
            ("results_aggs", {"aggs": {"l": {"terms": {"field": "message"}}}}),
        ):
            result = await client.call_tool(
                tool, {"result_id": info.id, "filters": [{"range": {"message": {"lt": "now-1x"}}}], **extra}
            )
            text = _text(result)
            assert result.is_error and "- filters[0].range.message.lt:" in text, text
            assert "Error executing tool" not in text
