"""Scoring a triage against the sandbox's ground truth: shared by tests/test_triage_scenarios.py and
bench/triage.py, so the test and the benchmark judge findings the same way.

A scenario file (tests/scenarios/*.json, the sandbox's documented format) holds one incident group:
one incident, or several that together make one (a ramp is a few steps of rising rate). The truth of
a group comes from GET /_sandbox/scenarios: its scope, level or state, window (the union of its
incidents') and its messages (the file's templates). A finding *finds* a group when its scope and
level (or state) are the group's, its window overlaps the truth's by at least half of each (most of
the incident is covered, and most of the reported window is incident), and one of its templates'
examples is one of the group's messages.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2

from cm_mcp.api.client import CMClient
from cm_mcp.api.times import format_utc, parse_iso8601
from cm_mcp.api.validation import parse_request
from cm_mcp.ops.triage import triage
from cm_mcp.sandbox.incidents import BUILTIN_INCIDENTS
from cm_mcp.store import ResultStore
from cm_mcp.triage.render import tokens_of
from cm_mcp.triage.requests import LogsTriageRequest, WorkloadsTriageRequest
from tests.token_ruler import count_tokens

SCENARIO_DIR = Path(__file__).parent / "scenarios"
#: The incident scenarios (quiet.json is the day without any).
INCIDENT_FILES = (
    "burst.json",
    "ramp.json",
    "new_template.json",
    "workload_wave.json",
    "timeout_storm.json",
    "low_traffic.json",
    "slow_runs.json",
)
#: Every log target of the sandbox, and the workload ones: what a quiet day is triaged on.
LOG_TARGETS: tuple[dict[str, Any], ...] = (
    {"application": "atr", "app_type": "kubernetes", "domain": ["*"]},
    {"application": "atr", "app_type": "ec2", "domain": ["*"]},
    {"application": "klewer", "app_type": "kubernetes", "domain": ["*"]},
    {"application": "klewer", "app_type": "ec2", "domain": ["*"]},
    {"application": "quasar", "app_type": "kubernetes", "domain": ["*"]},
    {"application": "quasar", "app_type": "ec2", "domain": ["*"]},
    {
        "application": "eventops",
        "app_type": "serverless",
        "log_group": ["*"],
        "tenant": ["*"],
        "stage": ["*"],
    },
)
WORKLOAD_TARGETS: tuple[dict[str, Any], ...] = (
    {"application": "atr", "app_type": "ec2", "domain": ["*"]},
    {"application": "atr", "app_type": "kubernetes", "domain": ["*"]},
)


#: Built-in incidents of the sandbox that are incidents (builtin-klewer-deploy is one INFO line marking
#: a deploy): written by others, never tuned on.
BUILTIN_GROUPS = (
    "builtin-atr-cluster-down",
    "builtin-klewer-deploy-errors",
    "builtin-eventops-keyerror",
    "builtin-atr-enrichment-failures",
)


def incident_groups(
    names: tuple[str, ...] = INCIDENT_FILES, directory: Path = SCENARIO_DIR
) -> dict[str, list[dict[str, Any]]]:
    """Scenario file name (without .json) -> its incidents, as written."""
    return {
        name.removesuffix(".json"): json.loads((directory / name).read_text())["incidents"] for name in names
    }


def write_merged(groups: dict[str, list[dict[str, Any]]], path: Path) -> Path:
    """All groups' incidents in one scenarios file (one sandbox serves every scenario)."""
    path.write_text(json.dumps({"incidents": [one for group in groups.values() for one in group]}))
    return path


@dataclass
class Truth:
    group: str
    kind: str
    application: str
    app_type: str
    #: field -> value the finding's scope must hold
    scope: dict[str, str]
    #: level (logs), state (workloads) or None (slow runs)
    level: str | None
    start: datetime
    end: datetime
    messages: list[str]
    slow: bool = False

    @property
    def target(self) -> dict[str, Any]:
        """The triage's scope arguments: the whole application (every domain / route)."""
        if self.app_type == "serverless":
            return {
                "application": self.application,
                "app_type": self.app_type,
                "log_group": ["*"],
                "tenant": ["*"],
                "stage": ["*"],
            }
        return {"application": self.application, "app_type": self.app_type, "domain": ["*"]}


def truths(scenarios: dict[str, Any], groups: dict[str, list[dict[str, Any]]]) -> list[Truth]:
    """The ground truth of each group, from GET /_sandbox/scenarios."""
    by_id = {incident["id"]: incident for incident in scenarios["incidents"]}
    out = []
    for name, incidents in groups.items():
        listed = [by_id[one["id"]] for one in incidents]
        first, raw = listed[0], incidents[0]
        if first["kind"] == "workloads":
            scope = {"atr.domain_name": first["domain"][0], "workflow.name": first["workflow"]}
            slow = "duration_ms" in (raw.get("fields") or {})
            level = None if slow else first["state"]
            fields = raw.get("fields") or {}
            messages = [fields["error.message"]] if "error.message" in fields else []
        else:
            if first["app_type"] == "serverless":
                scope = {name_: first[name_][0] for name_ in ("log_group", "tenant", "stage")}
            else:
                scope = {first["domain_field"]: first["domain"][0]}
            slow, level = False, first["level"]
            messages = list(raw["messages"])
        out.append(
            Truth(
                group=name,
                kind=first["kind"],
                application=first["application"],
                app_type=first["app_type"],
                scope=scope,
                level=level,
                start=min(parse_iso8601(one["start"]) for one in listed),
                end=max(parse_iso8601(one["planned_end"]) for one in listed),
                messages=messages,
                slow=slow,
            )
        )
    return out


