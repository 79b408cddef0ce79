"""The sandbox over real HTTP, through the foundation's CMClient (and raw httpx2 for exact bodies)."""

from __future__ import annotations

import asyncio
import gzip
import itertools
import json
import time
import uuid
import zlib
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest

from cm_mcp.api.client import CMClient
from cm_mcp.api.errors import (
    AuthError,
    BadRequestError,
    BatchTokenExpiredError,
    JWTExpiredError,
    NotFoundError,
    RateLimitError,
    TransportError,
)
from cm_mcp.api.responses import parse_response
from cm_mcp.api.times import format_utc
from cm_mcp.sandbox.app import create_app
from cm_mcp.sandbox.auth import issue_token
from cm_mcp.sandbox.config import SandboxConfig
from cm_mcp.sandbox.engine import SandboxEngine
from cm_mcp.sandbox.runner import RunningSandbox, start_sandbox_thread
from tests.conftest import fast_retries

pytestmark = pytest.mark.anyio

# Frozen once for the module, in the past (the start of the hour at import): records before it never
# change, so counts taken by two requests agree whenever each request runs (the sandbox serves what is
# stamped by the time it answers, so a window reaching the present grows between requests).
_PAST_END = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
WINDOW = {"start_time": format_utc(_PAST_END - timedelta(days=8)), "end_time": format_utc(_PAST_END)}
PAY = {"application": "atr", "app_type": "kubernetes", "domain": ["pay.example.com"], **WINDOW}
WORKLOADS = {"application": "atr", "app_type": "ec2", "domain": ["*"], **WINDOW}
V1 = {"application": "atr", "app_type": "caas", "domain": "pay.example.com", "time_range": "now-8d"}


def _is_uuid(value: str | None) -> bool:
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


async def _raw(
    sandbox: RunningSandbox, path: str, body: Any, token: str | None = "default"
) -> httpx2.Response:
    headers = {"Authorization": f"Bearer {sandbox.token if token == 'default' else token}"} if token else {}
    async with httpx2.AsyncClient(base_url=sandbox.url) as http:
        return await http.post(path, json=body, headers=headers)


async def _get(sandbox: RunningSandbox, path: str) -> Any:
    # Async: the session sandbox serves from this event loop, a blocking client would deadlock it.
    async with httpx2.AsyncClient(base_url=sandbox.url) as http:
        return (await http.get(path)).json()


async def _total(client: CMClient, kind: str, body: dict[str, Any]) -> int:
    aggs = {"n": {"value_count": {"field": "_id"}}}
    query = {k: v for k, v in body.items() if k not in ("size", "filters", "fields")}
    if body.get("filters"):
        aggs = {"n": {"filter": {"bool": {"filter": body["filters"]}}}}
    result = await client.call(f"{kind}_aggs", {**query, "aggs": aggs})
    if body.get("filters"):
        return int(result.data.aggregations["n"]["doc_count"])
    assert result.data.total_documents is not None
    return result.data.total_documents


# Generous: partitions are written in the background and a loaded CI machine can be slow.
BATCH_DEADLINE_SECONDS = 60.0


async def _wait_completed(client: CMClient, endpoint: str, token: str) -> list[dict[str, Any]]:
    deadline = time.monotonic() + BATCH_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        body = await client.post(endpoint, {"token": token})
        entries: list[dict[str, Any]] = body["presigned_urls"]
        if all(e.get("completed") or e.get("ready") for e in entries):
            return entries
        for entry in entries:
            if not (entry.get("completed") or entry.get("ready")):
                assert entry["presigned_url"] == "null"  # reference item 25: the string, not null
        await asyncio.sleep(0.05)
    raise AssertionError("batch did not complete")


async def _wait_settled(client: CMClient, endpoint: str, token: str) -> Any:
    """The first status in which every partition has completed or failed."""
    deadline = time.monotonic() + BATCH_DEADLINE_SECONDS
    while time.monotonic() < deadline:
        status = await client.call(endpoint, {"token": token})
        if all(e.status in ("completed", "failed") for e in status.presigned_urls):
            return status
        await asyncio.sleep(0.05)
    raise AssertionError("batch did not settle")


