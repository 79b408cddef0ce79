"""The shape of a record per application: what a `_source` holds besides its time, level and message.

Shared by background records, benign episodes and incidents, so an incident's records look exactly
like the ordinary records of the same stream (same fields, hosts, pods, users).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any, Final

from cm_mcp.sandbox.catalogue import (
    DOMAINS,
    EVENT_ORIGINS,
    LOG_GROUPS,
    STAGES,
    TENANTS,
    WORKFLOW_TRIGGERS,
    WORKLOAD_STATUS,
    DomainInfo,
)
from cm_mcp.sandbox.templates import cumulative, pod_suffix
from cm_mcp.sandbox.variation import (
    BUSY_BASE,
    BUSY_EXTRA,
    DEFAULT_WORKFLOW,
    DOMAIN_SPEED,
    LONG_TAIL_FACTOR,
    LONG_TAIL_SHARE,
    OFFICE,
    WORKFLOW_PROFILES,
)

_REPLICAS_PER_SERVICE: Final = 8


class HostStream:
    """ec2/kubernetes records of one application: `source(rng, ts, level, message, domain)` builds `_source`."""

    def __init__(self, app: str, seed: int) -> None:
        self.app = app
        rng = random.Random(f"{seed}:{app}:hosts")
        self.domains: list[DomainInfo] = list(DOMAINS[app])
        self.index = {d.name: i for i, d in enumerate(self.domains)}
        # (service, host-or-pod) per domain: 8 replicas per service; pods carry a replica-set hash.
        self.origins: list[list[tuple[str, str]]] = []
        for d in self.domains:
            combos = []
            for svc in d.services:
                replica_set = pod_suffix(rng).split("-")[0]
                for _ in range(_REPLICAS_PER_SERVICE):
                    if d.infra_type == "kubernetes":
                        combos.append((svc, f"{svc}-{replica_set}-{pod_suffix(rng).split('-')[1]}"))
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
        """`domain_idx` indexes `self.domains`; None is a domain only a scenario knows (`domain`, `infra`)."""
        if domain_idx is not None:
            info = self.domains[domain_idx]
            domain, infra, namespace = info.name, info.infra_type, info.namespace
            combos = self.origins[domain_idx]
            svc, where = combos[rng.randrange(len(combos))]
        else:
            namespace = (domain or "app").split(".")[0]
            svc = namespace
            if infra == "kubernetes":
                where = f"{svc}-{pod_suffix(rng)}"
            else:
                where = f"{namespace}-{rng.randrange(1, 40):02d}.ec2.internal"
        src: dict[str, Any] = {
            "@timestamp": ts,
            "message": message,
            "regex": {"extractions": {"logLevel": level}},
            self.app: {"domain_name": domain, "infra_type": infra},
            "service": svc,
        }
        if infra == "kubernetes":
            src["k8s"] = {"pod": where, "namespace": namespace}
        else:
            src["host"] = {"name": where}
        return src


@dataclass(frozen=True)
class _FnProfile:
    function_name: str
    memory: int
    endpoints: tuple[str, ...]


Route = tuple[str, str, str]  # (log_group, tenant, stage)


class ServerlessStream:
    """EventOps records: routing (log_group/tenant/stage), function and request fields."""

    STATUS: Final = {
        "DEBUG": (200,),
        "INFO": (200, 200, 200, 200, 201, 202, 204),
        "WARN": (400, 404, 409, 429, 403),
        "ERROR": (500, 502, 503, 504, 500),
    }

    def __init__(self, seed: int) -> None:
        self.profiles = {
            lg: _FnProfile(f"eventops-{lg.rsplit('/', 1)[1]}", mem, eps)
            for lg, (mem, eps, _w) in LOG_GROUPS.items()
        }
        #: every (log_group, tenant, stage) combination, in the order of plan.log_streams("eventops")
        self.routes: list[Route] = [(lg, t, s) for lg in LOG_GROUPS for t in TENANTS for s in STAGES]
        self.origins = list(EVENT_ORIGINS)
        self.origin_cum = cumulative(list(EVENT_ORIGINS.values()))
        users = random.Random(f"{seed}:eventops:users")
        self.users = [f"usr_{users.getrandbits(40):010x}" for _ in range(512)]

    def source(self, rng: random.Random, ts: str, level: str, message: str, route: Route) -> dict[str, Any]:
        log_group, tenant, stage = route
        prof = self.profiles.get(log_group) or _FnProfile(
            f"eventops-{log_group.rsplit('/', 1)[-1]}", 512, ("/v1/events",)
        )
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
            "log_group": log_group,
            "tenant": tenant,
            "stage": stage,
        }
        # Only API Gateway events carry a request/response; most of them are authenticated.
        if origin == "api-gateway":
            user = self.users[rng.getrandbits(9)]
            endpoint = prof.endpoints[rng.getrandbits(1) % len(prof.endpoints)].replace(
                "{id}", str(rng.getrandbits(20))
            )
            codes = self.STATUS[level]
            src["request"] = {
                "method": "GET" if rng.getrandbits(2) == 0 else "POST",
                "endpoint": endpoint,
                "user_id": user,
            }
            src["response"] = {"status_code": codes[rng.randrange(len(codes))]}
            if rng.getrandbits(3):  # 7 in 8
                src["user"] = {"id": user}
        elif rng.getrandbits(2) == 0:
            src["user"] = {"id": self.users[rng.getrandbits(9)]}
        return src


class WorkloadStream:
    """atr workload records: workflow, trigger/ticket, state and a duration drawn from variation.py."""

    def __init__(self) -> None:
        self.states = {
            name: (list(p.states), cumulative(list(p.states.values())))
            for name, p in WORKFLOW_PROFILES.items()
        }
        self.default_states = (
            list(DEFAULT_WORKFLOW.states),
            cumulative(list(DEFAULT_WORKFLOW.states.values())),
        )
        self.triggers = {
            wf: ([(t, tt) for t, tt, _w in opts], cumulative([w for _t, _tt, w in opts]))
            for wf, opts in WORKFLOW_TRIGGERS.items()
        }

    @staticmethod
    def load(hour: int, weekday: int) -> float:
        """How much slower runs are in this hour: busy office hours slow everything down."""
        return BUSY_BASE + BUSY_EXTRA * OFFICE.at(hour + 0.5, weekday)

    def duration_ms(self, rng: random.Random, workflow: str, domain: str, load: float) -> int:
        profile = WORKFLOW_PROFILES.get(workflow, DEFAULT_WORKFLOW)
        seconds = rng.lognormvariate(0, profile.sigma) * profile.median_seconds * load
        seconds *= DOMAIN_SPEED.get(domain, 1.0)
        if rng.random() < LONG_TAIL_SHARE:
            seconds *= LONG_TAIL_FACTOR[0] + rng.random() * (LONG_TAIL_FACTOR[1] - LONG_TAIL_FACTOR[0])
        return max(1, int(seconds * 1000))

    def source(
        self,
        rng: random.Random,
        ts: str,
        epoch_ms: int,
        end_ms: int,
        domain: str,
        infra: str,
        workflow: str,
        state: str | None,
        trigger: tuple[str, str | None] | None,
        load: float = 1.0,
    ) -> dict[str, Any]:
        """`state` None draws the workflow's usual mix; runs that would end after `end_ms` are RUNNING."""
        duration = self.duration_ms(rng, workflow, domain, load)
        if state is None:
            states, cum = self.states.get(workflow, self.default_states)
            state = "RUNNING" if epoch_ms + duration > end_ms else rng.choices(states, cum_weights=cum)[0]
        if trigger is None:
            opts, trigger_cum = self.triggers.get(workflow, ([("API", None)], [1.0]))
            trigger = rng.choices(opts, cum_weights=trigger_cum)[0]
        src: dict[str, Any] = {
            "@timestamp": ts,
            "workload_id": f"wl-{rng.getrandbits(64):016x}",
            "workflow": {"name": workflow},
            "atr": {"domain_name": domain, "infra_type": infra},
            "workload": {"trigger": trigger[0], "state": state},
            "status": WORKLOAD_STATUS.get(state, state.lower()),
        }
        if state != "RUNNING":
            # A failed run stops early; a timed-out one ran its full (long) course.
            src["duration_ms"] = duration if state != "FAILED" else max(1, duration // 3)
        if trigger[1] is not None:
            src["ticket"] = {
                "type": trigger[1],
                "id": f"{trigger[1][:3]}{rng.randrange(1_000_000, 9_999_999)}",
            }
        return src
