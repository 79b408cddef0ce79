"""`cm-mcp demo`: an incident investigation on the sandbox, through a real MCP client session.

Levels over time -> the error spike -> the spike's message templates -> the culprit domain. Each
step prints the call and exactly the text a model would read; the next step's arguments are taken
from the previous step's structured result, the way an agent would chain them.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import anyio
from mcp import Client

from cm_mcp.server import names
from cm_mcp.server.app import build_server
from cm_mcp.server.runtime import backend, block_text

SCOPE = {"application": "atr", "app_type": "kubernetes", "domain": ["*"]}
LEVEL = "regex.extractions.logLevel"
WINDOW = timedelta(minutes=30)


def run_demo(args: argparse.Namespace) -> int:
    args.sandbox = True
    return anyio.run(_demo, args)


async def _demo(args: argparse.Namespace) -> int:
    async with backend(args) as settings, Client(build_server(settings)) as client:
        overview = await _step(
            client,
            1,
            "When did errors start? Levels, and errors over the last 24 hours (aggregations: cheap)",
            names.LOGS_AGGS,
            {
                **SCOPE,
                "start_time": "now-24h",
                "end_time": "now",
                "aggs": {
                    "levels": {"terms": {"field": LEVEL}},
                    "errors": {
                        "filter": {"term": {LEVEL: "ERROR"}},
                        "aggs": {
                            "over_time": {"date_histogram": {"field": "@timestamp", "fixed_interval": "15m"}}
                        },
                    },
                },
            },
        )
        peak = _peak(overview)
        if peak is None:
            print("no error peak found: nothing to investigate")
            return 1
        start = peak - timedelta(minutes=5)
        window = {"start_time": _iso(start), "end_time": _iso(start + WINDOW)}
        print(f"\n=> the spike: errors peak in the 15-minute bucket starting {_iso(peak)}\n")
        await _step(
            client,
            2,
            "What did the spike say? Error messages in that window, grouped into templates",
            names.LOGS_SCROLL,
            {**SCOPE, **window, "size": 1000, "filters": [{"term": {LEVEL: "ERROR"}}]},
        )
        await _step(
            client,
            3,
            "Where? Errors in the spike window by domain",
            names.LOGS_AGGS,
            {
                **SCOPE,
                **window,
                "aggs": {
                    "errors": {
                        "filter": {"term": {LEVEL: "ERROR"}},
                        "aggs": {"by_domain": {"terms": {"field": "atr.domain_name", "size": 5}}},
                    }
                },
            },
        )
        await _step(client, 4, "What did it cost? Quota left (no request)", names.QUOTA_STATUS, {})
    return 0


async def _step(
    client: Client, number: int, title: str, tool: str, arguments: dict[str, Any]
) -> dict[str, Any]:
    print(f"\n{'=' * 100}\nstep {number}: {title}\n> {tool} {json.dumps(arguments)}\n{'-' * 100}")
    result = await client.call_tool(tool, arguments)
    for block in result.content:
        print(block_text(block))
    if result.is_error:
        raise SystemExit(f"step {number} failed")
    return result.structured_content or {}


def _peak(structured: dict[str, Any]) -> datetime | None:
    """The busiest error bucket of the overview, from the structured summary (a histogram's digest:
    its first bucket's key in epoch ms, the step between buckets, one count per bucket)."""
    best: tuple[int, int] | None = None
    for section in _sections(structured.get("summary", {}).get("sections", [])):
        if section.get("kind") != "date_histogram" or not section.get("counts"):
            continue
        for index, count in enumerate(section["counts"]):
            if best is None or count > best[0]:
                best = (count, section["first"] + index * (section.get("step") or 0))
    return datetime.fromtimestamp(best[1] / 1000, tz=UTC) if best else None


def _sections(sections: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for section in sections:
        yield section
        yield from _sections(section.get("children", []))


def _iso(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
