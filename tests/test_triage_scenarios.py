"""logs_triage / workloads_triage through a real MCP session on the sandbox, judged by its ground truth.

Each scenario file (tests/scenarios/*.json: a burst, a slow ramp, a new template at normal volume, a
workload failure wave, a serverless timeout storm, a low-traffic domain, slow workflow runs) and each of
the sandbox's built-in incidents must be among the first three findings of one triage of its
application over 24 h, with its scope, level or state, a window overlapping the truth by at least half
(of each) and its template (tests/triage_eval.py judges, as bench/triage.py does). A day without any
incident yields no finding. Every triage spends at most two aggregations and one scroll, counted by the
sandbox itself, and says so.

The sandbox's data is pinned to one hour (DATA_NOW) and windows are frozen to its anchor (the start of
that hour, what scenario times are relative to), so every figure is a function of the seed, never of
when the test runs.
"""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client

from cm_mcp.api.budget import DEFAULT_TOKENS, MIN_TOKENS
from cm_mcp.api.client import CMClient
from cm_mcp.api.requests import (
    LogsBatchRequest,
    LogsScrollRequest,
    WorkloadsBatchRequest,
    WorkloadsScrollRequest,
)
from cm_mcp.api.settings import Settings
from cm_mcp.api.times import format_utc, parse_iso8601
from cm_mcp.api.validation import parse_request
from cm_mcp.ops.stored import ResultsSearchRequest
from cm_mcp.sandbox.config import SandboxConfig
from cm_mcp.sandbox.quotas import DEFAULT_LIMITS
from cm_mcp.sandbox.runner import RunningSandbox, serve_sandbox
from cm_mcp.server.app import build_server
from cm_mcp.server.runtime import pointed_at
from cm_mcp.triage.followups import follow_ups
from cm_mcp.triage.target import Target, logs_target, workloads_target
from tests.conftest import fast_retries
from tests.token_ruler import model_tokens
from tests.triage_eval import (
    INCIDENT_FILES,
    LOG_TARGETS,
    SCENARIO_DIR,
    WORKLOAD_TARGETS,
    Truth,
    builtin_truths,
    incident_groups,
    judge,
    message_pattern,
    settled_counts,
    truths,
    write_merged,
)

pytestmark = pytest.mark.anyio

#: The volume the triage is benchmarked at (bench/triage.py): a day of a busy application.
VOLUME = 30_000
SEED = 5
#: The sandbox's data is pinned to this hour (a Wednesday): its background (benign bursts, the days of
#: the week) is then the same whenever the test runs; a sandbox following the real clock draws a new
#: week every day. bench/triage.py measures the triage over many days and seeds.
DATA_NOW = datetime(2026, 3, 11, 12, 30, tzinfo=UTC)
GROUPS = [name.removesuffix(".json") for name in INCIDENT_FILES]
BUILTINS = [
    "builtin-atr-cluster-down",
    "builtin-klewer-deploy-errors",
    "builtin-eventops-keyerror",
    "builtin-atr-enrichment-failures",
]


#: The request model of every tool a finding's follow-up may call.
FOLLOW_UP_MODELS: dict[str, Any] = {
    "logs_scroll": LogsScrollRequest,
    "logs_batch": LogsBatchRequest,
    "workloads_scroll": WorkloadsScrollRequest,
    "workloads_batch": WorkloadsBatchRequest,
    "results_search": ResultsSearchRequest,
}


@dataclass
class World:
    """A running sandbox, its ground truth, and its anchor (what `now` means in its scenarios)."""

    sandbox: RunningSandbox
    scenarios: dict[str, Any]
    anchor: datetime
    data_dir: Path

    @property
    def data_start(self) -> datetime:
        return parse_iso8601(self.scenarios["data_window"]["start"])


def _limits(**changes: int) -> dict[str, int | None]:
    limits: dict[str, int | None] = {
        family: (None if limit is None else 100_000) for family, limit in DEFAULT_LIMITS.items()
    }
    return {**limits, **changes}


@asynccontextmanager
async def _world(root: Path, **config: Any) -> AsyncIterator[World]:
    async with serve_sandbox(
        SandboxConfig(port=0, seed=SEED, volume=VOLUME, data_dir=root / "data", **config), now=DATA_NOW
    ) as sandbox:
        async with httpx2.AsyncClient(timeout=60) as http:
            scenarios = (await http.get(f"{sandbox.url}/_sandbox/scenarios")).json()
        # the start of the sandbox's hour: scenario times ("now-7h") count from it, and no data after
        # it depends on when the test runs
        anchor = parse_iso8601(scenarios["data_window"]["end"]) - timedelta(hours=1)
        yield World(sandbox, scenarios, anchor, root)


