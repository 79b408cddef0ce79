"""When each record of the sandbox happens: the time plan, kept apart from what the records say.

The generator (records.py) asks this module *when* records happen (how many in each hour, at which
millisecond, which benign episodes and when), then draws *what* they say from other RNGs. Because the
plan has RNGs of its own, `expected_counts` and the incidents' ground truth can count the records of
any instant by replaying the plan alone, without generating a single document.

Traffic of a stream in one hour = its weight x the product of its shapes at that hour (each divided by
its weekly mean, so a weight stays the stream's share of the week) x the hour's noise (uniform
+-20 %) x the day's noise (log-normal, sigma 0.08). An application's hours get its background volume
in proportion (largest remainder: the totals are exact); inside an hour, records are uniform in time.
"""

from __future__ import annotations

import math
import random
from bisect import bisect_right
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Final

from cm_mcp.sandbox.bursts import (
    ANY_STREAM,
    EPISODES,
    KINDS,
    MAX_EPISODE_SHARE,
    MIN_EPISODE_RECORDS,
    Schedule,
)
from cm_mcp.sandbox.catalogue import APP_SHARES, DOMAINS, LOG_GROUPS, STAGES, TENANTS, WORKFLOWS
from cm_mcp.sandbox.incidents import LogIncident, WorkloadIncident
from cm_mcp.sandbox.templates import cumulative
from cm_mcp.sandbox.timeline import DAY_MS, HOUR_MS, Slot, allocate, days, epoch_ms, slots
from cm_mcp.sandbox.variation import (
    DEFAULT_PROFILE,
    DEFAULT_WORKFLOW,
    DOMAIN_PROFILES,
    WORKFLOW_PROFILES,
    WORKLOAD_FAILURE_CLUSTERS,
    Shape,
    route_profile,
)

if TYPE_CHECKING:
    from cm_mcp.sandbox.data import DataSpec

#: The plan key of atr's workloads (the log applications are keyed by their name).
WORKLOADS: Final = "atr:workloads"
#: Workload failure clusters never take more than this share of the workloads.
MAX_CLUSTER_SHARE: Final = 0.1
#: Reference volume of the episode sizes in variation.py (the default logs/day).
REFERENCE_VOLUME: Final = 30_000
_HOUR_NOISE: Final = 0.2
_DAY_SIGMA: Final = 0.08


@dataclass(frozen=True)
class Stream:
    """A part of an application's traffic with its own shape and level mix."""

    key: str  # domain name, "log_group|tenant|stage", or workflow name
    weight: float
    shapes: tuple[Shape, ...]
    levels: Mapping[str, float] = field(default_factory=dict)

    def traffic(self, hour: int, weekday: int) -> float:
        value = self.weight
        for shape in self.shapes:
            value *= shape.week()[weekday * 24 + hour]
        return value


def log_streams(app: str) -> list[Stream]:
    """The streams of an application's logs: its domains, or EventOps' routes."""
    if app == "eventops":
        out = []
        for log_group, (_memory, _endpoints, weight) in LOG_GROUPS.items():
            for tenant, tenant_weight in TENANTS.items():
                for stage, stage_weight in STAGES.items():
                    tenant_shape, stage_shape, levels = route_profile(log_group, tenant, stage)
                    key = f"{log_group}|{tenant}|{stage}"
                    out.append(
                        Stream(
                            key, weight * tenant_weight * stage_weight, (tenant_shape, stage_shape), levels
                        )
                    )
        return out
    streams = []
    for domain in DOMAINS[app]:
        profile = DOMAIN_PROFILES.get(domain.name, DEFAULT_PROFILE)
        streams.append(Stream(domain.name, domain.weight, (profile.shape,), profile.levels))
    return streams


def workload_streams() -> list[Stream]:
    return [
        Stream(name, weight, (WORKFLOW_PROFILES.get(name, DEFAULT_WORKFLOW).shape,))
        for name, weight in WORKFLOWS.items()
    ]


def streams_of(key: str) -> list[Stream]:
    return workload_streams() if key == WORKLOADS else log_streams(key)


# ---------------------------------------------------------------------------------------------------------
# Totals and episodes
# ---------------------------------------------------------------------------------------------------------