# --- shapes ------------------------------------------------------------------------------------------


async def test_v2_logs_shapes(client: CMClient) -> None:
    page = await client.call("logs_scroll", {**PAY, "size": 5, "fields": ["@timestamp", "message"]})
    assert len(page.data.logs) == 5
    assert page.data.count is not None and page.data.count > 5
    assert page.meta.api_version == "v2" and _is_uuid(page.meta.request_id)
    assert page.meta.rate_limit is not None and isinstance(page.meta.rate_limit.daily_remaining, int)
    assert page.meta.time_range is not None and page.meta.time_range.end is not None
    assert page.meta.scroll_id and page.meta.app_type is None  # logs scroll echoes nothing (item 32)
    hit = page.data.logs[0]
    assert hit.index and hit.index.startswith("logs-atr-") and hit.id and hit.score == 1.0
    assert set(hit.source) <= {"@timestamp", "message"}

    aggs = {
        "levels": {"terms": {"field": "regex.extractions.logLevel", "size": 10}},
        "hourly": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h"}},
    }
    result = await client.call("logs_aggs", {**PAY, "aggs": aggs})
    assert result.data.total_documents == page.data.count
    assert sum(b["doc_count"] for b in result.data.aggregations["levels"]["buckets"]) == page.data.count
    assert result.meta.application == "atr" and result.meta.app_type == "kubernetes"
    assert result.meta.domain == ["pay.example.com"]

    serverless = {"application": "eventops", "app_type": "serverless", "log_group": ["*"], "tenant": ["acme"]}
    batch = await client.call("logs_batch", {**serverless, "stage": ["prod"], **WINDOW})
    assert batch.data.token and batch.meta.tenant == ["acme"] and batch.meta.stage == ["prod"]
    assert batch.meta.log_group == ["*"] and batch.meta.domain is None
    status = await client.call("logs_batch_status", {"token": f"  {batch.data.token} "})
    assert status.presigned_urls and all(e.log_count is not None for e in status.presigned_urls)


async def test_v2_workloads_shapes(client: CMClient) -> None:
    page = await client.call("workloads_scroll", {**WORKLOADS, "size": 7})
    assert page.data.count == 7 == len(page.data.workloads)  # page size for workloads (item 19)
    assert page.meta.workloads_available is not None and page.meta.workloads_available > 7
    assert page.meta.app_type == "ec2" and page.meta.domain == ["*"] and page.meta.scroll_id
    assert page.data.workloads[0].index.startswith("workloads-atr-")  # type: ignore[union-attr]
    aggs = await client.call(
        "workloads_aggs", {**WORKLOADS, "aggs": {"wf": {"terms": {"field": "workflow.name"}}}}
    )
    assert aggs.data.total_documents == page.meta.workloads_available
    assert aggs.meta.application is None and aggs.meta.app_type == "ec2"
    batch = await client.call("workloads_batch", WORKLOADS)
    assert batch.meta.domain == ["*"]
    entries = await _wait_completed(client, "workloads_batch_status", batch.data.token)
    assert sum(e["workload_count"] for e in entries) == page.meta.workloads_available


async def test_v1_and_billing_shapes(client: CMClient) -> None:
    page = await client.call("v1_logs_scroll", {**V1, "size": 3})
    assert len(page.logs) == 3 and page.has_more is True and page.scroll_id
    assert isinstance(page.daily_requests_remaining, int)
    nxt = await client.call("v1_logs_scroll", {**V1, "size": 3, "scroll_id": page.scroll_id})
    assert {h["_id"] for h in nxt.logs}.isdisjoint(h["_id"] for h in page.logs)
    batch = await client.call("v1_logs_batch", {**V1, "filters": {"regex.extractions.logLevel": "ERROR"}})
    assert batch.token and batch.logs == [{"domain": "pay.example.com", "time_range": "now-8d"}]
    entries = await _wait_completed(client, "v1_logs_batch_urls", batch.token)
    urls = parse_response("v1_logs_batch_urls", {"presigned_urls": entries})
    assert all(
        e.ready and e.status == "completed" and "/" in (e.time_range or "") for e in urls.presigned_urls
    )  # type: ignore[union-attr]
    bill = await client.call("billing_query", {"domain": "pay.example.com", "time_range": "now-30d/d"})
    assert bill.summary.domain == "pay.example.com" and bill.summary.time_range == "now-30d/d"
    assert bill.summary.ticket_count is not None and bill.summary.wbs
    assert isinstance(bill.daily_requests_remaining, int)


