"""Deterministic generator of the sandbox's documents (logs, workloads) and billing summaries.

`generate(spec)` yields OpenSearch hit envelopes ``{"_index", "_id", "_source"}`` in a fixed order;
the same `DataSpec` always yields the same documents. Speed matters (the sandbox builds its index at
start-up), so the hot loops draw in bulk (`random.choices(k=n)`, sorted offsets per hour), fill
messages from pre-drawn value pools (see templates.py) and format timestamps from lookup tables.

Time model: documents cover ``[spec.now - window_days, spec.now)``. `DataSpec.create()` sets `now`
to the *end of the current UTC hour*, so every start within one hour yields the same spec (and the
same `cache_key()`, which lets the app reuse its on-disk index); the price is that the newest
documents can lie up to 59 minutes in the wall-clock future.
"""

from __future__ import annotations

import hashlib
import json
import math
import random
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Final

from cm_mcp.sandbox.incidents import (
    INCIDENT_ID_FIELD,
    LogIncident,
    WorkloadIncident,
    merge_incidents,
    scenarios_truth,
)
from cm_mcp.sandbox.templates import (
    APP_SHARES,
    CATALOGUES,
    DOMAINS,
    EVENT_ORIGINS,
    LOG_GROUPS,
    POOL_BITS,
    STAGES,
    TENANTS,
    WORKFLOW_MEDIAN_SECONDS,
    WORKFLOW_TRIGGERS,
    WORKFLOWS,
    WORKLOAD_FINAL_STATES,
    WORKLOAD_STATUS,
    CompiledTemplate,
    DomainInfo,
    Pools,
    compile_template,
    cumulative,
    pod_suffix,
    stream_template_table,
)

#: Bump when the generated data changes shape or content: it is part of `cache_key()`.
GENERATOR_VERSION: Final = 1
#: Logs per day across all applications. 30k/day x 7 days = 210k logs (+ ~10k workloads): about
#: 1-1.5 s to generate on one core, leaving most of the ~10 s start-up budget to indexing.
DEFAULT_VOLUME: Final = 30_000
DEFAULT_WORKLOADS_PER_DAY: Final = 1_500

Hit = dict[str, Any]

_HOUR_MS: Final = 3_600_000
# "MM:SS" for every second of an hour and ".mmmZ" for every millisecond: timestamp = prefix + 2 lookups.
_MMSS: Final = [f"{s // 60:02d}:{s % 60:02d}" for s in range(3600)]
_MS: Final = [f".{ms:03d}Z" for ms in range(1000)]


def _floor_hour(t: datetime) -> datetime:
    return t.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


