"""The sandbox's search side: the generated documents in two indexes of the DSL engine (DuckDB, as the
local result store: the sandbox and follow-ups on what it returned answer alike), and requests ->
queries.

Index cache: the documents depend only on the `DataSpec`, so the indexes are built once under
``<data_dir>/sandbox/<spec.cache_key()>/{logs,workloads}`` and reopened on the next start with the same
spec (same seed, volume, scenarios and hour: `DataSpec.create` pins `now` to the end of the hour). A build
goes to a temporary sibling directory that is renamed into place only when complete, so an interrupted
build is never mistaken for a cache hit.

Mapping requests to `DocQuery` (one place, used by every route):
- logs ec2/kubernetes: routing on ``<app>.infra_type`` (the app type; only that application's documents
  have the field, so it also selects the application) and ``<app>.domain_name`` (``["*"]`` = any).
- logs serverless (eventops): routing on ``log_group``/``tenant``/``stage`` plus ``exists log_group``
  (only EventOps documents have it), so ``["*"]`` everywhere still means "EventOps only".
- workloads: their own index, routing on ``atr.infra_type`` and ``atr.domain_name``.
- V1: ``caas`` is taken as kubernetes (the sandbox's answer to reference item 4); no app_type = both;
  ``time_range`` date math is the window start and the window ends at the request time; each key of the
  ``filters`` object is a ``term`` filter, except a string on ``message``, which is a ``match_phrase``
  (the reference's own example is ``{"message": "cluster down"}``, a phrase inside a longer message).
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

import platformdirs

from cm_mcp.api.fields import domain_field, infra_type_field
from cm_mcp.api.requests import (
    LogsAggsRequest,
    LogsBatchRequest,
    LogsScrollRequest,
    V1LogsBatchRequest,
    V1LogsScrollRequest,
    WorkloadsAggsRequest,
    WorkloadsBatchRequest,
    WorkloadsScrollRequest,
)
from cm_mcp.api.times import parse_iso8601, resolve_date_math
from cm_mcp.dsl import DocQuery, DSLError, SearchIndex, open_index
from cm_mcp.dsl.datemath import from_ms, to_ms
from cm_mcp.sandbox.data import DataSpec, Hit, generate_logs, generate_workloads

logger = logging.getLogger("cm_mcp.sandbox")

Kind = Literal["logs", "workloads"]
KINDS: Final[tuple[Kind, ...]] = ("logs", "workloads")
#: Marker written last into a finished cache directory; its absence means "rebuild".
READY_FILE: Final = "ready.json"
#: Hits per engine page when streaming a batch partition into its file.
STREAM_PAGE: Final = 2_000
_V1_APP_TYPES: Final = {"ec2": "ec2", "caas": "kubernetes"}


def default_data_dir() -> Path:
    return platformdirs.user_cache_path("cm-mcp")


@dataclass(frozen=True)
class Selection:
    """Which documents a request selects: index, query, projection and the effective window."""

    kind: Kind
    query: DocQuery
    start: datetime
    end: datetime
    fields: tuple[str, ...] | None = None
    #: request echo for `meta` (app_type, domain / log_group, tenant, stage)
    echo: Mapping[str, Any] = field(default_factory=dict)

    def window(self, start: datetime, end: datetime) -> Selection:
        """The same selection narrowed to [start, end] (both inclusive): a batch partition."""
        q = self.query
        narrowed = DocQuery(filters=q.filters, start=start, end=end, routing=q.routing, now=q.now)
        return Selection(self.kind, narrowed, start, end, self.fields, self.echo)


# --- request -> selection ----------------------------------------------------------------------------


def logs_selection(req: LogsScrollRequest | LogsBatchRequest | LogsAggsRequest, now: datetime) -> Selection:
    assert req.application is not None
    assert req.app_type is not None
    assert req.start_time is not None
    assert req.end_time is not None
    app, app_type = req.application.value, req.app_type.value
    filters: list[dict[str, Any]] = list(getattr(req, "filters", None) or [])
    echo: dict[str, Any] = {"app_type": app_type}
    if app_type == "serverless":
        routing: dict[str, list[Any]] = {
            "log_group": list(req.log_group or ["*"]),
            "tenant": list(req.tenant or ["*"]),
            "stage": list(req.stage or ["*"]),
        }
        # Appended after the user's filters so DSL error paths (filters[i]) still point at theirs.
        filters.append({"exists": {"field": "log_group"}})
        echo.update(routing)
    else:
        routing = {infra_type_field(app): [app_type], domain_field(app): list(req.domain or ["*"])}
        echo["domain"] = list(req.domain or ["*"])
    start, end = parse_iso8601(req.start_time), parse_iso8601(req.end_time)
    query = DocQuery(filters=filters, start=start, end=end, routing=routing, now=now)
    fields = getattr(req, "fields", None)
    return Selection("logs", query, start, end, tuple(fields) if fields else None, echo)


def workloads_selection(
    req: WorkloadsScrollRequest | WorkloadsBatchRequest | WorkloadsAggsRequest, now: datetime
) -> Selection:
    assert req.app_type is not None
    assert req.domain is not None
    assert req.start_time is not None
    assert req.end_time is not None
    routing: dict[str, list[Any]] = {
        infra_type_field("atr"): [req.app_type],
        domain_field("atr"): list(req.domain),
    }
    start, end = parse_iso8601(req.start_time), parse_iso8601(req.end_time)
    filters = list(getattr(req, "filters", None) or [])
    query = DocQuery(filters=filters, start=start, end=end, routing=routing, now=now)
    fields = getattr(req, "fields", None)
    echo = {"app_type": req.app_type, "domain": list(req.domain)}
    return Selection("workloads", query, start, end, tuple(fields) if fields else None, echo)


def v1_selection(req: V1LogsScrollRequest | V1LogsBatchRequest, now: datetime) -> Selection:
    app = req.application.value
    filters: list[dict[str, Any]] = [
        {"match_phrase": {key: value}}
        if key == "message" and isinstance(value, str)
        else {"term": {key: value}}
        for key, value in (req.filters or {}).items()
    ]
    routing: dict[str, list[Any]] = {}
    if app == "eventops":  # V1 has no serverless app type: the EventOps fields alone select (item 4)
        filters.append({"exists": {"field": "log_group"}})
        for name in ("log_group", "tenant", "stage"):
            value = getattr(req, name)
            if value is not None:
                routing[name] = [value]
    else:
        if req.app_type is not None:
            routing[infra_type_field(app)] = [_V1_APP_TYPES[req.app_type.value]]
        else:
            filters.append({"exists": {"field": domain_field(app)}})
        if req.domain is not None:
            routing[domain_field(app)] = [req.domain]
    start = resolve_date_math(req.time_range, now, "down")
    end = now
    echo = {"domain": req.domain, "time_range": req.time_range}
    query = DocQuery(filters=filters, start=start, end=end, routing=routing, now=now)
    return Selection("logs", query, start, end, None, echo)


# --- the engine --------------------------------------------------------------------------------------


@dataclass
class BuildInfo:
    cache_dir: Path
    reused: bool
    seconds: float
    counts: dict[str, int]


class SandboxEngine:
    """Two read-only indexes (logs, workloads) built from one `DataSpec`."""

    def __init__(self, spec: DataSpec, indexes: Mapping[Kind, SearchIndex], info: BuildInfo) -> None:
        self.spec = spec
        self._indexes = dict(indexes)
        self.info = info

    @classmethod
    def open_or_build(cls, spec: DataSpec, data_dir: Path | None = None) -> SandboxEngine:
        """Reuse `<data_dir>/sandbox/<cache_key>` when complete, else build it (atomically)."""
        root = (data_dir or default_data_dir()) / "sandbox"
        final = root / spec.cache_key()
        started = time.perf_counter()
        reused = (final / READY_FILE).is_file()
        if not reused:
            _build(spec, root, final)
        try:
            indexes: dict[Kind, SearchIndex] = {kind: open_index(final / kind) for kind in KINDS}
        except DSLError as exc:
            if not reused:
                raise
            # a cache written by another engine or version of it: a cache, so rebuild rather than fail
            logger.warning("sandbox index cache %s is unusable (%s); rebuilding it", final, exc)
            shutil.rmtree(final)
            _build(spec, root, final)
            reused = False
            indexes = {kind: open_index(final / kind) for kind in KINDS}
        counts = {str(kind): len(ix) for kind, ix in indexes.items()}
        info = BuildInfo(final, reused, time.perf_counter() - started, counts)
        logger.info(
            "sandbox index %s (%s) in %.1f s: %s",
            final,
            "reused" if reused else "built",
            info.seconds,
            counts,
        )
        return cls(spec, indexes, info)

    def index(self, kind: Kind) -> SearchIndex:
        return self._indexes[kind]

    def count(self, sel: Selection) -> int:
        return self.index(sel.kind).count(sel.query)

    def page(self, sel: Selection, size: int, after: str | None = None) -> tuple[list[Hit], str | None]:
        """One page in (@timestamp, _id) order, each hit with `_score` 1.0 like the reference's."""
        hits, cursor = self.index(sel.kind).search(
            sel.query, size, after=after, fields=list(sel.fields) if sel.fields else None
        )
        return [{**hit, "_score": 1.0} for hit in hits], cursor

    def aggregate(self, sel: Selection, aggs: Mapping[str, Any]) -> dict[str, Any]:
        return self.index(sel.kind).aggregate(sel.query, aggs)

    def iter_hits(self, sel: Selection, page_size: int = STREAM_PAGE) -> Iterator[Hit]:
        """Every hit of `sel`, page by page (never all in memory): what a partition file holds."""
        cursor: str | None = None
        while True:
            hits, cursor = self.page(sel, page_size, cursor)
            yield from hits
            if cursor is None:
                return

    def partitions(
        self, sel: Selection, windows: Sequence[tuple[datetime, datetime]], total: int | None = None
    ) -> list[tuple[Selection, datetime, datetime, int]]:
        """Split `sel` along contiguous `windows` into disjoint selections and count each.

        Boundaries are floored to the millisecond (the index's precision); partition i selects
        [b_i, b_{i+1} - 1 ms] and the last one ends at the selection's own (inclusive) end, so every
        matching document falls in exactly one partition and the counts add up to `count(sel)`.
        Given `total` (= `count(sel)`, already known to the caller), the last partition's count is
        what the others leave rather than one more query (for a one-partition job, `total` itself).
        """
        bounds = [from_ms(to_ms(start)) for start, _ in windows]
        out = []
        counted = 0
        for i, lo in enumerate(bounds):
            last = i == len(bounds) - 1
            reported_end = sel.end if last else bounds[i + 1]
            hi = sel.end if last else bounds[i + 1] - timedelta(milliseconds=1)
            part = sel.window(lo, hi)
            count = total - counted if last and total is not None else self.count(part)
            counted += count
            out.append((part, lo, reported_end, count))
        return out


def _build(spec: DataSpec, root: Path, final: Path) -> None:
    root.mkdir(parents=True, exist_ok=True)
    tmp = root / f"{final.name}.tmp-{os.getpid()}-{threading.get_ident()}"
    shutil.rmtree(tmp, ignore_errors=True)
    counts: dict[str, int] = {}
    for kind, docs in (("logs", generate_logs(spec)), ("workloads", generate_workloads(spec))):
        index = open_index(tmp / kind)
        # Serialised to a file as generated, then loaded by DuckDB in one go (bench/sandbox.py).
        counts[kind] = index.add(docs, commit=False)
        index.close()
        del index
    (tmp / READY_FILE).write_text(json.dumps({"counts": counts, "spec_key": final.name}), encoding="utf-8")
    if final.exists():  # a stale, incomplete directory (no READY_FILE): replace it
        shutil.rmtree(final, ignore_errors=True)
    try:
        os.replace(tmp, final)
    except OSError:  # another process finished the same build first: use theirs
        shutil.rmtree(tmp, ignore_errors=True)
        if not (final / READY_FILE).is_file():
            raise
