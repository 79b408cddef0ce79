"""tantivy's native bucket aggregations (terms, histogram, fixed date_histogram) as OpenSearch's: each
gives its tantivy spec, the query selecting one output bucket's documents (for sub-aggregations
tantivy cannot nest) and the conversion of tantivy's answer. Also the query of a range
aggregation's bucket (answered by queries: see `aggs.AggRunner._range`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, Final

import tantivy

from cm_mcp.dsl import schema as sc
from cm_mcp.dsl.aggspec import (
    HISTOGRAM_PARAMS,
    TERMS_PARAMS,
    date_hist_checks,
)
from cm_mcp.dsl.aggspec import field_of as _field
from cm_mcp.dsl.aggspec import fixed_interval as _fixed_interval
from cm_mcp.dsl.aggspec import only as _only
from cm_mcp.dsl.datemath import iso_ms, parse_date
from cm_mcp.dsl.errors import DSLError
from cm_mcp.dsl.query import QueryCompiler, _range_syntax, not_, term_candidates, ts_range

Json = dict[str, Any]
# A bucket aggregation's tantivy spec; the query selecting one output bucket's documents; and the
# conversion of tantivy's result into OpenSearch's fields other than `buckets`, plus (output bucket,
# tantivy bucket) pairs in order (the converter then fills in each output bucket's sub-aggregations).
BucketPairs = list[tuple[Json, Json]]
BucketAgg = tuple[Json, Callable[[Json], tantivy.Query], Callable[[Json], tuple[Json, BucketPairs]]]

# Collect every term per segment so sum_other_doc_count is exact (tantivy cuts per segment otherwise).
_SEGMENT_SIZE = 1_000_000


class NativeBuckets:
    KINDS: Final = ("terms", "histogram", "date_histogram")

    def __init__(self, compiler: QueryCompiler) -> None:
        self.compiler = compiler
        self.schema = compiler.schema

    def of(self, kind: str, params: Mapping[str, Any], p: str) -> BucketAgg:
        if kind not in self.KINDS:
            raise DSLError(p, f"{kind} is not a native bucket aggregation")
        return getattr(self, kind)(params, p)  # type: ignore[no-any-return]

    def terms(self, params: Mapping[str, Any], p: str) -> BucketAgg:
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

    def histogram(self, params: Mapping[str, Any], p: str) -> BucketAgg:
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

    def date_histogram(self, params: Mapping[str, Any], p: str) -> BucketAgg:
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

    def range_query(self, field: str, is_ts: bool, bucket: Json) -> tantivy.Query:
        lo, hi = bucket.get("from"), bucket.get("to")
        if is_ts:
            return ts_range(None if lo is None else int(lo), None if hi is None else int(hi) - 1, self.schema)
        if lo is None and hi is None:
            return tantivy.Query.exists_query(sc.kw_path(field), json_subpaths=False)
        rng = _range_syntax(None if lo is None else (lo, True), None if hi is None else (hi, False))
        return self.compiler.index.parse_query(f"{sc.kw_path(field)}:{rng}")
