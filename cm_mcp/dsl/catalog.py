"""What the DSL engine accepts: the API's documented catalogue (`api/querydsl.py`, one source of
truth) plus `top_hits`, which the engine runs for the local store but the request models do not
offer (its hits would bypass the summaries).

Types tantivy lacks (filter, filters, missing, top_hits, calendar month/quarter/year date_histogram)
are emulated with extra queries; see `aggs.py`.
"""

from __future__ import annotations

from typing import Final

from cm_mcp.api import querydsl

#: Filter (query) types accepted in a filter list; anything else raises `DSLError`.
SUPPORTED_FILTERS: Final = querydsl.SUPPORTED_FILTERS

#: Aggregation types the engine runs.
SUPPORTED_AGGREGATIONS: Final = (*querydsl.SUPPORTED_AGGREGATIONS, "top_hits")


def supported_aggregation_types() -> tuple[str, ...]:
    return SUPPORTED_AGGREGATIONS
