"""Aggregation parameters as both engines read them: the agg's type and body, its field, the
date_histogram interval and calendar unit, range keys. Errors name the offending path."""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

from cm_mcp.dsl.catalog import SUPPORTED_AGGREGATIONS
from cm_mcp.dsl.datemath import parse_date
from cm_mcp.dsl.errors import DSLError
from cm_mcp.dsl.spec import UTC_ZONES, is_timestamp

FIXED_UNITS: Final = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}
CALENDAR: Final = {
    "minute": ("m", 60_000), "1m": ("m", 60_000), "hour": ("h", 3_600_000), "1h": ("h", 3_600_000),
    "day": ("d", 86_400_000), "1d": ("d", 86_400_000), "week": ("w", 604_800_000), "1w": ("w", 604_800_000),
    "month": ("M", 0), "1M": ("M", 0), "quarter": ("q", 0), "1q": ("q", 0), "year": ("y", 0), "1y": ("y", 0),
}  # fmt: skip
#: 1970-01-01 was a Thursday; ISO weeks start on Monday 1970-01-05.
WEEK_OFFSET: Final = 4 * 86_400_000
#: Calendar units without a fixed length (bucketed by calendar arithmetic, not by a fixed interval).
VARIABLE_UNITS: Final = ("M", "q", "y")
TERMS_PARAMS: Final = frozenset(
    {"field", "size", "min_doc_count", "order", "missing", "shard_size", "show_term_doc_count_error"}
)
HISTOGRAM_PARAMS: Final = frozenset(
    {"field", "interval", "offset", "min_doc_count", "extended_bounds", "hard_bounds"}
)


def supported() -> str:
    return ", ".join(SUPPORTED_AGGREGATIONS)


def split(body: Any, p: str) -> tuple[str, Any, Mapping[str, Any]]:
    """(type, parameters, sub-aggregations) of one aggregation."""
    if not isinstance(body, Mapping):
        raise DSLError(p, "expected an aggregation object")
    subs = body.get("aggs", body.get("aggregations", {}))
    kinds = [k for k in body if k not in ("aggs", "aggregations", "meta")]
    if len(kinds) != 1:
        raise DSLError(p, f"expected exactly one aggregation type; supported: {supported()}")
    kind = kinds[0]
    if kind not in SUPPORTED_AGGREGATIONS:
        raise DSLError(f"{p}.{kind}", f"unsupported aggregation type; supported: {supported()}")
    return kind, body[kind], subs


def field_of(params: Any, p: str) -> str:
    if not isinstance(params, Mapping) or not isinstance(params.get("field"), str):
        raise DSLError(p, "expected {field: name}")
    if "script" in params:
        raise DSLError(f"{p}.script", "scripts are not supported")
    return str(params["field"])


def only(params: Any, allowed: set[str] | frozenset[str], p: str) -> None:
    if not isinstance(params, Mapping):
        raise DSLError(p, "expected an object")
    bad = sorted(set(params) - allowed)
    if bad:
        raise DSLError(f"{p}.{bad[0]}", f"unsupported parameter; supported: {', '.join(sorted(allowed))}")


def range_key_number(v: float, is_ts: bool) -> str:
    from cm_mcp.dsl.datemath import iso_ms

    return iso_ms(int(v)) if is_ts else str(float(v))


def date_hist_checks(params: Any, p: str) -> None:
    only(params, {"field", "fixed_interval", "calendar_interval", "interval", "min_doc_count", "extended_bounds",
                  "offset", "time_zone", "format", "keyed"}, p)  # fmt: skip
    if not is_timestamp(field_of(params, p)):
        raise DSLError(f"{p}.field", "date_histogram is supported on @timestamp only")
    if params.get("time_zone") not in UTC_ZONES:
        raise DSLError(f"{p}.time_zone", "only UTC is supported")
    if params.get("keyed"):
        raise DSLError(f"{p}.keyed", "keyed buckets are not supported")


def calendar_unit(params: Mapping[str, Any]) -> str | None:
    raw = params.get("calendar_interval", params.get("interval"))
    if (
        isinstance(raw, str)
        and raw in CALENDAR
        and ("calendar_interval" in params or raw[-1] in "Mqy" or raw.isalpha())
    ):
        return CALENDAR[raw][0]
    return None


def parse_duration(text: str, p: str) -> int:
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text.strip())
    if not m:
        raise DSLError(p, f"bad interval {text!r} (e.g. 30s, 5m, 1h, 1d)")
    return int(m.group(1)) * FIXED_UNITS[m.group(2)]


def fixed_interval(params: Mapping[str, Any], p: str) -> tuple[int, int]:
    """(interval ms, offset ms) of a date_histogram whose buckets have a fixed length."""
    offset = 0
    if "offset" in params:
        raw_off = str(params["offset"]).strip()
        sign = -1 if raw_off.startswith("-") else 1
        offset = sign * parse_duration(raw_off.lstrip("+-"), f"{p}.offset")
    if "fixed_interval" in params:
        return parse_duration(str(params["fixed_interval"]), f"{p}.fixed_interval"), offset
    key = "calendar_interval" if "calendar_interval" in params else "interval"
    raw = params.get(key)
    if raw is None:
        raise DSLError(p, "date_histogram needs fixed_interval or calendar_interval")
    if isinstance(raw, int):
        return raw, offset
    if raw in CALENDAR:
        unit, ms = CALENDAR[raw]
        if unit == "w":
            offset += WEEK_OFFSET
        return ms, offset
    if key == "calendar_interval":
        raise DSLError(
            f"{p}.calendar_interval", "calendar intervals are 1m, 1h, 1d, 1w, 1M, 1q, 1y (or names)"
        )
    return parse_duration(str(raw), f"{p}.interval"), offset


