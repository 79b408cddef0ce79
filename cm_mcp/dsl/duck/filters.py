"""OpenSearch filter DSL (a list of filters, ANDed) to a SQL condition over one document row `d` of
a DuckIndex (`d.did`, `d.id`, `d.ix`, `d.ts`, `d.src`), with the same meaning as the tantivy engine:

- a field's values are every value at its path (nested objects, literal dotted keys and arrays alike);
  `term` matches a value of the same type, "1024" matching the number too (`term_candidates`);
- `match`/`match_phrase` on the text fields compare tokens (alphanumeric runs, case-insensitive, as
  RE2's `[\\pL\\pN]`: Unicode, like the Python tokenizer), on any other field the whole value ignoring
  case; `x.keyword`, `_id`, `_index` and `@timestamp` stay exact;
- `@timestamp` is the `ts` column (epoch ms), `_id` and `_index` are `id` and `ix`.

Every condition is two-valued (never NULL), so NOT and bool `must_not` mean what they say.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from cm_mcp.dsl.catalog import SUPPORTED_FILTERS
from cm_mcp.dsl.datemath import parse_date, to_ms
from cm_mcp.dsl.duck import text
from cm_mcp.dsl.duck.sql import FALSE, TRUE, all_of, any_of, lit, not_
from cm_mcp.dsl.duck.structure import Column, Resolved, Structure, quote, resolve
from cm_mcp.dsl.errors import DSLError

__all__ = ["FALSE", "TRUE", "FilterCompiler", "all_of", "any_of", "lit", "not_"]
from cm_mcp.dsl.spec import (
    MISSING_TS,
    DocQuery,
    Filter,
    is_timestamp,
    min_should,
    number,
    range_spec,
    single_field,
    strip_keyword,
    term_candidates,
    timestamp_bounds,
)

_SPECIAL = {"_id": "d.id", "_index": "d.ix"}
_I64 = (-(2**63), 2**63 - 1)
_U64_MAX = 2**64 - 1
#: Evaluates a sloppy phrase in Python: (field, tokens, slop, SQL condition every match satisfies) ->
#: the matching documents' ids.
SloppyPhrase = Callable[[Resolved, list[str], int, str], list[int]]


def each(column: Column, predicate: Callable[[str], str]) -> str:
    """Any value of `column` satisfies `predicate` (false when it has none)."""
    if column.many:
        return f"coalesce(list_bool_or(list_transform({column.expr}, lambda _v: {predicate('_v')})), false)"
    return f"coalesce({predicate(column.expr)}, false)"


def ts_range(lo: int | None, hi: int | None) -> str:
    """Inclusive epoch-ms range on @timestamp; documents without one are never inside."""
    lo = MISSING_TS + 1 if lo is None else max(lo, MISSING_TS + 1)
    if hi is None:
        return f"d.ts >= {lo}"
    return FALSE if lo > hi else f"d.ts BETWEEN {lo} AND {hi}"


class FilterCompiler:
    def __init__(self, structure: Structure, now: datetime | None = None, sloppy: SloppyPhrase | None = None):
        self.structure = structure
        self.now = now or datetime.now(UTC)
        self.sloppy = sloppy
        self._resolved: dict[str, Resolved] = {}

    def field(self, name: str) -> Resolved:
        key = strip_keyword(name)
        if key not in self._resolved:
            self._resolved[key] = resolve(self.structure, key)
        return self._resolved[key]

    # -- entry points -------------------------------------------------------------------------------
    def build(self, q: DocQuery) -> str:
        parts = [self.filters(q.filters, "filters")]
        if q.start is not None or q.end is not None:
            lo = None if q.start is None else self._window_bound(q.start, "start", round_up=False)
            hi = None if q.end is None else self._window_bound(q.end, "end", round_up=True)
            parts.append(ts_range(lo, hi))
        for fname, allowed in (q.routing or {}).items():
            values = list(allowed)
            if "*" in values:
                continue
            parts.append(self.terms(fname, values, f"routing.{fname}"))
        return all_of(parts)

    def filters(self, filters: Sequence[Filter] | Filter, path: str) -> str:
        if isinstance(filters, Mapping):
            filters = [filters]
        return all_of([self.one(f, f"{path}[{i}]") for i, f in enumerate(filters)])

    def one(self, flt: Filter, path: str) -> str:
        if not isinstance(flt, Mapping) or len(flt) != 1:
            raise DSLError(path, "each filter must be an object with exactly one query type")
        ((kind, body),) = flt.items()
        handler = getattr(self, f"_q_{kind}", None) if kind in SUPPORTED_FILTERS else None
        if handler is None:
            raise DSLError(
                f"{path}.{kind}", f"unsupported query type; supported: {', '.join(SUPPORTED_FILTERS)}"
            )
        result: str = handler(body, f"{path}.{kind}")
        return result

    # -- values -------------------------------------------------------------------------------------
    def terms(self, fname: str, values: Sequence[object], path: str) -> str:
        """Documents with a value of `fname` equal to one of `values` (typed, see term_candidates)."""
        if is_timestamp(fname):
            ms = [parse_date(v, now=self.now, round_up=False, path=path) for v in values]
            return any_of([ts_range(m, m) for m in ms])
        cands: list[Any] = []
        for i, v in enumerate(values):
            if v is None or isinstance(v, Mapping | list):
                raise DSLError(f"{path}[{i}]", f"term values must be scalars, got {v!r}")
            cands.extend([str(v)] if strip_keyword(fname) in _SPECIAL else term_candidates(v))
        if not cands:
            return FALSE
        special = _SPECIAL.get(strip_keyword(fname))
        if special:
            return f"{special} IN ({', '.join(quote(str(c)) for c in dict.fromkeys(cands))})"
        strs = [c for c in cands if isinstance(c, str)]
        bools = [c for c in cands if isinstance(c, bool)]
        ints = [
            c for c in cands if isinstance(c, int) and not isinstance(c, bool) and _I64[0] <= c <= _U64_MAX
        ]
        floats = [c for c in cands if isinstance(c, float)]
        by_type: dict[str, list[Any]] = {
            "VARCHAR": strs,
            "BOOLEAN": bools,
            "BIGINT": [c for c in ints if c <= _I64[1]],
            "UBIGINT": [c for c in ints if c >= 0],
            "DOUBLE": [*ints, *floats],
        }
        loose = [f"s IN ({_list(strs)})"] if strs else []
        loose += [f"b = {lit(b)}" for b in dict.fromkeys(bools)]
        loose += [f"coalesce(i = {lit(v)}, n = {_double(float(v))})" for v in dict.fromkeys(ints)]
        loose += [f"(i IS NULL AND n = {lit(v)})" for v in dict.fromkeys(floats)]
        return self.match_values(
            fname,
            lambda col: (
                (lambda x: f"{x} IN ({_list(by_type[col.type], col.type)})") if by_type[col.type] else None
            ),
            any_of(loose),
        )

    def match_values(
        self,
        fname: str,
        make: Callable[[Column], Callable[[str], str] | None],
        loose: str,
        *,
        exact: bool = True,
    ) -> str:
        """Documents where a value of `fname` satisfies the column predicate `make(column)` (None: a
        column of that type never does) or, in JSON subtrees, the leaves-table condition `loose`."""
        resolved = self.field(fname)
        parts = []
        for column in resolved.columns:
            predicate = make(column)
            if predicate is not None:
                parts.append(each(column, predicate))
        if resolved.loose and loose != FALSE:
            parts.append(self.in_leaves(resolved.path, loose, exact=exact))
        return any_of(parts)

    @staticmethod
    def in_leaves(path: str, condition: str, *, exact: bool) -> str:
        where = f"path = {quote(path)}"
        if not exact:
            where = f"({where} OR starts_with(path, {quote(path + '.')}))"
        cond = "" if condition == TRUE else f" AND {condition}"
        return f"d.did IN (SELECT did FROM leaves WHERE {where}{cond})"

    def exists(self, fname: str, *, below: bool = True) -> str:
        special = strip_keyword(fname)
        if is_timestamp(special):
            return ts_range(None, None)
        if special in _SPECIAL:
            return TRUE
        resolved = self.field(fname)
        columns = resolved.columns + (resolved.below if below else [])
        parts = [
            f"coalesce(list_count({c.expr}) > 0, false)" if c.many else f"({c.expr} IS NOT NULL)"
            for c in columns
        ]
        if resolved.loose:
            parts.append(self.in_leaves(resolved.path, TRUE, exact=not below))
        return any_of(parts)

    # -- helpers ------------------------------------------------------------------------------------
    def _window_bound(self, value: datetime | str | int, path: str, *, round_up: bool) -> int:
        if isinstance(value, datetime):
            return to_ms(value)
        return parse_date(value, now=self.now, round_up=round_up, path=path)

    # -- query types --------------------------------------------------------------------------------
    def _q_term(self, body: object, path: str) -> str:
        fname, spec = single_field(body, path)
        if isinstance(spec, Mapping):
            if "value" not in spec:
                raise DSLError(f"{path}.{fname}", "expected {value: ...}")
            spec = spec["value"]
        return self.terms(fname, [spec], f"{path}.{fname}")

    def _q_terms(self, body: object, path: str) -> str:
        fname, spec = single_field(body, path)
        if not isinstance(spec, list):
            raise DSLError(f"{path}.{fname}", "expected a list of values")
        return self.terms(fname, spec, f"{path}.{fname}")

    def _q_exists(self, body: object, path: str) -> str:
        if not isinstance(body, Mapping) or not isinstance(body.get("field"), str):
            raise DSLError(path, "expected {field: name}")
        # Like OpenSearch, an object "exists" when any leaf below it does.
        return self.exists(body["field"])

    def _q_range(self, body: object, path: str) -> str:
        fname, p, spec = range_spec(body, path)
        if is_timestamp(fname):
            return self._ts_range(spec, p)
        return self._num_range(fname, spec, p)

    def _ts_range(self, spec: Mapping[str, Any], p: str) -> str:
        bounds = timestamp_bounds(spec, self.now, p)
        return FALSE if bounds is None else ts_range(*bounds)

    def _num_range(self, fname: str, spec: Mapping[str, Any], p: str) -> str:
        bounds: list[tuple[str, float]] = []
        for op in ("gt", "gte", "lt", "lte"):
            if op in spec and spec[op] is not None:
                bounds.append((op, number(spec[op], f"{p}.{op}")))
        if not bounds:
            return self.exists(fname, below=False)
        if strip_keyword(fname) in _SPECIAL:
            raise DSLError(p, "numeric range is not supported on this field")
        ops = {"gt": ">", "gte": ">=", "lt": "<", "lte": "<="}

        def inside(x: str) -> str:
            return " AND ".join(f"{x} {ops[op]} {_double(v)}" for op, v in bounds)

        numeric = ("BIGINT", "UBIGINT", "DOUBLE")
        return self.match_values(
            fname,
            lambda col: inside if col.type in numeric else None,
            f"n IS NOT NULL AND {inside('n')}",
        )

    def _q_bool(self, body: object, path: str) -> str:
        if not isinstance(body, Mapping):
            raise DSLError(path, "expected an object")
        known = {"must", "filter", "should", "must_not", "minimum_should_match", "boost", "_name"}
        bad = sorted(set(body) - known)
        if bad:
            raise DSLError(
                f"{path}.{bad[0]}", "unknown bool clause; supported: must, filter, should, must_not"
            )

        def clauses(key: str) -> list[str]:
            raw = body.get(key, [])
            items = [raw] if isinstance(raw, Mapping) else list(raw)
            return [self.one(f, f"{path}.{key}[{i}]") for i, f in enumerate(items)]

        must = clauses("must") + clauses("filter")
        should = clauses("should")
        must_not = clauses("must_not")
        msm = min_should(
            body.get("minimum_should_match"), len(should), bool(must), f"{path}.minimum_should_match"
        )
        if msm > len(should):
            return FALSE
        parts = list(must)
        if msm == 1:
            parts.append(any_of(should))
        elif msm > 1:
            parts.append("(" + " + ".join(f"({s})::INTEGER" for s in should) + f") >= {msm}")
        parts.extend(not_(q) for q in must_not)
        return all_of(parts)

    def _q_match(self, body: object, path: str) -> str:
        return text.match(self, body, path)

    def _q_match_phrase(self, body: object, path: str) -> str:
        return text.match_phrase(self, body, path)


def _double(value: float) -> str:
    if math.isinf(value):
        return f"'{'-' if value < 0 else ''}inf'::DOUBLE"
    return f"'{value!r}'::DOUBLE"


def _list(values: Sequence[object], typ: str | None = None) -> str:
    out = []
    for v in dict.fromkeys(values):
        if typ == "DOUBLE" and not isinstance(v, str | bool):
            out.append(_double(float(v)))  # type: ignore[arg-type]
        else:
            out.append(lit(v))
    return ", ".join(out)
