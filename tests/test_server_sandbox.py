"""Every tool against the real sandbox over HTTP, through an in-memory MCP client session."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client

from cm_mcp.api.client import CMClient
from cm_mcp.api.settings import Settings
from cm_mcp.sandbox.runner import RunningSandbox
from cm_mcp.server.app import build_server
from cm_mcp.server.runtime import pointed_at
from tests.conftest import fast_retries, frozen
from tests.token_ruler import model_tokens

pytestmark = pytest.mark.anyio

LEVEL = "regex.extractions.logLevel"
ATR_K8S = {"application": "atr", "app_type": "kubernetes", "domain": ["*"]}


@pytest.fixture
async def mcp(sandbox: RunningSandbox, tmp_path: Path) -> AsyncIterator[Client]:
    async with _session(sandbox, _settings(sandbox, tmp_path)) as client:
        yield client


def _settings(sandbox: RunningSandbox, data_dir: Path, **changes: Any) -> Settings:
    return pointed_at(Settings(data_dir=data_dir, **changes), sandbox.url, sandbox.token)


@asynccontextmanager
async def _session(sandbox: RunningSandbox, settings: Settings) -> AsyncIterator[Client]:
    async with (
        CMClient(api_url=sandbox.url, token=sandbox.token, retry_policy=fast_retries()) as api,
        Client(build_server(settings, client=api), raise_exceptions=True) as client,
    ):
        yield client


async def _get(sandbox: RunningSandbox, path: str) -> Any:
    async with httpx2.AsyncClient() as http:
        return (await http.get(sandbox.url + path)).json()


async def _api_requests(sandbox: RunningSandbox) -> int:
    stats = await _get(sandbox, "/_sandbox/stats")
    return sum(entry["total"] for path, entry in stats["requests"].items() if not path.startswith("/_"))


async def _incident(sandbox: RunningSandbox, incident_id: str) -> dict[str, Any]:
    scenarios = await _get(sandbox, "/_sandbox/scenarios")
    return next(item for item in scenarios["incidents"] if item["id"] == incident_id)


def _iso_ms(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _template_rows(text: str, count: int) -> str:
    """The first `count` template rows of a rendered log summary, with their examples."""
    table = text.split("template / e.g. example\n", 1)[1]
    rows: list[str] = []
    for line in table.splitlines():
        if not line.startswith("  "):
            break
        if (
            not line.startswith("      e.g.")
            and len(rows)
            and sum(1 for r in rows if not r.startswith("      ")) == count
        ):
            break
        rows.append(line)
    return "\n".join(rows)


def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


async def test_invalid_input_makes_no_upstream_request(mcp: Client, sandbox: RunningSandbox) -> None:
    before = await _api_requests(sandbox)
    for arguments in (
        {**ATR_K8S, "application": "eventops", "start_time": "now-1h", "end_time": "now", "size": 5},
        {
            **ATR_K8S,
            "start_time": "now-1h",
            "end_time": "now",
            "size": 5,
            "filters": [{"prefix": {"a": "b"}}],
        },
        {"scroll_id": ""},
    ):
        result = await mcp.call_tool("logs_scroll", arguments)
        assert result.is_error
    assert await _api_requests(sandbox) == before


async def test_logs_aggs_preserves_totals(mcp: Client) -> None:
    result = await mcp.call_tool(
        "logs_aggs",
        {
            **ATR_K8S,
            "start_time": "now-7d",
            "end_time": "now",
            "aggs": {
                "levels": {"terms": {"field": LEVEL, "size": 2}},
                "over_time": {"date_histogram": {"field": "@timestamp", "fixed_interval": "5m"}},
            },
        },
    )
    assert not result.is_error, _text(result)
    summary = result.structured_content["summary"]  # type: ignore[index]
    total = summary["total_documents"]
    assert total > 0
    sections = {section["name"]: section for section in summary["sections"]}
    levels = sections["levels"]
    assert sum(count for _, count in levels["buckets"]) + levels.get("other", 0) == total
    histogram = sections["over_time"]
    assert sum(histogram["counts"]) == total  # merged, never lost
    assert sum(model_tokens(result)) <= 4000


@pytest.mark.parametrize(("size", "budget"), [(10, 4000), (1000, 4000), (1000, 1000), (5000, 1500)])
async def test_scroll_results_stay_within_budget(mcp: Client, size: int, budget: int) -> None:
    result = await mcp.call_tool(
        "logs_scroll",
        {**ATR_K8S, "start_time": "now-7d", "end_time": "now", "size": size, "max_tokens": budget},
    )
    assert not result.is_error, _text(result)
    text = _text(result)
    assert sum(model_tokens(result)) <= budget, model_tokens(result)
    structured = result.structured_content
    assert structured is not None
    summary = structured["summary"]
    assert summary["returned"] == size
    assert summary["matched"] >= size
    assert structured["scroll_id"], "more pages remain"
    assert structured["scroll_id"] in text  # the model can see how to get the next page


async def test_scroll_continuation_pages_to_the_end(mcp: Client) -> None:
    arguments = {
        **ATR_K8S,
        "domain": ["pay.example.com"],
        "start_time": "now-6h",
        "end_time": "now",
        "size": 2000,
    }
    result = await mcp.call_tool("logs_scroll", arguments)
    matched = result.structured_content["summary"]["matched"]  # type: ignore[index]
    seen = result.structured_content["summary"]["returned"]  # type: ignore[index]
    scroll_id = result.structured_content.get("scroll_id")  # type: ignore[union-attr]
    while scroll_id:
        result = await mcp.call_tool("logs_scroll", {"scroll_id": scroll_id})
        assert not result.is_error, _text(result)
        seen += result.structured_content["summary"]["returned"]  # type: ignore[index]
        scroll_id = result.structured_content.get("scroll_id")  # type: ignore[union-attr]
    assert seen == matched
    # The last page: every matched record is stored, so "to get more" is a free local call.
    last = result.structured_content
    assert last is not None
    more = _text(result).split("to get more: ", 1)[1].splitlines()[0]
    assert "no quota" in more
    call = json.loads(more.split("results_search ", 1)[1])
    assert call["result_id"] == last["result_id"]
    local = await mcp.call_tool("results_search", call)
    assert not local.is_error, _text(local)
    assert local.structured_content["summary"]["matched"] > 0  # type: ignore[index]
    whole = await mcp.call_tool(
        "results_aggs",
        {"result_id": call["result_id"], "aggs": {"n": {"value_count": {"field": "@timestamp"}}}},
    )
    assert whole.structured_content["summary"]["total_documents"] == matched  # type: ignore[index]


async def test_cluster_down_incident_is_visible_in_default_summaries(
    mcp: Client, sandbox: RunningSandbox
) -> None:
    """The built-in incident shows up where an on-call engineer would look: when, where, what."""
    incident = await _incident(sandbox, "builtin-atr-cluster-down")
    overview = await mcp.call_tool(
        "logs_aggs",
        {
            **ATR_K8S,
            "start_time": "now-24h",
            "end_time": "now",
            "aggs": {
                "errors": {
                    "filter": {"term": {LEVEL: "ERROR"}},
                    "aggs": {
                        "over_time": {"date_histogram": {"field": "@timestamp", "fixed_interval": "15m"}},
                        "by_domain": {"terms": {"field": "atr.domain_name"}},
                    },
                }
            },
        },
    )
    text = _text(overview)
    assert "pay.example.com" in text
    errors = overview.structured_content["summary"]["sections"][0]  # type: ignore[index]
    children = {child["name"]: child for child in errors["children"]}
    assert children["by_domain"]["buckets"][0][0] == "pay.example.com"
    histogram = children["over_time"]
    peak_index = max(range(len(histogram["counts"])), key=histogram["counts"].__getitem__)
    peak_start = histogram["first"] + peak_index * histogram["step"]  # a bucket shown may merge several
    assert (
        _iso_ms(peak_start) <= incident["end"] and _iso_ms(peak_start + histogram["step"]) > incident["start"]
    )

    scroll = await mcp.call_tool(
        "logs_scroll",
        {
            **ATR_K8S,
            "domain": incident["domain"],
            "start_time": incident["start"],
            "end_time": incident["end"],
            "size": 1000,
            "filters": [{"term": {LEVEL: "ERROR"}}],
        },
    )
    summary = scroll.structured_content["summary"]  # type: ignore[index]
    assert summary["templates"][0] > 0
    assert summary["levels"].get("ERROR")
    assert summary["matched"] >= incident["count"]
    assert any(word in _text(scroll).lower() for word in ("cluster", "upstream", "readiness", "notready"))


async def test_workloads_billing_and_quota(mcp: Client) -> None:
    aggs = await mcp.call_tool(
        "workloads_aggs",
        {
            "application": "atr",
            "app_type": "ec2",
            "domain": ["*"],
            "start_time": "now-7d",
            "end_time": "now",
            "aggs": {
                "failed": {
                    "filter": {"term": {"workload.state": "FAILED"}},
                    "aggs": {"w": {"terms": {"field": "workflow.name"}}},
                }
            },
        },
    )
    assert not aggs.is_error, _text(aggs)
    assert "Data_Enrichment_Workflow" in _text(aggs)
    scroll = await mcp.call_tool(
        "workloads_scroll",
        {
            "application": "atr",
            "app_type": "ec2",
            "domain": ["*"],
            "start_time": "now-7d",
            "end_time": "now",
            "filters": [{"term": {"workload.state": "FAILED"}}],
        },
    )
    assert not scroll.is_error, _text(scroll)
    assert "FAILED" in _text(scroll)
    billing = await mcp.call_tool("billing_query", {"domain": "pay.example.com", "time_range": "now-30d/d"})
    assert not billing.is_error, _text(billing)
    assert billing.structured_content["summary"]["domain"] == "pay.example.com"  # type: ignore[index]
    quota = await mcp.call_tool("quota_status", {})
    families = {f["family"]: f.get("remaining") for f in quota.structured_content["families"]}  # type: ignore[index]
    assert families["workloads_aggs"] is not None
    assert families["billing_query"] is not None


@pytest.mark.parametrize("kind", ["logs", "workloads"])
async def test_export_in_one_call_with_progress_and_free_follow_ups(
    mcp: Client, sandbox: RunningSandbox, kind: str
) -> None:
    scope = ATR_K8S if kind == "logs" else {"application": "atr", "app_type": "ec2", "domain": ["*"]}
    window = frozen({"start_time": "now-3d", "end_time": "now-1d"})
    group = "regex.extractions.logLevel" if kind == "logs" else "workload.state"
    upstream = await mcp.call_tool(
        f"{kind}_aggs", {**scope, **window, "aggs": {"g": {"terms": {"field": group, "size": 20}}}}
    )
    expected = upstream.structured_content["summary"]["total_documents"]  # type: ignore[index]
    assert expected > 0

    events: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        events.append((progress, total, message))

    with anyio.fail_after(60):
        exported = await mcp.call_tool(f"{kind}_batch", {**scope, **window}, progress_callback=on_progress)
    assert not exported.is_error, _text(exported)
    outcome = exported.structured_content
    assert outcome is not None
    assert outcome["complete"] is True
    assert outcome["records"] == expected  # verified download holds exactly the API's count
    progress = [event[0] for event in events]
    assert progress == sorted(set(progress)), "progress strictly increases (MCP)"
    assert events[-1][0] == events[-1][1], "progress ends at its total"
    links = [block for block in exported.content if getattr(block, "type", "") == "resource_link"]
    assert links
    assert str(links[0].uri) == outcome["resource_uri"]  # type: ignore[attr-defined]
    file_links = [str(link.uri) for link in links[1:]]  # type: ignore[attr-defined]
    assert file_links
    assert all(uri.startswith("file://") for uri in file_links)
    resource = await mcp.read_resource(outcome["resource_uri"])
    assert f'"records": {expected}' in resource.contents[0].text  # type: ignore[union-attr]

    before = await _api_requests(sandbox)
    local = await mcp.call_tool(
        "results_aggs",
        {"result_id": outcome["result_id"], "aggs": {"g": {"terms": {"field": group, "size": 20}}}},
    )
    assert not local.is_error, _text(local)
    local_summary = local.structured_content["summary"]  # type: ignore[index]
    upstream_summary = upstream.structured_content["summary"]  # type: ignore[index]
    assert local_summary["total_documents"] == expected
    counts = dict(local_summary["sections"][0]["buckets"])
    assert counts == dict(upstream_summary["sections"][0]["buckets"])
    search = await mcp.call_tool("results_search", {"result_id": outcome["result_id"], "size": 50})
    assert not search.is_error, _text(search)
    listed = await mcp.call_tool("results_list", {})
    assert outcome["result_id"] in _text(listed)
    assert await _api_requests(sandbox) == before, "follow-ups on stored results cost no request"

    unknown = await mcp.call_tool(f"{kind}_batch_status", {"token": "no-such-token"})
    assert unknown.is_error
    assert f"{kind}_batch" in _text(unknown)


async def test_sampled_export_summary_says_so_and_its_advice_works(
    mcp: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    import json
    import re

    from cm_mcp.ops import exports

    monkeypatch.setattr(exports, "SUMMARY_SAMPLE", 100)
    exported = await mcp.call_tool("logs_batch", {**ATR_K8S, "start_time": "now-2d", "end_time": "now-1d"})
    text = _text(exported)
    records = exported.structured_content["records"]  # type: ignore[index]
    assert records > 100
    assert "even sample of" in text
    advice = re.search(r"e\.g\. (\{.*\})\.", text)
    assert advice is not None, text
    exact = await mcp.call_tool("results_aggs", json.loads(advice.group(1)))
    assert not exact.is_error, _text(exact)
    assert exact.structured_content["summary"]["total_documents"] == records  # type: ignore[index]
    more = text.split("to get more: ", 1)[1].splitlines()[0]
    narrower = json.loads(more.split("results_search ", 1)[1])
    found = await mcp.call_tool("results_search", narrower)
    assert not found.is_error, _text(found)
    level = narrower["filters"][0]["term"]["regex.extractions.logLevel"]
    assert found.structured_content["summary"]["levels"] == {  # type: ignore[index]
        level: found.structured_content["summary"]["matched"]  # type: ignore[index]
    }


@pytest.mark.parametrize("kind", ["logs", "workloads"])
async def test_failed_partitions_are_reported_with_the_tool_that_resubmits_them(
    mcp: Client, sandbox: RunningSandbox, kind: str
) -> None:
    scope = ATR_K8S if kind == "logs" else {"application": "atr", "app_type": "ec2", "domain": ["*"]}
    async with httpx2.AsyncClient(base_url=sandbox.url) as control:
        await control.post("/_sandbox/faults", json={"partition_fail_rate": 1.0})
        try:
            with anyio.fail_after(60):
                exported = await mcp.call_tool(
                    f"{kind}_batch", {**scope, "start_time": "now-2d", "end_time": "now-1d"}
                )
        finally:
            await control.post("/_sandbox/faults", json={"partition_fail_rate": 0})
    text = _text(exported)
    assert exported.is_error, text  # nothing recovered: an error, not an empty result
    assert f"resubmit just their ranges with {kind}_batch" in text
    assert "_batch_status" not in text, "the API failed them: no resume call can fetch them"
    other = "workloads" if kind == "logs" else "logs"
    assert f"{other}_batch" not in text
    # each resubmission is a valid JSON call, ready to send as is (it printed as a Python dict)
    lines = [line for line in text.splitlines() if line.startswith("  - ") and "): {" in line]
    assert lines
    for line in lines:
        arguments = json.loads(line[line.index("): {") + 3 :])
        assert arguments["application"] == "atr" and arguments["start_time"] < arguments["end_time"]


@pytest.mark.parametrize(
    ("incident_id", "where_field", "expected", "words"),
    [
        (
            "builtin-atr-cluster-down",
            "atr.domain_name",
            "pay.example.com",
            ("upstream", "cluster", "readiness"),
        ),
        (
            "builtin-klewer-deploy-errors",
            "klewer.domain_name",
            "shop.example.com",
            ("checkout", "500", "exception"),
        ),
        ("builtin-eventops-keyerror", "tenant", "globex", ("keyerror",)),
    ],
)
async def test_builtin_log_incidents_show_in_default_summaries(
    mcp: Client,
    sandbox: RunningSandbox,
    incident_id: str,
    where_field: str,
    expected: str,
    words: tuple[str, ...],
) -> None:
    """A day-wide error overview points at the incident's place; the window's templates say what it was."""
    incident = await _incident(sandbox, incident_id)
    level = "logLevel" if incident["app_type"] == "serverless" else LEVEL
    if incident["app_type"] == "serverless":
        scope = {
            "application": "eventops",
            "app_type": "serverless",
            "log_group": ["*"],
            "tenant": ["*"],
            "stage": ["*"],
        }
    else:
        scope = {"application": incident["application"], "app_type": incident["app_type"], "domain": ["*"]}
    overview = await mcp.call_tool(
        "logs_aggs",
        {
            **scope,
            # a day around the incident (not its calendar day: an incident may straddle midnight)
            "start_time": f"{incident['start']}||-12h",
            "end_time": f"{incident['end']}||+12h",
            "aggs": {
                "errors": {
                    "filter": {"term": {level: "ERROR"}},
                    "aggs": {"where": {"terms": {"field": where_field}}},
                }
            },
        },
    )
    assert not overview.is_error, _text(overview)
    errors = overview.structured_content["summary"]["sections"][0]  # type: ignore[index]
    key, count = errors["children"][0]["buckets"][0]
    assert key == expected
    assert count >= incident["count"]

    window = {"start_time": incident["start"], "end_time": incident["end"]}
    scroll = await mcp.call_tool(
        "logs_scroll", {**scope, **window, "size": 2000, "filters": [{"term": {level: "ERROR"}}]}
    )
    summary = scroll.structured_content["summary"]  # type: ignore[index]
    assert summary["levels"]["ERROR"] >= incident["count"]
    templates = _template_rows(_text(scroll), 3).lower()
    assert any(word in templates for word in words), templates


async def test_builtin_failed_workloads_show_in_default_summaries(
    mcp: Client, sandbox: RunningSandbox
) -> None:
    incident = await _incident(sandbox, "builtin-atr-enrichment-failures")
    result = await mcp.call_tool(
        "workloads_aggs",
        {
            "application": "atr",
            "app_type": "ec2",
            "domain": ["*"],
            "start_time": incident["start"],
            "end_time": incident["end"],
            "aggs": {
                "failed": {
                    "filter": {"term": {"workload.state": "FAILED"}},
                    "aggs": {"w": {"terms": {"field": "workflow.name"}}},
                }
            },
        },
    )
    failed = result.structured_content["summary"]["sections"][0]  # type: ignore[index]
    key, count = failed["children"][0]["buckets"][0]
    assert key == incident["workflow"]
    assert count >= incident["count"]


async def test_interrupted_export_hands_over_its_free_resume_call(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """A download host missing from the allow-list stops the export after its batch was accepted; the
    error and results_list give the call that continues it, which then needs no second batch."""
    good = _settings(sandbox, tmp_path)
    blocked = good.model_copy(update={"download_allowed_hosts": ["*.amazonaws.com"]})
    window = frozen({**ATR_K8S, "start_time": "now-3d", "end_time": "now-2d"})
    batches_before = await _batch_submissions(sandbox)

    async with _session(sandbox, blocked) as mcp:
        count = await mcp.call_tool(
            "logs_aggs", {**window, "aggs": {"n": {"value_count": {"field": "@timestamp"}}}}
        )
        expected = count.structured_content["summary"]["total_documents"]  # type: ignore[index]
        with anyio.fail_after(60):
            stopped = await mcp.call_tool("logs_batch", window)
        assert stopped.is_error
        text = _text(stopped)
        assert "CM_DOWNLOAD_ALLOWED_HOSTS" in text  # the cause, explained
        assert "Calling logs_batch again would submit a new batch" in text
        call = json.loads(text.split("with: logs_batch_status ", 1)[1].split(". Calling", 1)[0])
        assert call["download"] is True and call["token"]
        listed = await mcp.call_tool("results_list", {})
        (unfinished,) = listed.structured_content["unfinished_exports"]  # type: ignore[index]
        assert unfinished["resume"] == {"tool": "logs_batch_status", "arguments": call}
        assert f"logs_batch_status {json.dumps(call)}" in _text(listed)

    async with _session(sandbox, good) as mcp:  # the configuration fixed (or a restarted server)
        with anyio.fail_after(60):
            resumed = await mcp.call_tool("logs_batch_status", call)
        assert not resumed.is_error, _text(resumed)
        status = resumed.structured_content  # the status tool's shape, the export inside it
        assert status is not None and status["done"] is True and status["token"] == call["token"]
        assert status["export"]["records"] == expected  # verified: exactly the API's count
        assert status["local"]["phase"] == "done"
        links = [str(block.uri) for block in resumed.content if getattr(block, "type", "") == "resource_link"]  # type: ignore[attr-defined]
        assert links[0] == status["export"]["resource_uri"]
        listed = await mcp.call_tool("results_list", {})
        assert listed.structured_content["unfinished_exports"] == []  # type: ignore[index]
        assert len(listed.structured_content["results"]) == 1  # type: ignore[index]
    assert await _batch_submissions(sandbox) == batches_before + 1, "resuming submitted nothing"


async def _batch_submissions(sandbox: RunningSandbox) -> int:
    stats = await _get(sandbox, "/_sandbox/stats")
    return int(stats["requests"].get("/v2/logs/batch", {}).get("total", 0))


async def test_v1_tools_and_plain_status_through_a_validating_client(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    """Paths the other tests do not take; the client checks every structured result against the
    tool's declared output schema."""
    query = {"application": "atr", "app_type": "caas", "domain": "pay.example.com", "time_range": "now-1d"}
    async with _session(sandbox, _settings(sandbox, tmp_path, enable_v1=True)) as mcp:
        page = await mcp.call_tool("logs_scroll_v1", query)
        assert not page.is_error, _text(page)
        assert "V1 is deprecated: prefer logs_scroll" in _text(page)
        assert page.structured_content["summary"]["matched"] > 0  # type: ignore[index]
        submitted = await mcp.call_tool("logs_batch_v1", query)
        assert not submitted.is_error, _text(submitted)
        token = submitted.structured_content["token"]  # type: ignore[index]
        with anyio.fail_after(120):
            while True:
                urls = await mcp.call_tool("logs_batch_urls_v1", {"token": token})
                assert not urls.is_error, _text(urls)
                if urls.structured_content["done"]:  # type: ignore[index]
                    break
                await anyio.sleep(0.2)

        window = {**ATR_K8S, "start_time": "now-3d", "end_time": "now-2d"}
        exported = await mcp.call_tool("logs_batch", window)
        assert not exported.is_error, _text(exported)
        jobs = list((tmp_path / "jobs").glob("*.json"))
        export_token = json.loads(jobs[0].read_text())["token"]
        status = await mcp.call_tool("logs_batch_status", {"token": export_token})  # no download
        assert not status.is_error, _text(status)
        assert status.structured_content["local"]["phase"] == "done"  # type: ignore[index]
        assert status.structured_content.get("export") is None  # type: ignore[union-attr]
        # finished: the advice is the stored result, not a download that has nothing left to do
        status_text = _text(status)
        assert f"stored as result {exported.structured_content['result_id']}" in status_text  # type: ignore[index]
        assert "download=true" not in status_text
        again = await mcp.call_tool("logs_batch_status", {"token": export_token, "download": True})
        assert not again.is_error, _text(again)  # already stored: the stored result, no new download
        assert again.structured_content["export"]["result_id"] == exported.structured_content["result_id"]  # type: ignore[index]


