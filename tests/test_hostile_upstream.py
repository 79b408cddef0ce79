"""A hostile upstream: a real HTTP server on 127.0.0.1 (port 0) that answers with whatever the test
scripts, byte for byte: malformed JSON, HTML, missing fields, a huge body, a stall, 500 then 200, 503
then 200, 429 with Retry-After, 401, a dropped connection. Every call goes through a real MCP session
and the real client, and each outcome is checked for what the model is told and what was spent.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import anyio
import anyio.abc
import jwt
import pytest
from mcp import Client

from cm_mcp.api.client import CMClient
from cm_mcp.api.settings import DEFAULT_MAX_RESPONSE_BYTES, Settings
from cm_mcp.server.app import build_server

pytestmark = pytest.mark.anyio

TOKEN = jwt.encode(
    {"sub": "t", "exp": 4_102_444_800}, "a-secret-for-tests-only-32-bytes!!", algorithm="HS256"
)
AGGS_CALL: dict[str, Any] = {
    "application": "atr",
    "app_type": "kubernetes",
    "domain": ["*"],
    "start_time": "now-1h",
    "end_time": "now",
    "aggs": {"levels": {"terms": {"field": "regex.extractions.logLevel"}}},
}
GOOD_AGGS = {
    "data": {
        "aggregations": {"levels": {"buckets": [{"key": "ERROR", "doc_count": 3}], "sum_other_doc_count": 0}},
        "total_documents": 3,
    },
    "meta": {"rate_limit": {"daily_remaining": 41}, "request_id": "req-ok"},
}

Stream = anyio.abc.SocketStream
#: One scripted answer: writes whatever it likes on the connection (the request is already read).
Behaviour = Callable[[Stream, "Hostile"], Awaitable[None]]


@dataclass
class Hostile:
    """The server's script (one behaviour per request; the last one repeats) and what it saw."""

    script: list[Behaviour]
    requests: list[dict[str, Any]] = field(default_factory=list)
    #: body bytes written for each request before it ended (or the client went away)
    written: list[int] = field(default_factory=list)
    url: str = ""

    def next_behaviour(self) -> Behaviour:
        return self.script[min(len(self.requests), len(self.script)) - 1]


async def _read_request(stream: Stream) -> tuple[bytes, dict[str, str], bytes] | None:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = await stream.receive(65536)
        if not chunk:
            return None
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = {
        name.strip().lower(): value.strip() for name, _, value in (line.partition(":") for line in lines[1:])
    }
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        body += await stream.receive(65536)
    return lines[0].encode(), headers, body


async def _serve_connection(stream: Stream, hostile: Hostile) -> None:
    async with stream:
        try:
            while True:
                request = await _read_request(stream)
                if request is None:
                    return
                line, headers, body = request
                hostile.requests.append({"line": line.decode(), "headers": headers, "body": body})
                hostile.written.append(0)
                await hostile.next_behaviour()(stream, hostile)
        except (anyio.BrokenResourceError, anyio.ClosedResourceError, anyio.EndOfStream, ConnectionError):
            return  # the client went away: that is the point of several behaviours


@asynccontextmanager
async def hostile_server(*script: Behaviour) -> AsyncIterator[Hostile]:
    hostile = Hostile(list(script))
    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    hostile.url = f"http://127.0.0.1:{port}"
    async with listener, anyio.create_task_group() as tg:
        tg.start_soon(listener.serve, lambda stream: _serve_connection(stream, hostile))
        try:
            yield hostile
        finally:
            tg.cancel_scope.cancel()


@asynccontextmanager
async def session(hostile: Hostile, **changes: Any) -> AsyncIterator[Client]:
    options: dict[str, Any] = {"max_retries": 1, "retry_base_delay": 0.01, **changes}
    settings = Settings(_env_file=None, api_url=hostile.url, api_token=TOKEN, enable_v1=True, **options)
    async with (
        CMClient(settings) as api,
        Client(build_server(settings, client=api), raise_exceptions=True) as client,
    ):
        yield client


