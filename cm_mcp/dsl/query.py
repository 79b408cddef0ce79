"""OpenSearch filter DSL (a list of filters, ANDed) to a tantivy Query."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Final

import tantivy

from cm_mcp.dsl import schema as sc
from cm_mcp.dsl.catalog import SUPPORTED_FILTERS
from cm_mcp.dsl.datemath import parse_date, to_ms
from cm_mcp.dsl.errors import DSLError

Filter = Mapping[str, Any]
TermValue = str | int | float | bool

_TOKEN = re.compile(r"[^\W_]+")
_INT_RE = re.compile(r"-?\d+")
_PERCENT_RE = re.compile(r"-?\d+(\.\d+)?%")
# tantivy's default tokenizer drops tokens of 40 bytes or more (RemoveLongFilter).
_MAX_TOKEN_BYTES = 40
# Distinct spellings a keyword match collects ("GET", "get", "Get", ...); far above any real count.
_MAX_CASE_VARIANTS = 10_000
#: `time_zone` values accepted (on range filters and date_histogram): UTC is the only zone supported.
UTC_ZONES: Final = (None, "UTC", "Z", "+00:00", "Etc/UTC")
# Characters the Rust regex syntax (tantivy's `include`) treats as meta, escaped with a backslash.
_REGEX_META = frozenset("\\.+*?()|[]{}^$#&-~")


@dataclass(frozen=True)
class DocQuery:
    """Everything that selects documents: filters plus the fixed window and routing constraints.

    The window is inclusive at both ends (`start <= @timestamp <= end`), like OpenSearch gte/lte,
    so a document stamped exactly at `end` is returned. Routing maps a field to its allowed values:
    `["*"]` allows any value (no constraint), an empty list allows none.
    """

    filters: Sequence[Filter] = ()
    start: datetime | str | int | None = None
    end: datetime | str | int | None = None
    routing: Mapping[str, Sequence[TermValue]] | None = None
    now: datetime | None = None
    extra: Sequence[tantivy.Query] = field(default=())


def tokenize(text: str) -> list[str]:
    """Mirror of tantivy's default analyzer: alphanumeric runs, lowercased, long tokens dropped."""
    return [t for t in map(str.lower, _TOKEN.findall(text)) if len(t.encode()) < _MAX_TOKEN_BYTES]


