"""Metric aggregations per parent bucket, in the tantivy engine's output shapes: numeric metrics over
the numeric values (every value of a multi-valued field counts), `value_count` over values of any
type, `cardinality` over distinct values (exact), `percentiles` interpolated (exact, DuckDB's
quantile_cont). On @timestamp the values are epoch ms, and avg/min/max add `value_as_string`."""

from __future__ import annotations

from typing import Any, Final

import duckdb

from cm_mcp.dsl import aggspec
from cm_mcp.dsl.datemath import iso_ms
from cm_mcp.dsl.duck.filters import FilterCompiler
from cm_mcp.dsl.duck.values import TAG, Ctx, field_values
from cm_mcp.dsl.spec import is_timestamp

Json = dict[str, Any]
DEFAULT_PERCENTS: Final = (1.0, 5.0, 25.0, 50.0, 75.0, 95.0, 99.0)
#: What each metric computes, as SQL over the values (`n`: numeric value, or NULL).
_SQL: Final = {
    "avg": "avg(n)",
    "min": "min(n)",
    "max": "max(n)",
    "sum": "fsum(n)",
    "value_count": "count(*)",
    "cardinality": f"count(DISTINCT {TAG})",
    "stats": "count(n), fsum(n), min(n), max(n), avg(n)",
    "extended_stats": (
        "count(n), fsum(n), min(n), max(n), avg(n), fsum(n * n), var_pop(n), var_samp(n), "
        "stddev_pop(n), stddev_samp(n)"
    ),
}


def metric(
    cur: duckdb.DuckDBPyConnection, compiler: FilterCompiler, ctx: Ctx, kind: str, params: Any, p: str
) -> dict[int, Json]:
    field = aggspec.field_of(params, p)
    values = field_values(compiler, ctx, field)
    if kind == "percentiles":
        percents = [float(x) for x in params.get("percents", DEFAULT_PERCENTS)]
        keyed = bool(params.get("keyed", True))
        select = (
            f"quantile_cont(n, [{', '.join(repr(x / 100) for x in percents)}]) FILTER (WHERE n IS NOT NULL)"
        )
    else:
        select = _SQL[kind]
    rows = cur.execute(f"SELECT g, {select} FROM ({values.sql}) GROUP BY g").fetchall()
    found = {row[0]: row[1:] for row in rows}
    is_ts = is_timestamp(field)
    out: dict[int, Json] = {}
    for g in ctx.groups:
        row = found.get(g)
        if kind == "percentiles":
            quantiles = list(row[0]) if row and row[0] is not None else [None] * len(percents)
            out[g] = _percentiles(percents, quantiles, keyed)
        elif kind == "extended_stats":
            out[g] = _extended(row, float(params.get("sigma", 2.0)))
        else:
            out[g] = _shape(kind, row, is_ts)
    return out


def _shape(kind: str, row: tuple[Any, ...] | None, is_ts: bool) -> Json:
    if kind in ("value_count", "cardinality"):
        return {"value": int(row[0]) if row else 0}
    if kind == "sum":
        return {"value": float(row[0]) if row and row[0] is not None else 0.0}
    if kind == "stats":
        count, total, low, high, mean = row if row else (0, None, None, None, None)
        return {
            "count": int(count),
            "sum": float(total) if total is not None else 0.0,
            "min": low,
            "max": high,
            "avg": mean,
        }
    value = row[0] if row else None
    out: Json = {"value": value}
    if is_ts and value is not None:
        out["value_as_string"] = iso_ms(int(value))
    return out


def _extended(row: tuple[Any, ...] | None, sigma: float) -> Json:
    count = int(row[0]) if row else 0
    spread = (
        "variance", "variance_population", "variance_sampling", "std_deviation", "std_deviation_population",
        "std_deviation_sampling", "std_deviation_bounds",
    )  # fmt: skip
    if not row or not count:
        empty: Json = {"count": 0, "sum": 0.0, "min": None, "max": None, "avg": None, "sum_of_squares": None}
        return {**empty, **dict.fromkeys(spread)}
    _, total, low, high, mean, squares, var_pop, var_samp, std_pop, std_samp = row
    if count < 2:  # no spread from one value (tantivy reports none either)
        one: Json = {"count": count, "sum": float(total), "min": low, "max": high, "avg": mean}
        return {**one, "sum_of_squares": float(squares), **dict.fromkeys(spread)}
    return {
        "count": count,
        "sum": float(total),
        "min": low,
        "max": high,
        "avg": mean,
        "sum_of_squares": float(squares),
        "variance": var_pop,
        "variance_population": var_pop,
        "variance_sampling": var_samp,
        "std_deviation": std_pop,
        "std_deviation_population": std_pop,
        "std_deviation_sampling": std_samp,
        "std_deviation_bounds": {
            "upper": mean + sigma * std_pop,
            "lower": mean - sigma * std_pop,
            "upper_sampling": mean + sigma * std_samp,
            "lower_sampling": mean - sigma * std_samp,
            "upper_population": mean + sigma * std_pop,
            "lower_population": mean - sigma * std_pop,
        },
    }


def _percentiles(percents: list[float], quantiles: list[Any], keyed: bool) -> Json:
    if keyed:
        return {"values": {str(p): q for p, q in zip(percents, quantiles, strict=True)}}
    return {"values": [{"key": p, "value": q} for p, q in zip(percents, quantiles, strict=True)]}
