"""The search engine shared by the sandbox and the local result store: OpenSearch filters and
aggregations over DuckDB (Parquet segments; `DuckIndex`) or tantivy (`DocIndex`), with the same
answers. Imports nothing from MCP or the sandbox."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from cm_mcp.dsl.catalog import SUPPORTED_AGGREGATIONS, SUPPORTED_FILTERS, supported_aggregation_types
from cm_mcp.dsl.engine import DEFAULT_ENGINE, ENGINES, Engine, SearchIndex, default_engine, open_index
from cm_mcp.dsl.errors import DSLError
from cm_mcp.dsl.spec import DocQuery

if TYPE_CHECKING:
    from cm_mcp.dsl.duck.index import DuckIndex
    from cm_mcp.dsl.index import DocIndex

__all__ = [
    "DEFAULT_ENGINE",
    "ENGINES",
    "SUPPORTED_AGGREGATIONS",
    "SUPPORTED_FILTERS",
    "DSLError",
    "DocIndex",
    "DocQuery",
    "DuckIndex",
    "Engine",
    "SearchIndex",
    "default_engine",
    "open_index",
    "supported_aggregation_types",
]


def __getattr__(name: str) -> Any:
    # Each engine is imported when first used: a command pays only for the engine it runs.
    if name == "DocIndex":
        from cm_mcp.dsl.index import DocIndex

        return DocIndex
    if name == "DuckIndex":
        from cm_mcp.dsl.duck.index import DuckIndex

        return DuckIndex
    raise AttributeError(name)
