"""Cassettes: real exchanges with the sandbox, recorded and replayed by vcrpy for the client's contract tests.

Re-record every cassette (starts a throwaway sandbox on an ephemeral port, small volume, fixed seed):

    .venv/bin/python -m tests.record_cassettes [--out cassettes]

vcrpy (>= 8.2) patches httpx2's transports, so `CMClient` is recorded exactly as it talks to the API,
through its own transport. Recording and replay are developer and test concerns, so this module lives
under tests/ and vcrpy stays a dev dependency: the server never imports it. `cassette_vcr` is the one
configuration both sides use:
- the Authorization header is never written (nor cookies, nor the Host header, which names the port);
- every URI is rewritten to `CASSETTE_ORIGIN`, on recording and when a replayed request is matched, and
  the sandbox's origin inside response bodies (presigned URLs) too, so cassettes do not change with
  the port the sandbox happened to get;
- requests match on method, URI and body (vcrpy compares JSON bodies as values), each recorded
  interaction is played once, in order (a status poll repeated three times was recorded three times).
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import shutil
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final
from urllib.parse import urlsplit, urlunsplit

import vcr
from vcr.request import Request as VcrRequest

from cm_mcp.api.client import CMClient
from cm_mcp.api.errors import APIError
from cm_mcp.api.retry import RetryPolicy
from cm_mcp.sandbox.auth import issue_token
from cm_mcp.sandbox.config import SandboxConfig
from cm_mcp.sandbox.runner import RunningSandbox, serve_sandbox

CASSETTE_DIR: Final = Path(__file__).resolve().parents[1] / "cassettes"
#: Every recorded URI is rewritten to this origin (the sandbox's default address).
CASSETTE_ORIGIN: Final = "http://127.0.0.1:8766"
#: Request headers never written: the JWT, cookies, and Host (it names the sandbox's port).
FILTERED_REQUEST_HEADERS: Final = ("authorization", "cookie", "host")
#: Response headers never written: noise that changes on every run; the length of a body whose
#: origin was rewritten no longer holds.
_DROPPED_RESPONSE_HEADERS: Final = frozenset({"set-cookie", "date", "server", "content-length"})
#: A batch the sandbox finishes in seconds; generous so a loaded machine never records half a job.
POLL_DEADLINE_SECONDS: Final = 120.0
_POLL_INTERVAL_SECONDS: Final = 0.25


def _to_cassette_origin(request: VcrRequest) -> VcrRequest:
    # vcrpy hands us a copy: the request actually sent keeps its real address.
    parts, origin = urlsplit(request.uri), urlsplit(CASSETTE_ORIGIN)
    request.uri = urlunsplit((origin.scheme, origin.netloc, parts.path, parts.query, ""))
    return request


def _response_scrubber(recorded_origin: str | None) -> Callable[[dict[str, Any]], dict[str, Any]]:
    def scrub(response: dict[str, Any]) -> dict[str, Any]:
        response["headers"] = {
            name: values
            for name, values in response["headers"].items()
            if name.lower() not in _DROPPED_RESPONSE_HEADERS
        }
        body = response["body"]["string"]
        if recorded_origin and isinstance(body, bytes):
            # Presigned URLs in status bodies name the sandbox's port: store them under the fixed origin.
            response["body"]["string"] = body.replace(recorded_origin.encode(), CASSETTE_ORIGIN.encode())
        return response

    return scrub


def cassette_vcr(library: Path = CASSETTE_DIR, *, recorded_origin: str | None = None) -> vcr.VCR:
    """The vcrpy configuration of every cassette. Replays by default (`record_mode="none"`: a request
    the cassette does not hold raises instead of reaching the network); `recorded_origin` is the
    sandbox's address while recording, rewritten to `CASSETTE_ORIGIN` in response bodies."""
    return vcr.VCR(
        cassette_library_dir=str(library),
        serializer="yaml",
        record_mode="none",
        filter_headers=list(FILTERED_REQUEST_HEADERS),
        before_record_request=_to_cassette_origin,
        before_record_response=_response_scrubber(recorded_origin),
        decode_compressed_response=True,
        match_on=("method", "scheme", "host", "port", "path", "query", "body"),
    )


# --- what is recorded --------------------------------------------------------------------------------

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
    deadline = time.monotonic() + POLL_DEADLINE_SECONDS
    while True:
        body = await client.post(endpoint, {"token": token})
        entries = body["presigned_urls"]
        if entries and all(entry.get("completed") or entry.get("ready") for entry in entries):
            return
        if time.monotonic() > deadline:
            raise TimeoutError(f"{endpoint}: the batch was not done after {POLL_DEADLINE_SECONDS:.0f} s")
        await asyncio.sleep(_POLL_INTERVAL_SECONDS)


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
    body = {**_V1, "filters": {"regex.extractions.logLevel": "ERROR"}}
    token = (await client.post("v1_logs_batch", body))["token"]
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


# --- recording ---------------------------------------------------------------------------------------


async def record(
    running: RunningSandbox, out: Path, recordings: Sequence[Recording] = RECORDINGS
) -> list[Path]:
    """Run `recordings` against `running`, each into `out/<name>.yaml` (replacing it); the written paths.

    Cassettes are recorded into a scratch directory and moved into place only once every script has
    finished, so a failed run leaves the existing cassettes as they were.
    """
    recorder = cassette_vcr(recorded_origin=running.url)
    with tempfile.TemporaryDirectory(prefix="cm-mcp-cassettes-") as scratch:
        recorded = []
        for rec in recordings:
            token = running.token
            if rec.bad_token:
                # Signed with another key: a well-formed JWT the sandbox must reject.
                token = issue_token(secret="not-the-sandbox-secret-but-32-bytes-long")
            if rec.exhaust:
                running.state.quotas.exhaust("sandbox-user", rec.exhaust)
            path = Path(scratch) / f"{rec.name}.yaml"
            try:
                # record_mode "all": every request goes to the sandbox and is written, none replayed.
                with recorder.use_cassette(str(path), record_mode="all"):
                    async with CMClient(
                        api_url=running.url, token=token, retry_policy=RetryPolicy(max_retries=0)
                    ) as client:
                        await rec.script(client)
            finally:
                if rec.exhaust:
                    running.state.quotas.reset()
            recorded.append(path)
        return _install(recorded, out)


def _install(recorded: list[Path], out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    return [Path(shutil.move(path, out / path.name)) for path in recorded]


async def record_all(out: Path) -> list[Path]:
    """Start a throwaway sandbox (ephemeral port, fixed seed, small volume), record every cassette."""
    with tempfile.TemporaryDirectory(prefix="cm-mcp-record-") as data_dir:
        config = SandboxConfig(
            port=0, seed=7, volume=3000, workloads_per_day=300, data_dir=Path(data_dir), batch_seconds=0.5
        )
        async with serve_sandbox(config) as running:
            return await record(running, out)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Re-record every cassette against a fresh sandbox.")
    parser.add_argument("--out", type=Path, default=CASSETTE_DIR, help=f"directory (default {CASSETTE_DIR})")
    args = parser.parse_args(argv)
    for path in asyncio.run(record_all(args.out)):
        print(path, file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
