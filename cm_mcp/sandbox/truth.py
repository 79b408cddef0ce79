"""Ground truth at an instant: what a query sent at `as_of` sees of the incidents, the benign episodes
and the documents, without generating anything (plan.py replays the time plan).

The sandbox never serves a record stamped after the moment it answers (timeline.py), so every count
here is "as of" an instant: an incident planned partly in the future counts the records already
written, and grows as the clock moves.
"""

from __future__ import annotations

from bisect import bisect_right
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from cm_mcp.api import times
from cm_mcp.api.fields import AppType, domain_field, infra_type_field
from cm_mcp.sandbox.catalogue import APP_SHARES
from cm_mcp.sandbox.incidents import INCIDENT_ID_FIELD, LogIncident, WorkloadIncident
from cm_mcp.sandbox.plan import WORKLOADS, Episode, episodes, hour_plans, total_of, visible_incident_count
from cm_mcp.sandbox.timeline import epoch_ms, format_ms

if TYPE_CHECKING:
    from cm_mcp.sandbox.data import DataSpec


def scenarios(spec: DataSpec, as_of: datetime) -> list[dict[str, Any]]:
    """Every incident's ground truth as a query at `as_of` sees it (GET /_sandbox/scenarios)."""
    return [
        incident_truth(
            incident,
            spec.anchor,
            as_of=as_of,
            visible=visible_incident_count(incident, spec.anchor, spec.seed, as_of),
            window_start=spec.start,
        )
        for incident in spec.incidents
    ]


def _iso(t: datetime) -> str:
    return t.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def incident_truth(
    incident: LogIncident | WorkloadIncident,
    anchor: datetime,
    *,
    as_of: datetime,
    visible: int,
    window_start: datetime | None = None,
) -> dict[str, Any]:
    """Ground truth for one incident as a query at `as_of` sees it: count, window, the requests that find it.

    `anchor` is what ``now`` means in the incident's `start`; `visible` is how many of its records are
    stamped at or before `as_of` (the sandbox never serves later ones). `count` is that number, `end`
    the end of what has happened so far; `planned_count` and `planned_end` are the whole incident.
    `query` selects exactly the incident's records (via `sandbox.incident_id`); `natural_query` is what
    an investigator would send (routing + level/state over the window) and also matches the
    background records of that stream, so its count is at least `count`.
    """
    start, end = incident.window(anchor)
    happened_until = min(end, max(as_of, start))
    base: dict[str, Any] = {
        "application": str(incident.application),
        "app_type": str(incident.app_type),
        "start_time": _iso(start),
        "end_time": _iso(end),
    }
    out: dict[str, Any] = {
        "id": incident.id,
        "kind": incident.kind,
        "application": str(incident.application),
        "app_type": str(incident.app_type),
        "count": visible,
        "planned_count": incident.count,
        "per_minute": incident.per_minute,
        "start": _iso(start),
        "end": times.format_utc(happened_until) if happened_until < end else _iso(end),
        "planned_end": _iso(end),
        "complete": as_of >= end,
        "in_window": (window_start is None or start >= window_start) and as_of >= end,
        "record_filter": {"term": {INCIDENT_ID_FIELD: incident.id}},
    }
    if isinstance(incident, LogIncident):
        if incident.app_type is AppType.SERVERLESS:
            routing: dict[str, Any] = {
                "log_group": [incident.log_group],
                "tenant": [incident.tenant],
                "stage": [incident.stage],
            }
            level_filter: dict[str, Any] = {"term": {"logLevel": incident.level}}
        else:
            routing = {"domain": [incident.domain]}
            level_filter = {"term": {"regex.extractions.logLevel": incident.level}}
            out["domain_field"] = domain_field(incident.application.value)
        out.update(routing)
        out["level"] = incident.level
        out["endpoint"] = "/v2/logs/scroll"
    else:
        routing = {"domain": [incident.domain]}
        level_filter = {
            "bool": {
                "must": [
                    {"term": {"workflow.name": incident.workflow}},
                    {"term": {"workload.state": incident.state}},
                ]
            }
        }
        out.update(routing, workflow=incident.workflow, state=incident.state, endpoint="/v2/workloads/scroll")
        out["infra_field"] = infra_type_field(incident.application)
    out["query"] = {**base, **routing, "size": 1000, "filters": [out["record_filter"]]}
    out["natural_query"] = {**base, **routing, "size": 1000, "filters": [level_filter]}
    return out


def _count_key(key: str) -> str:
    return "workloads:atr" if key == WORKLOADS else f"logs:{key}"


def _visible_episode(episode: Episode, seed: int, cut: int) -> int:
    if episode.end_ms <= cut:
        return episode.count
    if episode.start_ms > cut:
        return 0
    return bisect_right(episode.times(seed), cut)


def expected_counts(spec: DataSpec, now: datetime | None = None) -> dict[str, int]:
    """Documents per kind and application, without generating them.

    `now` None: every generated document (e.g. a build's progress total). A `now`: what a query at
    that instant sees (stamped at or before it), replaying only the time plan (plan.py).
    """
    cut = None if now is None else epoch_ms(now)
    out: dict[str, int] = {}
    for key in (*APP_SHARES, WORKLOADS):
        if cut is None:
            out[_count_key(key)] = total_of(spec, key)
            continue
        planned = episodes(spec, key)
        background = sum(plan.count_until(cut) for plan in hour_plans(spec, key, planned))
        out[_count_key(key)] = background + sum(_visible_episode(e, spec.seed, cut) for e in planned)
    for inc in spec.incidents:
        key = f"{inc.kind}:{inc.application}"
        seen = inc.count if now is None else visible_incident_count(inc, spec.anchor, spec.seed, now)
        out[key] = out.get(key, 0) + seen
    out["total"] = sum(out.values())
    return out


def episode_truth(spec: DataSpec, as_of: datetime) -> list[dict[str, Any]]:
    """Every benign episode (GET /_sandbox/episodes): what it is, where, when, and how many records a
    query at `as_of` sees. Not incidents: a triage that reports one of these has a false finding."""
    cut = epoch_ms(as_of)
    out = []
    for key in (*APP_SHARES, WORKLOADS):
        for episode in episodes(spec, key):
            if key == WORKLOADS:
                workflow, domain = episode.stream.split("|")
                where: dict[str, Any] = {"application": "atr", "kind": "workloads", "workflow": workflow}
                where["domain"] = domain
            elif key == "eventops":
                log_group, tenant, stage = episode.stream.split("|")
                where = {"application": key, "kind": "logs", "log_group": log_group, "tenant": tenant}
                where["stage"] = stage
            else:
                where = {"application": key, "kind": "logs", "domain": episode.stream}
            visible = _visible_episode(episode, spec.seed, cut)
            out.append(
                {
                    "id": episode.id,
                    "episode": episode.kind,
                    **where,
                    "start": format_ms(episode.start_ms),
                    "end": format_ms(min(episode.end_ms, max(cut, episode.start_ms))),
                    "count": visible,
                    "planned_count": episode.count,
                }
            )
    return out
