"""What the sandbox's records say: documents for the time plan of plan.py.

Each generator walks a plan (background hours, benign episodes, incident minutes) and fills every
timestamp with a document of the right stream. Speed matters (the sandbox builds its index at
start-up), so the hot loops draw in bulk (`random.choices(k=n)` per hour), pick messages from
pre-drawn template tables and fill them from value pools (templates.py), and format timestamps from
lookup tables (timeline.py).
"""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from cm_mcp.sandbox.bursts import KINDS
from cm_mcp.sandbox.catalogue import CATALOGUES, DOMAINS
from cm_mcp.sandbox.incidents import INCIDENT_ID_FIELD, LogIncident, WorkloadIncident
from cm_mcp.sandbox.plan import WORKLOADS, Episode, HourPlan, incident_times, log_streams, workload_streams
from cm_mcp.sandbox.streams import HostStream, ServerlessStream, WorkloadStream
from cm_mcp.sandbox.templates import (
    POOL_BITS,
    CompiledTemplate,
    Pools,
    compile_template,
    cumulative,
    stream_template_table,
)
from cm_mcp.sandbox.timeline import MMSS, MS, epoch_ms, format_ms, format_slot, month_of
from cm_mcp.sandbox.variation import WORKLOAD_FAILURE_CLUSTERS

if TYPE_CHECKING:
    from cm_mcp.sandbox.data import DataSpec

Hit = dict[str, Any]


def id_prefix(seed: int, stream: str) -> str:
    # Short and opaque like OpenSearch ids; the seed part keeps ids of different seeds apart.
    return hashlib.blake2b(f"{seed}:{stream}".encode(), digest_size=4).hexdigest()


class LogShapes:
    """One application's record builder and, per stream, its template table (the stream's level mix)."""

    def __init__(self, spec: DataSpec, app: str, pools: Pools) -> None:
        self.app = app
        self.seed = spec.seed
        self.pools = pools
        self.templates = [(level, compile_template(text, pools)) for level, _w, text, _s in CATALOGUES[app]]
        streams = log_streams(app)
        table_rng = random.Random(f"{spec.seed}:{app}:templates")
        # Streams with the same messages and level mix share a table (EventOps: per log group and stage).
        shared: dict[tuple[str, tuple[tuple[str, float], ...]], list[int]] = {}
        self.tables: list[list[int]] = []
        for stream in streams:
            # a domain's first label or a log group's last part selects its own messages
            stem = (
                stream.key.split(".")[0] if app != "eventops" else stream.key.split("|")[0].rsplit("/", 1)[1]
            )
            key = (stem, tuple(sorted(stream.levels.items())))
            if key not in shared:
                shared[key] = stream_template_table(CATALOGUES[app], stem, table_rng, stream.levels)
            self.tables.append(shared[key])
        self.index = {stream.key: i for i, stream in enumerate(streams)}
        self.host = HostStream(app, spec.seed) if app != "eventops" else None
        self.serverless = ServerlessStream(spec.seed) if app == "eventops" else None

    def source(self, rng: random.Random, ts: str, level: str, message: str, stream: int) -> dict[str, Any]:
        if self.host is not None:
            return self.host.source(rng, ts, level, message, stream)
        assert self.serverless is not None
        return self.serverless.source(rng, ts, level, message, self.serverless.routes[stream])


