"""Structural checks of the OpenSearch filter and aggregation DSL the V2 endpoints accept.

The reference lists the supported filter types (term, terms, range, exists, bool, match,
match_phrase) and says "see OpenSearch Query DSL" for the rest (item 14); cm-mcp accepts exactly the
listed types so a mistyped or unsupported query is caught before it costs a request. Every problem is
reported with its JSON path relative to the checked value (e.g. `[0].bool.must[1].range`) and the
valid alternatives, so a model can fix its call in one step.

This module lives in `api/` (the bottom layer) because the request models use it; `dsl/` translates
the same structures into the search engine and re-exports these catalogues.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Final

from cm_mcp.api.buckets import INTERVAL_KEYS, parse_interval

SUPPORTED_FILTERS: Final = ("term", "terms", "range", "exists", "bool", "match", "match_phrase")
BOOL_CLAUSES: Final = ("must", "should", "must_not", "filter")
RANGE_OPERATORS: Final = ("gt", "gte", "lt", "lte", "format")

BUCKET_AGGREGATIONS: Final = (
    "terms",
    "date_histogram",
    "histogram",
    "range",
    "filter",
    "filters",
    "missing",
)
METRIC_AGGREGATIONS: Final = (
    "avg",
    "min",
    "max",
    "sum",
    "stats",
    "extended_stats",
    "value_count",
    "cardinality",
    "percentiles",
)
SUPPORTED_AGGREGATIONS: Final = BUCKET_AGGREGATIONS + METRIC_AGGREGATIONS
#: Aggregation types that need a `field`.
_FIELD_AGGREGATIONS: Final = frozenset(SUPPORTED_AGGREGATIONS) - {"filter", "filters"}
MAX_AGG_DEPTH: Final = 5  # deeper nesting explodes bucket counts and is never needed to locate an incident

Issue = tuple[str, str]
"""(path relative to the checked value, what is wrong and what would be valid)"""

_SCALAR = (str, int, float, bool)


def check_filters(filters: Any) -> list[Issue]:
    """Check a V2 `filters` array; return every problem found (empty when valid)."""
    if not isinstance(filters, list):
        return [("", 'must be a list of filter objects, e.g. [{"term": {"logLevel": "ERROR"}}]')]
    issues: list[Issue] = []
    for index, item in enumerate(filters):
        issues += check_filter(item, f"[{index}]")
    return issues


def filter_fields(filters: Sequence[Mapping[str, Any]]) -> set[str]:
    """The document fields a valid `filters` array names (through `bool` clauses), `.keyword` removed:
    what must exist in `_source` for the filters to match anything."""
    found: set[str] = set()
    for node in filters:
        (kind, body), *_ = node.items()
        if kind == "bool":
            for clause, items in body.items():
                if clause in BOOL_CLAUSES:
                    found |= filter_fields([items] if isinstance(items, Mapping) else items)
        elif kind == "exists":
            found.add(str(body["field"]))
        else:
            found.update(str(name) for name in body)
    return {name.removesuffix(".keyword") for name in found}


def check_filter(node: Any, path: str) -> list[Issue]:
    """Check one filter object (recursively for `bool`)."""
    if not isinstance(node, Mapping) or len(node) != 1:
        keys = list(node) if isinstance(node, Mapping) else type(node).__name__
        return [
            (
                path,
                f"each filter is an object with exactly one query type, got {keys}; "
                f"supported types: {', '.join(SUPPORTED_FILTERS)}",
            )
        ]
    (kind, body), *_ = node.items()
    where = f"{path}.{kind}"
    if kind not in SUPPORTED_FILTERS:
        return [(where, f"unsupported filter type {kind!r}; supported types: {', '.join(SUPPORTED_FILTERS)}")]
    checker = _FILTER_CHECKERS[kind]
    return checker(body, where)


def _check_term(body: Any, path: str) -> list[Issue]:
    field, value, issues = _single_field(
        body, path, "term", '{"term": {"atr.domain_name": "pay.example.com"}}'
    )
    if issues:
        return issues
    if isinstance(value, Mapping):
        if "value" not in value:
            return [(f"{path}.{field}", 'object form needs "value", e.g. {"value": "ERROR"}')]
        value = value["value"]
    if not isinstance(value, _SCALAR):
        return [(f"{path}.{field}", "term value must be a string, number or boolean; use terms for a list")]
    return []


def _check_terms(body: Any, path: str) -> list[Issue]:
    if isinstance(body, Mapping):
        body = {key: value for key, value in body.items() if key != "boost"}
    field, values, issues = _single_field(body, path, "terms", '{"terms": {"workflow.name": ["A", "B"]}}')
    if issues:
        return issues
    where = f"{path}.{field}"
    if not isinstance(values, list) or not values:
        return [
            (where, 'terms value must be a non-empty list, e.g. {"terms": {"logLevel": ["ERROR", "WARN"]}}')
        ]
    if not all(isinstance(value, _SCALAR) for value in values):
        return [(where, "terms values must be strings, numbers or booleans")]
    return []


def _check_range(body: Any, path: str) -> list[Issue]:
    example = '{"range": {"@timestamp": {"gte": "now-1h"}}}'
    field, bounds, issues = _single_field(body, path, "range", example)
    if issues:
        return issues
    where = f"{path}.{field}"
    if not isinstance(bounds, Mapping) or not bounds:
        return [(where, f"range needs an object of operators {'/'.join(RANGE_OPERATORS)}, e.g. {example}")]
    unknown = [key for key in bounds if key not in RANGE_OPERATORS]
    if unknown:
        return [(f"{where}.{unknown[0]}", f"unknown range operator; valid: {', '.join(RANGE_OPERATORS)}")]
    if not any(key in bounds for key in ("gt", "gte", "lt", "lte")):
        return [(where, "range needs at least one of gt, gte, lt, lte")]
    for key, value in bounds.items():
        if key == "format":
            if not isinstance(value, str):
                return [(f"{where}.format", "format must be a string such as 'strict_date_optional_time'")]
        elif isinstance(value, bool) or not isinstance(value, str | int | float):
            return [
                (f"{where}.{key}", "range bound must be a number or a date string (ISO 8601 or 'now-1h')")
            ]
    return []


def _check_exists(body: Any, path: str) -> list[Issue]:
    if not isinstance(body, Mapping) or set(body) != {"field"} or not _is_name(body["field"]):
        return [(path, 'exists takes exactly {"field": "<name>"}, e.g. {"exists": {"field": "user.id"}}')]
    return []


def _check_bool(body: Any, path: str) -> list[Issue]:
    if not isinstance(body, Mapping) or not body:
        return [(path, f"bool needs at least one of {', '.join(BOOL_CLAUSES)}, each a list of filters")]
    issues: list[Issue] = []
    for clause, filters in body.items():
        where = f"{path}.{clause}"
        if clause == "minimum_should_match":
            if isinstance(filters, bool) or not isinstance(filters, int | str):
                issues.append((where, "minimum_should_match must be an integer or a string like '1'"))
            continue
        if clause not in BOOL_CLAUSES:
            issues.append((where, f"unknown bool clause; valid: {', '.join(BOOL_CLAUSES)}"))
            continue
        items = [filters] if isinstance(filters, Mapping) else filters
        if not isinstance(items, list) or not items:
            issues.append((where, "must be a non-empty list of filter objects"))
            continue
        for index, item in enumerate(items):
            issues += check_filter(item, f"{where}[{index}]")
    return issues


def _check_match(body: Any, path: str) -> list[Issue]:
    kind = path.rsplit(".", 1)[-1]
    field, query, issues = _single_field(body, path, kind, f'{{"{kind}": {{"message": "cluster down"}}}}')
    if issues:
        return issues
    where = f"{path}.{field}"
    if isinstance(query, Mapping):
        allowed = {"query", "operator"} if kind == "match" else {"query", "slop"}
        unknown = set(query) - allowed
        if "query" not in query or unknown:
            return [(where, f"object form takes {sorted(allowed)} with 'query' required")]
        if kind == "match" and str(query.get("operator", "or")).lower() not in ("and", "or"):
            return [(f"{where}.operator", "operator must be 'and' or 'or'")]
        query = query["query"]
    if not isinstance(query, _SCALAR) or query == "":
        return [(where, f"{kind} needs a non-empty text to search for")]
    return []


_FILTER_CHECKERS = {
    "term": _check_term,
    "terms": _check_terms,
    "range": _check_range,
    "exists": _check_exists,
    "bool": _check_bool,
    "match": _check_match,
    "match_phrase": _check_match,
}


def _single_field(body: Any, path: str, kind: str, example: str) -> tuple[str, Any, list[Issue]]:
    """Filters such as term/range/match take exactly one `{field: spec}` pair."""
    if not isinstance(body, Mapping) or len(body) != 1:
        return "", None, [(path, f"{kind} takes exactly one field, e.g. {example}")]
    (field, spec), *_ = body.items()
    if not _is_name(field):
        return "", None, [(path, "field name must be a non-empty string")]
    return str(field), spec, []


def _is_name(value: Any) -> bool:
    return isinstance(value, str) and bool(value.strip())


# --- aggregations ------------------------------------------------------------------------------


def check_aggs(aggs: Any, path: str = "", depth: int = 1) -> list[Issue]:
    """Check an `aggs` object: named aggregations, each one known type plus optional sub-`aggs`."""
    example = '{"by_level": {"terms": {"field": "regex.extractions.logLevel", "size": 10}}}'
    if not isinstance(aggs, Mapping) or not aggs:
        return [(path, f"aggs must be a non-empty object of named aggregations, e.g. {example}")]
    if depth > MAX_AGG_DEPTH:
        return [(path, f"aggregations nest at most {MAX_AGG_DEPTH} levels deep")]
    issues: list[Issue] = []
    for name, spec in aggs.items():
        where = f"{path}.{name}" if path else str(name)
        if not _is_name(name):
            issues.append((where, "aggregation names must be non-empty strings"))
            continue
        issues += _check_one_agg(spec, where, depth)
    return issues


def _check_one_agg(spec: Any, path: str, depth: int) -> list[Issue]:
    supported = ", ".join(SUPPORTED_AGGREGATIONS)
    if not isinstance(spec, Mapping):
        return [(path, f"must be an object with one aggregation type ({supported})")]
    kinds = [key for key in spec if key not in ("aggs", "aggregations")]
    if len(kinds) != 1:
        found = kinds or "none"
        return [
            (
                path,
                f"needs exactly one aggregation type plus optional 'aggs', found {found}; "
                f"supported: {supported}",
            )
        ]
    kind = kinds[0]
    where = f"{path}.{kind}"
    if kind not in SUPPORTED_AGGREGATIONS:
        return [(where, f"unsupported aggregation type {kind!r}; supported: {supported}")]
    body = spec[kind]
    issues = _check_agg_body(kind, body, where)
    sub = spec.get("aggs", spec.get("aggregations"))
    if sub is not None:
        if kind in METRIC_AGGREGATIONS:
            issues.append((f"{path}.aggs", f"a {kind} aggregation cannot have sub-aggregations"))
        else:
            issues += check_aggs(sub, f"{path}.aggs", depth + 1)
    return issues


def _check_agg_body(kind: str, body: Any, path: str) -> list[Issue]:
    if kind == "filter":
        return check_filter(body, path)
    if not isinstance(body, Mapping):
        return [(path, f'{kind} takes an object, e.g. {{"field": "@timestamp"}}')]
    if kind == "filters":
        named = body.get("filters")
        if not isinstance(named, Mapping) or not named:
            return [(path, 'filters takes {"filters": {"<name>": <filter>, ...}}')]
        issues: list[Issue] = []
        for name, item in named.items():
            issues += check_filter(item, f"{path}.filters.{name}")
        return issues
    if kind in _FIELD_AGGREGATIONS and not _is_name(body.get("field")):
        return [(f"{path}.field", f"{kind} needs a 'field' naming a document field")]
    if kind == "terms" and "size" in body and not _positive_int(body["size"]):
        return [(f"{path}.size", "size must be an integer > 0")]
    if kind == "date_histogram":
        return _check_interval(body, path)
    interval = body.get("interval")
    if kind == "histogram" and (
        isinstance(interval, bool) or not isinstance(interval, int | float) or not interval > 0
    ):
        return [(f"{path}.interval", f"histogram needs a numeric interval > 0; got {interval!r}")]
    if kind == "range":
        return _check_ranges(body.get("ranges"), f"{path}.ranges")
    if kind == "percentiles" and "percents" in body:
        percents = body["percents"]
        if (
            not isinstance(percents, list)
            or not percents
            or not all(
                not isinstance(value, bool) and isinstance(value, int | float) and 0 <= value <= 100
                for value in percents
            )
        ):
            return [(f"{path}.percents", f"percents is a non-empty list of numbers 0-100; got {percents!r}")]
    return []


def _check_ranges(ranges: Any, path: str) -> list[Issue]:
    """OpenSearch answers 400 to an empty `ranges` and to a bound that is neither a number nor a
    string (a date or date math on @timestamp)."""
    if not isinstance(ranges, list) or not ranges:
        return [(path, 'range needs a non-empty "ranges": [{"to": 100}, {"from": 100}]')]
    issues: list[Issue] = []
    for index, item in enumerate(ranges):
        where = f"{path}[{index}]"
        if not isinstance(item, Mapping):
            issues.append((where, 'each range is an object such as {"from": 100, "to": 200}'))
            continue
        if unknown := sorted(set(item) - {"from", "to", "key"}):
            issues.append((where, f"unknown keys {unknown}; a range takes from, to and key"))
        for bound in ("from", "to"):
            value = item.get(bound)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float | str) or value == ""
            ):
                issues.append((f"{where}.{bound}", f"must be a number or a date; got {value!r}"))
        if "key" in item and not _is_name(item["key"]):
            issues.append((f"{where}.key", "must be a non-empty string"))
    return issues


def _check_interval(body: Mapping[str, Any], path: str) -> list[Issue]:
    keys = [key for key in INTERVAL_KEYS if key in body]
    if not keys:
        return [(path, "date_histogram needs fixed_interval (e.g. '1h', '5m') or calendar_interval ('1d')")]
    if len(keys) > 1:
        return [(path, f"give one interval, not {' and '.join(keys)}")]
    parsed = parse_interval(keys[0], body[keys[0]])
    return [(f"{path}.{keys[0]}", parsed)] if isinstance(parsed, str) else []


def _positive_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value > 0
