"""Bucketing documents: terms, histogram and date_histogram buckets of a context, counted in one
statement for all parent buckets.

Where each document has at most one value of the field (one scalar column: the usual case) a bucket
key is an expression over the document (`Membership.key`) and the level below joins a small table of
the returned buckets' keys: no table of (document, bucket) rows is ever written. A field with several
values per document (arrays, several physical places, JSON subtrees) goes through such a table
(`Membership.rows`), each document once per bucket.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final

from cm_mcp.dsl import aggspec
from cm_mcp.dsl.datemath import add_unit, floor_unit, from_ms, iso_ms, parse_date, to_ms
from cm_mcp.dsl.duck.filters import all_of, lit, not_
from cm_mcp.dsl.duck.values import (
    RANK,
    SORT_NUMBER,
    TAG,
    Ctx,
    decode_key,
    field_values,
    top_context,
    typed_literal,
)
from cm_mcp.dsl.errors import DSLError
from cm_mcp.dsl.spec import MISSING_TS, is_timestamp, strip_keyword

if TYPE_CHECKING:
    from cm_mcp.dsl.duck.aggs import AggRunner

Json = dict[str, Any]
ByGroup = dict[int, Json]

#: Most buckets one histogram may return (OpenSearch's default search.max_buckets).
MAX_BUCKETS: Final = 65_535
_UNITS: Final = {"M": "month", "q": "quarter", "y": "year"}
#: Timestamps a calendar bucket can be computed for (years 1..9999).
_CALENDAR_SPAN: Final = (-62_135_596_800_000, 253_402_300_799_999)
_I64_MAX: Final = 2**63 - 1


@dataclass(frozen=True)
class Membership:
    """Which documents of a context are in which bucket: `key`, an SQL expression over a document
    row `d` (one bucket each; rows where `where` fails have none), or `rows`, a relation (g, did, k)."""

    key: str | None = None
    where: str = "true"
    rows: str | None = None

    def counts(self, ctx: Ctx) -> str:
        """(g, k, n) of every non-empty bucket."""
        if self.key is not None:
            return (
                f"SELECT {ctx.g} AS g, {self.key} AS k, count(*) AS n FROM {ctx.source} "
                f"WHERE {all_of([ctx.where, self.where])} GROUP BY ALL"
            )
        return f"SELECT g, k, count(*) AS n FROM ({self.rows}) GROUP BY ALL"


def scalar_column(runner: AggRunner, field: str) -> tuple[str, str] | None:
    """(SQL expression over `d`, type) when `field` has at most one value per document, else None."""
    name = strip_keyword(field)
    if is_timestamp(name):
        return "d.ts", "BIGINT"
    if name in ("_id", "_index"):
        return ("d.id" if name == "_id" else "d.ix"), "VARCHAR"
    resolved = runner.compiler.field(name)
    if resolved.loose or len(resolved.columns) != 1 or resolved.columns[0].many:
        return None
    return resolved.columns[0].expr, resolved.columns[0].type


# -- terms ----------------------------------------------------------------------------------------------
def terms(runner: AggRunner, ctx: Ctx, params: Any, subs: Mapping[str, Any], p: str) -> ByGroup:
    aggspec.only(params, aggspec.TERMS_PARAMS, p)
    field = aggspec.field_of(params, p)
    size = int(params.get("size", 10))
    min_count = int(params.get("min_doc_count", 1))
    order, by_sub = _terms_order(params.get("order"), subs, p)
    missing = params.get("missing")
    column = scalar_column(runner, field)
    if column is not None and (missing is None or _same_kind(missing, column[1])):
        expr, kind = column
        if is_timestamp(strip_keyword(field)):
            expr = f"CASE WHEN d.ts > {MISSING_TS} THEN d.ts END"
        key = expr if missing is None else f"coalesce({expr}, {lit(missing)})"
        membership = Membership(key=key, where=f"{key} IS NOT NULL")
        rank = _direct_rank(kind)
        counts = f"SELECT g, k, n, {rank} AS r, k AS ks, k AS kn FROM ({membership.counts(ctx)})"
        every = (
            f"SELECT DISTINCT {key} AS k, {rank} AS r, k AS ks, k AS kn FROM docs d WHERE {key} IS NOT NULL"
        )
    else:
        membership = _tagged(runner, ctx, field, missing, subs)
        counts = (
            "SELECT g, k, count(*) AS n, any_value(r) AS r, any_value(ks) AS ks, any_value(kn) AS kn "
            f"FROM ({membership.rows}) GROUP BY g, k"
        )
        values = field_values(runner.compiler, top_context("true"), field)
        every = f"SELECT DISTINCT {TAG} AS k, {RANK} AS r, s AS ks, {SORT_NUMBER} AS kn FROM ({values.sql})"
    if min_count <= 0:  # every key of the whole index, with 0 where a parent has none
        groups = ", ".join(map(str, ctx.groups))
        counts = (
            "SELECT g, k, sum(n) AS n, any_value(r) AS r, any_value(ks) AS ks, any_value(kn) AS kn FROM ("
            f"{counts} UNION ALL SELECT gg.g, k, 0, r, ks, kn FROM ({every}) "
            f"CROSS JOIN (SELECT unnest([{groups}]) AS g) gg) GROUP BY g, k"
        )
    limit = "" if by_sub else f"WHERE pos <= {max(size, 0)} OR pos = 1"
    rows = runner.rows(
        f"SELECT g, k, n, total, pos FROM (SELECT *, sum(n) OVER (PARTITION BY g) AS total, "
        f"row_number() OVER (PARTITION BY g ORDER BY {order}) AS pos FROM ({counts}) "
        f"WHERE n >= {min_count}) {limit} ORDER BY g, pos"
    )
    candidates = [(g, k, int(n)) for g, k, n, _, pos in rows if by_sub or pos <= size]
    totals = {g: int(total) for g, _, _, total, _ in rows}
    chosen = [(g, k, i) for i, (g, k, _) in enumerate(candidates)]
    results = runner.children(ctx, membership, chosen, subs, p)
    buckets: dict[int, list[Json]] = {g: [] for g in ctx.groups}
    for (g, k, n), (_, _, child) in zip(candidates, chosen, strict=True):
        key, as_string = decode_key(k) if membership.key is None else _direct_key(k)
        bucket: Json = {"key": key, "doc_count": n}
        if as_string is not None:
            bucket["key_as_string"] = as_string
        buckets[g].append(runner.attach(bucket, child, subs, results))
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


def _tagged(runner: AggRunner, ctx: Ctx, field: str, missing: object, subs: Mapping[str, Any]) -> Membership:
    """(g, did, k tag, r, ks, kn) rows of a field with any number of values of any type."""
    values = field_values(runner.compiler, ctx, field)
    parts = [f"SELECT g, did, {TAG} AS k, {RANK} AS r, s AS ks, {SORT_NUMBER} AS kn FROM ({values.sql})"]
    if missing is not None:
        # documents without a value at the field itself (an object there has none) get the key
        absent = ctx.rows(not_(runner.compiler.exists(field, below=False)))
        parts.append(
            f"SELECT g, did, {TAG} AS k, {RANK} AS r, s AS ks, {SORT_NUMBER} AS kn "
            f"FROM (SELECT d.g, d.did, {typed_literal(missing)} FROM {absent})"
        )
    distinct = "DISTINCT " if values.multi else ""
    rows = f"SELECT {distinct}* FROM ({' UNION ALL '.join(parts)})"
    if subs:
        rows = f"SELECT * FROM {runner.table(rows)}"
    return Membership(rows=rows)


def _same_kind(value: object, column_type: str) -> bool:
    if column_type == "VARCHAR":
        return isinstance(value, str)
    if column_type == "BOOLEAN":
        return isinstance(value, bool)
    return isinstance(value, int | float) and not isinstance(value, bool)


def _direct_rank(kind: str) -> str:
    """The key's place among key types (see values.RANK) for a column of one type: a double column
    holds integral values (i64 keys) and fractional ones, an unsigned one may exceed i64."""
    if kind == "DOUBLE":
        return "CASE WHEN isfinite(k) AND k = trunc(k) AND abs(k) < 9.2e18 THEN 1 ELSE 4 END"
    if kind == "UBIGINT":
        return f"CASE WHEN k > {_I64_MAX} THEN 3 ELSE 1 END"
    return "0"


def _direct_key(value: Any) -> tuple[Any, str | None]:
    if isinstance(value, bool):
        return (1 if value else 0), ("true" if value else "false")
    if isinstance(value, float) and math.isfinite(value) and value.is_integer() and abs(value) < 9.2e18:
        return int(value), None
    return value, None


def _terms_order(order: Any, subs: Mapping[str, Any], p: str) -> tuple[str, tuple[str, str, bool] | None]:
    """SQL ORDER BY of the counted buckets (equal counts in key order: type rank r, then the value),
    or (sub-aggregation, its value key, descending) when buckets sort by a sub-aggregation (then done
    in Python once those are computed)."""
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
        return ties if direction == "asc" else "r DESC, ks DESC, kn DESC", None
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


# -- histograms -----------------------------------------------------------------------------------------
def histogram(runner: AggRunner, ctx: Ctx, params: Any, subs: Mapping[str, Any], p: str) -> ByGroup:
    aggspec.only(params, aggspec.HISTOGRAM_PARAMS, p)
    field = aggspec.field_of(params, p)
    if "interval" not in params:
        raise DSLError(p, "histogram needs an interval")
    interval = float(params["interval"])
    offset = float(params.get("offset", 0))
    hard = params.get("hard_bounds") if isinstance(params.get("hard_bounds"), Mapping) else {}

    def bucket_of(x: str) -> tuple[str, str]:
        where = [f"{x} IS NOT NULL"]
        if hard.get("min") is not None:
            where.append(f"{x} >= {float(hard['min'])!r}")
        if hard.get("max") is not None:
            where.append(f"{x} <= {float(hard['max'])!r}")
        return f"CAST(floor(({x} - {offset!r}) / {interval!r}) AS BIGINT)", " AND ".join(where)

    column = scalar_column(runner, field)
    if column is not None and column[1] in ("BIGINT", "UBIGINT", "DOUBLE"):
        key, where = bucket_of(f"CAST({column[0]} AS DOUBLE)")
        membership = Membership(key=key, where=where)
    else:
        values = field_values(runner.compiler, ctx, field)
        key, where = bucket_of("n")
        distinct = "DISTINCT " if values.multi else ""
        rows = f"SELECT {distinct}g, did, {key} AS k FROM ({values.sql}) WHERE {where}"
        membership = Membership(rows=f"SELECT * FROM {runner.table(rows)}" if subs else rows)
    extended = params.get("extended_bounds") or {}
    bounds = [
        int((float(extended[b]) - offset) // interval) for b in ("min", "max") if extended.get(b) is not None
    ]
    return _series(
        runner, ctx, membership, subs, p, int(params.get("min_doc_count", 0)), bounds,
        lambda k: {"key": k * interval + offset},
    )  # fmt: skip


def date_histogram(runner: AggRunner, ctx: Ctx, params: Any, subs: Mapping[str, Any], p: str) -> ByGroup:
    aggspec.date_hist_checks(params, p)
    min_count = int(params.get("min_doc_count", 0))
    extended = params.get("extended_bounds")
    eb: list[int] = []
    if extended:
        eb = [
            parse_date(extended[k], now=runner.compiler.now, round_up=False, path=f"{p}.extended_bounds.{k}")
            for k in ("min", "max")
            if k in extended
        ]
    unit = aggspec.calendar_unit(params)
    if unit in aggspec.VARIABLE_UNITS:
        return _calendar(runner, ctx, unit, eb, min_count, subs, p)
    interval, offset = aggspec.fixed_interval(params, p)
    if extended and len(eb) != 2:
        raise DSLError(f"{p}.extended_bounds", "needs both min and max")
    membership = Membership(
        key=f"CAST(floor((d.ts - {offset}) / {interval}) AS BIGINT)", where=f"d.ts > {MISSING_TS}"
    )
    bounds = [(b - offset) // interval for b in eb]
    return _series(
        runner, ctx, membership, subs, p, min_count, bounds,
        lambda k: {"key_as_string": iso_ms(k * interval + offset), "key": k * interval + offset},
    )  # fmt: skip


def _series(
    runner: AggRunner,
    ctx: Ctx,
    membership: Membership,
    subs: Mapping[str, Any],
    p: str,
    min_count: int,
    bounds: list[int],
    label: Callable[[int], Json],
) -> ByGroup:
    """Buckets at consecutive integer positions k, gaps filled from the first to the last (and out
    to `bounds`), per parent."""
    counts: dict[int, dict[int, int]] = {g: {} for g in ctx.groups}
    for g, k, n in runner.rows(membership.counts(ctx)):
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
    results = runner.children(ctx, membership, chosen, subs, p)
    out: ByGroup = {g: {"buckets": []} for g in ctx.groups}
    for g, k, child in chosen:
        bucket = {**label(k), "doc_count": counts[g].get(k, 0)}
        out[g]["buckets"].append(runner.attach(bucket, child, subs, results))
    return out


def _calendar(
    runner: AggRunner, ctx: Ctx, unit: str, bounds: list[int], min_count: int, subs: Mapping[str, Any], p: str
) -> ByGroup:
    """Months, quarters and years: bucket starts by calendar arithmetic, gaps filled the same way."""
    lo, hi = _CALENDAR_SPAN
    membership = Membership(
        key=f"epoch_ms(date_trunc('{_UNITS[unit]}', make_timestamp(d.ts * 1000)))",
        where=f"d.ts BETWEEN {lo} AND {hi}",
    )
    counts: dict[int, dict[int, int]] = {g: {} for g in ctx.groups}
    for g, k, n in runner.rows(membership.counts(ctx)):
        counts[g][int(k)] = int(n)
    step_unit, step = ("M", 3) if unit == "q" else (unit, 1)
    picked: list[tuple[int, int]] = []
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
        picked.extend((g, to_ms(k)) for k in keys if counts[g].get(to_ms(k), 0) >= min_count)
    chosen: list[tuple[int, Any, int]] = [(g, k, i) for i, (g, k) in enumerate(picked)]
    results = runner.children(ctx, membership, chosen, subs, p)
    out: ByGroup = {g: {"buckets": []} for g in ctx.groups}
    for g, k, child in chosen:
        bucket = {"key_as_string": iso_ms(k), "key": k, "doc_count": counts[g].get(k, 0)}
        out[g]["buckets"].append(runner.attach(bucket, child, subs, results))
    return out