# --- scroll and batch correctness --------------------------------------------------------------------


async def test_scroll_to_end_equals_aggs_count(client: CMClient) -> None:
    body = {**PAY, "size": 1000, "filters": [{"terms": {"regex.extractions.logLevel": ["ERROR", "WARN"]}}]}
    expected = await _total(client, "logs", body)
    page = await client.call("logs_scroll", body)
    ids: list[str] = []
    while True:
        assert page.data.count == expected  # the total, on every page
        ids.extend(h.id for h in page.data.logs if h.id)
        if not page.meta.scroll_id:
            break
        page = await client.call("logs_scroll", {"scroll_id": page.meta.scroll_id})
    assert len(ids) == len(set(ids)) == expected > 1000

    wl = {**WORKLOADS, "size": 500}
    expected = await _total(client, "workloads", wl)
    page_w = await client.call("workloads_scroll", wl)
    seen = [h.id for h in page_w.data.workloads]
    while page_w.meta.scroll_id:
        page_w = await client.call("workloads_scroll", {"scroll_id": page_w.meta.scroll_id})
        seen.extend(h.id for h in page_w.data.workloads)
    assert len(seen) == len(set(seen)) == expected


async def test_scroll_id_unknown_is_404(client: CMClient, sandbox: RunningSandbox) -> None:
    with pytest.raises(NotFoundError):
        await client.call("logs_scroll", {"scroll_id": "c2J4OnVua25vd24"})
    page = await client.call("logs_scroll", {**PAY, "size": 2})
    response = await _raw(sandbox, "/v2/workloads/scroll", {"scroll_id": page.meta.scroll_id})
    assert response.status_code == 404 and "scroll_id" in response.json()["message"]