async def test_cancelled_export_is_listed_then_resumed_to_the_exact_count(
    mcp: Client, sandbox: RunningSandbox
) -> None:
    window = frozen({**ATR_K8S, "start_time": "now-7d", "end_time": "now-1d"})
    count = await mcp.call_tool(
        "logs_aggs", {**window, "aggs": {"n": {"value_count": {"field": "@timestamp"}}}}
    )
    expected = count.structured_content["summary"]["total_documents"]  # type: ignore[index]
    first_partition = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        if progress >= 1:
            first_partition.set()

    async with httpx2.AsyncClient(base_url=sandbox.url) as control:
        # Every partition 10x slower: they complete one by one, far enough apart to cancel between.
        await control.post("/_sandbox/faults", json={"slow_partition_factor": 10, "slow_partition_rate": 1.0})
        try:
            async with anyio.create_task_group() as tg:

                async def export() -> None:
                    await mcp.call_tool("logs_batch", window, progress_callback=on_progress)

                tg.start_soon(export)
                with anyio.fail_after(60):
                    await first_partition.wait()
                tg.cancel_scope.cancel()  # the client gives up: the server's handler is cancelled
        finally:
            await control.post("/_sandbox/faults", json={"slow_partition_factor": 1})

    listed = await mcp.call_tool("results_list", {})
    assert listed.structured_content["results"] == []  # type: ignore[index]  # nothing half-stored
    (unfinished,) = listed.structured_content["unfinished_exports"]  # type: ignore[index]
    assert 1 <= unfinished["partitions_done"] < unfinished["partitions"]
    assert unfinished["running"] is False  # the cancelled handler let go of it
    assert "interrupted" in _text(listed)
    with anyio.fail_after(60):
        resumed = await mcp.call_tool(unfinished["resume"]["tool"], unfinished["resume"]["arguments"])
    assert not resumed.is_error, _text(resumed)
    assert resumed.structured_content["export"]["records"] == expected  # type: ignore[index]
    assert resumed.structured_content["export"]["complete"] is True  # type: ignore[index]


