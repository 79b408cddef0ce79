"""The sandbox data generator: determinism, volume, shapes, incidents, and ground truth at an instant.

Every test freezes its instants (`NOW`, or offsets from the spec's own window): nothing here depends on
the wall clock. The ordinary variation of the data (seasonality, noisy streams, benign episodes,
workloads) is tested in test_sandbox_variation.py.
"""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cm_mcp.api.fields import domain_field, infra_type_field
from cm_mcp.sandbox.billing import billing_profile, billing_profiles, billing_summary
from cm_mcp.sandbox.catalogue import APP_SHARES, DOMAINS
from cm_mcp.sandbox.data import (
    DataSpec,
    billed_domains,
    catalogue,
    expected_counts,
    generate,
    generate_logs,
    generate_workloads,
)
from cm_mcp.sandbox.incidents import BUILTIN_INCIDENTS, parse_scenarios
from cm_mcp.sandbox.plan import app_totals
from cm_mcp.sandbox.truth import scenarios

NOW = datetime(2026, 1, 20, 10, 17, 33, tzinfo=UTC)


def _spec(**kw: Any) -> DataSpec:
    return DataSpec.create(NOW, **{"volume": 4000, "workloads_per_day": 300, **kw})


@pytest.fixture(scope="module")
def docs() -> list[dict[str, Any]]:
    return list(generate(_spec()))


def _get(src: dict[str, Any], dotted: str) -> Any:
    for part in dotted.split("."):
        src = src[part]
    return src


def _ts(hit: dict[str, Any]) -> datetime:
    return datetime.fromisoformat(hit["_source"]["@timestamp"].replace("Z", "+00:00"))


def _kind(hit: dict[str, Any]) -> str:
    index = hit["_index"]
    return "workloads:atr" if index.startswith("workloads-") else f"logs:{index.split('-')[1]}"


def test_create_pins_the_hour_and_anchors_scenarios_at_its_start() -> None:
    a = DataSpec.create(NOW)
    b = DataSpec.create(NOW.replace(minute=59, second=59))
    assert a.end == datetime(2026, 1, 20, 11, tzinfo=UTC)  # data to the end of the hour (one index per hour)
    assert (
        a.anchor == datetime(2026, 1, 20, 10, tzinfo=UTC) <= NOW
    )  # scenario `now`: never ahead of the clock
    assert a.start == a.end - timedelta(days=7)
    assert a == b
    assert a.cache_key() == b.cache_key()
    assert DataSpec.create(NOW + timedelta(hours=1)).cache_key() != a.cache_key()
    assert _spec(seed=1).cache_key() != _spec(seed=2).cache_key()


def test_same_spec_same_docs_and_other_seed_other_docs(docs: list[dict[str, Any]]) -> None:
    again = list(generate(_spec()))
    assert again == docs
    other = list(generate(_spec(seed=7)))
    assert [d["_source"] for d in other[:200]] != [d["_source"] for d in docs[:200]]
    assert {d["_id"] for d in other}.isdisjoint({d["_id"] for d in docs if "builtin" not in d["_id"]})


def test_ids_unique_and_timestamps_in_window(docs: list[dict[str, Any]]) -> None:
    spec = _spec()
    assert len({d["_id"] for d in docs}) == len(docs)
    for d in docs:
        assert spec.start <= _ts(d) < spec.end
        assert d["_source"]["@timestamp"].endswith("Z")
        assert len(d["_source"]["@timestamp"]) == 24


def test_volume_is_honoured_exactly_benign_episodes_included(docs: list[dict[str, Any]]) -> None:
    spec = _spec()
    counts = expected_counts(spec)
    assert counts["total"] == len(docs)
    background = Counter(_kind(d) for d in docs if "sandbox" not in d["_source"])
    assert {k: background[f"logs:{k}"] for k in APP_SHARES} == app_totals(spec)
    assert sum(app_totals(spec).values()) == spec.volume * spec.window_days
    assert background["workloads:atr"] == spec.workloads_per_day * spec.window_days


