"""Summaries of OpenSearch aggregation responses (see `summarize_aggs`).

Counts are never lost: terms buckets dropped for the budget go into "other" together with
`sum_other_doc_count`, and histogram buckets are merged (summed) rather than dropped.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .budget import clamp_budget, fit, fits
from .models import AggSection, AggsSummary, Bucket, Gap, Omitted, Rise
from .text import to_text

_METRIC_KEYS = ("value", "values", "count", "min", "max", "avg", "sum", "std_deviation", "sum_of_squares")
_BUCKET_KINDS = ("terms", "multi_terms", "significant_terms", "rare_terms", "filters", "range", "date_range")
_HISTOGRAMS = ("date_histogram", "histogram", "auto_date_histogram")


@dataclass(frozen=True)
class _Shape:
    top: int  # buckets shown per terms agg
    histogram: int  # max histogram buckets shown (merged beyond)
    extras: int  # peaks / gaps / rises listed
    rows: int  # flattened rows shown


_SHAPES = [
    _Shape(20, 48, 5, 30),
    _Shape(10, 48, 3, 20),
    _Shape(10, 24, 3, 12),
    _Shape(5, 24, 3, 8),
    _Shape(5, 12, 2, 5),
    _Shape(3, 8, 1, 3),
    _Shape(1, 4, 1, 1),
    _Shape(0, 2, 0, 0),
]


def _request_kind(request: Mapping[str, Any] | None) -> str | None:
    if not request:
        return None
    for key in request:
        if key not in ("aggs", "aggregations", "meta"):
            return str(key)
    return None


def _sub_requests(request: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if not request:
        return {}
    sub = request.get("aggs") or request.get("aggregations") or {}
    return sub if isinstance(sub, Mapping) else {}


def _kind(body: Mapping[str, Any], request: Mapping[str, Any] | None) -> str:
    requested = _request_kind(request)
    if requested:
        if requested in _HISTOGRAMS:
            return "date_histogram" if requested != "histogram" else "histogram"
        if "buckets" in body:
            return "terms"
        if "doc_count" in body:
            return "single_bucket"
        return "metric"
    buckets = body.get("buckets")
    if buckets is not None:
        if (
            isinstance(buckets, list)
            and buckets
            and "key_as_string" in buckets[0]
            and isinstance(buckets[0].get("key"), int | float)
            and "sum_other_doc_count" not in body
        ):
            return "date_histogram"
        return "terms"
    if "doc_count" in body:
        return "single_bucket"
    return "metric"


def _sub_aggs(body: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """Sub-aggregations of a bucket: every other key whose value is an object."""
    return {k: v for k, v in body.items() if isinstance(v, Mapping) and k != "meta" and not k.startswith("_")}


def _bucket_list(body: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    buckets = body.get("buckets") or []
    if isinstance(buckets, Mapping):  # keyed responses (filters, keyed ranges)
        return [{"key": k, **v} for k, v in buckets.items()]
    return list(buckets)


def _key(bucket: Mapping[str, Any]) -> str:
    if "key_as_string" in bucket:
        return to_text(bucket["key_as_string"])
    key = bucket.get("key")
    if isinstance(key, list):  # multi_terms
        return "|".join(to_text(k) for k in key)
    return to_text(key)


def _metric_values(body: Mapping[str, Any]) -> dict[str, float | int | str | None]:
    values: dict[str, float | int | str | None] = {}
    for key in _METRIC_KEYS:
        if key not in body:
            continue
        value = body[key]
        if isinstance(value, Mapping):  # percentiles: {"values": {"50.0": 12.3, ...}}
            for pct, v in value.items():
                values[f"p{pct}"] = v if isinstance(v, int | float) or v is None else to_text(v)
        elif isinstance(value, int | float | str) or value is None:
            values[key] = value
    if "value_as_string" in body and "value" not in values:
        values["value"] = to_text(body["value_as_string"])
    return values


def _is_metric(body: Mapping[str, Any]) -> bool:
    return "buckets" not in body and "doc_count" not in body


def _bucket_metrics(bucket: Mapping[str, Any]) -> dict[str, float | int | str | None]:
    metrics: dict[str, float | int | str | None] = {}
    for name, sub in _sub_aggs(bucket).items():
        if _is_metric(sub):
            for k, v in _metric_values(sub).items():
                metrics[name if k == "value" else f"{name}.{k}"] = v
    return metrics


def _has_bucket_children(buckets: Sequence[Mapping[str, Any]]) -> bool:
    return any(not _is_metric(sub) for b in buckets for sub in _sub_aggs(b).values())


def _flatten(name: str, buckets: Sequence[Mapping[str, Any]], prefix: str = "") -> list[Bucket]:
    """Rows for nested bucket aggs: the path of keys down to each leaf bucket, with leaf metrics."""
    rows: list[Bucket] = []
    for bucket in buckets:
        path = f"{prefix}{name}={_key(bucket)}"
        children = {n: s for n, s in _sub_aggs(bucket).items() if not _is_metric(s) and "buckets" in s}
        if not children:
            rows.append(
                Bucket(key=path, count=int(bucket.get("doc_count", 0)), metrics=_bucket_metrics(bucket))
            )
            continue
        for child_name, child in children.items():
            rows.extend(_flatten(child_name, _bucket_list(child), prefix=f"{path} > "))
    return rows


def _terms(name: str, body: Mapping[str, Any], shape: _Shape, total_documents: int | None) -> AggSection:
    buckets = _bucket_list(body)
    sum_other = int(body.get("sum_other_doc_count", 0) or 0)
    counts = [int(b.get("doc_count", 0)) for b in buckets]
    total = sum(counts) + sum_other
    if _has_bucket_children(buckets):
        rows = sorted(_flatten(name, buckets), key=lambda r: -r.count)
        shown = rows[: shape.rows]
        return AggSection(
            name=name,
            kind="rows",
            buckets=shown,
            buckets_omitted=len(rows) - len(shown),
            other=sum(r.count for r in rows[shape.rows :]) + sum_other,
            sum_other_doc_count=sum_other,
            total=sum(r.count for r in rows) + sum_other,
            note="rows are leaf buckets of nested aggregations; a row's count is its leaf doc_count",
        )
    ranked = sorted(range(len(buckets)), key=lambda i: -counts[i])
    keep = ranked[: shape.top]
    shown = [Bucket(key=_key(buckets[i]), count=counts[i], metrics=_bucket_metrics(buckets[i])) for i in keep]
    dropped = sum(counts[i] for i in ranked[shape.top :])
    note = None
    if total_documents is not None and total != total_documents and name:
        missing = total_documents - total
        if missing > 0:
            note = f"buckets add up to {total:,} of {total_documents:,} documents: {missing:,} lack the field"
        elif missing < 0:
            note = (
                f"buckets add up to {total:,}, more than {total_documents:,} documents (multi-valued field)"
            )
    return AggSection(
        name=name,
        kind="terms",
        buckets=shown,
        other=dropped + sum_other,
        buckets_omitted=len(buckets) - len(shown),
        sum_other_doc_count=sum_other,
        total=total,
        note=note,
    )


def _histogram(name: str, kind: str, body: Mapping[str, Any], shape: _Shape) -> AggSection:
    raw = sorted(_bucket_list(body), key=lambda b: float(b.get("key", 0) or 0))
    points = [
        Bucket(
            key=_key(b),
            count=int(b.get("doc_count", 0)),
            key_ms=_as_int(b.get("key")),
            metrics=_bucket_metrics(b),
        )
        for b in raw
    ]
    step = _interval_ms(points)
    interval = _duration_ms(step) if step else None
    factor = max(1, math.ceil(len(points) / shape.histogram)) if shape.histogram else len(points) or 1
    merged = points
    if factor > 1:
        merged = []
        for start in range(0, len(points), factor):
            chunk = points[start : start + factor]
            merged.append(Bucket(key=chunk[0].key, key_ms=chunk[0].key_ms, count=sum(p.count for p in chunk)))
    peaks = (
        sorted((p for p in points if p.count), key=lambda p: -p.count)[: shape.extras] if factor > 1 else []
    )
    rises = sorted(
        (
            Rise(at=cur.key, previous=prev.count, count=cur.count, increase=cur.count - prev.count)
            for prev, cur in itertools.pairwise(points)
            if cur.count > prev.count
        ),
        key=lambda r: -r.increase,
    )[: shape.extras]
    return AggSection(
        name=name,
        kind=kind,
        buckets=merged,
        total=sum(p.count for p in points),
        interval=interval if factor == 1 else f"{interval} merged to {_duration_ms(step * factor)}",
        merged=factor,
        buckets_omitted=len(points) - len(merged),
        peaks=peaks,
        gaps=_gaps(points)[: shape.extras],
        rises=rises,
    )


def _as_int(value: Any) -> int | None:
    return int(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def _interval_ms(points: Sequence[Bucket]) -> int:
    keys = [p.key_ms for p in points if p.key_ms is not None]
    steps = [b - a for a, b in itertools.pairwise(keys) if b > a]
    return min(steps) if steps else 0


def _duration_ms(ms: int) -> str:
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("m", 60_000), ("s", 1000)):
        if ms >= size and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def _gaps(points: Sequence[Bucket]) -> list[Gap]:
    """Runs of empty buckets, longest first."""
    gaps: list[Gap] = []
    start = None
    for i, p in enumerate([*points, Bucket(key="", count=1)]):
        if p.count == 0 and start is None:
            start = i
        elif p.count != 0 and start is not None:
            gaps.append(Gap(start=points[start].key, end=points[i - 1].key, buckets=i - start))
            start = None
    return sorted(gaps, key=lambda g: -g.buckets)


def _section(
    name: str, body: Mapping[str, Any], request: Mapping[str, Any] | None, shape: _Shape, total: int | None
) -> AggSection:
    kind = _kind(body, request)
    if kind in ("date_histogram", "histogram"):
        return _histogram(name, kind, body, shape)
    if kind == "terms":
        return _terms(name, body, shape, total)
    if kind == "single_bucket":
        count = int(body.get("doc_count", 0))
        subs = _sub_requests(request)
        children = [
            _section(child, sub, subs.get(child), shape, count) for child, sub in _sub_aggs(body).items()
        ]
        return AggSection(name=name, kind="single_bucket", count=count, total=count, children=children)
    return AggSection(name=name, kind="metric", values=_metric_values(body))


def summarize_aggs(
    aggregations: Mapping[str, Any],
    *,
    total_documents: int | None,
    max_tokens: int = 4000,
    request_aggs: Mapping[str, Any] | None = None,
) -> AggsSummary:
    """Summarise an OpenSearch `aggregations` response within `max_tokens` when rendered.

    `request_aggs` (the request's "aggs" object) disambiguates shapes; without it they are inferred.
    """
    from .render import render_aggs

    budget = clamp_budget(max_tokens)
    requests = request_aggs or {}

    def build(shape: _Shape) -> AggsSummary:
        sections = [
            _section(name, body, requests.get(name), shape, total_documents)
            for name, body in aggregations.items()
            if isinstance(body, Mapping)
        ]
        folded = sum(s.buckets_omitted for s in _walk(sections))
        return AggsSummary(
            max_tokens=budget,
            total_documents=total_documents,
            sections=sections,
            omitted=Omitted(
                records=folded,
                how_to_get_more="ask for a narrower time range, a filter on one key, or a smaller interval",
            ),
        )

    summary, text = fit(_SHAPES, build, render_aggs, budget)
    # Last resort (hundreds of aggregations): drop whole sections, counting them as omitted.
    while not fits(text, budget, summary.structured_json()) and summary.sections:
        summary.sections.pop()
        summary.omitted.templates += 1
        text = render_aggs(summary)
    return summary


def _walk(sections: Sequence[AggSection]) -> list[AggSection]:
    out: list[AggSection] = []
    for s in sections:
        out.append(s)
        out.extend(_walk(s.children))
    return out
