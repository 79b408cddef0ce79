"""OpenSearch filter DSL (a list of filters, ANDed) to a tantivy Query."""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

import tantivy

from cm_mcp.dsl import schema as sc
from cm_mcp.dsl.catalog import SUPPORTED_FILTERS
from cm_mcp.dsl.datemath import parse_date, to_ms
from cm_mcp.dsl.errors import DSLError
from cm_mcp.dsl.spec import (
    UTC_ZONES,
    DocQuery,
    Filter,
    TermValue,
    min_should,
    number,
    range_spec,
    single_field,
    term_candidates,
    text_spec,
    timestamp_bounds,
    tokenize,
)

__all__ = ["UTC_ZONES", "DocQuery", "QueryCompiler", "term_candidates", "tokenize"]

# Characters the Rust regex syntax (tantivy's `include`) treats as meta, escaped with a backslash.
_REGEX_META = frozenset("\\.+*?()|[]{}^$#&-~")
# Distinct spellings a keyword match collects ("GET", "get", "Get", ...); far above any real count.
_MAX_CASE_VARIANTS = 10_000


def count_matches(searcher: tantivy.Searcher, q: tantivy.Query) -> int:
    """How many documents `q` matches."""
    # limit must be >= 1 (tantivy-py panics on 0).
    return int(getattr(searcher.search(q, 1, count=True), "count", 0) or 0)


def and_all(queries: Sequence[tantivy.Query]) -> tantivy.Query:
    if not queries:
        return tantivy.Query.all_query()
    if len(queries) == 1:
        return queries[0]
    return tantivy.Query.boolean_query([(tantivy.Occur.Must, q) for q in queries])


def not_(query: tantivy.Query) -> tantivy.Query:
    # A boolean query made of MustNot clauses alone matches nothing in tantivy: anchor it on all docs.
    return tantivy.Query.boolean_query(
        [(tantivy.Occur.Must, tantivy.Query.all_query()), (tantivy.Occur.MustNot, query)]
    )


def ts_range(lo: int | None, hi: int | None, schema: tantivy.Schema) -> tantivy.Query:
    """Inclusive epoch-ms range on @timestamp; documents without one are never inside."""
    lo = sc.MISSING_TS + 1 if lo is None else max(lo, sc.MISSING_TS + 1)
    return tantivy.Query.range_query(schema, sc.TS, tantivy.FieldType.Integer, lo, hi)