def test_field_shapes_per_app_type(docs: list[dict[str, Any]]) -> None:
    seen: Counter[str] = Counter()
    for d in docs:
        src, index = d["_source"], d["_index"]
        if index.startswith("workloads-"):
            assert index.startswith("workloads-atr-2026.")
            for f in (
                "workload_id",
                "workflow.name",
                "atr.domain_name",
                "atr.infra_type",
                "workload.trigger",
            ):
                assert _get(src, f)
            assert _get(src, "workload.state") in {"COMPLETED", "RUNNING", "FAILED", "CANCELLED", "TIMED_OUT"}
            assert isinstance(src["status"], str)
            if _get(src, "workload.trigger") == "TICKET":
                assert _get(src, "ticket.type") in {"SR_TASK", "INCIDENT", "CHANGE", "REQUEST"}
            seen["workloads"] += 1
            continue
        app = index.split("-")[1]
        assert index == f"logs-{app}-{src['@timestamp'][:4]}.{src['@timestamp'][5:7]}"
        assert src["message"]
        if app == "eventops":
            assert src["logLevel"] in {"DEBUG", "INFO", "WARN", "ERROR"}
            assert isinstance(src["function_memory_size"], int)
            assert src["log_group"].startswith("/aws/lambda/")
            assert src["tenant"]
            assert src["stage"]
            assert src["function_name"]
            assert _get(src, "event.origin")
            if "request" in src:
                assert isinstance(_get(src, "response.status_code"), int)
                assert _get(src, "request.method")
                assert _get(src, "request.endpoint")
                assert _get(src, "request.user_id")
            seen["serverless"] += 1
        else:
            level = _get(src, "regex.extractions.logLevel")
            assert level in {"DEBUG", "INFO", "WARN", "ERROR"}
            dom, infra = _get(src, domain_field(app)), _get(src, infra_type_field(app))
            if "sandbox" not in src:
                assert {d.name: d.infra_type for d in DOMAINS[app]}[dom] == infra
            if infra == "kubernetes":
                assert _get(src, "k8s.pod")
                assert _get(src, "k8s.namespace")
            else:
                assert _get(src, "host.name")
            assert src["service"]
            seen[infra] += 1
    assert min(seen.values()) > 100, seen


def test_domain_specific_messages_stay_on_their_domain(docs: list[dict[str, Any]]) -> None:
    ledger = [
        d for d in docs if d["_index"].startswith("logs-atr") and d["_source"]["message"].startswith("Ledger")
    ]
    assert ledger
    assert {d["_source"]["atr"]["domain_name"] for d in ledger} == {"pay.example.com"}


def test_level_mix(docs: list[dict[str, Any]]) -> None:
    levels: Counter[str] = Counter()
    for d in docs:
        src = d["_source"]
        if d["_index"].startswith("logs") and "sandbox" not in src:
            levels[src.get("logLevel") or src["regex"]["extractions"]["logLevel"]] += 1
    total = sum(levels.values())
    assert levels["INFO"] / total > 0.5
    assert 0.05 < levels["WARN"] / total < 0.3
    assert 0.01 < levels["ERROR"] / total < 0.1
    assert levels["DEBUG"] > 0
    assert not any(
        "{" in d["_source"]["message"] and "}" in d["_source"]["message"]
        for d in docs
        if d["_index"].startswith("logs") and "Traceback" not in d["_source"]["message"]
    )