async def call(
    client: Client, tool: str = "logs_aggs", arguments: dict[str, Any] | None = None
) -> tuple[bool, str]:
    result = await client.call_tool(tool, AGGS_CALL if arguments is None else arguments)
    return bool(result.is_error), "\n".join(getattr(block, "text", "") for block in result.content)


# --- behaviours --------------------------------------------------------------------------------------


def respond(status: int, body: bytes, content_type: str = "application/json", **headers: str) -> Behaviour:
    async def behaviour(stream: Stream, hostile: Hostile) -> None:
        extra = "".join(f"{name.replace('_', '-')}: {value}\r\n" for name, value in headers.items())
        head = f"HTTP/1.1 {status} X\r\ncontent-type: {content_type}\r\ncontent-length: {len(body)}\r\n{extra}\r\n"
        await stream.send(head.encode() + body)
        hostile.written[-1] = len(body)

    return behaviour


def respond_json(status: int, document: Any, **headers: str) -> Behaviour:
    return respond(status, json.dumps(document).encode(), **headers)


def huge(total: int, *, declare: bool) -> Behaviour:
    """A `total`-byte JSON-ish body, chunked unless `declare` (then with its Content-Length)."""

    async def behaviour(stream: Stream, hostile: Hostile) -> None:
        framing = f"content-length: {total}" if declare else "transfer-encoding: chunked"
        await stream.send(f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\n{framing}\r\n\r\n".encode())
        chunk = b"[" + b"1," * 32767 + b"1"  # 65,536 bytes
        while hostile.written[-1] < total:
            piece = chunk[: total - hostile.written[-1]]
            await stream.send(piece if declare else b"%x\r\n%s\r\n" % (len(piece), piece))
            hostile.written[-1] += len(piece)
        if not declare:
            await stream.send(b"0\r\n\r\n")

    return behaviour


def stall(*, after_headers: bool) -> Behaviour:
    """Say nothing at all, or send the headers and part of a body, then nothing until cancelled."""

    async def behaviour(stream: Stream, hostile: Hostile) -> None:
        if after_headers:
            await stream.send(
                b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{"
            )
        await anyio.sleep_forever()

    return behaviour


async def hang_up(stream: Stream, hostile: Hostile) -> None:
    await stream.aclose()


# --- the matrix --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "behaviour"),
    [
        ("malformed JSON", respond(200, b'{"data": {"aggregations": {"levels": ')),
        ("HTML login page", respond(200, b"<html><body><h1>Sign in</h1></body></html>", "text/html")),
        ("missing fields", respond_json(200, {"meta": {"request_id": "req-9"}})),
        ("wrong types", respond_json(200, {"data": {"aggregations": [], "total_documents": "lots"}})),
    ],
)
async def test_an_unreadable_2xx_is_the_apis_fault_not_the_arguments(name: str, behaviour: Behaviour) -> None:
    async with hostile_server(behaviour) as hostile, session(hostile) as client:
        is_error, text = await call(client)
    assert is_error, name
    assert text.startswith("Upstream response:"), text
    assert "argument" not in text.lower()
    assert len(hostile.requests) == 1  # a 2xx is never retried: it would cost quota again


async def test_an_html_gateway_error_is_retried_then_reported_with_its_attempts() -> None:
    page = b"<html><head><title>502 Bad Gateway</title></head><body>nginx</body></html>"
    async with hostile_server(respond(502, page, "text/html")) as hostile, session(hostile) as client:
        is_error, text = await call(client)
    assert is_error and text.startswith("Upstream failure:")
    assert "502 Bad Gateway" in text and "<html>" not in text
    assert "after 2 attempts" in text and len(hostile.requests) == 2


async def test_a_huge_body_is_refused_at_the_default_cap_without_reading_it_whole() -> None:
    total = 50 * 1024**2
    async with hostile_server(huge(total, declare=False)) as hostile, session(hostile) as client:
        is_error, text = await call(client)
    assert is_error and text.startswith("Upstream response too large:")
    assert f"{DEFAULT_MAX_RESPONSE_BYTES:,}" in text and "narrow" in text
    assert hostile.written[0] < total  # the client hung up long before the end
    assert len(hostile.requests) == 1


async def test_a_huge_declared_length_is_refused_before_the_body_is_read() -> None:
    total = 50 * 1024**2
    async with (
        hostile_server(huge(total, declare=True)) as hostile,
        session(hostile, max_response_bytes=10**6) as client,
    ):
        is_error, text = await call(client)
    assert is_error and "declares 52,428,800 bytes" in text
    assert hostile.written[0] < total


@pytest.mark.parametrize("after_headers", [False, True], ids=["no answer", "half a body"])
async def test_a_stall_times_out_is_retried_and_says_so(after_headers: bool) -> None:
    async with (
        hostile_server(stall(after_headers=after_headers)) as hostile,
        session(hostile, read_timeout=0.5) as client,
    ):
        is_error, text = await call(client)
    assert is_error and text.startswith("Network:"), text
    assert "after 2 attempts" in text and "read timeout" in text
    assert len(hostile.requests) == 2


async def test_a_dropped_connection_is_retried_then_reported() -> None:
    async with hostile_server(hang_up) as hostile, session(hostile, max_retries=2) as client:
        is_error, text = await call(client)
    assert is_error and text.startswith("Network:") and "after 3 attempts" in text
    assert len(hostile.requests) == 3


async def test_500_then_200_fails_once_without_a_retry_then_works() -> None:
    async with (
        hostile_server(respond_json(500, {"message": "boom"}), respond_json(200, GOOD_AGGS)) as hostile,
        session(hostile) as client,
    ):
        first_error, first = await call(client)
        second_error, second = await call(client)
    assert first_error and first.startswith("Upstream failure:") and "500 is not retried" in first
    assert "after retries" not in first
    assert not second_error and "ERROR" in second
    assert len(hostile.requests) == 2


async def test_503_then_200_is_one_successful_call() -> None:
    async with (
        hostile_server(respond_json(503, {"message": "busy"}), respond_json(200, GOOD_AGGS)) as hostile,
        session(hostile) as client,
    ):
        is_error, text = await call(client)
    assert not is_error and "41 requests left today" in text
    assert len(hostile.requests) == 2


async def test_429_with_a_short_retry_after_is_waited_out() -> None:
    async with (
        hostile_server(
            respond_json(429, {"message": "slow down"}, retry_after="1"), respond_json(200, GOOD_AGGS)
        ) as hostile,
        session(hostile) as client,
    ):
        is_error, text = await call(client)
    assert not is_error, text
    assert len(hostile.requests) == 2


async def test_429_with_a_long_retry_after_stops_and_spends_nothing_more() -> None:
    async with (
        hostile_server(respond_json(429, {"message": "slow down"}, retry_after="120")) as hostile,
        session(hostile) as client,
    ):
        first_error, first = await call(client)
        second_error, second = await call(client)
    assert first_error and first.startswith("Quota:") and "120 s" in first and "is spent" not in first
    assert second_error and second.startswith("Quota:") and "nothing was sent" in second
    assert len(hostile.requests) == 1  # the second call was refused locally


async def test_401_blames_the_jwt_once_and_never_leaks_it() -> None:
    async with (
        hostile_server(respond_json(401, {"message": "Unauthorized"})) as hostile,
        session(hostile) as client,
    ):
        is_error, text = await call(client)
        urls_error, urls = await call(client, "logs_batch_urls_v1", {"token": "1OTk3LCJpc3MiOi"})
    assert is_error and text.startswith("Authentication:") and "CM_API_TOKEN" in text
    assert urls_error and urls.startswith("Authentication or batch token (ambiguous):")
    assert TOKEN not in text + urls
    assert len(hostile.requests) == 2  # one each: an unchanged JWT is not retried
    assert all(request["headers"]["authorization"] == f"Bearer {TOKEN}" for request in hostile.requests)
