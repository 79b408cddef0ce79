"""The sandbox never serves a record stamped after its clock, and its ground truth is what a query sees.

The session sandbox's index runs to the end of the current hour. Each test here freezes the clock of a
second app over that same index half-way through the built-in cluster-down incident (so there are
always records after the clock: the rest of the incident), and computes its expectations for that
very instant: nothing depends on the wall clock.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import time
from collections.abc import AsyncIterator
from datetime import datetime, timedelta
from typing import Any

import httpx2
import pytest

from cm_mcp.api.times import format_utc
from cm_mcp.sandbox.app import create_app
from cm_mcp.sandbox.data import DataSpec, expected_counts
from cm_mcp.sandbox.runner import RunningSandbox

pytestmark = pytest.mark.anyio

FAR = {"start_time": "now-30d", "end_time": "now+30d"}  # asks for the future too
SCOPES: dict[str, list[dict[str, Any]]] = {
    "logs:atr": [{"application": "atr", "app_type": t, "domain": ["*"]} for t in ("kubernetes", "ec2")],
    "logs:klewer": [{"application": "klewer", "app_type": t, "domain": ["*"]} for t in ("kubernetes", "ec2")],
    "logs:quasar": [{"application": "quasar", "app_type": t, "domain": ["*"]} for t in ("kubernetes", "ec2")],
    "logs:eventops": [
        {
            "application": "eventops",
            "app_type": "serverless",
            "log_group": ["*"],
            "tenant": ["*"],
            "stage": ["*"],
        }
    ],
    "workloads:atr": [{"application": "atr", "app_type": t, "domain": ["*"]} for t in ("kubernetes", "ec2")],
}
NEWEST = {"newest": {"max": {"field": "@timestamp"}}}


class Frozen:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


class FrozenSandbox:
    def __init__(self, http: httpx2.AsyncClient, token: str, spec: DataSpec, clock: Frozen) -> None:
        self.http, self.token, self.spec, self.clock = http, token, spec, clock

    async def post(self, path: str, body: dict[str, Any]) -> Any:
        response = await self.http.post(path, json=body, headers={"Authorization": f"Bearer {self.token}"})
        assert response.status_code == 200, response.text
        return response.json()

    async def aggs(self, kind: str, scope: dict[str, Any], aggs: dict[str, Any]) -> Any:
        return (await self.post(f"/v2/{kind}/aggs", {**scope, **FAR, "aggs": aggs}))["data"]


def _half_way_through_cluster_down(spec: DataSpec) -> datetime:
    (incident,) = [i for i in spec.incidents if i.id == "builtin-atr-cluster-down"]
    start, _end = incident.window(spec.anchor)
    return start + timedelta(minutes=7, seconds=30, milliseconds=417)


@pytest.fixture
async def frozen(sandbox: RunningSandbox) -> AsyncIterator[FrozenSandbox]:
    """A second app over the session's index, its clock stopped half-way through an incident."""
    spec = sandbox.state.engine.spec
    clock = Frozen(_half_way_through_cluster_down(spec))
    app = create_app(sandbox.state.config, engine=sandbox.state.engine, clock=clock)
    token = app.state.sandbox.issue_token()
    transport = httpx2.ASGITransport(app=app)
    async with httpx2.AsyncClient(transport=transport, base_url="http://127.0.0.1") as http:
        yield FrozenSandbox(http, token, spec, clock)
    app.state.sandbox.close()


async def test_queries_see_exactly_what_is_stamped_by_now(frozen: FrozenSandbox) -> None:
    expected = expected_counts(frozen.spec, frozen.clock.now)
    everything = expected_counts(frozen.spec)
    assert expected["total"] < everything["total"], "the index holds records after the frozen clock"
    for key, scopes in SCOPES.items():
        kind = key.split(":")[0]
        seen = 0
        for scope in scopes:
            data = await frozen.aggs(kind, scope, NEWEST)
            seen += data["total_documents"]
            newest = data["aggregations"]["newest"]["value"]
            assert newest is None or newest <= frozen.clock.now.timestamp() * 1000
        assert seen == expected[key], key


