"""What the DSL engine accepts, as plain constants (no tantivy import: request models reuse these)."""

from __future__ import annotations

from typing import Final

#: Filter (query) types accepted in a filter list; anything else raises `DSLError`.
SUPPORTED_FILTERS: Final = ("term", "terms", "range", "exists", "bool", "match", "match_phrase")

#: Aggregation types accepted; the ones tantivy lacks (filter, filters, missing, top_hits, calendar
#: month/quarter/year date_histogram) are emulated with extra queries.
SUPPORTED_AGGREGATIONS: Final = (
    "terms",
    "date_histogram",
    "histogram",
    "range",
    "filter",
    "filters",
    "missing",
    "avg",
    "min",
    "max",
    "sum",
    "value_count",
    "cardinality",
    "stats",
    "extended_stats",
    "percentiles",
    "top_hits",
)


def supported_aggregation_types() -> tuple[str, ...]:
    return SUPPORTED_AGGREGATIONS


def supported_filter_types() -> tuple[str, ...]:
    return SUPPORTED_FILTERS
