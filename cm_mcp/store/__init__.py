"""Local results: export files and scroll pages on disk plus a search index, so follow-up searches and
aggregations cost no API quota. No MCP imports."""

from cm_mcp.store.builder import ResultBuilder
from cm_mcp.store.errors import ResultEvicted, ResultEvictedError, ResultNotFoundError, StoreError
from cm_mcp.store.models import FailedPartition, IndexState, ResultInfo, SearchPage, StoredFile
from cm_mcp.store.store import DEFAULT_MAX_AGE, DEFAULT_MAX_BYTES, ResultStore

__all__ = [
    "DEFAULT_MAX_AGE",
    "DEFAULT_MAX_BYTES",
    "FailedPartition",
    "IndexState",
    "ResultBuilder",
    "ResultEvicted",
    "ResultEvictedError",
    "ResultInfo",
    "ResultNotFoundError",
    "ResultStore",
    "SearchPage",
    "StoreError",
    "StoredFile",
]
