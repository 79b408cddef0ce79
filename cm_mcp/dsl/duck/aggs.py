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
from typing import Any, Literal

import duckdb

from cm_mcp.api.querydsl import METRIC_AGGREGATIONS
from cm_mcp.dsl import aggspec
from cm_mcp.dsl.duck import grouping, metrics
from cm_mcp.dsl.duck.filters import FilterCompiler, all_of, any_of, not_
from cm_mcp.dsl.duck.grouping import ByGroup, Json, Membership
from cm_mcp.dsl.duck.structure import quote
from cm_mcp.dsl.duck.values import Ctx, child_context, field_values, top_context
from cm_mcp.dsl.errors import DSLError
from cm_mcp.dsl.spec import MISSING_TS, is_timestamp, strip_keyword

TopHits = Callable[[Ctx, int, Literal["asc", "desc"]], dict[int, tuple[int, list[Json]]]]


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
    def rows(self, sql: str) -> list[tuple[Any, ...]]:
        return self.cur.execute(sql).fetchall()

    def table(self, sql: str) -> str:
        name = f"_agg{next(self._tables)}"
        self.cur.execute(f"CREATE TEMP TABLE {name} AS {sql}")
        return name

    def children(
        self,
        ctx: Ctx,
        membership: Membership,
        chosen: list[tuple[int, Any, int]],
        subs: Mapping[str, Any],
        p: str,
    ) -> dict[str, ByGroup]:
        """Sub-aggregations of the chosen buckets, given as (parent g, bucket key k, child id)."""
        if not subs:
            return {}
        groups = tuple(child for _, _, child in chosen)
        if not chosen:  # still validated (and shaped) on no documents
            return self.level(Ctx(ctx.source, ctx.g, "false", ()), subs, f"{p}.aggs")
        keys = ", ".join(f"({g}, {_key_literal(k)}, {child})" for g, k, child in chosen)
        if membership.key is not None:
            # one bucket per document: the level below joins the chosen buckets' keys, no table
            alias = f"_b{next(self._tables)}"
            source = (
                f"{ctx.source} JOIN (VALUES {keys}) {alias}(pg, k, child) "
                f"ON {alias}.pg = {ctx.g} AND {alias}.k = {membership.key}"
            )
            child_ctx = Ctx(source, f"{alias}.child", all_of([ctx.where, membership.where]), groups)
        else:
            table = self.table(
                f"SELECT m.did, s.child AS g FROM ({membership.rows}) m "
                f"JOIN (VALUES {keys}) s(g, k, child) ON s.g = m.g AND s.k = m.k"
            )
            child_ctx = child_context(table, groups)
        return self.level(child_ctx, subs, f"{p}.aggs")

    @staticmethod
    def attach(bucket: Json, child: int, subs: Mapping[str, Any], results: dict[str, ByGroup]) -> Json:
        for name in subs:
            bucket[name] = results[name][child]
        return bucket

    def _single(self, ctx: Ctx, condition: str, subs: Mapping[str, Any], p: str) -> ByGroup:
        """One bucket per parent (filter, missing): its doc_count and sub-aggregations."""
        membership = Membership(key="0", where=condition)
        counts = {g: int(n) for g, _, n in self.rows(membership.counts(ctx))}
        chosen = [(g, 0, i) for i, g in enumerate(ctx.groups)]
        results = self.children(ctx, membership, chosen, subs, p)
        return {
            g: self.attach({"doc_count": counts.get(g, 0)}, child, subs, results) for g, _, child in chosen
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
        named, items, other = aggspec.filters_buckets(params, p)
        conds = [(key, self.compiler.one(item, f"{p}.filters.filters.{key}")) for key, item in items]
        if other is not None:
            conds.append((other, not_(any_of([c for _, c in conds]))))
        membership = (
            " UNION ALL ".join(
                f"SELECT d.g, d.did, {j} AS k FROM {ctx.rows(cond)}" for j, (_, cond) in enumerate(conds)
            )
            or "SELECT 0 AS g, NULL::BIGINT AS did, 0 AS k WHERE false"
        )
        counts = {
            (g, k): int(n) for g, k, n in self.rows(f"SELECT g, k, count(*) FROM ({membership}) GROUP BY ALL")
        }
        chosen = [(g, j, i) for i, (g, j) in enumerate(itertools.product(ctx.groups, range(len(conds))))]
        results = self.children(ctx, Membership(rows=membership), chosen, subs, p)
        out: ByGroup = {g: {"buckets": {} if named else []} for g in ctx.groups}
        for g, j, child in chosen:
            bucket = self.attach({"doc_count": counts.get((g, j), 0)}, child, subs, results)
            listed = out[g]["buckets"]
            if named:
                listed[conds[j][0]] = bucket
            else:
                listed.append(bucket)
        return out

    def _terms(self, ctx: Ctx, params: Any, subs: Mapping[str, Any], p: str) -> ByGroup:
        return grouping.terms(self, ctx, params, subs, p)

    def _histogram(self, ctx: Ctx, params: Any, subs: Mapping[str, Any], p: str) -> ByGroup:
        return grouping.histogram(self, ctx, params, subs, p)

    def _date_histogram(self, ctx: Ctx, params: Any, subs: Mapping[str, Any], p: str) -> ByGroup:
        return grouping.date_histogram(self, ctx, params, subs, p)

    def _range(self, ctx: Ctx, params: Any, subs: Mapping[str, Any], p: str) -> ByGroup:
        field, _, wanted = aggspec.range_buckets(params, self.compiler.now, p)
        table = ", ".join(
            f"({j}, {'NULL' if lo is None else repr(lo)}::DOUBLE, {'NULL' if hi is None else repr(hi)}::DOUBLE)"
            for j, (lo, hi) in enumerate((b.get("from"), b.get("to")) for b in wanted)
        )
        values = field_values(self.compiler, ctx, field)
        membership = (
            f"SELECT DISTINCT v.g, v.did, r.j AS k FROM ({values.sql}) v JOIN (VALUES {table}) r(j, lo, hi) "
            "ON (r.lo IS NULL OR v.n >= r.lo) AND (r.hi IS NULL OR v.n < r.hi) WHERE v.n IS NOT NULL"
        )
        if subs:
            membership = f"SELECT * FROM {self.table(membership)}"
        counts = {
            (g, k): int(n) for g, k, n in self.rows(f"SELECT g, k, count(*) FROM ({membership}) GROUP BY ALL")
        }
        chosen = [(g, j, i) for i, (g, j) in enumerate(itertools.product(ctx.groups, range(len(wanted))))]
        results = self.children(ctx, Membership(rows=membership), chosen, subs, p)
        out: ByGroup = {g: {"buckets": []} for g in ctx.groups}
        for g, j, child in chosen:
            bucket: Json = dict(wanted[j])
            bucket["doc_count"] = counts.get((g, j), 0)
            out[g]["buckets"].append(self.attach(bucket, child, subs, results))
        return out

    # -- top_hits -------------------------------------------------------------------------------------
    def _top_hits(self, ctx: Ctx, params: Any, p: str) -> ByGroup:
        size, order = aggspec.top_hits_params(params, p)
        found = self.top_hits(ctx, size, order)
        out: ByGroup = {}
        for g in ctx.groups:
            total, hits = found.get(g, (0, []))
            out[g] = aggspec.top_hits_result(params, total, hits)
        return out


def _key_literal(k: Any) -> str:
    if isinstance(k, str):
        return quote(k)
    if isinstance(k, bool):
        return "true" if k else "false"
    if isinstance(k, float):
        return f"'{k!r}'::DOUBLE"
    return str(int(k))
