"""Benchmark of the triage tools on the sandbox: recall@3 on incidents, false findings on quiet days,
requests and tokens per triage.

    .venv/bin/python bench/triage.py [--seeds 1,2,3] [--quiet-seeds 11,12,13] [--volume 30000]

Incidents: tests/scenarios/*.json (a burst, a slow ramp, a new template at normal volume, a workload
failure wave, a serverless timeout storm, an incident on a low-traffic domain, slow workflow runs)
plus the sandbox's built-in incidents (written by others, never tuned on), each triaged over a 24 h
window holding it (the last 24 h when it is in them), baseline the 24 h before; found when one of the
first three findings has its scope, level, window (half of each overlapping) and template
(tests/triage_eval.py judges). Quiet days: sandboxes without any incident, every whole UTC day of the
data after the first, every log target and both workload targets, default baseline (the day
before): every finding there is a false one, listed with its day of the week (a Monday is compared
with a Sunday: weekday-only events such as deploys are new against it).
Requests come from the sandbox's own counters (/_sandbox/stats); tokens are the text plus the
structured content, as a client forwards them, counted by tests/token_ruler.py (cl100k_base) and by the
server's own estimate (what its budget fitting counts).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections import Counter
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from cm_mcp.api.client import CMClient
from cm_mcp.api.times import parse_iso8601
from cm_mcp.sandbox.config import SandboxConfig
from cm_mcp.sandbox.quotas import DEFAULT_LIMITS
from cm_mcp.sandbox.runner import serve_sandbox
from tests.token_ruler import ruler_name
from tests.triage_eval import (
    LOG_TARGETS,
    WORKLOAD_TARGETS,
    Run,
    Truth,
    builtin_truths,
    incident_groups,
    judge,
    quiet_days,
    run_triage,
    truths,
    write_merged,
)

#: Days of data of a quiet sandbox: two weeks, so that every day of the week is a window (a Monday
#: against its Sunday included).
QUIET_DAYS = 15
WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


def _limits() -> dict[str, int | None]:
    return {family: (None if limit is None else 1_000_000) for family, limit in DEFAULT_LIMITS.items()}


def _window(truth: Truth, anchor: datetime) -> tuple[datetime, datetime]:
    """24 h holding the incident: the last 24 h when it is in them, else ending 6 h after it."""
    if truth.start >= anchor - timedelta(hours=24):
        return anchor - timedelta(hours=24), anchor
    end = truth.end + timedelta(hours=6)
    return end - timedelta(hours=24), end


async def incidents(
    seed: int, volume: int, root: Path, groups: dict[str, list[dict[str, Any]]]
) -> tuple[list[tuple[Truth, bool, Run]], list[Run]]:
    scenarios_file = write_merged(groups, root / f"scenarios-{seed}.json")
    config = SandboxConfig(
        port=0,
        seed=seed,
        volume=volume,
        scenarios_file=scenarios_file,
        data_dir=root / "data",
        quota_limits=_limits(),
    )
    outcomes: list[tuple[Truth, bool, Run]] = []
    runs: list[Run] = []
    async with serve_sandbox(config) as sandbox, httpx2.AsyncClient(timeout=60) as http:
        scenarios = (await http.get(f"{sandbox.url}/_sandbox/scenarios")).json()
        as_of = parse_iso8601(scenarios["as_of"])
        anchor = as_of.replace(minute=0, second=0, microsecond=0)
        async with CMClient(api_url=sandbox.url, token=sandbox.token) as client:
            for truth in truths(scenarios, groups) + builtin_truths(scenarios):
                start, end = _window(truth, anchor)
                run = await run_triage(
                    client, http, sandbox.url, truth.target, kind=truth.kind, start=start, end=end, now=as_of
                )
                verdict = judge(run.result, truth)
                outcomes.append((truth, verdict.found, run))
                runs.append(run)
                mark = (
                    f"found at #{verdict.rank}" if verdict.found else "MISSED: " + " | ".join(verdict.reasons)
                )
                print(f"  seed {seed} {truth.group:32} {mark}", flush=True)
    return outcomes, runs


async def quiet(seed: int, volume: int, root: Path) -> tuple[dict[str, list[str]], list[Run]]:
    config = SandboxConfig(
        port=0,
        seed=seed,
        volume=volume,
        builtin_incidents=False,
        window_days=QUIET_DAYS,
        data_dir=root / "data",
        quota_limits=_limits(),
    )
    per_day: dict[str, list[str]] = {}
    runs: list[Run] = []
    async with serve_sandbox(config) as sandbox, httpx2.AsyncClient(timeout=60) as http:
        scenarios = (await http.get(f"{sandbox.url}/_sandbox/scenarios")).json()
        as_of = parse_iso8601(scenarios["as_of"])
        data_start = parse_iso8601(scenarios["data_window"]["start"])
        async with CMClient(api_url=sandbox.url, token=sandbox.token) as client:
            for day in quiet_days(as_of, data_start):
                label = f"seed {seed} {day:%Y-%m-%d} {WEEKDAYS[day.weekday()]}"
                found: list[str] = []
                for kind, targets in (("logs", LOG_TARGETS), ("workloads", WORKLOAD_TARGETS)):
                    for target in targets:
                        run = await run_triage(
                            client,
                            http,
                            sandbox.url,
                            target,
                            kind=kind,
                            start=day,
                            end=day + timedelta(days=1),
                            now=as_of,
                        )
                        runs.append(run)
                        found += [
                            f"{kind} {target['application']}/{target['app_type']}: {f['scope']} {f.get('level')} "
                            f"{f['start'][11:16]} score {f['score']} ({f['evidence']})"
                            for f in run.result["findings"]
                        ]
                per_day[label] = found
                print(f"  {label}: {len(found)} finding(s)", flush=True)
                for line in found:
                    print(f"      {line}")
    return per_day, runs


def _requests(runs: list[Run]) -> str:
    aggs = Counter(sum(n for path, n in run.requests.items() if path.endswith("/aggs")) for run in runs)
    scrolls = Counter(sum(n for path, n in run.requests.items() if path.endswith("/scroll")) for run in runs)
    other = sum(
        n for run in runs for path, n in run.requests.items() if not path.endswith(("/aggs", "/scroll"))
    )
    return (
        f"aggs requests per triage {dict(sorted(aggs.items()))}, scroll requests per triage "
        f"{dict(sorted(scrolls.items()))}, other requests {other}"
    )


def _groups(scenario_dir: Path | None) -> dict[str, list[dict[str, Any]]]:
    """tests/scenarios, or every file of `scenario_dir` that holds an incident (written elsewhere)."""
    if scenario_dir is None:
        return incident_groups()
    names = tuple(sorted(path.name for path in scenario_dir.glob("*.json")))
    return {name: one for name, one in incident_groups(names, scenario_dir).items() if one}


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seeds", default="1,2,3", help="sandbox seeds for the incident runs")
    parser.add_argument("--quiet-seeds", default="11,12,13", help="sandbox seeds for the quiet days")
    parser.add_argument("--volume", type=int, default=30_000, help="sandbox logs per day")
    parser.add_argument(
        "--scenarios",
        type=Path,
        default=None,
        help="a folder of scenario files to judge instead of tests/scenarios (incidents not tuned on)",
    )
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",") if s]
    quiet_seeds = [int(s) for s in args.quiet_seeds.split(",") if s]
    started = time.monotonic()
    groups = _groups(args.scenarios)
    with tempfile.TemporaryDirectory(prefix="cm-triage-bench-") as tmp:
        root = Path(tmp)
        outcomes: list[tuple[Truth, bool, Run]] = []
        runs: list[Run] = []
        print("incidents (recall@3):")
        for seed in seeds:
            found, seed_runs = await incidents(seed, args.volume, root, groups)
            outcomes += found
            runs += seed_runs
        quiet_findings: dict[str, list[str]] = {}
        print("quiet days (every finding is false):")
        for seed in quiet_seeds:
            per_day, seed_runs = await quiet(seed, args.volume, root)
            quiet_findings.update(per_day)
            runs += seed_runs
    print()
    by_group: dict[str, list[bool]] = {}
    for truth, found, _ in outcomes:
        by_group.setdefault(truth.group, []).append(found)
    for group, results in by_group.items():
        print(f"  {group:32} {sum(results)}/{len(results)}")
    hits = sum(found for _, found, _ in outcomes)
    print(
        f"recall@3: {hits}/{len(outcomes)} = {hits / max(1, len(outcomes)):.2f} (seeds {seeds}, volume {args.volume:,}/day)"
    )
    counts = [len(found) for found in quiet_findings.values()]
    if counts:
        triages = len(LOG_TARGETS) + len(WORKLOAD_TARGETS)
        print(
            f"false findings per quiet day ({triages} triages a day): mean {statistics.mean(counts):.2f}, max {max(counts)}, "
            f"days with none {sum(1 for c in counts if c == 0)}/{len(counts)} (seeds {quiet_seeds})"
        )
        by_weekday: dict[str, list[int]] = {}
        for label, found in quiet_findings.items():
            by_weekday.setdefault(label.rsplit(" ", 1)[-1], []).append(len(found))
        print(
            "  by day of the week: "
            + ", ".join(
                f"{day} {statistics.mean(v):.1f}"
                for day, v in sorted(by_weekday.items(), key=lambda kv: WEEKDAYS.index(kv[0]))
            )
        )
    print(_requests(runs))
    tokens = [run.tokens for run in runs]
    estimated = [run.estimated for run in runs]
    print(
        f"tokens per triage (text + structured, {ruler_name()}): mean {statistics.mean(tokens):,.0f}, "
        f"max {max(tokens):,}; by the server's estimate: mean {statistics.mean(estimated):,.0f}, "
        f"max {max(estimated):,} (budget 4,000, 10% kept free)"
    )
    print(f"{len(runs)} triages in {time.monotonic() - started:.0f} s")


if __name__ == "__main__":
    asyncio.run(main())
