"""Contract tests of CMClient against recorded sandbox exchanges: no sandbox, no network.

The cassettes are recorded and replayed by vcrpy (tests/record_cassettes.py has the configuration);
re-record with `.venv/bin/python -m tests.record_cassettes`.
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from vcr.errors import CannotOverwriteExistingCassetteException

from cm_mcp.api.client import CMClient
from cm_mcp.api.errors import AuthError, BadRequestError, BatchTokenExpiredError, RateLimitError
from cm_mcp.api.partitions import partitions_from_status
from cm_mcp.api.retry import RetryPolicy
from cm_mcp.sandbox.auth import issue_token
from cm_mcp.sandbox.runner import RunningSandbox
from tests.record_cassettes import CASSETTE_DIR, CASSETTE_ORIGIN, RECORDINGS, cassette_vcr, record

pytestmark = pytest.mark.anyio

CASSETTES = sorted(CASSETTE_DIR.glob("*.yaml"))
#: Replay talks to an address other than the recorded one (the discard port, where nothing listens):
#: cassettes hold no port, and a request the cassette lacks fails instead of reaching a server.
REPLAY_ORIGIN = "http://127.0.0.1:9"
JWT_SHAPE = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}")


def _load(name: str, library: Path = CASSETTE_DIR) -> list[dict[str, Any]]:
    data = yaml.safe_load((library / f"{name}.yaml").read_text(encoding="utf-8"))
    interactions: list[dict[str, Any]] = data["interactions"]
    return interactions


@asynccontextmanager
async def _replaying(name: str, library: Path = CASSETTE_DIR) -> AsyncIterator[CMClient]:
    with cassette_vcr(library).use_cassette(f"{name}.yaml"):
        # Any unexpired JWT: the client checks expiry locally; the cassette never saw this one.
        async with CMClient(
            api_url=REPLAY_ORIGIN, token=issue_token(), retry_policy=RetryPolicy(max_retries=0)
        ) as client:
            yield client


@pytest.fixture
async def replay(request: pytest.FixtureRequest) -> AsyncIterator[CMClient]:
    async with _replaying(request.param) as client:
        yield client


def _assert_no_secret(text: str) -> None:
    assert "bearer" not in text.lower() and "authorization" not in text.lower()
    assert not JWT_SHAPE.search(text), "a JWT-shaped string"


def test_every_recording_has_a_cassette() -> None:
    assert {p.stem for p in CASSETTES} == {r.name for r in RECORDINGS}


@pytest.mark.parametrize("path", CASSETTES, ids=lambda p: p.stem)
def test_no_secret_in_cassettes(path: Path) -> None:
    text = path.read_text(encoding="utf-8")
    _assert_no_secret(text)
    for interaction in yaml.safe_load(text)["interactions"]:
        assert {name.lower() for name in interaction["request"]["headers"]}.isdisjoint(
            {"authorization", "cookie", "host"}
        )
        assert interaction["request"]["uri"].startswith(CASSETTE_ORIGIN + "/")


async def test_the_recorder_writes_no_secret_and_no_port(sandbox: RunningSandbox, tmp_path: Path) -> None:
    """Record afresh against the session sandbox (its own port, its own JWT): the committed cassettes
    were clean when recorded, this checks that the recorder still keeps secrets and ports out."""
    chosen = [rec for rec in RECORDINGS if rec.name in ("logs_scroll", "logs_batch", "error_401")]
    written = await record(sandbox, tmp_path, chosen)
    assert sorted(path.name for path in written) == ["error_401.yaml", "logs_batch.yaml", "logs_scroll.yaml"]
    port = sandbox.url.rsplit(":", 1)[1]
    for path in written:
        text = path.read_text(encoding="utf-8")
        assert sandbox.token not in text
        _assert_no_secret(text)
        assert f"127.0.0.1:{port}" not in text and f"localhost:{port}" not in text
    # ... and what it wrote replays: the batch's presigned URLs now name the cassette origin
    interactions = _load("logs_batch", tmp_path)
    async with _replaying("logs_batch", tmp_path) as client:
        token = (await client.call("logs_batch", json.loads(interactions[0]["request"]["body"]))).data.token
        for _ in interactions[1:]:
            raw = await client.post("logs_batch_status", {"token": token})
    partitions = partitions_from_status(raw, "logs")
    assert partitions and all(p.ready and p.url and p.url.startswith(CASSETTE_ORIGIN) for p in partitions)


async def test_replay_refuses_a_request_it_did_not_record() -> None:
    body = json.loads(_load("billing_query")[0]["request"]["body"])
    async with _replaying("billing_query") as client:
        with pytest.raises(CannotOverwriteExistingCassetteException):
            await client.post("billing_query", {**body, "time_range": "now-2d/d"})  # another body
        await client.post("billing_query", body)
        with pytest.raises(CannotOverwriteExistingCassetteException):
            await client.post("billing_query", body)  # recorded once, so played once


@pytest.mark.parametrize("replay", ["logs_scroll"], indirect=True)
async def test_logs_scroll_pages_to_the_end(replay: CMClient) -> None:
    body = _load("logs_scroll")[0]["request"]["body"]

    page = await replay.call("logs_scroll", json.loads(body))
    ids = [h.id for h in page.data.logs]
    total = page.data.count
    while page.meta.scroll_id:
        page = await replay.call("logs_scroll", {"scroll_id": page.meta.scroll_id})
        assert page.data.count == total
        ids.extend(h.id for h in page.data.logs)
    assert len(ids) == len(set(ids)) == total == 5


@pytest.mark.parametrize("name", ["logs_batch", "workloads_batch", "v1_logs_batch"])
async def test_batch_then_status_until_ready(name: str) -> None:

    interactions = _load(name)
    async with _replaying(name) as client:
        first = json.loads(interactions[0]["request"]["body"])
        endpoint = {"logs_batch": "logs_batch", "workloads_batch": "workloads_batch"}.get(
            name, "v1_logs_batch"
        )
        status_endpoint = {
            "logs_batch": "logs_batch_status",
            "workloads_batch": "workloads_batch_status",
            "v1_logs_batch": "v1_logs_batch_urls",
        }[name]
        batch = await client.call(endpoint, first)
        token = batch.data.token if hasattr(batch, "data") else batch.token  # type: ignore[union-attr]
        kind = {"logs_batch": "logs", "workloads_batch": "workloads", "v1_logs_batch": "v1"}[name]
        for _ in interactions[1:]:
            raw = await client.post(status_endpoint, {"token": token})
            partitions = partitions_from_status(raw, kind)  # type: ignore[arg-type]
        assert partitions and all(p.ready and p.url and p.url.startswith(CASSETTE_ORIGIN) for p in partitions)
        if kind != "v1":
            assert all(p.count is not None for p in partitions)


@pytest.mark.parametrize("replay", ["logs_aggs"], indirect=True)
async def test_logs_aggs(replay: CMClient) -> None:

    bodies = [json.loads(i["request"]["body"]) for i in _load("logs_aggs")]
    result = await replay.call("logs_aggs", bodies[0])
    levels = result.data.aggregations["levels"]["buckets"]
    assert sum(b["doc_count"] for b in levels) == result.data.total_documents
    assert result.meta.application == "atr" and result.meta.domain == ["pay.example.com"]
    serverless = await replay.call("logs_aggs", bodies[1])
    assert serverless.meta.tenant == ["globex"] and serverless.meta.log_group == ["*"]


@pytest.mark.parametrize("replay", ["workloads_scroll"], indirect=True)
async def test_workloads_scroll(replay: CMClient) -> None:

    body = json.loads(_load("workloads_scroll")[0]["request"]["body"])
    page = await replay.call("workloads_scroll", body)
    assert page.data.count == len(page.data.workloads) == 3
    assert page.meta.workloads_available is not None and page.meta.workloads_available > 3
    assert page.meta.scroll_id and set(page.data.workloads[0].source) <= {"@timestamp", "status"}


@pytest.mark.parametrize("replay", ["workloads_aggs"], indirect=True)
async def test_workloads_aggs(replay: CMClient) -> None:

    result = await replay.call("workloads_aggs", json.loads(_load("workloads_aggs")[0]["request"]["body"]))
    assert result.data.aggregations["by_workflow"]["buckets"] and result.data.total_documents


@pytest.mark.parametrize("replay", ["v1_logs_scroll"], indirect=True)
async def test_v1_scroll(replay: CMClient) -> None:

    bodies = [json.loads(i["request"]["body"]) for i in _load("v1_logs_scroll")]
    page = await replay.call("v1_logs_scroll", bodies[0])
    assert isinstance(page.daily_requests_remaining, int) and len(page.logs) <= 2
    if len(bodies) > 1:
        assert page.has_more and page.scroll_id == bodies[1]["scroll_id"]
        await replay.call("v1_logs_scroll", bodies[1])


@pytest.mark.parametrize("replay", ["billing_query"], indirect=True)
async def test_billing(replay: CMClient) -> None:
    result = await replay.call("billing_query", {"domain": "pay.example.com", "time_range": "now-30d/d"})
    assert result.summary.domain == "pay.example.com" and result.summary.infra_type


@pytest.mark.parametrize(
    ("name", "endpoint", "error", "text"),
    [
        ("error_400_v2", "logs_scroll", BadRequestError, "domain"),
        ("error_400_v1", "v1_logs_scroll", BadRequestError, "Invalid application type"),
        ("error_401", "logs_aggs", AuthError, "Unauthorized"),
        ("error_404_token", "workloads_batch_status", BatchTokenExpiredError, "No record of this token"),
        ("error_429", "billing_query", RateLimitError, "Daily request limit"),
    ],
)
async def test_errors_are_classified(name: str, endpoint: str, error: type[Exception], text: str) -> None:

    body = json.loads(_load(name)[0]["request"]["body"])
    async with _replaying(name) as client:
        with pytest.raises(error, match=text) as info:
            await client.post(endpoint, body)
    if isinstance(info.value, RateLimitError):
        assert info.value.retry_after is not None and info.value.retry_after > 5
        assert client.quota.exhausted_until("billing_query") is not None
