"""The sandbox's data: a deterministic function of a `DataSpec`, and its ground truth at any instant.

`generate(spec)` yields OpenSearch hit envelopes ``{"_index", "_id", "_source"}`` in a fixed order; the
same spec always yields the same documents. How the work is split:

- catalogue.py: the world (domains, log groups, workflows, message templates);
- variation.py: its ordinary variation (seasonality, noisy streams, benign episodes);
- plan.py: *when* every record happens; records.py: *what* it says; streams.py: the fields of a record;
- timeline.py: the time model. Documents cover ``[spec.start, spec.end)`` where `end` is the end of the
  UTC hour the sandbox started in (one index per hour, reused on restarts), but nothing stamped after the
  real now is ever served, and every count here takes the instant it is true at (`as_of`/`now`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cm_mcp.sandbox.catalogue import APP_SHARES, DOMAINS, LOG_GROUPS, STAGES, TENANTS, WORKFLOWS
from cm_mcp.sandbox.incidents import LogIncident, WorkloadIncident, merge_incidents
from cm_mcp.sandbox.plan import (
    WORKLOADS,
    episodes,
    hour_plans,
)
from cm_mcp.sandbox.records import (
    Hit,
    LogShapes,
    background_logs,
    background_workloads,
    episode_logs,
    incident_hits,
    workload_clusters,
)
from cm_mcp.sandbox.templates import Pools
from cm_mcp.sandbox.timeline import floor_hour
from cm_mcp.sandbox.truth import expected_counts

__all__ = [
    "DEFAULT_VOLUME",
    "DEFAULT_WORKLOADS_PER_DAY",
    "DataSpec",
    "Hit",
    "billed_domains",
    "catalogue",
    "expected_counts",
    "generate",
    "generate_logs",
    "generate_workloads",
    "measure",
]

#: Bump when the generated data changes shape or content: it is part of `cache_key()`.
GENERATOR_VERSION: Final = 2
#: Logs per day across all applications. 30k/day x 7 days = 210k logs (+ ~10k workloads): about
#: 1-1.5 s to generate on one core, leaving most of the ~10 s start-up budget to indexing.
DEFAULT_VOLUME: Final = 30_000
DEFAULT_WORKLOADS_PER_DAY: Final = 1_500


@dataclass(frozen=True)
class DataSpec:
    """Everything the generated data depends on (and nothing else)."""

    end: datetime  # end of the generated data (exclusive), UTC: the end of the hour the sandbox started in
    seed: int = 42
    volume: int = DEFAULT_VOLUME  # logs per day across all applications, benign episodes included
    window_days: int = 7
    workloads_per_day: int = DEFAULT_WORKLOADS_PER_DAY
    builtin_incidents: bool = True
    extra_incidents: tuple[LogIncident | WorkloadIncident, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.end.tzinfo is None:
            raise ValueError("DataSpec.end must be timezone-aware")
        if self.volume < 0 or self.workloads_per_day < 0 or self.window_days <= 0:
            raise ValueError("volume/workloads_per_day must be >= 0 and window_days > 0")
        merge_incidents(list(self.extra_incidents), self.builtin_incidents)  # fail early on duplicate ids

    @classmethod
    def create(
        cls,
        now: datetime | None = None,
        *,
        seed: int = 42,
        volume: int = DEFAULT_VOLUME,
        window_days: int = 7,
        workloads_per_day: int = DEFAULT_WORKLOADS_PER_DAY,
        builtin_incidents: bool = True,
        extra_incidents: tuple[LogIncident | WorkloadIncident, ...]
        | list[LogIncident | WorkloadIncident] = (),
    ) -> DataSpec:
        """The spec of the UTC hour of `now` (default: the real now); any start in that hour shares it."""
        wall = now if now is not None else datetime.now(UTC)
        return cls(
            end=floor_hour(wall) + timedelta(hours=1),
            seed=seed,
            volume=volume,
            window_days=window_days,
            workloads_per_day=workloads_per_day,
            builtin_incidents=builtin_incidents,
            extra_incidents=tuple(extra_incidents),
        )

    @property
    def anchor(self) -> datetime:
        """What ``now`` means in scenario times: the start of the hour (never after the real now)."""
        return self.end - timedelta(hours=1)

    @property
    def start(self) -> datetime:
        return self.end - timedelta(days=self.window_days)

    @property
    def incidents(self) -> tuple[LogIncident | WorkloadIncident, ...]:
        return merge_incidents(list(self.extra_incidents), self.builtin_incidents)

    def cache_key(self) -> str:
        """A short stable hash of every parameter (and the generator version) for the index cache."""
        payload = {
            "v": GENERATOR_VERSION,
            "end": self.end.astimezone(UTC).isoformat(),
            "seed": self.seed,
            "volume": self.volume,
            "window_days": self.window_days,
            "workloads_per_day": self.workloads_per_day,
            "builtin": self.builtin_incidents,
            "incidents": [i.model_dump(mode="json") for i in self.extra_incidents],
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]


# ---------------------------------------------------------------------------------------------------------
# Documents
# ---------------------------------------------------------------------------------------------------------


def generate_logs(spec: DataSpec) -> Iterator[Hit]:
    """All log documents: per application its background and benign episodes, then the log incidents."""
    pools = Pools(spec.seed)
    for app in APP_SHARES:
        planned = episodes(spec, app)
        shapes = LogShapes(spec, app, pools)
        yield from background_logs(shapes, hour_plans(spec, app, planned))
        yield from episode_logs(shapes, planned)
    for inc in spec.incidents:
        if isinstance(inc, LogIncident):
            yield from incident_hits(spec, inc, pools)


def generate_workloads(spec: DataSpec) -> Iterator[Hit]:
    """All workload documents (atr only): background, benign failure clusters, workload incidents."""
    pools = Pools(spec.seed)
    planned = episodes(spec, WORKLOADS)
    yield from background_workloads(spec, hour_plans(spec, WORKLOADS, planned))
    yield from workload_clusters(spec, planned, pools)
    for inc in spec.incidents:
        if isinstance(inc, WorkloadIncident):
            yield from incident_hits(spec, inc, pools)


def generate(spec: DataSpec) -> Iterator[Hit]:
    """Every document: logs first, then workloads (tell them apart by `_index` prefix)."""
    yield from generate_logs(spec)
    yield from generate_workloads(spec)


def catalogue(spec: DataSpec | None = None) -> dict[str, Any]:
    """Domains / log groups / tenants / stages / workflows per application (incl. scenario-only ones)."""
    out: dict[str, Any] = {}
    for app, domains in DOMAINS.items():
        out[app] = {
            "app_types": sorted({d.infra_type for d in domains}),
            "domains": {d.name: d.infra_type for d in domains},
            "services": {d.name: list(d.services) for d in domains},
        }
    out["atr"]["workflows"] = list(WORKFLOWS)
    out["eventops"] = {
        "app_types": ["serverless"],
        "log_groups": list(LOG_GROUPS),
        "functions": {lg: f"eventops-{lg.rsplit('/', 1)[1]}" for lg in LOG_GROUPS},
        "tenants": list(TENANTS),
        "stages": list(STAGES),
    }
    for inc in spec.incidents if spec is not None else ():
        if isinstance(inc, WorkloadIncident) or inc.app_type.value != "serverless":
            out[str(inc.application)]["domains"].setdefault(inc.domain, str(inc.app_type))
        else:
            ev = out["eventops"]
            for key, val in (("log_groups", inc.log_group), ("tenants", inc.tenant), ("stages", inc.stage)):
                if val not in ev[key]:
                    ev[key].append(val)
    return out


def billed_domains(spec: DataSpec | None = None) -> dict[str, tuple[str, str]]:
    """Every ec2/kubernetes domain of the data, scenario-only ones included: name -> (application, infra)."""
    cat = catalogue(spec)
    return {
        domain: (app, infra)
        for app in ("atr", "klewer", "quasar")
        for domain, infra in cat[app]["domains"].items()
    }


def measure(spec: DataSpec) -> tuple[int, float]:
    """(documents, seconds) to generate everything for `spec`: the number quoted in the README."""
    t0 = time.perf_counter()
    n = sum(1 for _ in generate(spec))
    return n, time.perf_counter() - t0