def builtin_truths(scenarios: dict[str, Any]) -> list[Truth]:
    """The ground truth of the sandbox's built-in incidents (their definitions hold their messages)."""
    groups = {
        incident.id: [incident.model_dump(mode="json")]
        for incident in BUILTIN_INCIDENTS
        if incident.id in BUILTIN_GROUPS
    }
    return truths(scenarios, groups)


def message_pattern(template: str) -> re.Pattern[str]:
    parts = re.split(r"\{[a-z_]+\}", template)
    return re.compile("^" + ".+?".join(re.escape(part) for part in parts) + "$")


@dataclass
class Verdict:
    found: bool
    rank: int | None = None
    reasons: list[str] = field(default_factory=list)


def overlap_ok(finding: dict[str, Any], truth: Truth) -> tuple[bool, str]:
    start, end = parse_iso8601(finding["start"]), parse_iso8601(finding["end"])
    shared = max(0.0, (min(end, truth.end) - max(start, truth.start)).total_seconds())
    of_truth = shared / max(1.0, (truth.end - truth.start).total_seconds())
    of_finding = shared / max(1.0, (end - start).total_seconds())
    return (
        of_truth >= 0.5 and of_finding >= 0.5,
        f"overlap {of_truth:.0%} of the truth, {of_finding:.0%} of the finding",
    )


def judge(result: dict[str, Any], truth: Truth, *, top: int = 3) -> Verdict:
    """Whether one of the first `top` findings finds `truth`, and why not when none does."""
    reasons = []
    patterns = [message_pattern(message) for message in truth.messages]
    for finding in result["findings"][:top]:
        scope_ok = all(finding["scope"].get(name) == value for name, value in truth.scope.items())
        level_ok = finding["kind"] == "slow_runs" if truth.slow else finding.get("level") == truth.level
        window_ok, overlap = overlap_ok(finding, truth)
        examples = [line["example"] or line["template"] for line in finding["templates"]]
        template_ok = not patterns or any(p.match(example) for p in patterns for example in examples)
        if scope_ok and level_ok and window_ok and template_ok:
            return Verdict(True, finding["rank"])
        reasons.append(
            f"#{finding['rank']} {finding['scope']} {finding.get('level')}: scope {scope_ok}, level {level_ok}, "
            f"{overlap}, template {template_ok}"
        )
    return Verdict(False, None, reasons or ["no finding"])


@dataclass
class Run:
    result: dict[str, Any]
    text: str
    #: text + structured content (compact JSON, None fields left out, as sent), by the independent
    #: ruler of tests/token_ruler.py (cl100k_base when it loads)
    tokens: int
    #: the same by the server's own estimate (what its budget fitting counts)
    estimated: int
    #: API requests per endpoint path, from the sandbox's /_sandbox/stats
    requests: dict[str, int]


#: How long a count may take to show in /_sandbox/stats: the sandbox records a request after its
#: response is sent, so a client can ask for the stats before the last request is counted.
SETTLE_SECONDS = 60.0


async def settled_counts(
    http: httpx2.AsyncClient, url: str, before: dict[str, int], spent: int
) -> dict[str, int]:
    """The API request counts once at least `spent` requests (what the triage says it sent) show
    since `before` (polled: never a fixed sleep)."""
    deadline = time.monotonic() + SETTLE_SECONDS
    while True:
        after = await request_counts(http, url)
        if sum(after.values()) - sum(before.values()) >= spent or time.monotonic() > deadline:
            return after
        await anyio.sleep(0.05)


async def request_counts(http: httpx2.AsyncClient, url: str) -> dict[str, int]:
    stats = (await http.get(f"{url}/_sandbox/stats")).json()
    # API requests only (not the sandbox's control endpoints, such as this one)
    return {path: entry["total"] for path, entry in stats["requests"].items() if not path.startswith("/_")}


async def run_triage(
    client: CMClient,
    http: httpx2.AsyncClient,
    url: str,
    arguments: dict[str, Any],
    *,
    kind: str,
    start: datetime,
    end: datetime,
    now: datetime,
    store: ResultStore | None = None,
    max_tokens: int = 4000,
) -> Run:
    model = LogsTriageRequest if kind == "logs" else WorkloadsTriageRequest
    request = parse_request(
        model, {**arguments, "start_time": format_utc(start), "end_time": format_utc(end)}, now=now
    )
    before = await request_counts(http, url)
    rendered = await triage(client, request, max_tokens=max_tokens, store=store, now=now)
    said = sum(rendered.structured.spent.requests.values())  # type: ignore[attr-defined]
    after = await settled_counts(http, url, before, said)
    spent = {
        path: after.get(path, 0) - before.get(path, 0)
        for path in after
        if after.get(path, 0) != before.get(path, 0)
    }
    structured = rendered.structured
    return Run(
        result=structured.model_dump(mode="json"),
        text=rendered.text,
        tokens=count_tokens(rendered.text) + count_tokens(structured.model_dump_json(exclude_none=True)),
        estimated=tokens_of(structured, rendered.text),  # type: ignore[arg-type]
        requests=spent,
    )


def quiet_days(as_of: datetime, data_start: datetime) -> list[datetime]:
    """Whole UTC days of the data that have a whole day before them (each a window; its baseline
    the day before), newest first."""
    day = as_of.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=1)
    days = []
    while day - timedelta(days=1) >= data_start:
        days.append(day)
        day -= timedelta(days=1)
    return days
