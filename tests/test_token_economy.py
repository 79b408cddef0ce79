"""What a model pays for a result: text AND structured content (a client may forward both), counted
by the tests' own ruler (tests/token_ruler.py: cl100k_base), through real MCP sessions, for 10, 1,000
and 10,000 records and at the budgets a caller may ask for; small results stay near the raw answer's
size. Always runs: the upstream is scripted (an httpx2 transport), no sandbox and no ../shared."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import httpx2
import pytest

from cm_mcp.api.budget import DEFAULT_TOKENS, MAX_TOKENS, MIN_TOKENS
from tests.test_server_tools import Upstream, _session
from tests.token_ruler import count_tokens, model_tokens, result_text

pytestmark = pytest.mark.anyio

SCOPE = {"application": "atr", "app_type": "kubernetes", "domain": ["*"]}
WINDOW = {"start_time": "2026-01-19T00:00:00Z", "end_time": "2026-01-19T23:59:59Z"}
META = {
    "api_version": "v2",
    "time_range": {"start": "2026-01-19T00:00:00.000Z", "end": "2026-01-19T23:59:59.000Z"},
    "rate_limit": {"daily_remaining": 47},
    "request_id": "10615c94-d835-413e-ad3f-57c5a4c2276b",
}
MESSAGES = [
    "GET /api/orders/{n} -> 200 in {ms}ms",
    "upstream connect error to 10.0.{a}.{b}:8443 after {ms}ms (cluster pay-prod-{a})",
    "Payment {n:x} failed: acquirer returned {code} for merchant m-{a} after {ms}ms; retry {b}/3 scheduled",
    "user u{n} logged in from 192.168.{a}.{b} with session s-{n:x}-{ms:x}",
    "cache miss for key session:{n:x} (ttl {ms}s)",
    "java.lang.IllegalStateException: pool exhausted (active={a}, idle=0, waiters={b}) at "
    "com.example.pool.Pool.borrow(Pool.java:{code})",
]


def _hits(count: int) -> list[dict[str, Any]]:
    """Log records with many templates, long messages, several levels and extra fields."""
    levels = ("INFO", "INFO", "WARN", "ERROR", "DEBUG")
    return [
        {
            "_index": "logs-atr-2026.01",
            "_id": f"id-{n}",
            "_score": 1.0,
            "_source": {
                "@timestamp": f"2026-01-19T{n // 3600 % 24:02d}:{n // 60 % 60:02d}:{n % 60:02d}.{n % 1000:03d}Z",
                "message": MESSAGES[n % len(MESSAGES)].format(
                    n=n, ms=n % 9000, a=n % 250, b=n % 7, code=500 + n % 5
                ),
                "regex": {"extractions": {"logLevel": levels[n % len(levels)]}},
                "atr": {"domain_name": f"{('pay', 'ops', 'identity')[n % 3]}.example.com"},
                "service": f"svc-{n % 11}",
                "k8s": {"pod": f"pod-{n % 97}-{n:x}", "namespace": "prod"},
            },
        }
        for n in range(count)
    ]


#: A scroll id as the API's look (base64 of an opaque context): about 70 tokens.
SCROLL_ID = base64.b64encode(hashlib.sha512(b"scroll").digest() * 2).decode()


def _scroll_reply(count: int) -> Upstream:
    body = {"data": {"logs": _hits(count), "count": count * 3}, "meta": {**META, "scroll_id": SCROLL_ID}}
    return Upstream(lambda _: httpx2.Response(200, json=body))


@pytest.mark.parametrize("records", [10, 1000, 10_000])
@pytest.mark.parametrize("budget", [MIN_TOKENS, DEFAULT_TOKENS, MAX_TOKENS])
async def test_a_scroll_page_stays_within_the_budget_text_and_structured(
    records: int, budget: int, tmp_path: Path
) -> None:
    upstream = _scroll_reply(records)
    async for client in _session(upstream, data_dir=tmp_path):
        result = await client.call_tool(
            "logs_scroll", {**SCOPE, **WINDOW, "size": records, "max_tokens": budget}
        )
        assert not result.is_error, result_text(result)
        text, structured = model_tokens(result)
        assert text + structured <= budget, (text, structured)
        summary = result.structured_content["summary"]  # type: ignore[index]
        assert summary["returned"] == records and summary["matched"] == records * 3
        assert sum(summary["levels"].values()) == records  # exact counts whatever the budget
        if budget >= DEFAULT_TOKENS:
            assert summary["templates"], "templates shown"
            assert SCROLL_ID in result_text(result)  # the way to the next page


@pytest.mark.parametrize("records", [10, 1000, 10_000])
async def test_a_stored_result_search_stays_within_the_budget(records: int, tmp_path: Path) -> None:
    from cm_mcp.store import ResultStore

    info = ResultStore(tmp_path).create(
        kind="logs", source="scroll", request={**SCOPE, **WINDOW}, hits=_hits(records)
    )
    async for client in _session(Upstream(lambda _: httpx2.Response(500)), data_dir=tmp_path):
        for budget in (MIN_TOKENS, DEFAULT_TOKENS):
            result = await client.call_tool(
                "results_search", {"result_id": info.id, "size": records, "max_tokens": budget}
            )
            assert not result.is_error, result_text(result)
            assert sum(model_tokens(result)) <= budget, model_tokens(result)


async def test_a_large_aggregation_stays_within_the_budget(tmp_path: Path) -> None:
    day = 1_768_780_800_000  # 2026-01-19T00:00:00Z
    histogram = [
        {
            "key": day + i * 60_000,
            "key_as_string": f"2026-01-19T{i // 60:02d}:{i % 60:02d}:00.000Z",
            "doc_count": (i * 37) % 500,
        }
        for i in range(1440)
    ]
    hosts = [{"key": f"host-{n:04d}.pay.example.com", "doc_count": 5000 - n} for n in range(2000)]
    body = {
        "data": {
            "aggregations": {
                "over_time": {"buckets": histogram},
                "hosts": {"buckets": hosts, "sum_other_doc_count": 7},
            },
            "total_documents": 4_000_000,
        },
        "meta": META,
    }
    upstream = Upstream(lambda _: httpx2.Response(200, json=body))
    aggs = {
        "over_time": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1m"}},
        "hosts": {"terms": {"field": "host.name", "size": 2000}},
    }
    async for client in _session(upstream, data_dir=tmp_path):
        for budget in (MIN_TOKENS, DEFAULT_TOKENS, MAX_TOKENS):
            result = await client.call_tool(
                "logs_aggs", {**SCOPE, **WINDOW, "aggs": aggs, "max_tokens": budget}
            )
            assert not result.is_error, result_text(result)
            assert sum(model_tokens(result)) <= budget, (budget, model_tokens(result))
            sections = {s["name"]: s for s in result.structured_content["summary"]["sections"]}  # type: ignore[index]
            assert sum(sections["over_time"]["counts"]) == sum(
                b["doc_count"] for b in histogram
            )  # merged, never lost
            hosts_section = sections["hosts"]
            assert (
                sum(n for _, n in hosts_section["buckets"]) + hosts_section.get("other", 0)
                == sum(b["doc_count"] for b in hosts) + 7
            )


async def test_a_small_aggregation_stays_near_the_raw_answer(tmp_path: Path) -> None:
    """Issue 12: a 3-bucket terms aggregation was 337 tokens where the raw answer is 130."""
    body = {
        "data": {
            "aggregations": {
                "levels": {
                    "doc_count_error_upper_bound": 0,
                    "sum_other_doc_count": 0,
                    "buckets": [
                        {"key": "INFO", "doc_count": 2500},
                        {"key": "WARN", "doc_count": 400},
                        {"key": "ERROR", "doc_count": 100},
                    ],
                }
            },
            "total_documents": 3000,
        },
        "meta": META,
    }
    raw = count_tokens(json.dumps(body))
    upstream = Upstream(lambda _: httpx2.Response(200, json=body))
    async for client in _session(upstream, data_dir=tmp_path):
        result = await client.call_tool(
            "logs_aggs",
            {**SCOPE, **WINDOW, "aggs": {"levels": {"terms": {"field": "regex.extractions.logLevel"}}}},
        )
    text, structured = model_tokens(result)
    assert text + structured <= 1.6 * raw, (text, structured, raw)
    assert structured <= raw, "the structured part alone is smaller than the raw answer"
    assert result.structured_content["summary"]["sections"][0]["buckets"] == [  # type: ignore[index]
        ["INFO", 2500],
        ["WARN", 400],
        ["ERROR", 100],
    ]


async def test_an_export_with_many_files_stays_within_the_budget(tmp_path: Path) -> None:
    """Partition file links are extras: added while the budget allows; the resource lists them all.
    A sandbox of its own cuts exports into partitions of 100 records, so there are many files."""
    from cm_mcp.sandbox.config import SandboxConfig
    from cm_mcp.sandbox.runner import serve_sandbox
    from tests.test_server_sandbox import _session as sandbox_session
    from tests.test_server_sandbox import _settings as sandbox_settings

    config = SandboxConfig(
        port=0,
        seed=3,
        volume=2000,
        target_per_partition=100,
        batch_seconds=0.2,
        data_dir=tmp_path / "sandbox",
    )
    async with (
        serve_sandbox(config) as sandbox,
        sandbox_session(sandbox, sandbox_settings(sandbox, tmp_path / "data")) as client,
    ):
        result = await client.call_tool(
            "logs_batch",
            {**SCOPE, "start_time": "now-3d/d", "end_time": "now-1d/d", "max_tokens": MIN_TOKENS},
        )
        assert not result.is_error, result_text(result)
        outcome = result.structured_content
        assert outcome is not None
        stored = json.loads((await client.read_resource(outcome["resource_uri"])).contents[0].text)  # type: ignore[union-attr]
    links = [block for block in result.content if getattr(block, "type", "") == "resource_link"]
    assert len(stored["files"]) > len(links) - 1 >= 1, "some file links, not all of them"
    assert sum(model_tokens(result)) <= MIN_TOKENS, model_tokens(result)