def app_totals(spec: DataSpec) -> dict[str, int]:
    """Log records per application over the window (exact: `volume` x days split by share)."""
    apps = list(APP_SHARES)
    counts = allocate(spec.volume * spec.window_days, [APP_SHARES[a] for a in apps])
    return dict(zip(apps, counts, strict=True))


def total_of(spec: DataSpec, key: str) -> int:
    return spec.workloads_per_day * spec.window_days if key == WORKLOADS else app_totals(spec)[key]


@dataclass(frozen=True)
class Episode:
    """A benign burst: `count` records of one kind on one stream, uniform over [start_ms, end_ms)."""

    id: str
    kind: str
    app: str
    stream: str
    start_ms: int
    end_ms: int
    count: int

    def times(self, seed: int) -> list[int]:
        rng = random.Random(f"{seed}:episode:{self.id}:times")
        span = self.end_ms - self.start_ms
        return sorted(self.start_ms + int(rng.random() * span) for _ in range(self.count))


def _poisson(rng: random.Random, rate: float) -> int:
    count, t = 0, rng.expovariate(rate) if rate > 0 else math.inf
    while t < 1.0:
        count += 1
        t += rng.expovariate(rate)
    return count


def _starts(rng: random.Random, schedule: Schedule, day: int) -> list[int]:
    """Start times (epoch ms) of one schedule's episodes on the day starting at `day` (epoch ms)."""
    day_of_week = (day // DAY_MS + 3) % 7  # 1970-01-01 was a Thursday
    if schedule.every == "hour":
        return [day + h * HOUR_MS + int(schedule.at * HOUR_MS + rng.random() * 30_000) for h in range(24)]
    if (schedule.every == "weekday" and day_of_week >= 5) or (
        schedule.every == "week" and day_of_week != schedule.weekday
    ):
        return []
    if schedule.per_day:  # at random times of the day
        lo, hi = schedule.hours
        count = _poisson(rng, schedule.per_day)
        return sorted(day + int((lo + rng.random() * (hi - lo)) * HOUR_MS) for _ in range(count))
    return [day + int(schedule.at * HOUR_MS + rng.random() * 120_000)]  # a cron fires within 2 minutes


def episodes(spec: DataSpec, key: str) -> list[Episode]:
    """The benign episodes of an application's logs (or, for WORKLOADS, the failure clusters)."""
    if key == WORKLOADS:
        return _failure_clusters(spec)
    rng = random.Random(f"{spec.seed}:{key}:episodes")
    scale = spec.volume / REFERENCE_VOLUME
    streams = log_streams(key)
    keys, cum = [s.key for s in streams], cumulative([s.weight for s in streams])
    start_ms, end_ms = epoch_ms(spec.start), epoch_ms(spec.end)
    planned: list[tuple[int, int, str, str, int]] = []
    for schedule in EPISODES.get(key, ()):
        kind = KINDS[schedule.kind]
        for day in days(spec.start, spec.end):
            for t0 in _starts(rng, schedule, day):
                minutes = kind.minutes[0] + rng.random() * (kind.minutes[1] - kind.minutes[0])
                size = round((kind.records[0] + rng.random() * (kind.records[1] - kind.records[0])) * scale)
                stream = schedule.stream
                if stream == ANY_STREAM:
                    stream = rng.choices(keys, cum_weights=cum)[0]
                t1 = min(t0 + int(minutes * 60_000), end_ms)
                if t0 >= start_ms and t1 - t0 >= 30_000 and scale > 0:
                    planned.append((t0, t1, kind.name, stream, max(size, MIN_EPISODE_RECORDS)))
    planned.sort()
    sizes = _capped([p[4] for p in planned], int(MAX_EPISODE_SHARE * total_of(spec, key)))
    return [
        Episode(f"ep-{key}-{i:04d}", kind, key, stream, t0, t1, size)
        for i, ((t0, t1, kind, stream, _), size) in enumerate(zip(planned, sizes, strict=True))
        if size > 0
    ]


def _capped(sizes: list[int], allowed: int) -> list[int]:
    """`sizes`, scaled down together when they add up to more than `allowed`."""
    total = sum(sizes)
    if total <= allowed:
        return sizes
    return [int(size * allowed / total) for size in sizes]


def _failure_clusters(spec: DataSpec) -> list[Episode]:
    clusters = WORKLOAD_FAILURE_CLUSTERS
    rng = random.Random(f"{spec.seed}:workloads:episodes")
    workflows, workflow_cum = list(WORKFLOWS), cumulative(list(WORKFLOWS.values()))
    domains = DOMAINS["atr"]
    domain_cum = cumulative([d.weight for d in domains])
    start_ms, end_ms = epoch_ms(spec.start), epoch_ms(spec.end)
    planned = []
    for day in days(spec.start, spec.end):
        for _ in range(_poisson(rng, clusters.per_day)):
            t0 = day + int(rng.random() * DAY_MS)
            minutes = clusters.minutes[0] + rng.random() * (clusters.minutes[1] - clusters.minutes[0])
            runs = rng.randint(*clusters.runs)
            workflow = rng.choices(workflows, cum_weights=workflow_cum)[0]
            domain = rng.choices(domains, cum_weights=domain_cum)[0]
            stream = f"{workflow}|{domain.name}"
            t1 = min(t0 + int(minutes * 60_000), end_ms)
            if t0 >= start_ms and t1 - t0 >= 30_000 and spec.workloads_per_day > 0:
                planned.append((t0, t1, stream, runs))
    sizes = _capped([p[3] for p in planned], int(MAX_CLUSTER_SHARE * total_of(spec, WORKLOADS)))
    return [
        Episode(f"ep-workloads-{i:04d}", "failure-cluster", WORKLOADS, stream, t0, t1, size)
        for i, ((t0, t1, stream, _), size) in enumerate(zip(planned, sizes, strict=True))
        if size > 0
    ]


# ---------------------------------------------------------------------------------------------------------
# Background hours
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class HourPlan:
    slot: Slot
    offsets: list[int]  # sorted ms offsets of the hour's background records
    cum_weights: list[float]  # of the application's streams during this hour

    def count_until(self, now_ms: int) -> int:
        """How many of the hour's records are stamped at or before `now_ms`."""
        return bisect_right(self.offsets, now_ms - self.slot.hour_ms)


def hour_plans(spec: DataSpec, key: str, episode_list: Sequence[Episode] | None = None) -> list[HourPlan]:
    """The background records of an application (or WORKLOADS) hour by hour."""
    rng = random.Random(f"{spec.seed}:{key}:plan")
    eps = episodes(spec, key) if episode_list is None else episode_list
    background = total_of(spec, key) - sum(e.count for e in eps)
    streams = streams_of(key)
    hours = slots(spec.start, spec.end)
    day_noise = [math.exp(rng.gauss(0, _DAY_SIGMA)) for _ in range(spec.window_days + 2)]
    per_stream = [[s.traffic(slot.hour, slot.weekday) for s in streams] for slot in hours]
    weights = [
        sum(traffic)
        * slot.coverage
        * (1 - _HOUR_NOISE + 2 * _HOUR_NOISE * rng.random())
        * day_noise[slot.day]
        for slot, traffic in zip(hours, per_stream, strict=True)
    ]
    plans = []
    for slot, traffic, count in zip(hours, per_stream, allocate(background, weights), strict=True):
        span = slot.hi - slot.lo
        offsets = sorted([slot.lo + int(rng.random() * span) for _ in range(count)])
        plans.append(HourPlan(slot, offsets, cumulative(traffic)))
    return plans


# ---------------------------------------------------------------------------------------------------------
# Incidents
# ---------------------------------------------------------------------------------------------------------


def incident_times(incident: LogIncident | WorkloadIncident, anchor: datetime, seed: int) -> list[int]:
    """Exactly `per_minute` sorted epoch-ms timestamps in each minute of the incident."""
    rng = random.Random(f"{seed}:incident:{incident.id}:times")
    start, _end = incident.window(anchor)
    t0 = epoch_ms(start)
    out: list[int] = []
    for minute in range(incident.minutes):
        base = t0 + minute * 60_000
        out.extend(sorted(base + rng.randrange(60_000) for _ in range(incident.per_minute)))
    return out


def visible_incident_count(
    incident: LogIncident | WorkloadIncident, anchor: datetime, seed: int, now: datetime
) -> int:
    """Records of `incident` stamped at or before `now` (only straddling incidents are replayed)."""
    start, end = incident.window(anchor)
    if now >= end:
        return incident.count
    if now < start:
        return 0
    return bisect_right(incident_times(incident, anchor, seed), epoch_ms(now))
