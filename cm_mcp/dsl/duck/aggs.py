"""OpenSearch aggregations over a DuckIndex, in the tantivy engine's output shapes.

Each aggregation runs for all of its parent buckets at once: a level is a context of (document,
parent bucket id) rows, a bucket aggregation counts its buckets per parent in one statement and, when
it has sub-aggregations, writes the (document, child bucket id) rows of the buckets it returns into a
temporary table that is the context of the level below. So the number of statements is the number of
aggregations in the request, never the number of buckets.

Exact where tantivy approximates: `cardinality` counts distinct values, `percentiles` interpolates
between the two nearest values (DuckDB's quantile_cont). Also answered where tantivy errors:
overlapping `range` buckets, and a date_histogram over documents without @timestamp.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Final, Literal

import duckdb

from cm_mcp.api.querydsl import METRIC_AGGREGATIONS
from cm_mcp.dsl import aggspec
from cm_mcp.dsl.datemath import add_unit, floor_unit, from_ms, iso_ms, parse_date, to_ms
from cm_mcp.dsl.duck import metrics
from cm_mcp.dsl.duck.filters import FilterCompiler, any_of, not_
from cm_mcp.dsl.duck.structure import quote
from cm_mcp.dsl.duck.values import (
    RANK,
    SORT_NUMBER,
    TAG,
    Ctx,
    child_context,
    decode_key,
    field_values,
    top_context,
    typed_literal,
)
from cm_mcp.dsl.errors import DSLError
from cm_mcp.dsl.spec import MISSING_TS, is_timestamp, strip_keyword

Json = dict[str, Any]
ByGroup = dict[int, Json]
TopHits = Callable[[Ctx, int, Literal["asc", "desc"]], dict[int, tuple[int, list[Json]]]]

#: Most buckets one histogram may return (OpenSearch's default search.max_buckets).
MAX_BUCKETS: Final = 65_535
_UNITS: Final = {"M": "month", "q": "quarter", "y": "year"}
#: Timestamps a calendar bucket can be computed for (years 1..9999).
_CALENDAR_SPAN: Final = (-62_135_596_800_000, 253_402_300_799_999)


class AggRunner:
    def __init__(self, cur: duckdb.DuckDBPyConnection, compiler: FilterCompiler, top_hits: TopHits) -> None:
        self.cur = cur
        self.compiler = compiler
        self.top_hits = top_hits
        self._tables = itertools.count()

    def run(self, where: str, aggs: Mapping[str, Any]) -> Json:
        out = self.level(top_context(where), aggs, "aggs")
        return {name: result[0] for name, result in out.items()}

    def level(self, ctx: Ctx, aggs: Mapping[str, Any], path: str) -> dict[str, ByGroup]:
        if not isinstance(aggs, Mapping):
            raise DSLError(path, "expected an object of named aggregations")
        out: dict[str, ByGroup] = {}
        for name, body in aggs.items():
            p = f"{path}.{name}"
            kind, params, subs = aggspec.split(body, p)
            if kind in METRIC_AGGREGATIONS:
                if subs:
                    raise DSLError(p, f"{kind} takes no sub-aggregations")
                out[name] = metrics.metric(self.cur, self.compiler, ctx, kind, params, p)
            elif kind == "top_hits":
                if subs:
                    raise DSLError(p, "top_hits takes no sub-aggregations")
                out[name] = self._top_hits(ctx, params, p)
            else:
                out[name] = getattr(self, f"_{kind}")(ctx, params, subs, p)
        return out

    # -- the machinery ------------------------------------------------------------------------------
    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.cur.execute(sql).fetchall()

    def _table(self, sql: str) -> str:
        name = f"_agg{next(self._tables)}"
        self.cur.execute(f"CREATE TEMP TABLE {name} AS {sql}")
        return name

    def _children(
        self, membership: str, chosen: list[tuple[int, Any, int]], subs: Mapping[str, Any], p: str
    ) -> dict[str, ByGroup]:
        """Sub-aggregations of the chosen buckets, given as (parent g, bucket key k, child id), of the
        membership relation (g, did, k)."""
        if not subs:
            return {}
        groups = tuple(child for _, _, child in chosen)
        if not chosen:
            return self.level(
                child_context("(SELECT NULL::BIGINT AS did, NULL::BIGINT AS g WHERE false)", ()),
                subs,
                f"{p}.aggs",
            )
        keys = ", ".join(f"({g}, {_key_literal(k)}, {child})" for g, k, child in chosen)
        table = self._table(
            f"SELECT m.did, s.child AS g FROM ({membership}) m "
            f"JOIN (VALUES {keys}) s(g, k, child) ON s.g = m.g AND s.k = m.k"
        )
        return self.level(child_context(table, groups), subs, f"{p}.aggs")

    @staticmethod
    def _attach(bucket: Json, child: int, subs: Mapping[str, Any], results: dict[str, ByGroup]) -> Json:
        for name in subs:
            bucket[name] = results[name][child]
        return bucket

    def _single(self, ctx: Ctx, condition: str, subs: Mapping[str, Any], p: str) -> ByGroup:
        """One bucket per parent (filter, missing): its doc_count and sub-aggregations."""
        membership = f"SELECT d.g, d.did, 0 AS k FROM {ctx.rows(condition)}"
        counts = dict(self._rows(f"SELECT g, count(*) FROM ({membership}) GROUP BY g"))
        chosen = [(g, 0, i) for i, g in enumerate(ctx.groups)]
        results = self._children(membership, chosen, subs, p)
        return {
            g: self._attach({"doc_count": int(counts.get(g, 0))}, child, subs, results)
            for g, _, child in chosen
        }

    # -- bucket aggregations --------------------------------------------------------------------------
    def _filter(self, ctx: Ctx, params: Any, subs: Mapping[str, Any], p: str) -> ByGroup:
        return self._single(ctx, self.compiler.one(params, f"{p}.filter"), subs, p)

    def _missing(self, ctx: Ctx, params: Any, subs: Mapping[str, Any], p: str) -> ByGroup:
        field = aggspec.field_of(params, p)
        name = strip_keyword(field)
        if is_timestamp(name):
            condition = f"d.ts <= {MISSING_TS}"
        elif name in ("_id", "_index"):
            condition = "false"
        else:
            condition = not_(self.compiler.exists(field))
        return self._single(ctx, condition, subs, p)

    def _filters(self, ctx: Ctx, params: Any, subs: Mapping[str, Any], p: str) -> ByGroup:
        if not isinstance(params, Mapping) or "filters" not in params:
            raise DSLError(f"{p}.filters", "expected {filters: {name: filter}} or {filters: [filter, ...]}")
        raw = params["filters"]
        named = isinstance(raw, Mapping)
        items = list(raw.items()) if isinstance(raw, Mapping) else list(enumerate(raw))
        conds = [(str(k), self.compiler.one(f, f"{p}.filters.filters.{k}")) for k, f in items]
        if params.get("other_bucket") or "other_bucket_key" in params:
            conds.append(
                (str(params.get("other_bucket_key", "_other_")), not_(any_of([c for _, c in conds])))
            )
        membership = (
            " UNION ALL ".join(
                f"SELECT d.g, d.did, {j} AS k FROM {ctx.rows(cond)}" for j, (_, cond) in enumerate(conds)
            )
            or "SELECT 0 AS g, NULL::BIGINT AS did, 0 AS k WHERE false"
        )
        counts = {
            (g, k): int(n)
            for g, k, n in self._rows(f"SELECT g, k, count(*) FROM ({membership}) GROUP BY ALL")
        }
        chosen = [(g, j, i) for i, (g, j) in enumerate(itertools.product(ctx.groups, range(len(conds))))]
        results = self._children(membership, chosen, subs, p)
        out: ByGroup = {g: {"buckets": {} if named else []} for g in ctx.groups}
        for g, j, child in chosen:
            bucket = self._attach({"doc_count": counts.get((g, j), 0)}, child, subs, results)
            listed = out[g]["buckets"]
            if named:
                listed[conds[j][0]] = bucket
            else:
                listed.append(bucket)
        return out

    def _terms(self, ctx: Ctx, params: Any, subs: Mapping[str, Any], p: str) -> ByGroup:
        aggspec.only(params, aggspec.TERMS_PARAMS, p)
        field = aggspec.field_of(params, p)
        size = int(params.get("size", 10))
        min_count = int(params.get("min_doc_count", 1))
        order, by_sub = _terms_order(params.get("order"), subs, p)
        values = field_values(self.compiler, ctx, field)
        missing = params.get("missing")
        parts = [f"SELECT g, did, {TAG} AS k, {RANK} AS r, s AS ks, {SORT_NUMBER} AS kn FROM ({values.sql})"]
        if missing is not None:
            # documents without a value at the field itself (an object there has none) get the key
            absent = ctx.rows(not_(self.compiler.exists(field, below=False)))
            parts.append(
                f"SELECT g, did, {TAG} AS k, {RANK} AS r, s AS ks, {SORT_NUMBER} AS kn "
                f"FROM (SELECT d.g, d.did, {typed_literal(missing)} FROM {absent})"
            )
        distinct = "DISTINCT " if values.multi else ""
        membership = f"SELECT {distinct}* FROM ({' UNION ALL '.join(parts)})"
        if subs:
            membership = f"SELECT * FROM {self._table(membership)}"
        counts = f"SELECT g, k, count(*) AS n, any_value(r) AS r, any_value(ks) AS ks, any_value(kn) AS kn FROM ({membership}) GROUP BY g, k"
        if min_count <= 0:  # every key of the whole index, with 0 where a parent has none
            every = field_values(self.compiler, top_context("true"), field)
            groups = ", ".join(map(str, ctx.groups))
            counts = (
                f"SELECT g, k, sum(n) AS n, any_value(r) AS r, any_value(ks) AS ks, any_value(kn) AS kn FROM ("
                f"{counts} UNION ALL SELECT gg.g, {TAG}, 0, {RANK}, s, {SORT_NUMBER} FROM ({every.sql}) "
                f"CROSS JOIN (SELECT unnest([{groups}]) AS g) gg) GROUP BY g, k"
            )
        limit = "" if by_sub else f"WHERE pos <= {max(size, 0)} OR pos = 1"
        rows = self._rows(
            f"SELECT g, k, n, total, pos FROM (SELECT *, sum(n) OVER (PARTITION BY g) AS total, "
            f"row_number() OVER (PARTITION BY g ORDER BY {order}) AS pos FROM ({counts}) WHERE n >= {min_count}) "
            f"{limit} ORDER BY g, pos"
        )
        candidates = [(g, k, int(n), int(total)) for g, k, n, total, pos in rows if by_sub or pos <= size]
        totals = {g: int(total) for g, _, _, total, _ in rows}
        chosen = [(g, k, i) for i, (g, k, _, _) in enumerate(candidates)]
        results = self._children(membership, chosen, subs, p)
        buckets: dict[int, list[Json]] = {g: [] for g in ctx.groups}
        for (g, k, n, _), (_, _, child) in zip(candidates, chosen, strict=True):
            key, as_string = decode_key(k)
            bucket: Json = {"key": key, "doc_count": n}
            if as_string is not None:
                bucket["key_as_string"] = as_string
            buckets[g].append(self._attach(bucket, child, subs, results))
        if by_sub:
            for g, listed in buckets.items():
                buckets[g] = _sort_by_sub(listed, by_sub)[: max(size, 0)]
        return {
            g: {
                "doc_count_error_upper_bound": 0,
                "sum_other_doc_count": totals.get(g, 0) - sum(b["doc_count"] for b in buckets[g]),
                "buckets": buckets[g],
            }
            for g in ctx.groups
        }

    def _histogram(self, ctx: Ctx, params: Any, subs: Mapping[str, Any], p: str) -> ByGroup:
        aggspec.only(params, aggspec.HISTOGRAM_PARAMS, p)
        field = aggspec.field_of(params, p)
        if "interval" not in params:
            raise DSLError(p, "histogram needs an interval")
        interval = float(params["interval"])
        offset = float(params.get("offset", 0))
        values = field_values(self.compiler, ctx, field)
        where = "n IS NOT NULL"
        hard = params.get("hard_bounds")
        if isinstance(hard, Mapping):
            if hard.get("min") is not None:
                where += f" AND n >= {float(hard['min'])!r}"
            if hard.get("max") is not None:
                where += f" AND n <= {float(hard['max'])!r}"
        distinct = "DISTINCT " if values.multi else ""
        idx = f"CAST(floor((n - {offset!r}) / {interval!r}) AS BIGINT)"
        membership = f"SELECT {distinct}g, did, {idx} AS k FROM ({values.sql}) WHERE {where}"
        extended = params.get("extended_bounds") or {}
        bounds = [
            int((float(extended[b]) - offset) // interval)
            for b in ("min", "max")
            if extended.get(b) is not None
        ]
        return self._series(
            ctx, membership, subs, p, int(params.get("min_doc_count", 0)), bounds,
            lambda k: {"key": k * interval + offset},
        )  # fmt: skip

    def _date_histogram(self, ctx: Ctx, params: Any, subs: Mapping[str, Any], p: str) -> ByGroup:
        aggspec.date_hist_checks(params, p)
        min_count = int(params.get("min_doc_count", 0))
        extended = params.get("extended_bounds")
        eb: list[int] = []
        if extended:
            eb = [
                parse_date(
                    extended[k], now=self.compiler.now, round_up=False, path=f"{p}.extended_bounds.{k}"
                )
                for k in ("min", "max")
                if k in extended
            ]
        unit = aggspec.calendar_unit(params)
        if unit in aggspec.VARIABLE_UNITS:
            return self._calendar(ctx, unit, eb, min_count, subs, p)
        interval, offset = aggspec.fixed_interval(params, p)
        if extended and len(eb) != 2:
            raise DSLError(f"{p}.extended_bounds", "needs both min and max")
        membership = (
            f"SELECT d.g, d.did, CAST(floor((d.ts - {offset}) / {interval}) AS BIGINT) AS k "
            f"FROM {ctx.rows(f'd.ts > {MISSING_TS}')}"
        )
        bounds = [(b - offset) // interval for b in eb]
        return self._series(
            ctx, membership, subs, p, min_count, bounds,
            lambda k: {"key_as_string": iso_ms(k * interval + offset), "key": k * interval + offset},
        )  # fmt: skip

    def _series(
        self,
        ctx: Ctx,
        membership: str,
        subs: Mapping[str, Any],
        p: str,
        min_count: int,
        bounds: list[int],
        label: Callable[[int], Json],
    ) -> ByGroup:
        """Buckets at consecutive integer positions k, gaps filled from the first to the last (and out
        to `bounds`), per parent."""
        if subs:
            membership = f"SELECT * FROM {self._table(membership)}"
        counts: dict[int, dict[int, int]] = {g: {} for g in ctx.groups}
        for g, k, n in self._rows(f"SELECT g, k, count(*) FROM ({membership}) GROUP BY g, k"):
            counts[g][int(k)] = int(n)
        picked: list[tuple[int, int]] = []
        for g in ctx.groups:
            present = list(counts[g]) + bounds
            if not present:
                continue
            lo, hi = min(present), max(present)
            if hi - lo >= MAX_BUCKETS:
                raise DSLError(p, f"more than {MAX_BUCKETS} buckets: use a larger interval")
            picked.extend((g, k) for k in range(lo, hi + 1) if counts[g].get(k, 0) >= min_count)
        chosen: list[tuple[int, Any, int]] = [(g, k, i) for i, (g, k) in enumerate(picked)]
        results = self._children(membership, chosen, subs, p)
        out: ByGroup = {g: {"buckets": []} for g in ctx.groups}
        for g, k, child in chosen:
            bucket = {**label(k), "doc_count": counts[g].get(k, 0)}
            out[g]["buckets"].append(self._attach(bucket, child, subs, results))
        return out

    def _calendar(
        self, ctx: Ctx, unit: str, bounds: list[int], min_count: int, subs: Mapping[str, Any], p: str
    ) -> ByGroup:
        """Months, quarters and years: bucket starts by calendar arithmetic, gaps filled the same way."""
        lo, hi = _CALENDAR_SPAN
        start = f"epoch_ms(date_trunc('{_UNITS[unit]}', make_timestamp(d.ts * 1000)))"
        membership = f"SELECT d.g, d.did, {start} AS k FROM {ctx.rows(f'd.ts BETWEEN {lo} AND {hi}')}"
        if subs:
            membership = f"SELECT * FROM {self._table(membership)}"
        counts: dict[int, dict[int, int]] = {g: {} for g in ctx.groups}
        for g, k, n in self._rows(f"SELECT g, k, count(*) FROM ({membership}) GROUP BY g, k"):
            counts[g][int(k)] = int(n)
        step_unit, step = ("M", 3) if unit == "q" else (unit, 1)
        chosen: list[tuple[int, Any, int]] = []
        for g in ctx.groups:
            present = list(counts[g]) + bounds
            if not present:
                continue
            first = floor_unit(from_ms(min(present)), "M" if unit == "q" else unit)
            if unit == "q":
                first = first.replace(month=(first.month - 1) // 3 * 3 + 1)
            keys: list[datetime] = [first]
            while to_ms(add_unit(keys[-1], step, step_unit)) <= max(present):
                keys.append(add_unit(keys[-1], step, step_unit))
            chosen.extend((g, to_ms(k), 0) for k in keys if counts[g].get(to_ms(k), 0) >= min_count)
        chosen = [(g, k, i) for i, (g, k, _) in enumerate(chosen)]
        results = self._children(membership, chosen, subs, p)
        out: ByGroup = {g: {"buckets": []} for g in ctx.groups}
        for g, k, child in chosen:
            bucket = {"key_as_string": iso_ms(k), "key": k, "doc_count": counts[g].get(k, 0)}
            out[g]["buckets"].append(self._attach(bucket, child, subs, results))
        return out

    def _range(self, ctx: Ctx, params: Any, subs: Mapping[str, Any], p: str) -> ByGroup:
        aggspec.only(params, {"field", "ranges", "keyed", "format"}, p)
        if params.get("keyed"):
            raise DSLError(f"{p}.keyed", "keyed ranges are not supported")
        field = aggspec.field_of(params, p)
        is_ts = is_timestamp(field)
        ranges = params.get("ranges")
        if not isinstance(ranges, list) or not ranges:
            raise DSLError(f"{p}.ranges", "expected a non-empty list")
        wanted: list[tuple[float | None, float | None, str]] = []
        for i, r in enumerate(ranges):
            lo, hi = (self._range_bound(r.get(k), is_ts, f"{p}.ranges[{i}].{k}") for k in ("from", "to"))
            star = "*"
            key = r.get("key") or (
                f"{star if lo is None else aggspec.range_key_number(lo, is_ts)}-"
                f"{star if hi is None else aggspec.range_key_number(hi, is_ts)}"
            )
            wanted.append((lo, hi, key))
        table = ", ".join(
            f"({j}, {'NULL' if lo is None else repr(lo)}::DOUBLE, {'NULL' if hi is None else repr(hi)}::DOUBLE)"
            for j, (lo, hi, _) in enumerate(wanted)
        )
        values = field_values(self.compiler, ctx, field)
        membership = (
            f"SELECT DISTINCT v.g, v.did, r.j AS k FROM ({values.sql}) v JOIN (VALUES {table}) r(j, lo, hi) "
            "ON (r.lo IS NULL OR v.n >= r.lo) AND (r.hi IS NULL OR v.n < r.hi) WHERE v.n IS NOT NULL"
        )
        if subs:
            membership = f"SELECT * FROM {self._table(membership)}"
        counts = {
            (g, k): int(n)
            for g, k, n in self._rows(f"SELECT g, k, count(*) FROM ({membership}) GROUP BY ALL")
        }
        chosen = [(g, j, i) for i, (g, j) in enumerate(itertools.product(ctx.groups, range(len(wanted))))]
        results = self._children(membership, chosen, subs, p)
        out: ByGroup = {g: {"buckets": []} for g in ctx.groups}
        for g, j, child in chosen:
            lo, hi, key = wanted[j]
            bucket: Json = {"key": key}
            if lo is not None:
                bucket["from"] = lo
                if is_ts:
                    bucket["from_as_string"] = iso_ms(int(lo))
            if hi is not None:
                bucket["to"] = hi
                if is_ts:
                    bucket["to_as_string"] = iso_ms(int(hi))
            bucket["doc_count"] = counts.get((g, j), 0)
            out[g]["buckets"].append(self._attach(bucket, child, subs, results))
        return out

    def _range_bound(self, v: object, is_ts: bool, p: str) -> float | None:
        if v is None:
            return None
        if is_ts:
            return float(parse_date(v, now=self.compiler.now, round_up=False, path=p))
        if isinstance(v, bool) or not isinstance(v, int | float | str):
            raise DSLError(p, "expected a number")
        try:
            return float(v)
        except ValueError:
            raise DSLError(p, "expected a number") from None

    # -- top_hits -------------------------------------------------------------------------------------
    def _top_hits(self, ctx: Ctx, params: Any, p: str) -> ByGroup:
        from cm_mcp.dsl.project import project

        params = params or {}
        aggspec.only(params, {"size", "sort", "_source", "from"}, p)
        if params.get("from"):
            raise DSLError(f"{p}.from", "top_hits from is not supported")
        order: Literal["asc", "desc"] = "desc"
        sort = params.get("sort")
        if sort is not None:
            items = sort if isinstance(sort, list) else [sort]
            if len(items) != 1:
                raise DSLError(f"{p}.sort", "only one sort key (@timestamp) is supported")
            item = items[0]
            fname, spec = (item, "asc") if isinstance(item, str) else next(iter(item.items()))
            if not is_timestamp(fname):
                raise DSLError(f"{p}.sort", "top_hits sorts by @timestamp only")
            direction = spec.get("order", "asc") if isinstance(spec, Mapping) else spec
            order = "asc" if direction == "asc" else "desc"
        found = self.top_hits(ctx, int(params.get("size", 3)), order)
        src = params.get("_source", True)
        includes = (
            src if isinstance(src, list) else (src.get("includes") if isinstance(src, Mapping) else None)
        )
        out: ByGroup = {}
        for g in ctx.groups:
            total, hits = found.get(g, (0, []))
            for h in hits:
                if src is False:
                    h.pop("_source", None)
                elif includes is not None:
                    h["_source"] = project(h.get("_source") or {}, includes)
                h.setdefault("_score", None)
            out[g] = {"hits": {"total": {"value": total, "relation": "eq"}, "max_score": None, "hits": hits}}
        return out


def _key_literal(k: Any) -> str:
    return quote(k) if isinstance(k, str) else str(int(k))


def _terms_order(order: Any, subs: Mapping[str, Any], p: str) -> tuple[str, tuple[str, str, bool] | None]:
    """SQL ORDER BY of the counted buckets, or (sub-aggregation, its value key, descending) when the
    buckets sort by a sub-aggregation (done in Python once those are computed)."""
    ties = "r, ks, kn"
    if order is None:
        return f"n DESC, {ties}", None
    if isinstance(order, list):
        if len(order) != 1:
            raise DSLError(f"{p}.order", "only one sort order is supported")
        order = order[0]
    if not isinstance(order, Mapping) or len(order) != 1:
        raise DSLError(f"{p}.order", 'expected {"_count"|"_key"|<sub-aggregation>: "asc"|"desc"}')
    ((target, direction),) = order.items()
    if direction not in ("asc", "desc"):
        raise DSLError(f"{p}.order.{target}", "expected 'asc' or 'desc'")
    if target == "_count":
        return f"n {direction.upper()}, {ties}", None
    if target in ("_key", "_term"):
        d = direction.upper()
        return f"r {d}, ks {d}, kn {d}", None
    name, _, stat = str(target).partition(".")
    if name not in subs:
        raise DSLError(f"{p}.order.{target}", "not a sub-aggregation of this terms aggregation")
    return f"n DESC, {ties}", (name, stat or "value", direction == "desc")


def _sort_by_sub(buckets: list[Json], by: tuple[str, str, bool]) -> list[Json]:
    name, stat, descending = by

    def value(b: Json) -> float:
        v = b[name].get(stat) if isinstance(b[name], Mapping) else None
        return float(v) if isinstance(v, int | float) else float("-inf")

    return sorted(buckets, key=value, reverse=descending)
