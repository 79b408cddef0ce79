"""The process's one in-memory DuckDB instance: every index reads and writes its Parquet files
through cursors of it, so the memory limit and the thread count hold for the process as a whole."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
import threading
from typing import Final

import duckdb

#: Worker threads of DuckDB: both cores of the machines we measure on (bench/engines.py); more buys
#: nothing there and would take the cores from the event loop and the summariser.
THREADS: Final = max(1, min(2, os.cpu_count() or 1))
#: DuckDB's memory limit for the process (it runs inside the MCP server); beyond it, builds spill to a
#: temporary directory. Peak RSS of a 1M-log export build: 297 / 350 / 491 MB with 256 / 512 / 768 MB,
#: 6% slower at 256; of the sandbox's first build: 272 MB at 256, 415 MB at 512, same speed.
MEMORY_LIMIT: Final = "256MB"

_DB: duckdb.DuckDBPyConnection | None = None
_GUARD = threading.Lock()


def cursor() -> duckdb.DuckDBPyConnection:
    """A new connection to the shared instance (one per operation: connections are not thread-safe)."""
    global _DB
    with _GUARD:
        if _DB is None:
            spill = tempfile.mkdtemp(prefix="cm-mcp-duckdb-")
            atexit.register(shutil.rmtree, spill, True)
            db = duckdb.connect(
                config={
                    "threads": THREADS,
                    "memory_limit": MEMORY_LIMIT,
                    "temp_directory": spill,
                    # Row order is document order (did), which parquet writes rely on.
                    "preserve_insertion_order": True,
                    "parquet_metadata_cache": True,
                    "autoinstall_known_extensions": False,
                    "autoload_known_extensions": True,
                }
            )
            _DB = db
        return _DB.cursor()