async def test_batch_partitions_add_up_and_files_hold_them(client: CMClient) -> None:
    body = {"application": "atr", "app_type": "kubernetes", "domain": ["*"], **WINDOW}
    expected = await _total(client, "logs", body)
    batch = await client.call("logs_batch", body)
    entries = await _wait_completed(client, "logs_batch_status", batch.data.token)
    assert len(entries) == -(-expected // 1500) > 1  # ceil(count / target_per_partition)
    assert sum(e["log_count"] for e in entries) == expected
    for a, b in itertools.pairwise(entries):
        assert a["end_time"] == b["start_time"]  # contiguous
    ids: set[str] = set()
    async with httpx2.AsyncClient() as http:
        for entry in entries:
            response = await http.get(entry["presigned_url"])
            assert response.status_code == 200
            assert response.headers["content-type"] == "application/gzip"
            lines = gzip.decompress(response.content).decode().splitlines()
            assert len(lines) == entry["log_count"]
            hits = [json.loads(line) for line in lines]
            lo, hi = entry["start_time"], entry["end_time"]
            assert all(lo <= h["_source"]["@timestamp"] <= hi for h in hits)
            ids.update(h["_id"] for h in hits)
    assert len(ids) == expected


async def test_presigned_url_expired_and_tampered(client: CMClient, sandbox: RunningSandbox) -> None:
    batch = await client.call("workloads_batch", {**WORKLOADS, "domain": ["ops.example.com"]})
    entries = await _wait_completed(client, "workloads_batch_status", batch.data.token)
    url = entries[0]["presigned_url"]
    async with httpx2.AsyncClient() as http:
        tampered = await http.get(url.replace("X-Amz-Signature=", "X-Amz-Signature=0"))
        assert tampered.status_code == 403 and "<Code>SignatureDoesNotMatch</Code>" in tampered.text
        assert tampered.headers["content-type"].startswith("application/xml")
        key = url.split("/_s3/", 1)[1].split("?", 1)[0]
        old = sandbox.state.presigner.sign(f"{sandbox.url}/_s3", key, 60, now=time.time() - 120)
        expired = await http.get(old)
        assert expired.status_code == 403 and "Request has expired" in expired.text
        assert (await http.get(url)).status_code == 200


# --- errors ------------------------------------------------------------------------------------------


async def test_v2_400_names_the_field_and_costs_no_quota(client: CMClient, sandbox: RunningSandbox) -> None:
    first = await client.call("logs_aggs", {**PAY, "aggs": {"n": {"value_count": {"field": "_id"}}}})
    bad = {**PAY, "size": 10, "filters": [{"term": {}}]}
    response = await _raw(sandbox, "/v2/logs/scroll", bad)
    assert response.status_code == 400
    body = response.json()
    assert body["error"] == "Invalid input" and body["details"].startswith("filters[0].term")
    with pytest.raises(BadRequestError, match="domain"):
        await client.post(
            "logs_aggs", {**PAY, "domain": [], "aggs": {"n": {"value_count": {"field": "_id"}}}}
        )
    again = await client.call("logs_aggs", {**PAY, "aggs": {"n": {"value_count": {"field": "_id"}}}})
    assert first.meta.rate_limit and again.meta.rate_limit
    assert again.meta.rate_limit.daily_remaining == first.meta.rate_limit.daily_remaining - 1  # type: ignore[operator]
    stats = await _get(sandbox, "/_sandbox/stats")
    assert stats["invalid_requests"]["logs_scroll"] >= 1
    assert stats["requests"]["/v2/logs/scroll"]["by_status"]["400"] >= 1


async def test_v1_400_and_401_shapes(sandbox: RunningSandbox) -> None:
    response = await _raw(sandbox, "/v1/logs/scroll", {"application": "nope", "time_range": "now-15m/m"})
    assert response.status_code == 400
    assert response.json() == {
        "status_code": 400,
        "detail": "Invalid application type. Must be one of: atr, klewer, eventops, quasar",
    }
    missing = await _raw(sandbox, "/v1/query", {"time_range": "now-1d"})
    assert missing.json()["detail"] == "Invalid input. Missing domain variable in payload"
    unknown = await _raw(sandbox, "/v1/logs/batch/urls", {"token": "1OTk3LCJpc3MiOi"})
    assert unknown.status_code == 401 and unknown.json()["status_code"] == 401


async def test_401_missing_invalid_expired_jwt(sandbox: RunningSandbox) -> None:
    body = {**PAY, "size": 1}
    assert (await _raw(sandbox, "/v2/logs/scroll", body, token=None)).status_code == 401
    forged = issue_token(secret="some-other-secret-that-is-32-bytes!!")
    response = await _raw(sandbox, "/v2/logs/scroll", body, token=forged)
    assert response.status_code == 401 and "message" in response.json()
    expired = issue_token(ttl_seconds=60, now=time.time() - 120)
    assert (await _raw(sandbox, "/v2/logs/scroll", body, token=expired)).status_code == 401
    async with CMClient(api_url=sandbox.url, token=forged, retry_policy=fast_retries(0)) as bad:
        with pytest.raises(AuthError):
            await bad.call("logs_scroll", body)
    async with CMClient(api_url=sandbox.url, token=expired) as old:
        with pytest.raises(JWTExpiredError):  # refused locally: nothing sent
            await old.call("logs_scroll", body)
    # iat is whole seconds, so a 1 s token can already be dead when it arrives: give it 3 s and
    # sleep until just past its own exp.
    short = sandbox.state.issue_token("short-lived", ttl_seconds=3)
    assert (await _raw(sandbox, "/v2/logs/scroll", body, token=short)).status_code == 200
    expires_at = jwt.decode(short, options={"verify_signature": False})["exp"]
    await asyncio.sleep(max(0.0, expires_at - time.time()) + 0.2)
    assert (await _raw(sandbox, "/v2/logs/scroll", body, token=short)).status_code == 401


async def test_404_unknown_batch_token(client: CMClient, sandbox: RunningSandbox) -> None:
    with pytest.raises(BatchTokenExpiredError):
        await client.call("logs_batch_status", {"token": "a6EBWDj2yr5v1UUG"})
    response = await _raw(sandbox, "/v2/workloads/batch/status", {"token": "Paw21VHC3VxAs7F4"})
    assert response.status_code == 404
    assert response.json() == {"message": "No record of this token. Note: Tokens expire after 2 hours"}
    logs_token = (await client.call("logs_batch", PAY)).data.token
    with pytest.raises(BatchTokenExpiredError):  # a logs token is unknown to the workloads family
        await client.call("workloads_batch_status", {"token": logs_token})
    blank = await _raw(sandbox, "/v2/logs/batch/status", {"token": "   "})
    assert blank.status_code == 400 and blank.json()["details"].startswith("token")


class _Clock:
    def __init__(self) -> None:
        self.now = datetime.now(UTC).replace(hour=23, minute=59, second=0)

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
async def small_quota(sandbox: RunningSandbox) -> AsyncIterator[tuple[httpx2.AsyncClient, _Clock, str]]:
    """A second app sharing the session's index, with 2 billing requests a day and a movable clock."""
    clock = _Clock()
    config = sandbox.state.config.model_copy(update={"quota_limits": {"billing_query": 2}})
    app = create_app(config, engine=sandbox.state.engine, clock=clock)
    token = app.state.sandbox.issue_token()
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        yield http, clock, token
    app.state.sandbox.close()


async def test_429_after_quota_then_reset_at_midnight(
    small_quota: tuple[httpx2.AsyncClient, _Clock, str],
) -> None:
    http, clock, token = small_quota
    headers = {"Authorization": f"Bearer {token}"}
    body = {"domain": "pay.example.com", "time_range": "now-1d"}
    remaining = [(await http.post("/v1/query", json=body, headers=headers)).json() for _ in range(2)]
    assert [r["daily_requests_remaining"] for r in remaining] == [1, 0]
    assert (await http.post("/v1/query", json={"time_range": "now-1d"}, headers=headers)).status_code == 400
    response = await http.post("/v1/query", json=body, headers=headers)
    assert response.status_code == 429 and response.json()["status_code"] == 429
    assert response.headers["retry-after"] == "60"  # seconds to 00:00 UTC
    client = CMClient(api_url="http://127.0.0.1", token=token, transport=http._transport)
    async with client:
        with pytest.raises(RateLimitError):
            await client.call("billing_query", body)
    clock.now += timedelta(minutes=2)  # a new UTC day
    response = await http.post("/v1/query", json=body, headers=headers)
    assert response.status_code == 200 and response.json()["daily_requests_remaining"] == 1


# --- incidents ---------------------------------------------------------------------------------------


async def test_every_incident_found_with_its_exact_count(client: CMClient, sandbox: RunningSandbox) -> None:
    scenarios = (await _get(sandbox, "/_sandbox/scenarios"))["incidents"]
    ids = {s["id"] for s in scenarios}
    assert {"test-quasar-disk-full", "test-eventops-timeouts", "builtin-atr-cluster-down"} <= ids
    for truth in scenarios:
        query = {k: v for k, v in truth["query"].items() if k not in ("size", "filters")}
        aggs = {"incident": {"filter": truth["record_filter"]}}
        result = await client.call(f"{truth['kind']}_aggs", {**query, "aggs": aggs})
        assert result.data.aggregations["incident"]["doc_count"] == truth["count"], truth["id"]
        # The incident's own window holds all of it (plus background records of the same stream).
        assert result.data.total_documents is not None and result.data.total_documents >= truth["count"]


# --- faults ------------------------------------------------------------------------------------------


@pytest.fixture
async def faults(sandbox: RunningSandbox) -> AsyncIterator[httpx2.AsyncClient]:
    async with httpx2.AsyncClient(base_url=sandbox.url) as http:
        before = (await http.get("/_sandbox/faults")).json()
        yield http
        await http.post("/_sandbox/faults", json=before)  # every fault as it was, whatever the test set


async def test_503_fraction_then_retries_succeed(client: CMClient, faults: httpx2.AsyncClient) -> None:
    config = (await faults.post("/_sandbox/faults", json={"error_rate": 0.5, "seed": 3})).json()
    assert config["error_rate"] == 0.5
    for _ in range(8):
        page = await client.call("logs_scroll", {**PAY, "size": 1})
        assert len(page.data.logs) == 1
    stats = (await faults.get("/_sandbox/stats")).json()
    assert sum(stats["faults"].get(code, 0) for code in ("502", "503", "504")) > 0


async def test_injected_faults_use_each_endpoints_error_shape(
    sandbox: RunningSandbox, faults: httpx2.AsyncClient
) -> None:
    await faults.post("/_sandbox/faults", json={"error_rate": 1.0})
    v1 = await _raw(sandbox, "/v1/query", {"domain": "d1", "time_range": "now-1d"})
    v2 = await _raw(sandbox, "/v2/logs/scroll", {**PAY, "size": 1})
    await faults.post("/_sandbox/faults", json={"error_rate": 0, "burst_429": 2})
    v1_throttled = await _raw(sandbox, "/v1/query", {"domain": "d1", "time_range": "now-1d"})
    v2_throttled = await _raw(sandbox, "/v2/logs/scroll", {**PAY, "size": 1})
    assert v1.status_code in (502, 503, 504) and set(v1.json()) == {"status_code", "detail"}
    assert v1.json()["status_code"] == v1.status_code and v1.headers["x-request-id"]
    assert v2.status_code in (502, 503, 504) and set(v2.json()) == {"message"}
    assert v1_throttled.status_code == 429 and v1_throttled.headers["retry-after"] == "1"
    assert v1_throttled.json() == {"status_code": 429, "detail": "Too Many Requests (throttled)"}
    assert v2_throttled.json() == {"message": "Too Many Requests (throttled)"}


async def test_reset_is_a_transport_error(sandbox: RunningSandbox, faults: httpx2.AsyncClient) -> None:
    await faults.post("/_sandbox/faults", json={"reset_rate": 1.0})
    async with CMClient(api_url=sandbox.url, token=sandbox.token, retry_policy=fast_retries(0)) as c:
        with pytest.raises(TransportError):
            await c.call("logs_scroll", {**PAY, "size": 1})
    await faults.post("/_sandbox/faults", json={"reset_rate": 0, "burst_429": 1})
    async with CMClient(api_url=sandbox.url, token=sandbox.token, retry_policy=fast_retries(2)) as c:
        page = await c.call("logs_scroll", {**PAY, "size": 1})  # Retry-After: 1 -> retried once
    assert page.data.logs


async def test_failed_partitions(client: CMClient, faults: httpx2.AsyncClient) -> None:
    await faults.post("/_sandbox/faults", json={"partition_fail_rate": 1.0})
    batch = await client.call("workloads_batch", WORKLOADS)
    status = await _wait_settled(client, "workloads_batch_status", batch.data.token)
    assert {e.status for e in status.presigned_urls} == {"failed"}
    assert all(e.presigned_url == "null" and e.completed is False for e in status.presigned_urls)


@pytest.mark.parametrize(
    ("fault", "failure"),
    [
        ("truncated_file_rate", httpx2.RemoteProtocolError),  # the connection drops mid-body
        ("corrupt_file_rate", (EOFError, OSError, zlib.error)),  # a complete response, damaged bytes
    ],
)
async def test_transfer_faults_hit_one_download_not_the_file(
    client: CMClient, sandbox: RunningSandbox, faults: httpx2.AsyncClient, fault: str, failure: Any
) -> None:
    """A damaged transfer is the network's: the same URL downloads intact once the fault clears (on a
    retry), unlike a damaged file, which would stay damaged."""
    batch = await client.call("workloads_batch", {**WORKLOADS, "domain": ["ops.example.com"]})
    (entry, *_) = await _wait_completed(client, "workloads_batch_status", batch.data.token)
    await faults.post("/_sandbox/faults", json={fault: 1.0})
    async with httpx2.AsyncClient() as http:
        with pytest.raises(failure):
            await _download_and_unzip(http, entry["presigned_url"])
        await faults.post("/_sandbox/faults", json={fault: 0})
        response = await http.get(entry["presigned_url"])
    lines = gzip.decompress(response.content).decode().splitlines()
    assert len(lines) == entry["workload_count"] > 0
    stats = await _get(sandbox, "/_sandbox/stats")
    assert stats["faults"][f"download_{fault.split('_')[0]}"] >= 1


async def _download_and_unzip(http: httpx2.AsyncClient, url: str) -> bytes:
    return gzip.decompress((await http.get(url)).content)


async def test_download_5xx_is_the_file_hosts_answer(
    client: CMClient, sandbox: RunningSandbox, faults: httpx2.AsyncClient
) -> None:
    batch = await client.call("workloads_batch", {**WORKLOADS, "domain": ["ops.example.com"]})
    (entry, *_) = await _wait_completed(client, "workloads_batch_status", batch.data.token)
    await faults.post("/_sandbox/faults", json={"download_error_rate": 1.0})
    async with httpx2.AsyncClient() as http:
        failed = await http.get(entry["presigned_url"])
        await faults.post("/_sandbox/faults", json={"download_error_rate": 0})
        ok = await http.get(entry["presigned_url"])
    assert failed.status_code in (500, 503) and "<Code>" in failed.text
    assert ok.status_code == 200


# --- index cache, runners, CLI -----------------------------------------------------------------------


async def test_index_cache_is_reused_with_same_counts(
    sandbox: RunningSandbox, sandbox_data_dir: Path
) -> None:
    engine = sandbox.state.engine
    reopened = SandboxEngine.open_or_build(engine.spec, sandbox_data_dir)
    assert reopened.info.reused and reopened.info.counts == engine.info.counts
    assert reopened.info.cache_dir == engine.info.cache_dir


def test_thread_runner(sandbox_config: SandboxConfig) -> None:
    start_sandbox_thread(sandbox_config).stop()  # builds the index cache (or reuses the session's)
    handle = start_sandbox_thread(sandbox_config)
    try:
        health = httpx2.get(f"{handle.url}/_sandbox/health").json()
        assert health["status"] == "ok" and health["index_reused"] is True
        response = httpx2.post(
            f"{handle.url}/v1/query",
            json={"domain": "pay.example.com", "time_range": "now-1d"},
            headers={"Authorization": f"Bearer {handle.token}"},
        )
        assert response.status_code == 200
    finally:
        handle.stop()
    assert not handle.thread.is_alive()


def test_a_cache_from_another_engine_version_is_rebuilt(tmp_path: Path) -> None:
    """The index cache is only a cache: an unusable one is rebuilt, never a crash."""
    from cm_mcp.sandbox.data import DataSpec
    from cm_mcp.sandbox.engine import SandboxEngine

    spec = DataSpec.create(volume=300, workloads_per_day=30, builtin_incidents=False)
    first = SandboxEngine.open_or_build(spec, tmp_path)
    expected = first.info.counts
    # the engine's own marker: DuckDB's manifest (tantivy's schema file, were it the engine)
    markers = [
        *first.info.cache_dir.glob("*/cm-duck-manifest.json"),
        *first.info.cache_dir.glob("*/cm-dsl-schema.json"),
    ]
    assert markers
    for marker in markers:
        marker.write_text('{"version": -1}')  # as if written by another engine version
    again = SandboxEngine.open_or_build(spec, tmp_path)
    assert again.info.counts == expected
    assert again.info.reused is False
