"""Cassettes: real exchanges with the sandbox, recorded once, replayed by the client's contract tests.

Re-record every cassette (starts a throwaway sandbox on an ephemeral port, small volume, fixed seed):

    .venv/bin/python -m cm_mcp.sandbox.record [--out cassettes]

vcrpy 9.4 does not intercept httpx2 (it patches the `httpx` package only, and `httpx` is not even
installed), so recording goes through `CassetteTransport`, an httpx2 transport that writes and reads
vcrpy's YAML cassette format (``interactions: [{request: {body, headers, method, uri}, response:
{status, headers, body: {string}}}], version: 1``). The Authorization header is never written, and the
host is normalised to the default sandbox URL so cassettes do not change with the port.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import sys
import tempfile
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal
from urllib.parse import urlsplit, urlunsplit

import httpx2
import yaml

from cm_mcp.api.client import CMClient
from cm_mcp.api.errors import APIError
from cm_mcp.api.retry import RetryPolicy

CASSETTE_DIR: Final = Path(__file__).resolve().parents[2] / "cassettes"
#: Every recorded URI is rewritten to this origin (the sandbox's default address).
CASSETTE_ORIGIN: Final = "http://127.0.0.1:8766"
#: Headers never written to a cassette (secrets, or noise that changes on every run).
_DROPPED_HEADERS: Final = frozenset(
    {"authorization", "cookie", "set-cookie", "date", "server", "host", "content-length"}
)

Mode = Literal["record", "replay"]


class CassetteError(Exception):
    """A replayed request has no matching interaction in the cassette."""


def _normalise_uri(url: str) -> str:
    parts = urlsplit(url)
    origin = urlsplit(CASSETTE_ORIGIN)
    return urlunsplit((origin.scheme, origin.netloc, parts.path, parts.query, ""))


def _headers(headers: httpx2.Headers) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name, value in headers.multi_items():
        if name.lower() not in _DROPPED_HEADERS:
            out.setdefault(name, []).append(value)
    return out


def _body_key(content: bytes) -> Any:
    """Request bodies match by JSON value (key order and spacing do not matter)."""
    try:
        return json.loads(content) if content else None
    except ValueError:
        return content.decode("utf-8", "replace")


class CassetteTransport(httpx2.AsyncBaseTransport):
    """Record through `inner` into `path`, or replay `path` (no network at all)."""

    def __init__(self, path: Path, mode: Mode, inner: httpx2.AsyncBaseTransport | None = None) -> None:
        self.path = path
        self.mode = mode
        self.inner = inner or (httpx2.AsyncHTTPTransport() if mode == "record" else None)
        self.interactions: list[dict[str, Any]] = []
        self._used: set[int] = set()
        if mode == "replay":
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
            self.interactions = list(data.get("interactions") or [])

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        content = await request.aread()
        if self.mode == "replay":
            return self._replay(request, content)
        assert self.inner is not None
        response = await self.inner.handle_async_request(request)
        body = await response.aread()
        await response.aclose()
        origin = f"{request.url.scheme}://{request.url.netloc.decode()}"
        # Presigned URLs in status bodies name the sandbox's port: store them under the fixed origin.
        stored = body.decode("utf-8").replace(origin, CASSETTE_ORIGIN)
        self.interactions.append(
            {
                "request": {
                    "body": content.decode("utf-8") if content else None,
                    "headers": _headers(request.headers),
                    "method": request.method,
                    "uri": _normalise_uri(str(request.url)),
                },
                "response": {
                    "status": {"code": response.status_code, "message": response.reason_phrase},
                    "headers": _headers(response.headers),
                    "body": {"string": stored},
                },
            }
        )
        return httpx2.Response(
            response.status_code, headers=response.headers.multi_items(), content=body, request=request
        )

    def _replay(self, request: httpx2.Request, content: bytes) -> httpx2.Response:
        path, key = urlsplit(str(request.url)).path, _body_key(content)
        for i, item in enumerate(self.interactions):
            recorded = item["request"]
            if i in self._used or recorded["method"] != request.method:
                continue
            if urlsplit(recorded["uri"]).path != path:
                continue
            if _body_key((recorded.get("body") or "").encode()) != key:
                continue
            self._used.add(i)
            response = item["response"]
            headers = [(name, value) for name, values in response["headers"].items() for value in values]
            # The body is stored decoded: drop length/encoding headers that described the wire form.
            headers = [(n, v) for n, v in headers if n.lower() not in ("content-length", "content-encoding")]
            return httpx2.Response(
                response["status"]["code"],
                headers=headers,
                content=response["body"]["string"].encode("utf-8"),
                request=request,
            )
        raise CassetteError(f"{self.path.name}: no recorded {request.method} {path} with this body")

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        text = yaml.safe_dump(
            {"interactions": self.interactions, "version": 1}, sort_keys=False, allow_unicode=True, width=110
        )
        self.path.write_text(text, encoding="utf-8")

    async def aclose(self) -> None:
        if self.inner is not None:
            await self.inner.aclose()


# --- the recording script ----------------------------------------------------------------------------

Script = Callable[[CMClient], Awaitable[None]]


@dataclass(frozen=True)
class Recording:
    name: str
    script: Script
    #: JWT to use instead of the sandbox's (the 401 cassette)
    bad_token: bool = False
    #: quota family to exhaust before recording (the 429 cassette)
    exhaust: str | None = None


_LOGS = {"application": "atr", "app_type": "kubernetes", "domain": ["pay.example.com"]}
_WINDOW = {"start_time": "now-7d", "end_time": "now"}
_INCIDENT = "builtin-klewer-deploy-errors"


async def _ignore_api_error(coro: Awaitable[Any]) -> None:
    # The exchange is what we record; the client's classification of it is tested on replay.
    with contextlib.suppress(APIError):
        await coro


async def _poll_until_done(client: CMClient, endpoint: str, token: str) -> None:
    for _ in range(40):
        body = await client.post(endpoint, {"token": token})
        entries = body["presigned_urls"]
        if all(entry.get("completed") or entry.get("ready") for entry in entries):
            return
        await asyncio.sleep(0.25)


async def _logs_scroll(client: CMClient) -> None:
    ids = [f"{_INCIDENT}-{i:07d}" for i in range(1, 6)]
    body = {
        "application": "klewer",
        "app_type": "kubernetes",
        "domain": ["shop.example.com"],
        **_WINDOW,
        "size": 2,
        "filters": [{"terms": {"_id": ids}}],
        "fields": ["@timestamp", "message", "regex.extractions.logLevel"],
    }
    page = await client.post("logs_scroll", body)
    while page["meta"].get("scroll_id"):
        page = await client.post("logs_scroll", {"scroll_id": page["meta"]["scroll_id"]})


async def _logs_batch(client: CMClient) -> None:
    body = {**_LOGS, **_WINDOW, "filters": [{"term": {"regex.extractions.logLevel": "ERROR"}}]}
    token = (await client.post("logs_batch", body))["data"]["token"]
    await _poll_until_done(client, "logs_batch_status", token)


async def _logs_aggs(client: CMClient) -> None:
    aggs = {
        "levels": {"terms": {"field": "regex.extractions.logLevel", "size": 10}},
        "per_day": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1d"}},
        "errors": {"filter": {"term": {"regex.extractions.logLevel": "ERROR"}}},
    }
    await client.post("logs_aggs", {**_LOGS, **_WINDOW, "aggs": aggs})
    serverless = {
        "application": "eventops",
        "app_type": "serverless",
        "log_group": ["*"],
        "tenant": ["globex"],
        "stage": ["prod"],
        **_WINDOW,
        "aggs": {"origins": {"terms": {"field": "event.origin", "size": 5}}},
    }
    await client.post("logs_aggs", serverless)


_WORKLOADS = {
    "application": "atr",
    "app_type": "ec2",
    "domain": ["ops.example.com"],
    **_WINDOW,
    "filters": [{"term": {"sandbox.incident_id": "builtin-atr-enrichment-failures"}}],
}


async def _workloads_scroll(client: CMClient) -> None:
    page = await client.post(
        "workloads_scroll", {**_WORKLOADS, "size": 3, "fields": ["@timestamp", "status"]}
    )
    for _ in range(2):  # two pages are enough to show the shape; the scroll is left open
        if not page["meta"].get("scroll_id"):
            break
        page = await client.post("workloads_scroll", {"scroll_id": page["meta"]["scroll_id"]})


async def _workloads_batch(client: CMClient) -> None:
    token = (await client.post("workloads_batch", _WORKLOADS))["data"]["token"]
    await _poll_until_done(client, "workloads_batch_status", token)


async def _workloads_aggs(client: CMClient) -> None:
    aggs = {"by_workflow": {"terms": {"field": "workflow.name", "size": 5}}}
    body = {k: v for k, v in _WORKLOADS.items() if k != "filters"}
    await client.post("workloads_aggs", {**body, "domain": ["*"], "aggs": aggs})


_V1 = {"application": "atr", "app_type": "caas", "domain": "pay.example.com", "time_range": "now-1h"}


async def _v1_logs_scroll(client: CMClient) -> None:
    page = await client.post("v1_logs_scroll", {**_V1, "size": 2})
    if page.get("scroll_id"):
        await client.post("v1_logs_scroll", {**_V1, "size": 2, "scroll_id": page["scroll_id"]})


async def _v1_logs_batch(client: CMClient) -> None:
    token = (await client.post("v1_logs_batch", {**_V1, "filters": {"regex.extractions.logLevel": "ERROR"}}))[
        "token"
    ]
    await _poll_until_done(client, "v1_logs_batch_urls", token)


async def _billing(client: CMClient) -> None:
    await client.post("billing_query", {"domain": "pay.example.com", "time_range": "now-30d/d"})


async def _error_400_v2(client: CMClient) -> None:
    body = {**_LOGS, **_WINDOW, "size": 10, "domain": ["*", "pay.example.com"]}
    await _ignore_api_error(client.post("logs_scroll", body))


async def _error_400_v1(client: CMClient) -> None:
    await _ignore_api_error(client.post("v1_logs_scroll", {"application": "nope", "time_range": "now-15m/m"}))


async def _error_401(client: CMClient) -> None:
    await _ignore_api_error(
        client.post("logs_aggs", {**_LOGS, **_WINDOW, "aggs": {"n": {"value_count": {"field": "_id"}}}})
    )


async def _error_404_token(client: CMClient) -> None:
    await _ignore_api_error(client.post("workloads_batch_status", {"token": "Paw21VHC3VxAs7F4"}))


async def _error_429(client: CMClient) -> None:
    await _ignore_api_error(
        client.post("billing_query", {"domain": "pay.example.com", "time_range": "now-1d/d"})
    )


RECORDINGS: Final = (
    Recording("logs_scroll", _logs_scroll),
    Recording("logs_batch", _logs_batch),
    Recording("logs_aggs", _logs_aggs),
    Recording("workloads_scroll", _workloads_scroll),
    Recording("workloads_batch", _workloads_batch),
    Recording("workloads_aggs", _workloads_aggs),
    Recording("v1_logs_scroll", _v1_logs_scroll),
    Recording("v1_logs_batch", _v1_logs_batch),
    Recording("billing_query", _billing),
    Recording("error_400_v2", _error_400_v2),
    Recording("error_400_v1", _error_400_v1),
    Recording("error_401", _error_401, bad_token=True),
    Recording("error_404_token", _error_404_token),
    Recording("error_429", _error_429, exhaust="billing_query"),
)


async def record_all(out: Path) -> list[Path]:
    """Start a sandbox, run every recording, write `out/<name>.yaml`; the written paths."""
    from cm_mcp.sandbox.config import SandboxConfig
    from cm_mcp.sandbox.runner import serve_sandbox

    written = []
    with tempfile.TemporaryDirectory(prefix="cm-mcp-record-") as tmp:
        config = SandboxConfig(
            port=0, seed=7, volume=3000, workloads_per_day=300, data_dir=Path(tmp), batch_seconds=0.5
        )
        async with serve_sandbox(config) as running:
            for rec in RECORDINGS:
                token = running.token
                if rec.bad_token:
                    # Signed with another key: a well-formed JWT the sandbox must reject.
                    from cm_mcp.sandbox.auth import issue_token

                    token = issue_token(secret="not-the-sandbox-secret-but-32-bytes-long")
                if rec.exhaust:
                    running.state.quotas.exhaust("sandbox-user", rec.exhaust)
                transport = CassetteTransport(out / f"{rec.name}.yaml", "record")
                policy = RetryPolicy(max_retries=0)
                async with CMClient(
                    api_url=running.url, token=token, transport=transport, retry_policy=policy
                ) as client:
                    await rec.script(client)
                transport.save()
                written.append(transport.path)
                if rec.exhaust:
                    running.state.quotas.reset()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Re-record every cassette against a fresh sandbox.")
    parser.add_argument("--out", type=Path, default=CASSETTE_DIR, help=f"directory (default {CASSETTE_DIR})")
    args = parser.parse_args(argv)
    for path in asyncio.run(record_all(args.out)):
        print(path, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
