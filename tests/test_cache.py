"""The response cache through real MCP sessions against the sandbox over HTTP: a repeated request over
a settled window costs no request and says it is cached; `fresh` asks again; a window touching the
settle delay, a continuation and an error are never cached; exports are answered by the stored
export; quota_status counts what was saved. Windows are frozen once per test, in the past."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest

from cm_mcp.sandbox.runner import RunningSandbox
from cm_mcp.store.cache import ResponseCache, canonical_body
from tests.test_server_sandbox import _api_requests, _session, _settings, _text

pytestmark = pytest.mark.anyio

LEVEL = "regex.extractions.logLevel"
ATR = {"application": "atr", "app_type": "kubernetes"}


def _window(days_ago: int = 2) -> dict[str, str]:
    end = (datetime.now(UTC) - timedelta(days=days_ago)).replace(microsecond=0)
    return {
        "start_time": f"{end - timedelta(hours=12):%Y-%m-%dT%H:%M:%SZ}",
        "end_time": f"{end:%Y-%m-%dT%H:%M:%SZ}",
    }


async def _requests_to(sandbox: RunningSandbox, path: str) -> int:
    async with httpx2.AsyncClient() as http:
        stats = (await http.get(sandbox.url + "/_sandbox/stats")).json()
    return int(stats["requests"].get(path, {}).get("total", 0))


async def test_a_repeated_aggs_over_a_settled_window_costs_nothing_and_says_so(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    window = _window()
    arguments = {**ATR, "domain": ["pay.example.com", "ops.example.com"], **window}
    arguments["aggs"] = {"levels": {"terms": {"field": LEVEL}}}
    async with _session(sandbox, _settings(sandbox, tmp_path)) as mcp:
        first = await mcp.call_tool("logs_aggs", arguments)
        assert not first.is_error, _text(first)
        assert "cached" not in first.structured_content["call"]  # type: ignore[index]
        before = await _api_requests(sandbox)
        # the same question, spelled differently: key order, list order, the default terms size,
        # the same instants in another ISO form
        again = {
            "aggs": {"levels": {"terms": {"size": 10, "field": LEVEL}}},
            "end_time": window["end_time"].replace("Z", ".000+00:00"),
            "start_time": window["start_time"],
            "domain": ["ops.example.com", "pay.example.com"],
            **ATR,
        }
        second = await mcp.call_tool("logs_aggs", again)
        assert await _api_requests(sandbox) == before, "answered locally: no request"
    assert not second.is_error, _text(second)
    call, original = second.structured_content["call"], first.structured_content["call"]  # type: ignore[index]
    assert call["request_id"] == original["request_id"]
    assert call["time_range"] == original["time_range"]
    assert datetime.fromisoformat(call["cached"]) <= datetime.now(UTC)
    assert "CACHED: no request sent" in _text(second) and f"request_id {original['request_id']}" in _text(
        second
    )
    assert second.structured_content["summary"] == first.structured_content["summary"]  # type: ignore[index]


async def test_fresh_asks_again_and_replaces_the_cached_answer(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    arguments = {**ATR, "domain": ["*"], **_window(), "aggs": {"n": {"value_count": {"field": "@timestamp"}}}}
    async with _session(sandbox, _settings(sandbox, tmp_path)) as mcp:
        first = await mcp.call_tool("logs_aggs", arguments)
        before = await _api_requests(sandbox)
        fresh = await mcp.call_tool("logs_aggs", {**arguments, "fresh": True})
        assert await _api_requests(sandbox) == before + 1
        assert "cached" not in fresh.structured_content["call"]  # type: ignore[index]
        new_id = fresh.structured_content["call"]["request_id"]  # type: ignore[index]
        assert new_id != first.structured_content["call"]["request_id"]  # type: ignore[index]
        cached = await mcp.call_tool("logs_aggs", arguments)
        assert await _api_requests(sandbox) == before + 1
        assert cached.structured_content["call"]["request_id"] == new_id  # type: ignore[index]
        refused = await mcp.call_tool("logs_aggs", {**arguments, "fresh": "yes"})
    assert refused.is_error and "fresh: must be true or false" in _text(refused)


async def test_windows_touching_the_settle_delay_are_never_cached(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    recent = {**ATR, "domain": ["*"], "start_time": "now-1h", "end_time": "now-5m"}
    recent["aggs"] = {"levels": {"terms": {"field": LEVEL}}}
    settled = {**ATR, "domain": ["*"], **_window(), "aggs": {"levels": {"terms": {"field": LEVEL}}}}
    # a settle delay of 10 days: even the window of two days ago is too recent
    cautious = _settings(sandbox, tmp_path / "cautious", cache_settle_seconds=10 * 86400)
    async with _session(sandbox, _settings(sandbox, tmp_path)) as mcp, _session(sandbox, cautious) as careful:
        for client, arguments in ((mcp, recent), (careful, settled)):
            await client.call_tool("logs_aggs", arguments)
            before = await _api_requests(sandbox)
            repeated = await client.call_tool("logs_aggs", arguments)
            assert await _api_requests(sandbox) == before + 1
            assert "cached" not in repeated.structured_content["call"]  # type: ignore[index]


async def test_errors_are_never_cached(sandbox: RunningSandbox, tmp_path: Path) -> None:
    arguments = {**ATR, "domain": ["*"], **_window(3), "aggs": {"levels": {"terms": {"field": LEVEL}}}}
    async with _session(sandbox, _settings(sandbox, tmp_path)) as mcp, httpx2.AsyncClient() as control:
        await control.post(sandbox.url + "/_sandbox/faults", json={"error_rate": 1.0})
        try:
            failed = await mcp.call_tool("logs_aggs", arguments)
        finally:
            await control.post(sandbox.url + "/_sandbox/faults", json={"error_rate": 0})
        assert failed.is_error
        before = await _api_requests(sandbox)
        answered = await mcp.call_tool("logs_aggs", arguments)
        assert await _api_requests(sandbox) == before + 1
    assert not answered.is_error and "cached" not in answered.structured_content["call"]  # type: ignore[index]


async def test_a_scroll_first_page_is_cached_and_continuations_are_not(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    arguments = {**ATR, "domain": ["*"], **_window(), "size": 200}
    async with _session(sandbox, _settings(sandbox, tmp_path)) as mcp:
        first = await mcp.call_tool("logs_scroll", arguments)
        scroll_id = first.structured_content["scroll_id"]  # type: ignore[index]
        page_two = await mcp.call_tool("logs_scroll", {"scroll_id": scroll_id})
        assert not page_two.is_error, _text(page_two)
        before = await _requests_to(sandbox, "/v2/logs/scroll")
        again = await mcp.call_tool("logs_scroll", {**arguments, "max_tokens": 2000})
        assert await _requests_to(sandbox, "/v2/logs/scroll") == before
        continued = await mcp.call_tool("logs_scroll", {"scroll_id": scroll_id})
        assert await _requests_to(sandbox, "/v2/logs/scroll") == before + 1, "a continuation goes upstream"
    assert continued is not None
    structured, original = again.structured_content, first.structured_content
    assert structured is not None and original is not None
    assert structured["call"]["cached"] and structured["call"]["request_id"] == original["call"]["request_id"]
    assert structured["result_id"] == original["result_id"]
    assert "scroll_id" not in structured, "the original scroll has expired upstream: none offered"
    assert structured["summary"]["matched"] == original["summary"]["matched"]
    assert (
        structured["summary"]["returned"] == 200
        and structured["summary"]["levels"] == original["summary"]["levels"]
    )
    text = _text(again)
    assert "CACHED" in text and "fresh: true starts it again" in text and original["result_id"] in text


async def test_an_identical_export_is_answered_by_the_stored_one(
    sandbox: RunningSandbox, tmp_path: Path
) -> None:
    arguments = {**ATR, "domain": ["pay.example.com"], **_window()}
    async with _session(sandbox, _settings(sandbox, tmp_path)) as mcp:
        exported = await mcp.call_tool("logs_batch", arguments)
        assert not exported.is_error, _text(exported)
        before = await _api_requests(sandbox)
        again = await mcp.call_tool("logs_batch", arguments)
        assert await _api_requests(sandbox) == before, "no batch submitted, nothing polled"
        quota = await mcp.call_tool("quota_status", {})
    outcome, original = again.structured_content, exported.structured_content
    assert outcome is not None and original is not None
    assert outcome["result_id"] == original["result_id"] and outcome["records"] == original["records"]
    assert outcome["cached"]
    assert _text(again).startswith("CACHED: no request sent; the export stored")
    assert quota.structured_content["saved_today"] == {"logs_batch": 1}  # type: ignore[index]
    assert "1 request(s) saved today (logs_batch 1)" in _text(quota)


async def test_quota_status_counts_the_requests_saved(sandbox: RunningSandbox, tmp_path: Path) -> None:
    aggs = {**ATR, "domain": ["*"], **_window(), "aggs": {"levels": {"terms": {"field": LEVEL}}}}
    scroll = {**ATR, "domain": ["*"], **_window(), "size": 5}
    async with _session(sandbox, _settings(sandbox, tmp_path)) as mcp:
        for _ in range(3):
            await mcp.call_tool("logs_aggs", aggs)
        for _ in range(2):
            await mcp.call_tool("logs_scroll", scroll)
        quota = await mcp.call_tool("quota_status", {})
    assert quota.structured_content["saved_today"] == {"logs_aggs": 2, "logs_scroll": 1}  # type: ignore[index]


def test_identical_means_the_normalised_body(tmp_path: Path) -> None:
    """Order that means nothing is ignored; anything that changes the answer is not."""
    body: dict[str, Any] = {
        "application": "atr",
        "domain": ["b.example.com", "a.example.com"],
        "start_time": "2026-01-19T00:00:00.000Z",
        "end_time": "2026-01-19T12:00:00.000Z",
        "filters": [{"term": {"x": 1}}, {"bool": {"must": [{"term": {"b": 2}}, {"term": {"a": 1}}]}}],
        "aggs": {"t": {"terms": {"field": "f", "size": 10}}},
    }
    same = {
        **body,
        "domain": ["a.example.com", "b.example.com"],
        "filters": [{"bool": {"must": [{"term": {"a": 1}}, {"term": {"b": 2}}]}}, {"term": {"x": 1}}],
        "aggs": {"t": {"terms": {"field": "f"}}},
    }
    assert canonical_body(same) == canonical_body(body)
    cache = ResponseCache(tmp_path, api_url="http://127.0.0.1:1")
    other_api = ResponseCache(tmp_path, api_url="http://127.0.0.1:2")
    assert cache.key("logs_aggs", same) == cache.key("logs_aggs", body)
    assert other_api.key("logs_aggs", body) != cache.key("logs_aggs", body)
    for change in (
        {"aggs": {"t": {"terms": {"field": "f", "size": 11}}}},
        {"end_time": "2026-01-19T12:00:00.001Z"},
        {"domain": ["a.example.com"]},
        {"filters": [{"term": {"x": 2}}]},
    ):
        assert cache.key("logs_aggs", {**body, **change}) != cache.key("logs_aggs", body), change
    assert cache.key("workloads_aggs", body) != cache.key("logs_aggs", body)
