"""OpenSearch aggregations on tantivy: native where tantivy has the aggregation, emulated otherwise.

Native (one `Searcher.aggregate` call per level): terms, histogram, fixed-size date_histogram,
range on @timestamp and the metrics. Emulated with extra queries: filter, filters, missing,
top_hits, range on other fields (see `_range`) and calendar month/quarter/year date_histogram (a
range aggregation over computed month bounds).
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
    HISTOGRAM_PARAMS,
    TERMS_PARAMS,
    VARIABLE_UNITS,
    calendar_unit,
    date_hist_checks,
    range_bound,
    supported,
    top_hits_params,
    top_hits_result,
)
from cm_mcp.dsl.aggspec import field_of as _field
from cm_mcp.dsl.aggspec import fixed_interval as _fixed_interval
from cm_mcp.dsl.aggspec import only as _only
from cm_mcp.dsl.aggspec import range_key_number as _num_str
from cm_mcp.dsl.aggspec import split as _split
from cm_mcp.dsl.datemath import add_unit, floor_unit, from_ms, iso_ms, parse_date, to_ms
from cm_mcp.dsl.errors import DSLError
from cm_mcp.dsl.query import (
    QueryCompiler,
    _range_syntax,
    and_all,
    count_matches,
    not_,
    term_candidates,
    ts_range,
)

Json = dict[str, Any]
TopHits = Callable[[tantivy.Query, int, Literal["asc", "desc"]], tuple[int, list[Json]]]
# A converter turns tantivy's result for one aggregation into OpenSearch's, given the context query.
Converter = Callable[[Json, tantivy.Query], Json]
# A bucket aggregation's tantivy spec; the query selecting one output bucket's documents; and the
# conversion of tantivy's result into OpenSearch's fields other than `buckets`, plus (output bucket,
# tantivy bucket) pairs in order (the converter then fills in each output bucket's sub-aggregations).
BucketPairs = list[tuple[Json, Json]]
BucketAgg = tuple[Json, Callable[[Json], tantivy.Query], Callable[[Json], tuple[Json, BucketPairs]]]

_METRICS = METRIC_AGGREGATIONS
_NATIVE_BUCKETS = ("terms", "histogram", "date_histogram", "range")
# Collect every term per segment so sum_other_doc_count is exact (tantivy cuts per segment otherwise).
_SEGMENT_SIZE = 1_000_000


class AggRunner:
    def __init__(self, *, searcher: tantivy.Searcher, compiler: QueryCompiler, top_hits: TopHits) -> None:
        self.searcher = searcher
        self.compiler = compiler
        self.schema = compiler.schema
        self.top_hits = top_hits

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
            raw = self.searcher.aggregate(q, {n: spec for n, (spec, _) in native.items()})
            for n, (_, conv) in native.items():
                out[n] = conv(raw.get(n) or {}, q)
        return {n: out[n] for n in aggs}

    @staticmethod
    def _is_native(kind: str, params: Mapping[str, Any]) -> bool:
        if kind == "date_histogram":
            return calendar_unit(params) not in VARIABLE_UNITS
        if kind == "range":
            return isinstance(params, Mapping) and sc.is_timestamp(str(params.get("field", "")))
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
        spec, bucket_of, post = getattr(self, f"_b_{kind}")(params, p)
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

    def _b_terms(self, params: Mapping[str, Any], p: str) -> BucketAgg:
        _only(params, TERMS_PARAMS, p)
        field = _field(params, p)
        spec: Json = {
            "field": sc.kw_path(field),
            "size": int(params.get("size", 10)),
            "segment_size": _SEGMENT_SIZE,
        }
        for k in ("min_doc_count", "order", "missing"):
            if k in params:
                spec[k] = params[k]
        missing = params.get("missing")
        special = sc.special_field(field)

        def bucket_of(b: Json) -> tantivy.Query:
            key = (
                b.get("key_as_string")
                if isinstance(b.get("key_as_string"), str) and b["key_as_string"] in ("true", "false")
                else b["key"]
            )
            if special == sc.TS:
                q = ts_range(int(b["key"]), int(b["key"]), self.schema)
            elif special is not None:
                q = tantivy.Query.term_query(self.schema, special, str(key))
            else:
                vals = (
                    [key == "true"]
                    if key in ("true", "false") and "key_as_string" in b
                    else term_candidates(key)[:1]
                )
                q = tantivy.Query.term_set_query(self.schema, sc.kw_path(field), vals)
            if missing is not None and b["key"] == missing:
                exists = tantivy.Query.exists_query(sc.kw_path(field), json_subpaths=True)
                return tantivy.Query.boolean_query(
                    [(tantivy.Occur.Should, q), (tantivy.Occur.Should, not_(exists))]
                )
            return q

        def post(raw: Json) -> tuple[Json, BucketPairs]:
            pairs = []
            for b in raw.get("buckets", []):
                ob: Json = {"key": b["key"], "doc_count": b["doc_count"]}
                if "key_as_string" in b:
                    ob["key_as_string"] = b["key_as_string"]
                pairs.append((ob, b))
            head = {
                "doc_count_error_upper_bound": raw.get("doc_count_error_upper_bound", 0),
                "sum_other_doc_count": raw.get("sum_other_doc_count", 0),
            }
            return head, pairs

        return spec, bucket_of, post

    def _b_histogram(self, params: Mapping[str, Any], p: str) -> BucketAgg:
        _only(params, HISTOGRAM_PARAMS, p)
        field = _field(params, p)
        if "interval" not in params:
            raise DSLError(p, "histogram needs an interval")
        interval = float(params["interval"])
        spec: Json = {"field": sc.kw_path(field), "interval": interval}
        for k in ("offset", "min_doc_count", "extended_bounds", "hard_bounds"):
            if k in params:
                spec[k] = params[k]

        def bucket_of(b: Json) -> tantivy.Query:
            lo = float(b["key"])
            if sc.is_timestamp(field):
                return ts_range(int(lo), int(lo + interval) - 1, self.schema)
            return self.compiler.index.parse_query(
                f"{sc.kw_path(field)}:{_range_syntax((lo, True), (lo + interval, False))}"
            )

        def post(raw: Json) -> tuple[Json, BucketPairs]:
            return {}, [
                ({"key": float(b["key"]), "doc_count": b["doc_count"]}, b) for b in raw.get("buckets", [])
            ]

        return spec, bucket_of, post

    def _b_date_histogram(self, params: Mapping[str, Any], p: str) -> BucketAgg:
        date_hist_checks(params, p)
        interval, offset = _fixed_interval(params, p)
        spec: Json = {
            "field": sc.TS,
            "interval": interval,
            "min_doc_count": int(params.get("min_doc_count", 0)),
        }
        if offset:
            spec["offset"] = offset
        if "extended_bounds" in params:
            eb = params["extended_bounds"]
            spec["extended_bounds"] = {
                k: parse_date(eb[k], now=self.compiler.now, round_up=False, path=f"{p}.extended_bounds.{k}")
                for k in ("min", "max")
                if k in eb
            }
            if len(spec["extended_bounds"]) != 2:
                raise DSLError(f"{p}.extended_bounds", "needs both min and max")
        # Documents without @timestamp carry a sentinel; keep them out of the buckets.
        spec["hard_bounds"] = {"min": sc.MISSING_TS + 1, "max": 2**62}

        def bucket_of(b: Json) -> tantivy.Query:
            return ts_range(int(b["key"]), int(b["key"]) + interval - 1, self.schema)

        def post(raw: Json) -> tuple[Json, BucketPairs]:
            pairs = []
            for b in raw.get("buckets", []):
                key = int(b["key"])
                pairs.append(({"key_as_string": iso_ms(key), "key": key, "doc_count": b["doc_count"]}, b))
            return {}, pairs

        return spec, bucket_of, post

    def _range_buckets(self, params: Any, p: str) -> tuple[str, bool, list[Json]]:
        """The field, whether it is the timestamp, and the output buckets (key, from, to) asked for."""
        _only(params, {"field", "ranges", "keyed", "format"}, p)
        if params.get("keyed"):
            raise DSLError(f"{p}.keyed", "keyed ranges are not supported")
        field = _field(params, p)
        is_ts = sc.is_timestamp(field)
        ranges = params.get("ranges")
        if not isinstance(ranges, list) or not ranges:
            raise DSLError(f"{p}.ranges", "expected a non-empty list")
        buckets: list[Json] = []
        for i, r in enumerate(ranges):
            lo, hi = (
                range_bound(r.get(k), is_ts, self.compiler.now, f"{p}.ranges[{i}].{k}")
                for k in ("from", "to")
            )
            key = (
                r.get("key")
                or f"{'*' if lo is None else _num_str(lo, is_ts)}-{'*' if hi is None else _num_str(hi, is_ts)}"
            )
            ob: Json = {"key": key}
            if lo is not None:
                ob["from"] = lo
                if is_ts:
                    ob["from_as_string"] = iso_ms(int(lo))
            if hi is not None:
                ob["to"] = hi
                if is_ts:
                    ob["to_as_string"] = iso_ms(int(hi))
            buckets.append(ob)
        return field, is_ts, buckets

    def _range_query(self, field: str, is_ts: bool, bucket: Json) -> tantivy.Query:
        lo, hi = bucket.get("from"), bucket.get("to")
        if is_ts:
            return ts_range(None if lo is None else int(lo), None if hi is None else int(hi) - 1, self.schema)
        if lo is None and hi is None:
            return tantivy.Query.exists_query(sc.kw_path(field), json_subpaths=False)
        rng = _range_syntax(None if lo is None else (lo, True), None if hi is None else (hi, False))
        return self.compiler.index.parse_query(f"{sc.kw_path(field)}:{rng}")

    def _b_range(self, params: Mapping[str, Any], p: str) -> BucketAgg:
        """Native on the timestamp only: a date column has one type in every segment."""
        field, is_ts, wanted = self._range_buckets(params, p)
        spec_ranges = [{k: b[k] for k in ("key", "from", "to") if k in b} for b in wanted]
        spec: Json = {"field": sc.kw_path(field), "ranges": spec_ranges}

        def post(raw: Json) -> tuple[Json, BucketPairs]:
            by_key = {b.get("key"): b for b in raw.get("buckets", [])}
            pairs = []
            for ob in wanted:
                b = by_key.get(ob["key"], {"doc_count": 0})
                pairs.append(({**ob, "doc_count": b["doc_count"]}, b))
            return {}, pairs

        return spec, lambda b: self._range_query(field, is_ts, b), post

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
        if not isinstance(params, Mapping) or "filters" not in params:
            raise DSLError(f"{p}.filters", "expected {filters: {name: filter}} or {filters: [filter, ...]}")
        raw = params["filters"]
        named = isinstance(raw, Mapping)
        items = list(raw.items()) if isinstance(raw, Mapping) else list(enumerate(raw))
        conds = [(str(k), self.compiler.one(f, f"{p}.filters.filters.{k}")) for k, f in items]
        if params.get("other_bucket") or "other_bucket_key" in params:
            any_q = (
                tantivy.Query.boolean_query([(tantivy.Occur.Should, c) for _, c in conds])
                if conds
                else tantivy.Query.empty_query()
            )
            conds.append((str(params.get("other_bucket_key", "_other_")), not_(any_q)))
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
        """A range on a field of the documents, one query per bucket. tantivy's native range
        aggregation converts the bounds to each segment's column type and keys buckets by the
        converted bounds, so integers next to decimals (or a segment without the field) split and
        miscount a bucket; its range *query* compares every numeric type exactly."""
        field, is_ts, buckets = self._range_buckets(params, p)
        for ob in buckets:
            bq = and_all([q, self._range_query(field, is_ts, ob)])
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