class QueryCompiler:
    def __init__(self, index: tantivy.Index, now: datetime | None = None) -> None:
        self.index = index
        self.schema = index.schema
        self.now = now or datetime.now(UTC)

    # -- entry points -------------------------------------------------------------------------------
    def build(self, q: DocQuery) -> tantivy.Query:
        parts = [self.filters(q.filters, "filters")]
        if q.start is not None or q.end is not None:
            lo = None if q.start is None else self._window_bound(q.start, "start", round_up=False)
            hi = None if q.end is None else self._window_bound(q.end, "end", round_up=True)
            parts.append(ts_range(lo, hi, self.schema))
        for fname, allowed in (q.routing or {}).items():
            values = list(allowed)
            if "*" in values:
                continue
            parts.append(self._terms(fname, values, f"routing.{fname}"))
        return and_all(parts)

    def filters(self, filters: Sequence[Filter], path: str) -> tantivy.Query:
        if isinstance(filters, Mapping):
            filters = [filters]
        return and_all([self.one(f, f"{path}[{i}]") for i, f in enumerate(filters)])

    def one(self, flt: Filter, path: str) -> tantivy.Query:
        if not isinstance(flt, Mapping) or len(flt) != 1:
            raise DSLError(path, "each filter must be an object with exactly one query type")
        ((kind, body),) = flt.items()
        handler = getattr(self, f"_q_{kind}", None) if kind in SUPPORTED_FILTERS else None
        if handler is None:
            raise DSLError(
                f"{path}.{kind}", f"unsupported query type; supported: {', '.join(SUPPORTED_FILTERS)}"
            )
        result: tantivy.Query = handler(body, f"{path}.{kind}")
        return result

    # -- helpers ------------------------------------------------------------------------------------
    def _window_bound(self, value: datetime | str | int, path: str, *, round_up: bool) -> int:
        if isinstance(value, datetime):
            return to_ms(value)
        return parse_date(value, now=self.now, round_up=round_up, path=path)

    def _terms(self, fname: str, values: Sequence[object], path: str) -> tantivy.Query:
        special = sc.special_field(fname)
        if special == sc.TS:
            ms = [parse_date(v, now=self.now, round_up=False, path=path) for v in values]
            return _or([ts_range(m, m, self.schema) for m in ms])
        cands: list[TermValue] = []
        for i, v in enumerate(values):
            if v is None or isinstance(v, Mapping | list):
                raise DSLError(f"{path}[{i}]", f"term values must be scalars, got {v!r}")
            if special is not None:
                cands.append(str(v))  # _id and _index are strings
            else:
                cands.extend(term_candidates(v))
        if not cands:
            return tantivy.Query.empty_query()
        return tantivy.Query.term_set_query(self.schema, sc.kw_path(fname), cands)

    # -- query types --------------------------------------------------------------------------------
    def _q_term(self, body: object, path: str) -> tantivy.Query:
        fname, spec = single_field(body, path)
        if isinstance(spec, Mapping):
            if "value" not in spec:
                raise DSLError(f"{path}.{fname}", "expected {value: ...}")
            spec = spec["value"]
        return self._terms(fname, [spec], f"{path}.{fname}")

    def _q_terms(self, body: object, path: str) -> tantivy.Query:
        fname, spec = single_field(body, path)
        if not isinstance(spec, list):
            raise DSLError(f"{path}.{fname}", "expected a list of values")
        return self._terms(fname, spec, f"{path}.{fname}")

    def _q_exists(self, body: object, path: str) -> tantivy.Query:
        if not isinstance(body, Mapping) or not isinstance(body.get("field"), str):
            raise DSLError(path, "expected {field: name}")
        special = sc.special_field(body["field"])
        if special == sc.TS:
            return ts_range(None, None, self.schema)
        if special is not None:
            return tantivy.Query.all_query()
        # json_subpaths: like OpenSearch, an object "exists" when any leaf below it does.
        return tantivy.Query.exists_query(sc.kw_path(body["field"]), json_subpaths=True)

    def _q_range(self, body: object, path: str) -> tantivy.Query:
        fname, p, spec = range_spec(body, path)
        if sc.is_timestamp(fname):
            return self._ts_range(spec, p)
        return self._num_range(fname, spec, p)

    def _ts_range(self, spec: Mapping[str, Any], p: str) -> tantivy.Query:
        bounds = timestamp_bounds(spec, self.now, p)
        if bounds is None:
            return tantivy.Query.empty_query()
        return ts_range(*bounds, self.schema)

    def _num_range(self, fname: str, spec: Mapping[str, Any], p: str) -> tantivy.Query:
        lo: tuple[float, bool] | None = None  # (value, inclusive)
        hi: tuple[float, bool] | None = None
        for op in ("gt", "gte", "lt", "lte"):
            if op not in spec or spec[op] is None:
                continue
            v = number(spec[op], f"{p}.{op}")
            if op.startswith("g"):
                cand = (v, op == "gte")
                if lo is None or cand[0] > lo[0] or (cand[0] == lo[0] and not cand[1]):
                    lo = cand
            else:
                cand = (v, op == "lte")
                if hi is None or cand[0] < hi[0] or (cand[0] == hi[0] and not cand[1]):
                    hi = cand
        if lo is None and hi is None:
            return tantivy.Query.exists_query(sc.kw_path(fname), json_subpaths=False)
        special = sc.special_field(fname)
        if special is not None:
            raise DSLError(p, "numeric range is not supported on this field")
        if not sc.parser_safe(fname):
            raise DSLError(p, "range field names may only contain letters, digits, '_', '-', '@' and '.'")
        if (
            lo is not None
            and hi is not None
            and (lo[0] > hi[0] or (lo[0] == hi[0] and not (lo[1] and hi[1])))
        ):
            return tantivy.Query.empty_query()  # an empty interval (tantivy 0.27 panics on some of them)
        return self.index.parse_query(f"{sc.kw_path(fname)}:{_range_syntax(lo, hi)}")

    def _q_bool(self, body: object, path: str) -> tantivy.Query:
        if not isinstance(body, Mapping):
            raise DSLError(path, "expected an object")
        known = {"must", "filter", "should", "must_not", "minimum_should_match", "boost", "_name"}
        bad = sorted(set(body) - known)
        if bad:
            raise DSLError(
                f"{path}.{bad[0]}", "unknown bool clause; supported: must, filter, should, must_not"
            )

        def clauses(key: str) -> list[tantivy.Query]:
            raw = body.get(key, [])
            items = [raw] if isinstance(raw, Mapping) else list(raw)
            return [self.one(f, f"{path}.{key}[{i}]") for i, f in enumerate(items)]

        must = clauses("must") + clauses("filter")
        should = clauses("should")
        must_not = clauses("must_not")
        msm = min_should(
            body.get("minimum_should_match"), len(should), bool(must), f"{path}.minimum_should_match"
        )
        parts: list[tuple[tantivy.Occur, tantivy.Query]] = [(tantivy.Occur.Must, q) for q in must]
        if msm > len(should):
            return tantivy.Query.empty_query()
        if msm >= 1:
            parts.append(
                (
                    tantivy.Occur.Must,
                    tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in should], msm),
                )
            )
        if not parts:
            parts.append((tantivy.Occur.Must, tantivy.Query.all_query()))
        parts.extend((tantivy.Occur.MustNot, q) for q in must_not)
        return tantivy.Query.boolean_query(parts)

    def _q_match(self, body: object, path: str) -> tantivy.Query:
        fname, text, opts = text_spec(body, path, {"operator", "zero_terms_query"})
        if not isinstance(text, str) or not sc.is_text(fname):
            return self._keyword_match(fname, text, f"{path}.{fname}")
        op = str(opts.get("operator", "or")).lower()
        if op not in ("or", "and"):
            raise DSLError(f"{path}.{fname}.operator", "expected 'or' or 'and'")
        tokens = tokenize(text)
        if not tokens:
            return tantivy.Query.empty_query()
        occur = tantivy.Occur.Must if op == "and" else tantivy.Occur.Should
        subs = [tantivy.Query.term_query(self.schema, sc.tx_path(fname), t) for t in dict.fromkeys(tokens)]
        return subs[0] if len(subs) == 1 else tantivy.Query.boolean_query([(occur, q) for q in subs])

    def _q_match_phrase(self, body: object, path: str) -> tantivy.Query:
        fname, text, opts = text_spec(body, path, {"slop"})
        if not isinstance(text, str) or not sc.is_text(fname):
            return self._keyword_match(fname, text, f"{path}.{fname}")
        tokens = tokenize(text)
        if not tokens:
            return tantivy.Query.empty_query()
        if len(tokens) == 1:
            return tantivy.Query.term_query(self.schema, sc.tx_path(fname), tokens[0])
        slop = int(opts.get("slop", 0))
        words: list[str | tuple[int, str]] = list(tokens)
        return tantivy.Query.phrase_query(self.schema, sc.tx_path(fname), words, slop)

    def _keyword_match(self, fname: str, value: object, path: str) -> tantivy.Query:
        """match/match_phrase on a field outside `sc.TEXT_FIELDS` (or with a non-string query): the
        whole value, compared exactly like `term` but ignoring case for strings. In OpenSearch such a
        field would be text (tokenized) plus `.keyword`; for keyword-like values (ids, names, levels,
        methods) a token match and a case-insensitive exact match select the same documents.
        `x.keyword`, `_id`, `_index` and `@timestamp` stay exact and case-sensitive."""
        exact = self._terms(fname, [value], path)
        if (
            not isinstance(value, str)
            or value.lower() == value.upper()  # nothing to fold
            or fname.endswith(".keyword")
            or sc.special_field(fname) is not None
        ):
            return exact
        variants = [v for v in self._case_variants(fname, value) if v != value]
        if not variants:
            return exact
        return _or([exact, tantivy.Query.term_set_query(self.schema, sc.kw_path(fname), variants)])

    def _case_variants(self, fname: str, value: str) -> list[str]:
        """The indexed string values of `fname` equal to `value` ignoring case, read from the term
        dictionary by a terms aggregation whose `include` is an anchored case-insensitive regex."""
        spec = {
            "v": {
                "terms": {
                    "field": sc.kw_path(fname),
                    "include": "(?i)" + _regex_escape(value),
                    "size": _MAX_CASE_VARIANTS,
                }
            }
        }
        try:
            res = self.index.searcher().aggregate(tantivy.Query.all_query(), spec)
        except ValueError:
            return []  # e.g. a regex over the automaton size limit: exact match only
        buckets = (res.get("v") or {}).get("buckets") or []
        return [b["key"] for b in buckets if isinstance(b.get("key"), str)]


