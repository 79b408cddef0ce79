"""The ordinary variation of the sandbox's background data (cm_mcp/sandbox/variation.py, bursts.py).

One week at the default volume, no incidents, frozen at `NOW` (a Tuesday): daily and weekly shapes,
noisy and low-traffic streams, benign episodes with exact ground truth, and workloads whose states
and durations vary. Thresholds sit well inside what the profiles produce, so a changed seed does not
flip them; what they guard is the existence and direction of each kind of variation.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import pytest

from cm_mcp.sandbox.bursts import KINDS
from cm_mcp.sandbox.data import DataSpec, generate
from cm_mcp.sandbox.plan import REFERENCE_VOLUME, WORKLOADS, app_totals, episodes
from cm_mcp.sandbox.records import id_prefix
from cm_mcp.sandbox.truth import episode_truth

NOW = datetime(2026, 1, 20, 10, 17, 33, tzinfo=UTC)
SPEC = DataSpec.create(NOW, builtin_incidents=False)


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return list(generate(SPEC))


def _stream(src: dict[str, Any], index: str) -> str:
    if "log_group" in src:
        return src["stage"]
    app = index.split("-")[1]
    return str(src[app]["domain_name"])


def _level(src: dict[str, Any]) -> str:
    return str(src.get("logLevel") or src["regex"]["extractions"]["logLevel"])


@pytest.fixture(scope="module")
def by_stream(docs: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    out: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in docs:
        if d["_index"].startswith("logs-"):
            out[_stream(d["_source"], d["_index"])].append(d["_source"])
    return out


def _hours(sources: list[dict[str, Any]]) -> Counter[int]:
    return Counter(int(s["@timestamp"][11:13]) for s in sources)


def _per_day(sources: list[dict[str, Any]], weekend: bool) -> float:
    days = Counter(s["@timestamp"][:10] for s in sources)
    chosen = [n for day, n in days.items() if (datetime.fromisoformat(day).weekday() >= 5) == weekend]
    return sum(chosen) / len(chosen)


def test_each_stream_has_its_daily_shape(by_stream: dict[str, list[dict[str, Any]]]) -> None:
    etl, shop, cms = (_hours(by_stream[f"{d}.example.com"]) for d in ("etl", "shop", "cms"))
    night, afternoon, evening, morning = range(0, 4), range(12, 16), range(18, 22), range(8, 12)
    assert sum(etl[h] for h in night) > 1.5 * sum(etl[h] for h in afternoon)  # nightly ETL
    assert sum(shop[h] for h in evening) > 2 * sum(shop[h] for h in morning)  # evening shopping
    assert sum(cms[h] for h in morning) > 4 * sum(cms[h] for h in evening)  # an office tool
    globex, acme = (
        _hours([s for s in by_stream["prod"] if s["tenant"] == tenant]) for tenant in ("globex", "acme")
    )
    assert sum(globex[h] for h in night) > sum(globex[h] for h in afternoon)  # a tenant in another zone
    assert sum(acme[h] for h in afternoon) > sum(acme[h] for h in night)


def test_each_stream_has_its_weekly_shape(by_stream: dict[str, list[dict[str, Any]]]) -> None:
    shop, cms, reports = (by_stream[f"{d}.example.com"] for d in ("shop", "cms", "reports"))
    assert _per_day(shop, weekend=True) > 1.1 * _per_day(shop, weekend=False)
    assert _per_day(cms, weekend=True) < 0.5 * _per_day(cms, weekend=False)
    assert _per_day(reports, weekend=True) < 0.5 * _per_day(reports, weekend=False)
    assert _per_day(by_stream["dev"], weekend=True) < 0.3 * _per_day(by_stream["dev"], weekend=False)


def _share(sources: list[dict[str, Any]], level: str) -> float:
    return sum(1 for s in sources if _level(s) == level) / len(sources)


def test_noisy_streams_and_quiet_ones(by_stream: dict[str, list[dict[str, Any]]]) -> None:
    pay, notify = by_stream["pay.example.com"], by_stream["notify.example.com"]
    assert 0.02 < _share(pay, "ERROR") < 0.05
    assert _share(notify, "ERROR") > 2.5 * _share(pay, "ERROR")  # a flaky notifier, every day
    assert _share(by_stream["search.example.com"], "WARN") > 1.5 * _share(
        by_stream["shop.example.com"], "WARN"
    )
    assert _share(by_stream["dev"], "ERROR") > 4 * _share(by_stream["prod"], "ERROR")
    notify_days = Counter(s["@timestamp"][:10] for s in notify if _level(s) == "ERROR")
    assert len(notify_days) >= 7 and min(notify_days.values()) > 50


def test_low_traffic_streams(by_stream: dict[str, list[dict[str, Any]]]) -> None:
    totals = app_totals(SPEC)
    for domain, app in (("legacy.example.com", "atr"), ("labs.example.com", "klewer")):
        sources = by_stream[domain]
        assert len(sources) < 0.02 * totals[app]  # ~1 % of the application's traffic
        assert len({s["@timestamp"][:10] for s in sources}) >= 7  # yet present every day
    wayne = [s for s in by_stream["prod"] if s["tenant"] == "wayne"]
    assert 0 < len(wayne) < 0.02 * totals["eventops"]


def test_benign_episodes_happen_as_planned(docs: list[dict[str, Any]]) -> None:
    truth = episode_truth(SPEC, SPEC.end)
    assert {e["episode"] for e in truth} == {*KINDS, "failure-cluster"}
    assert all(e["count"] == e["planned_count"] > 0 for e in truth)
    assert (
        sum(e["planned_count"] for e in truth if e["kind"] == "logs") < 0.15 * SPEC.volume * SPEC.window_days
    )
    # Episode records carry no marker (a triage must not be able to filter them out): find them by
    # the generator's id prefix, only to check each one is where, when and what its truth says.
    by_prefix: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for d in docs:
        by_prefix[d["_id"][:8]].append(d)
    for entry in truth:
        records = by_prefix[id_prefix(SPEC.seed, entry["id"])]
        assert len(records) == entry["count"], entry
        assert all(entry["start"] <= r["_source"]["@timestamp"] <= entry["end"] for r in records)
        if entry["kind"] == "workloads":
            assert {r["_source"]["workflow"]["name"] for r in records} == {entry["workflow"]}
            continue
        where = {_stream(r["_source"], r["_index"]) for r in records}
        assert where == {entry.get("domain") or entry["stage"]}, entry
        kind = KINDS[entry["episode"]]
        texts = [text.split("{")[0] for _level, _w, text, _s in kind.messages]
        assert all(any(r["_source"]["message"].startswith(t) for t in texts) for r in records)
    cron = sorted(e["start"] for e in truth if e["episode"] == "cron-backup")
    assert len(cron) >= 7 and {start[11:16] for start in cron} <= {
        "02:00",
        "02:01",
        "02:02",
    }  # daily, on time


def test_episodes_scale_with_volume_and_never_swamp_a_small_one() -> None:
    default = sum(e.count for e in episodes(SPEC, "atr"))
    tenth = sum(e.count for e in episodes(DataSpec.create(NOW, volume=REFERENCE_VOLUME // 10), "atr"))
    assert 0.05 * default < tenth < 0.25 * default
    tiny = DataSpec.create(NOW, volume=100)
    for app, total in app_totals(tiny).items():
        assert sum(e.count for e in episodes(tiny, app)) <= 0.15 * total
    assert episodes(DataSpec.create(NOW, volume=0), "atr") == []


def test_workloads_vary_by_workflow_hour_and_domain(docs: list[dict[str, Any]]) -> None:
    runs = [d["_source"] for d in docs if d["_index"].startswith("workloads-")]
    states: dict[str, Counter[str]] = defaultdict(Counter)
    for run in runs:
        states[run["workflow"]["name"]][run["workload"]["state"]] += 1

    def share(workflow: str, *names: str) -> float:
        return sum(states[workflow][n] for n in names) / sum(states[workflow].values())

    assert share("Access_Request_Workflow", "CANCELLED") > 0.05  # users withdraw requests
    assert share("Patch_Deployment_Workflow", "FAILED", "TIMED_OUT") > 2 * share(
        "Incident_Response_Workflow", "FAILED", "TIMED_OUT"
    )
    done = [
        r
        for r in runs
        if r["workload"]["state"] == "COMPLETED" and r["workflow"]["name"] == "Incident_Response_Workflow"
    ]
    durations = sorted(r["duration_ms"] for r in done)
    assert durations[int(len(durations) * 0.99)] > 4 * statistics.median(durations)  # a long tail
    busy = [r["duration_ms"] for r in done if 11 <= int(r["@timestamp"][11:13]) < 16]
    quiet = [r["duration_ms"] for r in done if int(r["@timestamp"][11:13]) < 5]
    assert statistics.median(busy) > 1.1 * statistics.median(quiet)  # busy hours are slower
    backups = Counter(
        int(r["@timestamp"][11:13]) for r in runs if r["workflow"]["name"] == "Backup_Verification_Workflow"
    )
    assert sum(backups[h] for h in (0, 1, 2)) > 0.6 * sum(backups.values())  # a nightly schedule


def test_benign_failure_clusters(docs: list[dict[str, Any]]) -> None:
    clusters = episodes(SPEC, WORKLOADS)
    assert clusters and all(3 <= e.count <= 6 and e.end_ms - e.start_ms <= 25 * 60_000 for e in clusters)
    failed = [d["_source"] for d in docs if d["_index"].startswith("workloads-") and "error" in d["_source"]]
    assert len(failed) == sum(e.count for e in clusters)
    assert {r["workload"]["state"] for r in failed} <= {"FAILED", "TIMED_OUT"}
    assert len(clusters) >= 4 and len({r["@timestamp"][:10] for r in failed}) >= 3  # now and then