@pytest.fixture(scope="module")
async def incidents(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """Every scenario file's incidents and the built-in ones, in one sandbox."""
    root = tmp_path_factory.mktemp("triage-incidents")
    scenarios = write_merged(incident_groups(), root / "scenarios.json")
    async with _world(root, scenarios_file=scenarios, quota_limits=_limits()) as world:
        yield world


@pytest.fixture(scope="module")
async def quiet(tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[World]:
    """A sandbox with no incident at all (tests/scenarios/quiet.json, no built-ins)."""
    root = tmp_path_factory.mktemp("triage-quiet")
    async with _world(
        root,
        scenarios_file=SCENARIO_DIR / "quiet.json",
        builtin_incidents=False,
        quota_limits=_limits(),
    ) as world:
        yield world


@asynccontextmanager
async def _mcp(world: World) -> AsyncIterator[Client]:
    sandbox = world.sandbox
    settings = pointed_at(Settings(data_dir=world.data_dir / "store"), sandbox.url, sandbox.token)
    async with (
        CMClient(api_url=sandbox.url, token=sandbox.token, retry_policy=fast_retries()) as api,
        Client(build_server(settings, client=api), raise_exceptions=True) as client,
    ):
        yield client


async def _requests(world: World) -> dict[str, int]:
    async with httpx2.AsyncClient(timeout=60) as http:
        stats = (await http.get(f"{world.sandbox.url}/_sandbox/stats")).json()
    return {path: entry["total"] for path, entry in stats["requests"].items() if not path.startswith("/_")}


@dataclass
class Triaged:
    result: dict[str, Any]
    text: str
    #: API requests per path, counted by the sandbox
    sent: dict[str, int]
    #: (text, structured content) tokens, by the independent ruler (tests/token_ruler.py)
    tokens: tuple[int, int]


async def _triage(
    world: World,
    mcp: Client,
    tool: str,
    target: dict[str, Any],
    start: datetime,
    end: datetime,
    **options: Any,
) -> Triaged:
    before = await _requests(world)
    result = await mcp.call_tool(
        tool, {**target, "start_time": format_utc(start), "end_time": format_utc(end), **options}
    )
    said = sum((result.structured_content or {}).get("spent", {}).get("requests", {}).values())
    async with httpx2.AsyncClient(timeout=60) as http:  # the sandbox counts a request after answering it
        after = await settled_counts(http, world.sandbox.url, before, said)
    text = "\n".join(block.text for block in result.content if hasattr(block, "text"))
    assert not result.is_error, text
    assert result.structured_content is not None
    sent = {path: after[path] - before.get(path, 0) for path in after if after[path] != before.get(path, 0)}
    return Triaged(result.structured_content, text, sent, model_tokens(result))


def _check_spending(triaged: Triaged, kind: str) -> None:
    """At most two aggregations and one scroll, nothing else, and the result says exactly that."""
    assert set(triaged.sent) <= {f"/v2/{kind}/aggs", f"/v2/{kind}/scroll"}, triaged.sent
    assert triaged.sent.get(f"/v2/{kind}/aggs", 0) <= 2, triaged.sent
    assert triaged.sent.get(f"/v2/{kind}/scroll", 0) <= 1, triaged.sent
    said = triaged.result["spent"]["requests"]
    assert said == {f"{kind}_{path.rsplit('/', 1)[1]}": n for path, n in triaged.sent.items()}, (
        said,
        triaged.sent,
    )


def _window(truth: Truth, anchor: datetime) -> tuple[datetime, datetime]:
    """The last 24 h when they hold the incident, else 24 h ending 6 h after it."""
    if truth.start >= anchor - timedelta(hours=24):
        return anchor - timedelta(hours=24), anchor
    end = truth.end + timedelta(hours=6)
    return end - timedelta(hours=24), end


async def _judged(world: World, truth: Truth) -> Triaged:
    start, end = _window(truth, world.anchor)
    tool = f"{truth.kind}_triage"
    async with _mcp(world) as mcp:
        triaged = await _triage(world, mcp, tool, truth.target, start, end)
    verdict = judge(triaged.result, truth)
    assert verdict.found, f"{truth.group} not in the top 3: {verdict.reasons}\n{triaged.text}"
    _check_spending(triaged, truth.kind)
    assert not triaged.result["quiet"]
    return triaged


@pytest.mark.parametrize("group", GROUPS)
async def test_each_scenario_incident_is_a_top_finding(incidents: World, group: str) -> None:
    (truth,) = truths(incidents.scenarios, incident_groups((f"{group}.json",)))
    triaged = await _judged(incidents, truth)
    finding = next(f for f in triaged.result["findings"] if _is(f, truth))
    # the count against the baseline, and ready follow-ups that narrow to the finding
    assert finding["count"] > finding["expected"]
    assert finding["series"] and max(finding["series"]) > 0
    tools = [call["tool"] for call in finding["follow_up"]]
    assert f"{truth.kind}_scroll" in tools, tools
    for call in finding["follow_up"]:  # each a valid call of its tool, as the tool would check it
        parse_request(FOLLOW_UP_MODELS[call["tool"]], call["arguments"])
    # the narrow scroll reads the incident's own records: inside the window, with its messages
    narrow = next(call for call in finding["follow_up"] if call["tool"] == f"{truth.kind}_scroll")
    assert parse_iso8601(narrow["arguments"]["start_time"]) >= parse_iso8601(
        triaged.result["window"]["start"]
    )
    async with _mcp(incidents) as mcp:
        read = await mcp.call_tool(narrow["tool"], narrow["arguments"])
    assert not read.is_error
    assert read.structured_content["summary"]["matched"] > 0  # type: ignore[index]
    if truth.kind == "logs":  # the text has the templates' rows, with an example each
        text = "\n".join(getattr(block, "text", "") for block in read.content)
        patterns = [re.compile(message_pattern(message).pattern[1:-1]) for message in truth.messages]
        assert any(pattern.search(text) for pattern in patterns), text
    # within the default token budget, text and structured content together (what a client forwards)
    assert sum(triaged.tokens) <= DEFAULT_TOKENS, triaged.tokens


def _is(finding: dict[str, Any], truth: Truth) -> bool:
    return all(finding["scope"].get(name) == value for name, value in truth.scope.items())


@pytest.mark.parametrize("group", BUILTINS)
async def test_each_builtin_incident_is_a_top_finding(incidents: World, group: str) -> None:
    (truth,) = [one for one in builtin_truths(incidents.scenarios) if one.group == group]
    await _judged(incidents, truth)


async def test_a_finding_marks_new_templates_and_offers_the_stored_scroll(incidents: World) -> None:
    (truth,) = truths(incidents.scenarios, incident_groups(("new_template.json",)))
    triaged = await _judged(incidents, truth)
    finding = next(f for f in triaged.result["findings"] if _is(f, truth))
    assert any(line["new"] for line in finding["templates"]), finding["templates"]
    assert all(line["example"] for line in finding["templates"])
    result_id = triaged.result["result_id"]
    assert result_id, triaged.result["spent"]
    local = [call for call in finding["follow_up"] if call["tool"] == "results_search"]
    assert local and local[0]["arguments"]["result_id"] == result_id
    async with _mcp(incidents) as mcp:
        before = await _requests(incidents)
        searched = await mcp.call_tool("results_search", local[0]["arguments"])
        assert await _requests(incidents) == before  # stored data: no API request
    assert not searched.is_error
    assert searched.structured_content["summary"]["matched"] > 0  # type: ignore[index]


#: A small budget that holds the first finding with its template (the smallest holds its figures).
SMALL_BUDGET = 1_500


async def test_a_small_budget_keeps_the_first_finding_and_says_what_was_left_out(incidents: World) -> None:
    (truth,) = [one for one in builtin_truths(incidents.scenarios) if one.group == "builtin-atr-cluster-down"]
    start, end = _window(truth, incidents.anchor)
    async with _mcp(incidents) as mcp:
        # first: a server that has seen no scroll explains its spending at the greatest length
        smallest = await _triage(
            incidents, mcp, "logs_triage", truth.target, start, end, max_tokens=MIN_TOKENS
        )
        whole = await _triage(incidents, mcp, "logs_triage", truth.target, start, end, max_tokens=20_000)
        small = await _triage(
            incidents, mcp, "logs_triage", truth.target, start, end, max_tokens=SMALL_BUDGET
        )
    assert sum(smallest.tokens) <= MIN_TOKENS < sum(whole.tokens), (smallest.tokens, whole.tokens)
    assert smallest.result["omitted"] and "left out to fit max_tokens" in smallest.result["omitted"]
    if not smallest.result["notes"]:  # a note (a request that failed under load) takes the room
        # the first finding's figures fit the smallest budget (its template needs a larger one)
        assert judge(smallest.result, replace(truth, messages=[]), top=1).found, smallest.text
    assert sum(small.tokens) <= SMALL_BUDGET, small.tokens
    assert small.result["omitted"] and "left out to fit max_tokens" in small.result["omitted"]
    # the most abnormal finding stays with its template: its scope, level, window and count
    assert judge(small.result, replace(truth, messages=[]), top=1).found, small.text
    assert small.result["figures"] == whole.result["figures"]  # the figures are never cut


async def test_without_scroll_quota_templates_come_from_aggregations(tmp_path: Path) -> None:
    """3 scroll requests left (kept for the follow-ups): two aggregations only, the incident still
    found with its template."""
    scenarios = write_merged(incident_groups(("burst.json",)), tmp_path / "scenarios.json")
    async with _world(
        tmp_path,
        scenarios_file=scenarios,
        builtin_incidents=False,
        quota_limits=_limits(logs_scroll=4),
    ) as world:
        (truth,) = truths(world.scenarios, incident_groups(("burst.json",)))
        start, end = _window(truth, world.anchor)
        async with _mcp(world) as mcp:
            # one scroll by the user: the server now knows 3 are left
            counted = await _requests(world)
            spent = await mcp.call_tool(
                "logs_scroll", {**truth.target, "start_time": "now-1h", "end_time": "now", "size": 1}
            )
            assert not spent.is_error
            async with httpx2.AsyncClient(timeout=60) as http:  # counted before the triage's own
                await settled_counts(http, world.sandbox.url, counted, 1)
            triaged = await _triage(world, mcp, "logs_triage", truth.target, start, end)
    assert triaged.sent == {"/v2/logs/aggs": 2}, triaged.sent
    assert "no scroll (3 logs_scroll requests left" in triaged.result["spent"]["scroll"]
    assert triaged.result.get("result_id") is None  # nothing stored (None fields are left out)
    verdict = judge(triaged.result, truth)
    assert verdict.found, f"{verdict.reasons}\n{triaged.text}"


def _quiet_day(world: World) -> datetime:
    """The newest whole UTC day of the data from Tuesday to Saturday (its baseline, the day before, a
    day of the same kind: a Monday against a Sunday is in bench/triage.py's figures, not here)."""
    day = world.anchor.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    while day.weekday() not in (1, 2, 3, 4, 5) or day - timedelta(days=1) < world.data_start:
        day -= timedelta(days=1)
    return day


@pytest.mark.parametrize(
    ("kind", "target"),
    [("logs", target) for target in LOG_TARGETS] + [("workloads", target) for target in WORKLOAD_TARGETS],
    ids=lambda value: value if isinstance(value, str) else f"{value['application']}-{value['app_type']}",
)
async def test_a_quiet_day_finds_nothing_and_shows_why(
    quiet: World, kind: str, target: dict[str, Any]
) -> None:
    day = _quiet_day(quiet)
    async with _mcp(quiet) as mcp:
        triaged = await _triage(quiet, mcp, f"{kind}_triage", target, day, day + timedelta(days=1))
    result = triaged.result
    assert result["findings"] == [], triaged.text
    assert result["quiet"] is True
    figures = result["figures"]
    # the figures that show it is quiet: what was scanned, the window against the baseline, the best score
    assert figures["series_scanned"] > 0 and figures["window_records"]
    assert figures["best_score"] <= 1
    assert result["summary"].startswith("quiet: nothing abnormal")
    assert "significance bar" in result["summary"]
    _check_spending(triaged, kind)


@pytest.mark.parametrize(
    ("target", "scope"),
    [
        (logs_target("atr", "kubernetes", domain=["*"]), (("atr.domain_name", "pay.example.com"),)),
        (
            logs_target("eventops", "serverless", log_group=["*"], tenant=["*"], stage=["*"]),
            (("log_group", "/aws/lambda/enrich"), ("tenant", "globex"), ("stage", "prod")),
        ),
        (
            workloads_target("ec2", domain=["*"]),
            (("atr.domain_name", "ops.example.com"), ("workflow.name", "Data_Enrichment_Workflow")),
        ),
    ],
    ids=["hosts", "serverless", "workloads"],
)
def test_a_finding_over_10k_records_proposes_an_export(target: Target, scope: tuple[Any, ...]) -> None:
    start = datetime(2026, 1, 5, 10, tzinfo=UTC)
    calls = follow_ups(
        target,
        scope,
        [{"term": {target.split_field: "ERROR" if target.kind == "logs" else "FAILED"}}],
        int(start.timestamp() * 1000),
        int((start + timedelta(hours=1)).timestamp() * 1000),
        25_000,
        result_id=None,
        stored=False,
    )
    assert [call.tool for call in calls] == [f"{target.kind}_batch", f"{target.kind}_scroll"]
    for call in calls:
        parse_request(FOLLOW_UP_MODELS[call.tool], call.arguments, now=start + timedelta(days=1))
    small = follow_ups(target, scope, [], 0, 3_600_000, 900, result_id="r1", stored=True)
    assert [call.tool for call in small] == [f"{target.kind}_scroll", "results_search"]