def _or(queries: Sequence[tantivy.Query]) -> tantivy.Query:
    if not queries:
        return tantivy.Query.empty_query()
    return (
        queries[0]
        if len(queries) == 1
        else tantivy.Query.boolean_query([(tantivy.Occur.Should, q) for q in queries])
    )


def _regex_escape(text: str) -> str:
    return "".join("\\" + c if c in _REGEX_META else c for c in text)


def _fmt(v: float) -> str:
    if v.is_integer() and abs(v) < 2**63:
        return str(int(v))
    text = repr(v)
    return format(v, ".17f") if "e" in text else text


def _range_syntax(lo: tuple[float, bool] | None, hi: tuple[float, bool] | None) -> str:
    """Query-parser range text. tantivy 0.27 panics when one bound parses as an integer and the other
    as a float, so with any fractional bound the integral one is nudged to the adjacent double with
    flipped exclusivity (x <= 7 is x < 7.000000000000001) — exact for both int and float columns."""
    mixed = lo is not None and hi is not None and (lo[0].is_integer() != hi[0].is_integer())
    if mixed:
        if lo is not None and lo[0].is_integer():
            lo = (
                (math.nextafter(lo[0], -math.inf), False)
                if lo[1]
                else (math.nextafter(lo[0], math.inf), True)
            )
        if hi is not None and hi[0].is_integer():
            hi = (
                (math.nextafter(hi[0], math.inf), False)
                if hi[1]
                else (math.nextafter(hi[0], -math.inf), True)
            )
    left = "[*" if lo is None else ("[" if lo[1] else "{") + _fmt(lo[0])
    right = "*]" if hi is None else _fmt(hi[0]) + ("]" if hi[1] else "}")
    return f"{left} TO {right}"
