"""Count series read out of aggregation answers: nested `terms` (the scope), a `terms` of levels or
states, a `date_histogram` on the triage's grid.

A scope is a tuple of (field, value) pairs in nesting order: (("atr.domain_name", "pay.example.com"),)
or (("log_group", "/aws/lambda/enrich"), ("tenant", "globex"), ("stage", "prod")). Histogram buckets
that OpenSearch leaves out (before the first record or after the last) are zeros here.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cm_mcp.triage.grid import Grid

Scope = tuple[tuple[str, str], ...]


def scope_text(scope: Scope) -> str:
    """`pay.example.com` or `/aws/lambda/enrich / globex / prod`: values only, in nesting order."""
    return " / ".join(value for _, value in scope)


def scope_filters(scope: Scope) -> list[dict[str, Any]]:
    return [{"term": {name: value}} for name, value in scope]


@dataclass
class Series:
    """Counts per grid bucket of one scope x one value of a split field (a level, a state...)."""

    scope: Scope
    split_field: str
    split: str
    counts: list[float]

    @property
    def filters(self) -> list[dict[str, Any]]:
        return [*scope_filters(self.scope), {"term": {self.split_field: self.split}}]

    @property
    def key(self) -> tuple[Scope, str]:
        return self.scope, self.split


def buckets_of(body: Any) -> list[Mapping[str, Any]]:
    raw = body.get("buckets") if isinstance(body, Mapping) else None
    if isinstance(raw, list):
        return [bucket for bucket in raw if isinstance(bucket, Mapping)]
    if isinstance(raw, Mapping):  # keyed buckets (`filters` answers)
        return [{**bucket, "key": key} for key, bucket in raw.items() if isinstance(bucket, Mapping)]
    return []


def count_of(body: Any) -> int:
    value = body.get("doc_count") if isinstance(body, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def other_of(body: Any) -> int:
    value = body.get("sum_other_doc_count") if isinstance(body, Mapping) else None
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def key_text(bucket: Mapping[str, Any]) -> str:
    return str(bucket.get("key"))


def histogram(grid: Grid, body: Any) -> list[float]:
    """A date_histogram answer as counts on `grid` (keys in epoch ms; missing buckets are 0)."""
    counts = [0.0] * grid.size
    for bucket in buckets_of(body):
        key = bucket.get("key")
        if not isinstance(key, int | float) or isinstance(key, bool):
            continue
        index = grid.index(int(key))
        if 0 <= index < grid.size:
            counts[index] += count_of(bucket)
    return counts


def nested(
    body: Any, names: Sequence[str], fields: Sequence[str]
) -> Iterator[tuple[Scope, Mapping[str, Any]]]:
    """(scope, innermost bucket) for every path through nested terms `names` (on `fields`)."""
    if not names:
        if isinstance(body, Mapping):
            yield (), body
        return
    node = body.get(names[0]) if isinstance(body, Mapping) else None
    for bucket in buckets_of(node):
        for inner_scope, inner in nested(bucket, names[1:], fields[1:]):
            yield ((fields[0], key_text(bucket)), *inner_scope), inner


def beyond_sizes(body: Any, names: Sequence[str]) -> int:
    """Records that nested terms `names` left out (their sum_other_doc_count, at every level)."""
    if not names or not isinstance(body, Mapping):
        return 0
    node = body.get(names[0])
    return other_of(node) + sum(beyond_sizes(bucket, names[1:]) for bucket in buckets_of(node))


def terms_counts(body: Any) -> list[tuple[str, int]]:
    """A terms answer as (key, count), most frequent first."""
    return [(key_text(bucket), count_of(bucket)) for bucket in buckets_of(body)]
