"""OpenSearch aggregations on tantivy: native where tantivy has the aggregation, emulated otherwise.

Native (one `Searcher.aggregate` call per level): terms, histogram, fixed-size date_histogram and
the metrics. Emulated with extra queries: filter, filters, missing, top_hits, range (see `_range`)
and calendar month/quarter/year date_histogram (a range aggregation over computed month bounds).
An emulated aggregation nested under a native bucket aggregation runs once per bucket, with the
bucket turned back into a query (term / range), so results stay exact.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any, Literal

import tantivy

from cm_mcp.api.fields import TIMESTAMP_FIELD
from cm_mcp.api.querydsl import METRIC_AGGREGATIONS
from cm_mcp.dsl import schema as sc
from cm_mcp.dsl.aggspec import (
    VARIABLE_UNITS,
    calendar_unit,
    date_hist_checks,
    filters_buckets,
    range_buckets,
    supported,
    top_hits_params,
    top_hits_result,
)
from cm_mcp.dsl.aggspec import field_of as _field
from cm_mcp.dsl.aggspec import split as _split
from cm_mcp.dsl.buckets import Json, NativeBuckets
from cm_mcp.dsl.datemath import add_unit, floor_unit, from_ms, iso_ms, parse_date, to_ms
from cm_mcp.dsl.errors import DSLError
from cm_mcp.dsl.query import (
    QueryCompiler,
    and_all,
    count_matches,
    not_,
    ts_range,
)

TopHits = Callable[[tantivy.Query, int, Literal["asc", "desc"]], tuple[int, list[Json]]]
# A converter turns tantivy's result for one aggregation into OpenSearch's, given the context query.
Converter = Callable[[Json, tantivy.Query], Json]

_METRICS = METRIC_AGGREGATIONS
_NATIVE_BUCKETS = NativeBuckets.KINDS


class AggRunner:
    def __init__(self, *, searcher: tantivy.Searcher, compiler: QueryCompiler, top_hits: TopHits) -> None:
        self.searcher = searcher
        self.compiler = compiler
        self.schema = compiler.schema
        self.top_hits = top_hits
        self.buckets = NativeBuckets(compiler)

    # -- driver ---------------------------------------------------------------------------------------
    def run(self, q: tantivy.Query, aggs: Mapping[str, Any], path: str) -> Json:
        if not isinstance(aggs, Mapping):
            raise DSLError(path, "expected an object of named aggregations")
        out: Json = {}
        native: dict[str, tuple[Json, Converter]] = {}
        for name, body in aggs.items():
            p = f"{path}.{name}"
            kind, params, subs = _split(body, p)
            if self._is_native(kind, params):
                native[name] = self._native(kind, params, subs, p)
            else:
                out[name] = self._emulate(kind, params, subs, p, q)
        if native:
            try:
                raw = self.searcher.aggregate(q, {n: spec for n, (spec, _) in native.items()})
            except ValueError as exc:  # tantivy's refusal: a domain error naming where, not a crash
                raise DSLError(path, f"the tantivy engine cannot run this aggregation: {exc}") from None
            for n, (_, conv) in native.items():
                out[n] = conv(raw.get(n) or {}, q)
        return {n: out[n] for n in aggs}

    @staticmethod
    def _is_native(kind: str, params: Mapping[str, Any]) -> bool:
        if kind == "date_histogram":
            return calendar_unit(params) not in VARIABLE_UNITS
        return kind in _METRICS or kind in _NATIVE_BUCKETS

    # -- native ---------------------------------------------------------------------------------------
    def _native(
        self, kind: str, params: Mapping[str, Any], subs: Mapping[str, Any], p: str
    ) -> tuple[Json, Converter]:
        if kind in _METRICS:
            if subs:
                raise DSLError(p, f"{kind} takes no sub-aggregations")
            return self._metric(kind, params, p)
        sub_native: dict[str, tuple[Json, Converter]] = {}
        deferred: dict[str, Any] = {}
        for name, body in subs.items():
            sp = f"{p}.aggs.{name}"
            skind, sparams, ssubs = _split(body, sp)
            if self._is_native(skind, sparams):
                sub_native[name] = self._native(skind, sparams, ssubs, sp)
            else:
                deferred[name] = body
        spec, bucket_of, post = self.buckets.of(kind, params, p)
        node: Json = {"histogram" if kind == "date_histogram" else kind: spec}
        if sub_native:
            # Sub-aggregations sit next to the type key; tantivy silently ignores them inside it.
            node["aggs"] = {n: s for n, (s, _) in sub_native.items()}
        order = list(subs)

        def convert(raw: Json, q: tantivy.Query) -> Json:
            head, pairs = post(raw)
            for b_out, b_raw in pairs:
                bq: tantivy.Query | None = None
                for n, (_, conv) in sub_native.items():
                    bq = bq or and_all([q, bucket_of(b_out)])
                    b_out[n] = conv(b_raw.get(n) or {}, bq)
                if deferred:
                    bq = bq or and_all([q, bucket_of(b_out)])
                    b_out.update(self.run(bq, deferred, f"{p}.aggs"))
                extra = {n: b_out.pop(n) for n in order if n in b_out}
                b_out.update(extra)
            return {**head, "buckets": [ob for ob, _ in pairs]}

        return node, convert

    def _metric(self, kind: str, params: Mapping[str, Any], p: str) -> tuple[Json, Converter]:
        field = _field(params, p)
        spec: Json = {"field": sc.kw_path(field)}
        if kind == "percentiles":
            if "percents" in params:
                spec["percents"] = list(params["percents"])
            spec["keyed"] = bool(params.get("keyed", True))
        elif kind == "extended_stats" and "sigma" in params:
            spec["sigma"] = params["sigma"]
        is_ts = sc.is_timestamp(field)

        def convert(raw: Json, q: tantivy.Query) -> Json:
            if kind in ("value_count", "cardinality"):
                return {"value": int(raw.get("value") or 0)}
            if kind == "sum":
                return {"value": raw.get("value") or 0.0}
            if kind in ("avg", "min", "max"):
                out: Json = {"value": raw.get("value")}
                if is_ts and out["value"] is not None:
                    out["value_as_string"] = iso_ms(int(out["value"]))
                return out
            if kind in ("stats", "extended_stats"):
                out = dict(raw)
                out["count"] = int(out.get("count") or 0)
                return out
            return dict(raw)

        return {kind: spec}, convert

    # -- emulated -------------------------------------------------------------------------------------
    def _emulate(self, kind: str, params: Any, subs: Mapping[str, Any], p: str, q: tantivy.Query) -> Json:
        if kind == "filter":
            fq = and_all([q, self.compiler.one(params, f"{p}.filter")])
            return {"doc_count": count_matches(self.searcher, fq), **self.run(fq, subs, f"{p}.aggs")}
        if kind == "missing":
            field = _field(params, p)
            if sc.special_field(field) == sc.TS:
                cond = not_(ts_range(None, None, self.schema))
            elif sc.special_field(field):
                cond = tantivy.Query.empty_query()
            else:
                cond = not_(tantivy.Query.exists_query(sc.kw_path(field), json_subpaths=True))
            mq = and_all([q, cond])
            return {"doc_count": count_matches(self.searcher, mq), **self.run(mq, subs, f"{p}.aggs")}
        if kind == "filters":
            return self._filters(params, subs, p, q)
        if kind == "top_hits":
            if subs:
                raise DSLError(p, "top_hits takes no sub-aggregations")
            return self._top_hits(params, p, q)
        if kind == "date_histogram":
            return self._calendar_histogram(params, subs, p, q)
        if kind == "range":
            return self._range(params, subs, p, q)
        raise DSLError(f"{p}.{kind}", f"unsupported aggregation type; supported: {supported()}")

    def _filters(self, params: Any, subs: Mapping[str, Any], p: str, q: tantivy.Query) -> Json:
        named, items, other = filters_buckets(params, p)
        conds = [(key, self.compiler.one(item, f"{p}.filters.filters.{key}")) for key, item in items]
        if other is not None:
            any_q = (
                tantivy.Query.boolean_query([(tantivy.Occur.Should, c) for _, c in conds])
                if conds
                else tantivy.Query.empty_query()
            )
            conds.append((other, not_(any_q)))
        buckets = []
        for key, cond in conds:
            bq = and_all([q, cond])
            buckets.append(
                (key, {"doc_count": count_matches(self.searcher, bq), **self.run(bq, subs, f"{p}.aggs")})
            )
        if named:
            return {"buckets": dict(buckets)}
        return {"buckets": [b for _, b in buckets]}

    def _range(self, params: Any, subs: Mapping[str, Any], p: str, q: tantivy.Query) -> Json:
        """A range aggregation, one query per bucket. tantivy's native one converts the bounds to each
        segment's column type and keys buckets by the converted bounds, so integers next to decimals
        (or a segment without the field) split and miscount a bucket, and it refuses overlapping
        ranges; its range *query* compares every numeric type exactly."""
        field, is_ts, buckets = range_buckets(params, self.compiler.now, p)
        for ob in buckets:
            bq = and_all([q, self.buckets.range_query(field, is_ts, ob)])
            ob["doc_count"] = count_matches(self.searcher, bq)
            ob.update(self.run(bq, subs, f"{p}.aggs"))
        return {"buckets": buckets}

    def _top_hits(self, params: Any, p: str, q: tantivy.Query) -> Json:
        size, order = top_hits_params(params, p)
        total, hits = self.top_hits(q, size, order)
        return top_hits_result(params, total, hits)

    def _calendar_histogram(self, params: Any, subs: Mapping[str, Any], p: str, q: tantivy.Query) -> Json:
        """Months, quarters and years have no fixed length: find the data's time span, then run a
        native range aggregation over the calendar bounds inside it."""
        date_hist_checks(params, p)
        unit = calendar_unit(params) or "M"
        step_unit, step = ("M", 3) if unit == "q" else (unit, 1)
        stats = self.searcher.aggregate(
            and_all([q, ts_range(None, None, self.schema)]), {"s": {"stats": {"field": sc.TS}}}
        )["s"]
        lo_ms: int | None = None if not stats.get("count") else int(stats["min"])
        hi_ms: int | None = None if not stats.get("count") else int(stats["max"])
        eb = params.get("extended_bounds") or {}
        if "min" in eb:
            v = parse_date(eb["min"], now=self.compiler.now, round_up=False, path=f"{p}.extended_bounds.min")
            lo_ms = v if lo_ms is None else min(lo_ms, v)
        if "max" in eb:
            v = parse_date(eb["max"], now=self.compiler.now, round_up=False, path=f"{p}.extended_bounds.max")
            hi_ms = v if hi_ms is None else max(hi_ms, v)
        if lo_ms is None or hi_ms is None:
            return {"buckets": []}
        start = floor_unit(from_ms(lo_ms), "M" if unit == "q" else unit)
        if unit == "q":
            start = start.replace(month=(start.month - 1) // 3 * 3 + 1)
        bounds: list[datetime] = [start]
        while to_ms(bounds[-1]) <= hi_ms:
            bounds.append(add_unit(bounds[-1], step, step_unit))
        ranges = [{"from": to_ms(a), "to": to_ms(b)} for a, b in itertools.pairwise(bounds)]
        inner = {
            "x": {
                "range": {"field": TIMESTAMP_FIELD, "ranges": ranges},
                **({"aggs": dict(subs)} if subs else {}),
            }
        }
        res = self.run(q, inner, p)["x"]
        min_count = int(params.get("min_doc_count", 0))
        buckets = []
        for b in res["buckets"]:
            if b["doc_count"] < min_count:
                continue
            key = int(b["from"])
            nb: Json = {"key_as_string": iso_ms(key), "key": key, "doc_count": b["doc_count"]}
            nb.update(
                {
                    k: v
                    for k, v in b.items()
                    if k not in ("key", "from", "to", "from_as_string", "to_as_string", "doc_count")
                }
            )
            buckets.append(nb)
        return {"buckets": buckets}