@dataclass(frozen=True)
class DataSpec:
    """Everything the generated data depends on (and nothing else)."""

    now: datetime  # end of the data window (exclusive), UTC
    seed: int = 42
    volume: int = DEFAULT_VOLUME  # logs per day across all applications (incidents come on top)
    window_days: int = 7
    workloads_per_day: int = DEFAULT_WORKLOADS_PER_DAY
    builtin_incidents: bool = True
    extra_incidents: tuple[LogIncident | WorkloadIncident, ...] = field(default=())

    def __post_init__(self) -> None:
        if self.now.tzinfo is None:
            raise ValueError("DataSpec.now must be timezone-aware")
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
        """A spec whose `now` is the end of the current UTC hour (so restarts in one hour share a cache)."""
        wall = now if now is not None else datetime.now(UTC)
        return cls(
            now=_floor_hour(wall) + timedelta(hours=1),
            seed=seed,
            volume=volume,
            window_days=window_days,
            workloads_per_day=workloads_per_day,
            builtin_incidents=builtin_incidents,
            extra_incidents=tuple(extra_incidents),
        )

    @property
    def start(self) -> datetime:
        return self.now - timedelta(days=self.window_days)

    @property
    def incidents(self) -> tuple[LogIncident | WorkloadIncident, ...]:
        return merge_incidents(list(self.extra_incidents), self.builtin_incidents)

    def cache_key(self) -> str:
        """A short stable hash of every parameter (and the generator version) for the index cache."""
        payload = {
            "v": GENERATOR_VERSION,
            "now": self.now.astimezone(UTC).isoformat(),
            "seed": self.seed,
            "volume": self.volume,
            "window_days": self.window_days,
            "workloads_per_day": self.workloads_per_day,
            "builtin": self.builtin_incidents,
            "incidents": [i.model_dump(mode="json") for i in self.extra_incidents],
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()[:16]

    def scenarios(self) -> list[dict[str, Any]]:
        """Ground truth of every incident (for GET /_sandbox/scenarios)."""
        return scenarios_truth(self.incidents, self.now, self.start)


# ---------------------------------------------------------------------------------------------------------
# Time slots and seasonality
# ---------------------------------------------------------------------------------------------------------


def seasonality(hour_of_day: float, weekday: int) -> float:
    """Relative traffic: a working-hours bump centred on 13:00 UTC, a quiet night, quieter weekends."""
    day = 0.22 + math.exp(-(((hour_of_day - 13.0) / 4.5) ** 2))
    return day * (0.55 if weekday >= 5 else 1.0)


@dataclass(frozen=True)
class _Slot:
    hour_ms: int  # clock-aligned start of the hour (epoch ms)
    lo: int  # offset range inside the hour covered by the window [lo, hi)
    hi: int
    prefix: str  # "YYYY-MM-DDTHH:"
    month: str  # "YYYY.MM"
    weight: float


def _slots(spec: DataSpec) -> list[_Slot]:
    start_ms = int(spec.start.timestamp() * 1000)
    end_ms = int(spec.now.timestamp() * 1000)
    out = []
    h = start_ms - start_ms % _HOUR_MS
    while h < end_ms:
        lo = max(start_ms - h, 0)
        hi = min(end_ms - h, _HOUR_MS)
        dt = datetime.fromtimestamp(h / 1000, UTC)
        w = seasonality(dt.hour + 0.5, dt.weekday()) * (hi - lo) / _HOUR_MS
        out.append(_Slot(h, lo, hi, dt.strftime("%Y-%m-%dT%H:"), dt.strftime("%Y.%m"), w))
        h += _HOUR_MS
    return out


def _allocate(total: int, weights: list[float]) -> list[int]:
    """Split `total` into integers proportional to `weights` (largest remainder: sums exactly)."""
    s = sum(weights)
    if total <= 0 or s <= 0:
        return [0] * len(weights)
    raw = [total * w / s for w in weights]
    counts = [int(r) for r in raw]
    short = total - sum(counts)
    for i in sorted(range(len(raw)), key=lambda i: counts[i] - raw[i])[:short]:
        counts[i] += 1
    return counts


def _hour_counts(total: int, slots: list[_Slot], rng: random.Random) -> list[int]:
    # +-20 % noise per hour so neighbouring days don't look copy-pasted.
    return _allocate(total, [s.weight * (0.8 + 0.4 * rng.random()) for s in slots])


def _ts(slot: _Slot, off: int) -> str:
    return slot.prefix + _MMSS[off // 1000] + _MS[off % 1000]


def _ts_of_ms(epoch_ms: int) -> str:
    h = epoch_ms - epoch_ms % _HOUR_MS
    off = epoch_ms - h
    return (
        datetime.fromtimestamp(h / 1000, UTC).strftime("%Y-%m-%dT%H:") + _MMSS[off // 1000] + _MS[off % 1000]
    )


def _nested(source: dict[str, Any], dotted: str, value: Any) -> None:
    parts = dotted.split(".")
    d = source
    for p in parts[:-1]:
        nxt = d.get(p)
        if not isinstance(nxt, dict):
            nxt = {}
            d[p] = nxt
        d = nxt
    d[parts[-1]] = value


# ---------------------------------------------------------------------------------------------------------
# Streams: the per-application "shape" of a record, shared by background records and incidents
# ---------------------------------------------------------------------------------------------------------


class _HostStream:
    """ec2/kubernetes records of one application: `emit(rng, ts, level, message)` builds `_source`."""

    def __init__(self, app: str, seed: int) -> None:
        self.app = app
        rng = random.Random(f"{seed}:{app}:hosts")
        self.domains: list[DomainInfo] = list(DOMAINS[app])
        self.domain_cum = cumulative([d.weight for d in self.domains])
        # (service, host-or-pod) per domain: 8 replicas per service; pods carry a replica-set hash.
        self.origins: list[list[tuple[str, str]]] = []
        for d in self.domains:
            combos = []
            for svc in d.services:
                rs = pod_suffix(rng).split("-")[0]
                for _ in range(8):
                    if d.infra_type == "kubernetes":
                        combos.append((svc, f"{svc}-{rs}-{pod_suffix(rng).split('-')[1]}"))
                    else:
                        combos.append((svc, f"{d.namespace}-{svc}-{rng.randrange(1, 40):02d}.ec2.internal"))
            self.origins.append(combos)

    def source(
        self,
        rng: random.Random,
        ts: str,
        level: str,
        message: str,
        domain_idx: int | None,
        domain: str | None = None,
        infra: str = "ec2",
    ) -> dict[str, Any]:
        if domain_idx is None:  # a domain only a scenario knows
            info = None
        else:
            info = self.domains[domain_idx]
            domain = info.name
        app = self.app
        if info is not None:
            combos = self.origins[domain_idx]  # type: ignore[index]
            svc, where = combos[rng.randrange(len(combos))]
            infra = info.infra_type
            ns = info.namespace
        else:
            ns = (domain or "app").split(".")[0]
            svc = ns
            where = (
                f"{svc}-{pod_suffix(rng)}"
                if infra == "kubernetes"
                else f"{ns}-{rng.randrange(1, 40):02d}.ec2.internal"
            )
        src: dict[str, Any] = {
            "@timestamp": ts,
            "message": message,
            "regex": {"extractions": {"logLevel": level}},
            app: {"domain_name": domain, "infra_type": infra},
            "service": svc,
        }
        if infra == "kubernetes":
            src["k8s"] = {"pod": where, "namespace": ns}
        else:
            src["host"] = {"name": where}
        return src


@dataclass(frozen=True)
class _FnProfile:
    function_name: str
    memory: int
    endpoints: tuple[str, ...]


class _ServerlessStream:
    """EventOps records: routing (log_group/tenant/stage), function and request fields."""

    STATUS: Final = {
        "DEBUG": (200,),
        "INFO": (200, 200, 200, 200, 201, 202, 204),
        "WARN": (400, 404, 409, 429, 403),
        "ERROR": (500, 502, 503, 504, 500),
    }

    def __init__(self, seed: int) -> None:
        self.log_groups = list(LOG_GROUPS)
        self.profiles = {
            lg: _FnProfile(f"eventops-{lg.rsplit('/', 1)[1]}", mem, eps)
            for lg, (mem, eps, _w) in LOG_GROUPS.items()
        }
        # Every (log_group, tenant, stage) combination is a stream with the product of the weights.
        self.routes = [(lg, t, s) for lg in LOG_GROUPS for t in TENANTS for s in STAGES]
        self.route_cum = cumulative([LOG_GROUPS[lg][2] * TENANTS[t] * STAGES[s] for lg, t, s in self.routes])
        self.origins = list(EVENT_ORIGINS)
        self.origin_cum = cumulative(list(EVENT_ORIGINS.values()))
        urng = random.Random(f"{seed}:eventops:users")
        self.users = [f"usr_{urng.getrandbits(40):010x}" for _ in range(512)]

    def source(
        self, rng: random.Random, ts: str, level: str, message: str, route: tuple[str, str, str]
    ) -> dict[str, Any]:
        lg, tenant, stage = route
        prof = self.profiles.get(lg) or _FnProfile(f"eventops-{lg.rsplit('/', 1)[-1]}", 512, ("/v1/events",))
        origin = (
            self.origins[0]
            if rng.random() < 0.55
            else rng.choices(self.origins, cum_weights=self.origin_cum)[0]
        )
        src: dict[str, Any] = {
            "@timestamp": ts,
            "logLevel": level,
            "message": message,
            "function_name": prof.function_name,
            "function_memory_size": prof.memory,
            "event": {"origin": origin},
            "log_group": lg,
            "tenant": tenant,
            "stage": stage,
        }
        # Only API Gateway events carry a request/response; most of them are authenticated.
        if origin == "api-gateway":
            user = self.users[rng.getrandbits(9)]
            ep = prof.endpoints[rng.getrandbits(1) % len(prof.endpoints)].replace(
                "{id}", str(rng.getrandbits(20))
            )
            codes = self.STATUS[level]
            src["request"] = {
                "method": "GET" if rng.getrandbits(2) == 0 else "POST",
                "endpoint": ep,
                "user_id": user,
            }
            src["response"] = {"status_code": codes[rng.randrange(len(codes))]}
            if rng.getrandbits(3):  # 7 in 8
                src["user"] = {"id": user}
        elif rng.getrandbits(2) == 0:
            src["user"] = {"id": self.users[rng.getrandbits(9)]}
        return src


# ---------------------------------------------------------------------------------------------------------
# Background logs
# ---------------------------------------------------------------------------------------------------------


def _compiled_catalogue(app: str, pools: Pools) -> list[tuple[str, CompiledTemplate]]:
    return [(level, compile_template(text, pools)) for level, _w, text, _s in CATALOGUES[app]]


def _app_totals(spec: DataSpec) -> dict[str, int]:
    apps = list(APP_SHARES)
    counts = _allocate(spec.volume * spec.window_days, [APP_SHARES[a] for a in apps])
    return dict(zip(apps, counts, strict=True))


def _id_prefix(spec: DataSpec, stream: str) -> str:
    # Short and opaque like OpenSearch ids; the seed part keeps ids of different seeds apart.
    return hashlib.blake2b(f"{spec.seed}:{stream}".encode(), digest_size=4).hexdigest()


def _background_logs(spec: DataSpec, app: str, total: int, slots: list[_Slot], pools: Pools) -> Iterator[Hit]:
    rng = random.Random(f"{spec.seed}:{app}:logs")
    counts = _hour_counts(total, slots, rng)
    templates = _compiled_catalogue(app, pools)
    trng = random.Random(f"{spec.seed}:{app}:templates")
    prefix = _id_prefix(spec, f"{app}:logs")
    bits = rng.getrandbits
    rand = rng.random
    seq = 0
    if app == "eventops":
        sls = _ServerlessStream(spec.seed)
        tables = {
            lg: stream_template_table(CATALOGUES[app], lg.rsplit("/", 1)[1], trng) for lg in sls.log_groups
        }
        for slot, n in zip(slots, counts, strict=True):
            span = slot.hi - slot.lo
            offs = sorted([slot.lo + int(rand() * span) for _ in range(n)])
            routes = rng.choices(sls.routes, cum_weights=sls.route_cum, k=n)
            index = f"logs-{app}-{slot.month}"
            for off, route in zip(offs, routes, strict=True):
                level, tpl = templates[tables[route[0]][bits(POOL_BITS)]]
                src = sls.source(rng, _ts(slot, off), level, tpl.render(rng), route)
                seq += 1
                yield {"_index": index, "_id": f"{prefix}{seq:09x}", "_source": src}
        return
    host = _HostStream(app, spec.seed)
    dtables = [stream_template_table(CATALOGUES[app], d.name.split(".")[0], trng) for d in host.domains]
    dom_range = range(len(host.domains))
    for slot, n in zip(slots, counts, strict=True):
        span = slot.hi - slot.lo
        offs = sorted([slot.lo + int(rand() * span) for _ in range(n)])
        doms = rng.choices(dom_range, cum_weights=host.domain_cum, k=n)
        index = f"logs-{app}-{slot.month}"
        for off, d in zip(offs, doms, strict=True):
            level, tpl = templates[dtables[d][bits(POOL_BITS)]]
            src = host.source(rng, _ts(slot, off), level, tpl.render(rng), d)
            seq += 1
            yield {"_index": index, "_id": f"{prefix}{seq:09x}", "_source": src}


# ---------------------------------------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------------------------------------


_TICKET_PREFIX: Final = {"INCIDENT": "INC", "SR_TASK": "SR", "CHANGE": "CHG", "REQUEST": "REQ"}


class _WorkloadStream:
    def __init__(self, seed: int) -> None:
        self.domains = list(DOMAINS["atr"])
        self.domain_cum = cumulative([d.weight for d in self.domains])
        self.workflows = list(WORKFLOWS)
        self.workflow_cum = cumulative(list(WORKFLOWS.values()))
        self.states = list(WORKLOAD_FINAL_STATES)
        self.state_cum = cumulative(list(WORKLOAD_FINAL_STATES.values()))
        self.triggers = {
            wf: ([(t, tt) for t, tt, _w in opts], cumulative([w for _t, _tt, w in opts]))
            for wf, opts in WORKFLOW_TRIGGERS.items()
        }

    def source(
        self,
        rng: random.Random,
        ts: str,
        epoch_ms: int,
        now_ms: int,
        domain: str,
        infra: str,
        workflow: str,
        state: str | None,
        trigger: tuple[str, str | None] | None,
    ) -> dict[str, Any]:
        median = WORKFLOW_MEDIAN_SECONDS.get(workflow, 300.0)
        duration = int(rng.lognormvariate(0, 0.6) * median * 1000)
        if state is None:
            # Workloads whose run would end after `now` are still running at `now`.
            state = (
                "RUNNING"
                if epoch_ms + duration > now_ms
                else rng.choices(self.states, cum_weights=self.state_cum)[0]
            )
        if trigger is None:
            opts, cum = self.triggers.get(workflow, ([("API", None)], [1.0]))
            trigger = rng.choices(opts, cum_weights=cum)[0]
        src: dict[str, Any] = {
            "@timestamp": ts,
            "workload_id": f"wl-{rng.getrandbits(64):016x}",
            "workflow": {"name": workflow},
            "atr": {"domain_name": domain, "infra_type": infra},
            "workload": {"trigger": trigger[0], "state": state},
            "status": WORKLOAD_STATUS.get(state, state.lower()),
        }
        if state != "RUNNING":
            src["duration_ms"] = duration if state != "FAILED" else max(1, duration // 3)
        if trigger[1] is not None:
            src["ticket"] = {
                "type": trigger[1],
                "id": f"{trigger[1][:3]}{rng.randrange(1_000_000, 9_999_999)}",
            }
        return src


def _background_workloads(spec: DataSpec, slots: list[_Slot]) -> Iterator[Hit]:
    rng = random.Random(f"{spec.seed}:atr:workloads")
    counts = _hour_counts(spec.workloads_per_day * spec.window_days, slots, rng)
    ws = _WorkloadStream(spec.seed)
    prefix = _id_prefix(spec, "atr:workloads")
    now_ms = int(spec.now.timestamp() * 1000)
    seq = 0
    for slot, n in zip(slots, counts, strict=True):
        if not n:
            continue
        span = slot.hi - slot.lo
        offs = sorted([slot.lo + int(rng.random() * span) for _ in range(n)])
        wfs = rng.choices(ws.workflows, cum_weights=ws.workflow_cum, k=n)
        doms = rng.choices(ws.domains, cum_weights=ws.domain_cum, k=n)
        index = f"workloads-atr-{slot.month}"
        for off, wf, d in zip(offs, wfs, doms, strict=True):
            src = ws.source(
                rng, _ts(slot, off), slot.hour_ms + off, now_ms, d.name, d.infra_type, wf, None, None
            )
            seq += 1
            yield {"_index": index, "_id": f"{prefix}{seq:09x}", "_source": src}


# ---------------------------------------------------------------------------------------------------------
# Incidents
# ---------------------------------------------------------------------------------------------------------


def _incident_times(
    incident: LogIncident | WorkloadIncident, now: datetime, rng: random.Random
) -> Iterator[int]:
    """Exactly `per_minute` sorted epoch-ms timestamps in each minute of the incident."""
    start, _end = incident.window(now)
    t0 = int(start.timestamp() * 1000)
    for m in range(incident.minutes):
        base = t0 + m * 60_000
        yield from sorted(base + rng.randrange(60_000) for _ in range(incident.per_minute))


def _month(epoch_ms: int) -> str:
    return datetime.fromtimestamp(epoch_ms / 1000, UTC).strftime("%Y.%m")


def _incident_hits(spec: DataSpec, incident: LogIncident | WorkloadIncident, pools: Pools) -> Iterator[Hit]:
    rng = random.Random(f"{spec.seed}:incident:{incident.id}")
    field_tpls = {
        k: compile_template(v, pools) if isinstance(v, str) else v for k, v in sorted(incident.fields.items())
    }
    now_ms = int(spec.now.timestamp() * 1000)
    if isinstance(incident, LogIncident):
        app = incident.application.value
        messages = [compile_template(m, pools) for m in incident.messages]
        host = sls = None
        dom_idx: int | None = None
        if app == "eventops":
            sls = _ServerlessStream(spec.seed)
            route = (incident.log_group or "", incident.tenant or "", incident.stage or "")
        else:
            host = _HostStream(app, spec.seed)
            names = [d.name for d in host.domains]
            dom_idx = names.index(incident.domain) if incident.domain in names else None
    else:
        ws = _WorkloadStream(spec.seed)
        trig = (incident.trigger, incident.ticket_type)
    for seq, epoch_ms in enumerate(_incident_times(incident, spec.now, rng), start=1):
        ts = _ts_of_ms(epoch_ms)
        if isinstance(incident, LogIncident):
            msg = messages[rng.randrange(len(messages))].render(rng)
            if host is not None:
                src = host.source(
                    rng, ts, incident.level, msg, dom_idx, incident.domain, incident.app_type.value
                )
            else:
                assert sls is not None
                src = sls.source(rng, ts, incident.level, msg, route)
            index = f"logs-{app}-{_month(epoch_ms)}"
        else:
            src = ws.source(
                rng,
                ts,
                epoch_ms,
                now_ms,
                incident.domain,
                incident.app_type,
                incident.workflow,
                incident.state,
                trig,
            )
            index = f"workloads-atr-{_month(epoch_ms)}"
        for key, val in field_tpls.items():
            _nested(src, key, val.render(rng) if isinstance(val, CompiledTemplate) else val)
        _nested(src, INCIDENT_ID_FIELD, incident.id)
        yield {"_index": index, "_id": f"{incident.id}-{seq:07d}", "_source": src}


# ---------------------------------------------------------------------------------------------------------
# Public entry points
# ---------------------------------------------------------------------------------------------------------


def generate_logs(spec: DataSpec) -> Iterator[Hit]:
    """All log documents: background traffic per application, then the log incidents."""
    slots = _slots(spec)
    pools = Pools(spec.seed)
    for app, total in _app_totals(spec).items():
        yield from _background_logs(spec, app, total, slots, pools)
    for inc in spec.incidents:
        if isinstance(inc, LogIncident):
            yield from _incident_hits(spec, inc, pools)


def generate_workloads(spec: DataSpec) -> Iterator[Hit]:
    """All workload documents (atr only): background, then the workload incidents."""
    yield from _background_workloads(spec, _slots(spec))
    pools = Pools(spec.seed)
    for inc in spec.incidents:
        if isinstance(inc, WorkloadIncident):
            yield from _incident_hits(spec, inc, pools)


def generate(spec: DataSpec) -> Iterator[Hit]:
    """Every document: logs first, then workloads (tell them apart by `_index` prefix)."""
    yield from generate_logs(spec)
    yield from generate_workloads(spec)


def expected_counts(spec: DataSpec) -> dict[str, int]:
    """Exact document counts per application/kind without generating (for progress reporting)."""
    out = {f"logs:{app}": n for app, n in _app_totals(spec).items()}
    out["workloads:atr"] = spec.workloads_per_day * spec.window_days
    for inc in spec.incidents:
        key = f"{inc.kind}:{inc.application}"
        out[key] = out.get(key, 0) + inc.count
    out["total"] = sum(out.values())
    return out


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


# ---------------------------------------------------------------------------------------------------------
# Billing
# ---------------------------------------------------------------------------------------------------------

_WBS_LETTERS: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_CLIENTS: Final = ("CMClient", "Northwind Traders", "Contoso Ltd", "Fabrikam Inc", "Globex Corp")


def billing_profiles(seed: int = 42) -> dict[str, dict[str, Any]]:
    """Static billing facts per ec2/kubernetes domain (`summary` fields minus ticket_count/time_range)."""
    rng = random.Random(f"{seed}:billing")
    out: dict[str, dict[str, Any]] = {}
    for app, domains in DOMAINS.items():
        for d in domains:
            created = datetime(2024, 1, 1, 12, tzinfo=UTC) + timedelta(days=rng.randrange(0, 600))
            team = d.name.split(".")[0]
            out[d.name] = {
                "domain": d.name,
                "client": rng.choice(_CLIENTS),
                # One retired domain keeps billing interesting (and queryable).
                "live_status": "inactive" if d.name == "reports.example.com" else "active",
                "WBS": f"{rng.randrange(1000, 9999)}{''.join(rng.choices(_WBS_LETTERS, k=4))}",
                "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
                "infra_type": "EC2" if d.infra_type == "ec2" else "KUBERNETES",
                "billing_type": rng.choice(("monthly", "monthly", "annual", "usage")),
                "point_of_contact": f"{team}-team@example.com",
                "application": app,
                "tickets_per_day": round(5 + rng.random() * 40, 2),
            }
    return out


def billing_summary(
    domain: str, time_range: str, start: datetime, end: datetime, seed: int = 42
) -> dict[str, Any] | None:
    """The `/v1/query` `summary` for `domain` over [start, end), or None for an unknown domain.

    ticket_count is the domain's ticket rate times the range length (deterministic; inactive domains
    have none), echoed `time_range` is the request's expression.
    """
    prof = billing_profiles(seed).get(domain)
    if prof is None:
        return None
    days = max((end - start).total_seconds(), 0.0) / 86400
    rate = prof["tickets_per_day"] if prof["live_status"] == "active" else 0.0
    return {
        "ticket_count": int(rate * days + 0.5),
        "domain": domain,
        "time_range": time_range,
        **{k: prof[k] for k in ("client", "live_status", "WBS", "created", "infra_type", "billing_type")},
        "point_of_contact": prof["point_of_contact"],
    }


def measure(spec: DataSpec) -> tuple[int, float]:
    """(documents, seconds) to generate everything for `spec`: the number quoted in the README."""
    t0 = time.perf_counter()
    n = sum(1 for _ in generate(spec))
    return n, time.perf_counter() - t0