async def test_scroll_and_batch_stop_at_now(frozen: FrozenSandbox) -> None:
    now_text = format_utc(frozen.clock.now)
    scope = {"application": "atr", "app_type": "kubernetes", "domain": ["pay.example.com"]}
    last_hour = {"start_time": format_utc(frozen.clock.now - timedelta(minutes=30)), "end_time": "now+1h"}
    page = await frozen.post("/v2/logs/scroll", {**scope, **last_hour, "size": 10_000})
    logs = page["data"]["logs"]
    assert logs and page["data"]["count"] == len(logs)
    assert max(h["_source"]["@timestamp"] for h in logs) <= now_text
    assert page["meta"]["time_range"]["end"] > now_text  # the request's window is echoed as asked

    token = (await frozen.post("/v2/logs/batch", {**scope, **FAR}))["data"]["token"]
    total = (await frozen.aggs("logs", scope, NEWEST))["total_documents"]
    deadline = time.monotonic() + 60
    while True:  # the job runs on the sandbox's clock: move it on; the export keeps the cut it was asked at
        frozen.clock.now += timedelta(seconds=1)
        entries = (await frozen.post("/v2/logs/batch/status", {"token": token}))["presigned_urls"]
        if all(e["completed"] for e in entries):
            break
        assert time.monotonic() < deadline, entries
        await asyncio.sleep(0.05)
    assert sum(e["log_count"] for e in entries) == total
    records = []
    for entry in entries:
        body = (await frozen.http.get(entry["presigned_url"])).content
        records += [json.loads(line) for line in gzip.decompress(body).decode().splitlines()]
    assert len(records) == total
    assert max(r["_source"]["@timestamp"] for r in records) <= now_text


async def test_scenario_counts_are_what_a_query_at_that_instant_returns(frozen: FrozenSandbox) -> None:
    truth = (await frozen.http.get("/_sandbox/scenarios")).json()
    assert truth["as_of"] == format_utc(frozen.clock.now)
    assert truth["documents"] == expected_counts(frozen.spec, frozen.clock.now)
    assert truth["data_window"]["end"] == format_utc(frozen.clock.now)
    for incident in truth["incidents"]:
        query = {k: v for k, v in incident["query"].items() if k not in ("size", "filters")}
        data = await frozen.aggs(
            incident["kind"], {**query, "end_time": "now+30d"}, {"n": {"filter": incident["record_filter"]}}
        )
        assert data["aggregations"]["n"]["doc_count"] == incident["count"], incident["id"]
    cluster = next(i for i in truth["incidents"] if i["id"] == "builtin-atr-cluster-down")
    assert cluster["complete"] is False and 7 * 45 <= cluster["count"] <= 8 * 45 < cluster["planned_count"]


async def test_billing_for_a_domain_only_a_scenario_knows(sandbox: RunningSandbox) -> None:
    headers = {"Authorization": f"Bearer {sandbox.token}"}
    async with httpx2.AsyncClient(base_url=sandbox.url) as http:
        known = await http.post(
            "/v1/query", json={"domain": "quasar-test.example.com", "time_range": "now-7d"}, headers=headers
        )
        unknown = await http.post(
            "/v1/query", json={"domain": "nope.example.com", "time_range": "now-7d"}, headers=headers
        )
    assert known.status_code == 200, known.text
    summary = known.json()["summary"]
    assert summary["domain"] == "quasar-test.example.com" and summary["infra_type"] == "EC2"
    assert unknown.status_code == 400 and "nope.example.com" in unknown.json()["detail"]


async def test_episodes_endpoint_lists_benign_bursts_as_of_the_clock(frozen: FrozenSandbox) -> None:
    body = (await frozen.http.get("/_sandbox/episodes")).json()
    assert body["as_of"] == format_utc(frozen.clock.now)
    episodes = body["episodes"]
    assert {"deploy", "cron-backup", "retry-blip", "failure-cluster"} <= {e["episode"] for e in episodes}
    now_text = format_utc(frozen.clock.now)
    assert all(e["count"] <= e["planned_count"] and e["start"] <= now_text for e in episodes if e["count"])
