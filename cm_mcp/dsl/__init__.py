"""The search engine shared by the sandbox and the local result store: OpenSearch filters and
aggregations over tantivy. Imports nothing from MCP or the sandbox."""

from cm_mcp.dsl.catalog import SUPPORTED_AGGREGATIONS, SUPPORTED_FILTERS, supported_aggregation_types
from cm_mcp.dsl.errors import DSLError
from cm_mcp.dsl.index import DocIndex
from cm_mcp.dsl.query import DocQuery

__all__ = [
    "SUPPORTED_AGGREGATIONS",
    "SUPPORTED_FILTERS",
    "DSLError",
    "DocIndex",
    "DocQuery",
    "supported_aggregation_types",
]