async def test_an_empty_filtered_scroll_says_which_filter_fields_the_records_lack(mcp: Client) -> None:
    window = {**ATR_K8S, "start_time": "now-1d", "end_time": "now", "size": 50}

    async def note(filters: list[dict[str, Any]]) -> str:
        result = await mcp.call_tool("logs_scroll", {**window, "filters": filters})
        assert not result.is_error, _text(result)
        assert result.structured_content["summary"]["matched"] == 0  # type: ignore[index]
        text = result.structured_content["note"]  # type: ignore[index]
        assert f"note: {text}" in _text(result)
        return str(text)

    wrong = [{"term": {"level": "ERROR"}}, {"term": {"atr.domain.keyword": "pay.example.com"}}]
    before = await note(wrong)  # nothing stored yet: the documented fields
    assert "regex.extractions.logLevel" in before and "atr.domain_name" in before
    # a day of atr logs holds far more than 20 records at any hour (an hour may hold fewer: seasonality)
    stored = await mcp.call_tool("logs_scroll", {**window, "size": 20})
    assert stored.structured_content["summary"]["returned"] == 20  # type: ignore[index]
    after = await note(wrong)
    assert "None of 20 stored atr kubernetes logs records has" in after
    assert "level (did you mean regex.extractions.logLevel?)" in after
    assert "atr.domain (did you mean atr.domain_name?)" in after
    right_fields = await note([{"term": {"atr.domain_name": "nope.example.com"}}])
    assert "every filter field occurs" in right_fields and "values or the time window" in right_fields