def background_logs(shapes: LogShapes, plans: list[HourPlan]) -> Iterator[Hit]:
    app = shapes.app
    rng = random.Random(f"{shapes.seed}:{app}:logs")
    templates, tables = shapes.templates, shapes.tables
    prefix = id_prefix(shapes.seed, f"{app}:logs")
    bits = rng.getrandbits
    stream_range = range(len(tables))
    # The hot loop: bound methods and the timestamp lookups inlined (see timeline.format_slot).
    build: Callable[[random.Random, str, str, str, int], dict[str, Any]]
    if shapes.host is not None:
        build = shapes.host.source
    else:
        assert shapes.serverless is not None
        routes, serverless = shapes.serverless.routes, shapes.serverless.source

        def build(rng: random.Random, ts: str, level: str, message: str, stream: int) -> dict[str, Any]:
            return serverless(rng, ts, level, message, routes[stream])

    seq = 0
    for plan in plans:
        if not plan.offsets:
            continue
        hour_prefix = plan.slot.prefix
        streams = rng.choices(stream_range, cum_weights=plan.cum_weights, k=len(plan.offsets))
        index = f"logs-{app}-{plan.slot.month}"
        for off, stream in zip(plan.offsets, streams, strict=True):
            level, tpl = templates[tables[stream][bits(POOL_BITS)]]
            ts = hour_prefix + MMSS[off // 1000] + MS[off % 1000]
            src = build(rng, ts, level, tpl.render(rng), stream)
            seq += 1
            yield {"_index": index, "_id": f"{prefix}{seq:09x}", "_source": src}


def episode_logs(shapes: LogShapes, episodes: list[Episode]) -> Iterator[Hit]:
    """The benign episodes' records: the episode kind's messages on the episode's stream."""
    compiled: dict[str, tuple[list[tuple[str, CompiledTemplate]], list[int]]] = {}
    for episode in episodes:
        if episode.kind not in compiled:
            messages = KINDS[episode.kind].messages
            table_rng = random.Random(f"{shapes.seed}:episode-kind:{episode.kind}")
            compiled[episode.kind] = (
                [(level, compile_template(text, shapes.pools)) for level, _w, text, _s in messages],
                stream_template_table(messages, "", table_rng),
            )
        templates, table = compiled[episode.kind]
        rng = random.Random(f"{shapes.seed}:episode:{episode.id}")
        bits = rng.getrandbits
        stream = shapes.index[episode.stream]
        prefix = id_prefix(shapes.seed, episode.id)
        for seq, ms in enumerate(episode.times(shapes.seed), start=1):
            level, tpl = templates[table[bits(POOL_BITS)]]
            src = shapes.source(rng, format_ms(ms), level, tpl.render(rng), stream)
            yield {"_index": f"logs-{shapes.app}-{month_of(ms)}", "_id": f"{prefix}{seq:07x}", "_source": src}


def background_workloads(spec: DataSpec, plans: list[HourPlan]) -> Iterator[Hit]:
    rng = random.Random(f"{spec.seed}:atr:workloads")
    stream = WorkloadStream()
    workflows = [s.key for s in workload_streams()]
    domains = list(DOMAINS["atr"])
    domain_cum = cumulative([d.weight for d in domains])
    prefix = id_prefix(spec.seed, "atr:workloads")
    end_ms = epoch_ms(spec.end)
    seq = 0
    for plan in plans:
        n = len(plan.offsets)
        if not n:
            continue
        slot = plan.slot
        load = stream.load(slot.hour, slot.weekday)
        wfs = rng.choices(workflows, cum_weights=plan.cum_weights, k=n)
        doms = rng.choices(domains, cum_weights=domain_cum, k=n)
        index = f"workloads-atr-{slot.month}"
        for off, wf, d in zip(plan.offsets, wfs, doms, strict=True):
            ts_ms = slot.hour_ms + off
            src = stream.source(
                rng, format_slot(slot, off), ts_ms, end_ms, d.name, d.infra_type, wf, None, None, load
            )
            seq += 1
            yield {"_index": index, "_id": f"{prefix}{seq:09x}", "_source": src}


def workload_clusters(spec: DataSpec, episodes: list[Episode], pools: Pools) -> Iterator[Hit]:
    """Small clusters of benign failures (variation.WORKLOAD_FAILURE_CLUSTERS)."""
    clusters = WORKLOAD_FAILURE_CLUSTERS
    stream = WorkloadStream()
    infra = {d.name: d.infra_type for d in DOMAINS["atr"]}
    states, state_cum = list(clusters.states), cumulative(list(clusters.states.values()))
    messages = [compile_template(m, pools) for m in clusters.messages]
    end_ms = epoch_ms(spec.end)
    for episode in episodes:
        assert episode.app == WORKLOADS
        rng = random.Random(f"{spec.seed}:episode:{episode.id}")
        workflow, domain = episode.stream.split("|")
        message = messages[rng.randrange(len(messages))]
        prefix = id_prefix(spec.seed, episode.id)
        for seq, ms in enumerate(episode.times(spec.seed), start=1):
            state = rng.choices(states, cum_weights=state_cum)[0]
            src = stream.source(rng, format_ms(ms), ms, end_ms, domain, infra[domain], workflow, state, None)
            src["error"] = {"message": message.render(rng)}
            yield {"_index": f"workloads-atr-{month_of(ms)}", "_id": f"{prefix}{seq:07x}", "_source": src}


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


def incident_hits(spec: DataSpec, incident: LogIncident | WorkloadIncident, pools: Pools) -> Iterator[Hit]:
    """Every record of one incident, tagged with its id (`sandbox.incident_id`, `_id` prefix)."""
    rng = random.Random(f"{spec.seed}:incident:{incident.id}")
    field_tpls = {
        k: compile_template(v, pools) if isinstance(v, str) else v for k, v in sorted(incident.fields.items())
    }
    end_ms = epoch_ms(spec.end)
    times = incident_times(incident, spec.anchor, spec.seed)
    if isinstance(incident, LogIncident):
        app = incident.application.value
        messages = [compile_template(m, pools) for m in incident.messages]
        host = HostStream(app, spec.seed) if app != "eventops" else None
        serverless = ServerlessStream(spec.seed) if app == "eventops" else None
        route = (incident.log_group or "", incident.tenant or "", incident.stage or "")
        dom_idx = host.index.get(incident.domain or "") if host is not None else None
    else:
        workloads = WorkloadStream()
        trigger = (incident.trigger, incident.ticket_type)
    for seq, ms in enumerate(times, start=1):
        ts = format_ms(ms)
        if isinstance(incident, LogIncident):
            msg = messages[rng.randrange(len(messages))].render(rng)
            if host is not None:
                src = host.source(
                    rng, ts, incident.level, msg, dom_idx, incident.domain, incident.app_type.value
                )
            else:
                assert serverless is not None
                src = serverless.source(rng, ts, incident.level, msg, route)
            index = f"logs-{app}-{month_of(ms)}"
        else:
            src = workloads.source(
                rng,
                ts,
                ms,
                end_ms,
                incident.domain,
                incident.app_type,
                incident.workflow,
                incident.state,
                trigger,
            )
            index = f"workloads-atr-{month_of(ms)}"
        for key, val in field_tpls.items():
            _nested(src, key, val.render(rng) if isinstance(val, CompiledTemplate) else val)
        _nested(src, INCIDENT_ID_FIELD, incident.id)
        yield {"_index": index, "_id": f"{incident.id}-{seq:07d}", "_source": src}