def range_bound(value: object, is_ts: bool, now: datetime, path: str) -> float | None:
    """A `range` aggregation's `from`/`to`: epoch ms for the timestamp (date math allowed), else a
    number (numeric strings too); None when absent."""
    if value is None:
        return None
    if is_ts:
        return float(parse_date(value, now=now, round_up=False, path=path))
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise DSLError(path, "expected a number")
    try:
        return float(value)
    except ValueError:
        raise DSLError(path, "expected a number") from None


def range_buckets(params: Any, now: datetime, p: str) -> tuple[str, bool, list[dict[str, Any]]]:
    """A `range` aggregation's field, whether it is the timestamp, and its output buckets in order:
    key, from, to (with from_as_string/to_as_string on the timestamp), doc_count left to the engine."""
    from cm_mcp.dsl.datemath import iso_ms

    only(params, {"field", "ranges", "keyed", "format"}, p)
    if params.get("keyed"):
        raise DSLError(f"{p}.keyed", "keyed ranges are not supported")
    field = field_of(params, p)
    is_ts = is_timestamp(field)
    ranges = params.get("ranges")
    if not isinstance(ranges, list) or not ranges:
        raise DSLError(f"{p}.ranges", "expected a non-empty list")
    buckets: list[dict[str, Any]] = []
    for i, item in enumerate(ranges):
        lo, hi = (range_bound(item.get(k), is_ts, now, f"{p}.ranges[{i}].{k}") for k in ("from", "to"))
        low = "*" if lo is None else range_key_number(lo, is_ts)
        high = "*" if hi is None else range_key_number(hi, is_ts)
        bucket: dict[str, Any] = {"key": item.get("key") or f"{low}-{high}"}
        if lo is not None:
            bucket["from"] = lo
            if is_ts:
                bucket["from_as_string"] = iso_ms(int(lo))
        if hi is not None:
            bucket["to"] = hi
            if is_ts:
                bucket["to_as_string"] = iso_ms(int(hi))
        buckets.append(bucket)
    return field, is_ts, buckets


def filters_buckets(params: Any, p: str) -> tuple[bool, list[tuple[str, Any]], str | None]:
    """A `filters` aggregation: whether its buckets are named, (key, filter) in order, and the
    other bucket's key when one is asked for."""
    if not isinstance(params, Mapping) or "filters" not in params:
        raise DSLError(f"{p}.filters", "expected {filters: {name: filter}} or {filters: [filter, ...]}")
    raw = params["filters"]
    named = isinstance(raw, Mapping)
    items = list(raw.items()) if isinstance(raw, Mapping) else list(enumerate(raw))
    other = (
        str(params.get("other_bucket_key", "_other_"))
        if params.get("other_bucket") or "other_bucket_key" in params
        else None
    )
    return named, [(str(key), item) for key, item in items], other


def top_hits_params(params: Any, p: str) -> tuple[int, Literal["asc", "desc"]]:
    """(size, order) of a `top_hits` aggregation; it sorts by @timestamp only (default newest first)."""
    params = params or {}
    only(params, {"size", "sort", "_source", "from"}, p)
    if params.get("from"):
        raise DSLError(f"{p}.from", "top_hits from is not supported")
    order: Literal["asc", "desc"] = "desc"
    sort = params.get("sort")
    if sort is not None:
        items = sort if isinstance(sort, list) else [sort]
        if len(items) != 1:
            raise DSLError(f"{p}.sort", "only one sort key (@timestamp) is supported")
        item = items[0]
        fname, spec = (item, "asc") if isinstance(item, str) else next(iter(item.items()))
        if not is_timestamp(fname):
            raise DSLError(f"{p}.sort", "top_hits sorts by @timestamp only")
        direction = spec.get("order", "asc") if isinstance(spec, Mapping) else spec
        order = "asc" if direction == "asc" else "desc"
    return int(params.get("size", 3)), order


def top_hits_result(params: Any, total: int, hits: list[dict[str, Any]]) -> dict[str, Any]:
    """A `top_hits` answer as OpenSearch shapes it, `_source` filtered as the parameters ask."""
    from cm_mcp.dsl.project import project

    src = (params or {}).get("_source", True)
    includes = src if isinstance(src, list) else (src.get("includes") if isinstance(src, Mapping) else None)
    for hit in hits:
        if src is False:
            hit.pop("_source", None)
        elif includes is not None:
            hit["_source"] = project(hit.get("_source") or {}, includes)
        hit.setdefault("_score", None)
    return {"hits": {"total": {"value": total, "relation": "eq"}, "max_score": None, "hits": hits}}