def term_candidates(value: object) -> list[TermValue]:
    """Typed terms a keyword-style `term` value matches: "1024" also matches the number 1024."""
    if isinstance(value, bool):
        return [value, "true" if value else "false"]
    if isinstance(value, int):
        return [value, str(value)]
    if isinstance(value, float):
        if not math.isfinite(value):
            return [str(value)]
        return [int(value), str(value)] if value.is_integer() else [value, str(value)]
    if isinstance(value, str):
        out: list[TermValue] = [value]
        if value in ("true", "false"):
            out.append(value == "true")
        try:
            out.append(int(value))
        except ValueError:
            try:
                f = float(value)
                if math.isfinite(f):
                    out.append(int(f) if f.is_integer() else f)
            except ValueError:
                pass
        return out
    raise TypeError(value)


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
        parts.extend(q.extra)
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

    @staticmethod
    def _single_field(body: object, path: str) -> tuple[str, Any]:
        if not isinstance(body, Mapping):
            raise DSLError(path, "expected an object {field: ...}")
        fields = {k: v for k, v in body.items() if k not in ("boost", "_name")}
        if len(fields) != 1:
            raise DSLError(path, "expected exactly one field")
        ((fname, spec),) = fields.items()
        if not isinstance(fname, str) or not fname:
            raise DSLError(path, "field name must be a non-empty string")
        return fname, spec

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
        fname, spec = self._single_field(body, path)
        if isinstance(spec, Mapping):
            if "value" not in spec:
                raise DSLError(f"{path}.{fname}", "expected {value: ...}")
            spec = spec["value"]
        return self._terms(fname, [spec], f"{path}.{fname}")

    def _q_terms(self, body: object, path: str) -> tantivy.Query:
        fname, spec = self._single_field(body, path)
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
        fname, spec = self._single_field(body, path)
        p = f"{path}.{fname}"
        if not isinstance(spec, Mapping):
            raise DSLError(p, "expected {gt|gte|lt|lte: value}")
        known = {"gt", "gte", "lt", "lte", "format", "time_zone", "boost", "relation"}
        bad = sorted(set(spec) - known)
        if bad:
            raise DSLError(
                f"{p}.{bad[0]}", "unsupported range parameter; supported: gt, gte, lt, lte, format"
            )
        tz = spec.get("time_zone")
        if tz not in UTC_ZONES:
            raise DSLError(f"{p}.time_zone", "only UTC is supported")
        if sc.is_timestamp(fname):
            return self._ts_range(spec, p)
        return self._num_range(fname, spec, p)

    def _ts_range(self, spec: Mapping[str, Any], p: str) -> tantivy.Query:
        fmt = spec.get("format")
        lo: int | None = None
        hi: int | None = None
        # Rounding: gte/lt round down, gt/lte round up (OpenSearch), then exclusivity becomes +-1 ms.
        if "gte" in spec:
            lo = parse_date(spec["gte"], now=self.now, round_up=False, path=f"{p}.gte", fmt=fmt)
        if "gt" in spec:
            v = parse_date(spec["gt"], now=self.now, round_up=True, path=f"{p}.gt", fmt=fmt) + 1
            lo = v if lo is None else max(lo, v)
        if "lte" in spec:
            hi = parse_date(spec["lte"], now=self.now, round_up=True, path=f"{p}.lte", fmt=fmt)
        if "lt" in spec:
            v = parse_date(spec["lt"], now=self.now, round_up=False, path=f"{p}.lt", fmt=fmt) - 1
            hi = v if hi is None else min(hi, v)
        if lo is not None and hi is not None and lo > hi:
            return tantivy.Query.empty_query()
        return ts_range(lo, hi, self.schema)

    def _num_range(self, fname: str, spec: Mapping[str, Any], p: str) -> tantivy.Query:
        lo: tuple[float, bool] | None = None  # (value, inclusive)
        hi: tuple[float, bool] | None = None
        for op in ("gt", "gte", "lt", "lte"):
            if op not in spec or spec[op] is None:
                continue
            v = _number(spec[op], f"{p}.{op}")
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
        msm = _min_should(
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

    def _text_spec(self, body: object, path: str, extra: set[str]) -> tuple[str, Any, Mapping[str, Any]]:
        fname, spec = self._single_field(body, path)
        opts: Mapping[str, Any] = {}
        if isinstance(spec, Mapping):
            opts = spec
            bad = sorted(set(spec) - ({"query", "boost", "analyzer"} | extra))
            if bad:
                raise DSLError(
                    f"{path}.{fname}.{bad[0]}",
                    f"unsupported option; supported: query, {', '.join(sorted(extra))}",
                )
            if "query" not in spec:
                raise DSLError(f"{path}.{fname}", "expected {query: ...}")
            spec = spec["query"]
        return fname, spec, opts

    def _q_match(self, body: object, path: str) -> tantivy.Query:
        fname, text, opts = self._text_spec(body, path, {"operator", "zero_terms_query"})
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
        fname, text, opts = self._text_spec(body, path, {"slop"})
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


def _number(value: object, path: str) -> float:
    if isinstance(value, bool):
        raise DSLError(path, f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        f = float(value)
    elif isinstance(value, str):
        try:
            f = float(value)
        except ValueError:
            raise DSLError(
                path, f"expected a number (ranges on text fields are not supported), got {value!r}"
            ) from None
    else:
        raise DSLError(path, f"expected a number, got {value!r}")
    if not math.isfinite(f):
        raise DSLError(path, "expected a finite number")
    return f


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


def _min_should(raw: object, n_should: int, has_must: bool, path: str) -> int:
    if raw is None:
        # OpenSearch: should alone needs one match; next to must/filter it only scores.
        return 0 if has_must or n_should == 0 else 1
    if isinstance(raw, bool):
        raise DSLError(path, "expected an integer or percentage")
    if isinstance(raw, int):
        n = raw
    elif isinstance(raw, str) and _INT_RE.fullmatch(raw.strip()):
        n = int(raw)
    elif isinstance(raw, str) and _PERCENT_RE.fullmatch(raw.strip()):
        pct = float(raw.strip()[:-1])
        n = math.floor(n_should * abs(pct) / 100)
        n = n if pct >= 0 else n_should - n
        return max(n, 0)
    else:
        raise DSLError(path, "expected an integer or percentage")
    return max(n if n >= 0 else n_should + n, 0)