def test_builtin_incidents_exact_counts_and_windows(docs: list[dict[str, Any]]) -> None:
    spec = _spec()
    by_id: Counter[str] = Counter(
        d["_source"]["sandbox"]["incident_id"] for d in docs if "sandbox" in d["_source"]
    )
    truth = {t["id"]: t for t in scenarios(spec, spec.end)}
    assert set(by_id) == {i.id for i in BUILTIN_INCIDENTS} == set(truth)
    for inc in BUILTIN_INCIDENTS:
        t = truth[inc.id]
        assert by_id[inc.id] == inc.count == t["count"] == t["planned_count"]
        assert t["in_window"] and t["complete"]
        start, end = (datetime.fromisoformat(t[k].replace("Z", "+00:00")) for k in ("start", "end"))
        recs = [d for d in docs if d["_source"].get("sandbox", {}).get("incident_id") == inc.id]
        assert all(start <= _ts(d) < end for d in recs)
        per_min = Counter(int((_ts(d) - start).total_seconds() // 60) for d in recs)
        assert set(per_min.values()) == {inc.per_minute}
    cd = truth["builtin-atr-cluster-down"]
    assert (cd["start"], cd["end"]) == ("2026-01-20T05:00:00Z", "2026-01-20T05:20:00Z")  # anchor 10:00 - 5 h
    assert cd["query"]["filters"] == [{"term": {"sandbox.incident_id": "builtin-atr-cluster-down"}}]


STRADDLING = {
    "incidents": [
        {
            "id": "inc-now",
            "kind": "logs",
            "application": "atr",
            "app_type": "kubernetes",
            "domain": "pay.example.com",
            "start": "now+10m",  # 10:10-10:40 when the data's hour starts at 10:00
            "minutes": 30,
            "per_minute": 20,
            "messages": ["upstream connect error to {ip}"],
        }
    ]
}


@pytest.mark.parametrize(
    "instant",
    [
        NOW.replace(minute=0, second=0) - timedelta(days=8),  # before the data
        NOW - timedelta(days=6, hours=3, minutes=41),
        NOW.replace(minute=25, second=0, microsecond=123_000),  # mid-hour, inside the straddling incident
        NOW.replace(minute=59, second=59),
        NOW + timedelta(hours=2),  # past the data's end: everything
    ],
)
def test_expected_counts_and_truth_are_what_is_stamped_by_an_instant(instant: datetime) -> None:
    spec = _spec(volume=1500, workloads_per_day=200, extra_incidents=parse_scenarios(STRADDLING))
    everything = list(generate(spec))
    cut = instant.strftime("%Y-%m-%dT%H:%M:%S.") + f"{instant.microsecond // 1000:03d}Z"
    seen = Counter(_kind(d) for d in everything if d["_source"]["@timestamp"] <= cut)
    counts = expected_counts(spec, instant)
    assert {k: v for k, v in counts.items() if k != "total"} == {k: seen[k] for k in counts if k != "total"}
    assert counts["total"] == sum(seen.values())
    incidents = Counter(
        d["_source"]["sandbox"]["incident_id"]
        for d in everything
        if "sandbox" in d["_source"] and d["_source"]["@timestamp"] <= cut
    )
    for truth in scenarios(spec, instant):
        assert truth["count"] == incidents[truth["id"]], truth["id"]
        assert truth["planned_count"] >= truth["count"]
        assert truth["complete"] == (truth["count"] == truth["planned_count"])


def test_a_straddling_incident_says_how_much_of_it_has_happened() -> None:
    spec = _spec(
        volume=10, workloads_per_day=10, builtin_incidents=False, extra_incidents=parse_scenarios(STRADDLING)
    )
    instant = datetime(2026, 1, 20, 10, 25, tzinfo=UTC)
    (truth,) = scenarios(spec, instant)
    assert (truth["start"], truth["planned_end"]) == ("2026-01-20T10:10:00Z", "2026-01-20T10:40:00Z")
    assert (
        truth["end"] == "2026-01-20T10:25:00.000Z" and truth["complete"] is False and not truth["in_window"]
    )
    assert 15 * 20 <= truth["count"] <= 15 * 20 + 20 and truth["planned_count"] == 600
    (before,) = scenarios(spec, datetime(2026, 1, 20, 10, 5, tzinfo=UTC))
    assert before["count"] == 0


def test_scenario_file_incidents_generated_with_placeholders_and_fields() -> None:
    incs = parse_scenarios(
        {
            "incidents": [
                {
                    "id": "inc-42",
                    "kind": "logs",
                    "application": "atr",
                    "app_type": "kubernetes",
                    "domain": "pay.example.com",
                    "start": "now-5h",
                    "minutes": 3,
                    "per_minute": 7,
                    "level": "ERROR",
                    "messages": ["upstream connect error to {ip}:{int} after {int}ms"],
                    "fields": {"k8s.pod": "api-{hex}", "deploy.version": 3},
                },
                {
                    "id": "inc-43",
                    "kind": "logs",
                    "application": "eventops",
                    "app_type": "serverless",
                    "log_group": "/aws/lambda/brand-new",
                    "tenant": "acme",
                    "stage": "prod",
                    "start": "now-2h/h",
                    "minutes": 2,
                    "per_minute": 5,
                    "messages": ["KeyError: '{word}'"],
                },
                {
                    "id": "inc-44",
                    "kind": "workloads",
                    "application": "atr",
                    "app_type": "ec2",
                    "domain": "ops.example.com",
                    "start": "now-1d",
                    "minutes": 4,
                    "per_minute": 3,
                    "workflow": "Data_Enrichment_Workflow",
                    "state": "FAILED",
                    "trigger": "TICKET",
                    "ticket_type": "SR_TASK",
                },
            ]
        }
    )
    spec = _spec(volume=10, workloads_per_day=10, builtin_incidents=False, extra_incidents=incs)
    logs = [d for d in generate_logs(spec) if "sandbox" in d["_source"]]
    wls = [d for d in generate_workloads(spec) if "sandbox" in d["_source"]]
    a = [d["_source"] for d in logs if d["_id"].startswith("inc-42-")]
    assert len(a) == 21
    assert all(s["message"].startswith("upstream connect error to ") and "{" not in s["message"] for s in a)
    assert all(s["k8s"]["pod"].startswith("api-") and len(s["k8s"]["pod"]) == 12 for s in a)
    assert all(s["deploy"]["version"] == 3 and s["regex"]["extractions"]["logLevel"] == "ERROR" for s in a)
    assert all(s["atr"] == {"domain_name": "pay.example.com", "infra_type": "kubernetes"} for s in a)
    b = [d for d in logs if d["_id"].startswith("inc-43-")]
    assert len(b) == 10
    assert all(d["_source"]["log_group"] == "/aws/lambda/brand-new" for d in b)
    assert _ts(b[0]) >= datetime(2026, 1, 20, 8, tzinfo=UTC)  # anchor 10:00 - 2 h, rounded to the hour
    assert len(wls) == 12
    assert all(d["_source"]["workload"]["state"] == "FAILED" for d in wls)
    assert all(d["_source"]["ticket"]["type"] == "SR_TASK" for d in wls)
    cat = catalogue(spec)
    assert "/aws/lambda/brand-new" in cat["eventops"]["log_groups"]


def test_catalogue_lists_every_app() -> None:
    cat = catalogue()
    assert set(cat) == {"atr", "klewer", "quasar", "eventops"}
    assert cat["atr"]["domains"]["pay.example.com"] == "kubernetes"
    assert cat["atr"]["domains"]["ops.example.com"] == "ec2"
    assert cat["atr"]["domains"]["legacy.example.com"] == "ec2"  # a low-traffic domain
    all_domains = [d for app in ("atr", "klewer", "quasar") for d in cat[app]["domains"]]
    assert len(all_domains) == len(set(all_domains))
    assert "Incident_Response_Workflow" in cat["atr"]["workflows"]
    assert {"prod", "staging", "dev"} == set(cat["eventops"]["stages"])


SCENARIO_DOMAIN = {
    "incidents": [
        {
            "id": "inc-new-domain",
            "kind": "logs",
            "application": "quasar",
            "app_type": "ec2",
            "domain": "quasar-new.example.com",
            "start": "now-3h",
            "minutes": 2,
            "per_minute": 2,
            "messages": ["disk full"],
        }
    ]
}


def test_every_domain_of_the_data_is_billed_scenario_only_ones_too() -> None:
    plain = billed_domains(_spec())
    with_scenario = billed_domains(_spec(extra_incidents=parse_scenarios(SCENARIO_DOMAIN)))
    assert set(with_scenario) - set(plain) == {"quasar-new.example.com"}
    assert with_scenario["quasar-new.example.com"] == ("quasar", "ec2")
    assert set(plain) == {d.name for domains in DOMAINS.values() for d in domains}
    # a domain's facts depend on the seed and its name only: a scenario adding domains changes none
    assert billing_profiles(plain) == {k: v for k, v in billing_profiles(with_scenario).items() if k in plain}
    assert billing_profiles(plain, seed=1) != billing_profiles(plain, seed=2)


def test_billing_summary_has_documented_fields() -> None:
    start = datetime(2026, 1, 1, tzinfo=UTC)
    s = billing_summary(
        billing_profile("pay.example.com", "atr", "kubernetes"), "now-7d", start, start + timedelta(days=7)
    )
    assert set(s) == {
        "ticket_count",
        "domain",
        "time_range",
        "client",
        "live_status",
        "WBS",
        "created",
        "infra_type",
        "billing_type",
        "point_of_contact",
    }
    assert s["infra_type"] == "KUBERNETES"
    assert s["ticket_count"] > 0
    assert s["time_range"] == "now-7d"
    retired = billing_summary(billing_profile("reports.example.com", "quasar", "ec2"), "now-1d", start, start)
    assert retired["live_status"] == "inactive" and retired["ticket_count"] == 0
    assert billing_profile("ops.example.com", "atr", "ec2")["infra_type"] == "EC2"
