"""Which engine answers the DSL, and the interface both implement.

DuckDB (`DuckIndex`: Parquet segments) is the default for the result store and the sandbox; tantivy
(`DocIndex`) is kept as the reference the DuckDB engine is tested against (tests/test_dsl_engine.py
runs every oracle test on both) and as the baseline of the benchmarks. The numbers behind the choice
are in bench/engines.py and the README.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from cm_mcp.dsl.spec import Order, QueryLike

Engine = Literal["duckdb", "tantivy"]
ENGINES: Final[tuple[Engine, ...]] = ("duckdb", "tantivy")
DEFAULT_ENGINE: Final[Engine] = "duckdb"
#: Environment variable naming the engine of indexes opened without one: "duckdb" (the default) or
#: "tantivy" (the previous engine, same answers; kept to compare against). Subprocesses inherit it.
ENGINE_ENV: Final = "CM_INDEX_ENGINE"

#: tantivy writer threads: tantivy indexes in these while the Python thread prepares the next documents
#: (the writer releases the GIL); more than two buys nothing on the 2-core machines we measure on.
INDEX_THREADS: Final = max(1, min(2, os.cpu_count() or 1))
#: tantivy writer memory for bulk builds (the sandbox's indexes, exports): 64 MB with 2 threads indexed
#: the sandbox's documents fastest (bench/dsl.py: ~58k docs/s vs ~52k at 32 MB and ~56k at 128 MB).
BULK_HEAP_BYTES: Final = 64_000_000
#: The least tantivy accepts per writer thread (15 MB); its hash table is sized from the heap up front,
#: so a small batch (one scroll page) is added faster with the minimum than with a bulk heap.
SMALL_HEAP_BYTES: Final = 15_000_000
#: What each engine leaves in an index directory, by which `engine_of` recognises it.
_MARKERS: Final[dict[str, Engine]] = {"cm-duck-manifest.json": "duckdb", "cm-dsl-schema.json": "tantivy"}


class SearchIndex(Protocol):
    """What the store and the sandbox use of an index."""

    @property
    def path(self) -> Path | None: ...

    def add(self, hits: Iterable[Mapping[str, Any]], *, commit: bool = True) -> int: ...

    def add_lines(
        self, records: Iterable[tuple[bytes | None, Mapping[str, Any]]], *, commit: bool = True
    ) -> int: ...

    def commit(self) -> None: ...

    def close(self) -> None: ...

    def __len__(self) -> int: ...

    def count(self, query: QueryLike = None, *, now: datetime | None = None) -> int: ...

    def search(
        self,
        query: QueryLike = None,
        size: int = 100,
        *,
        after: str | None = None,
        fields: Sequence[str] | None = None,
        order: Order = "asc",
        now: datetime | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]: ...

    def aggregate(
        self, query: QueryLike, aggs: Mapping[str, Any], *, now: datetime | None = None
    ) -> dict[str, Any]: ...


def default_engine() -> Engine:
    """The engine named by CM_INDEX_ENGINE, else DuckDB."""
    chosen = os.environ.get(ENGINE_ENV) or DEFAULT_ENGINE
    if chosen == "tantivy":
        return "tantivy"
    if chosen != "duckdb":
        from cm_mcp.dsl.errors import DSLError

        raise DSLError(ENGINE_ENV, f"{chosen!r} is not an engine; use one of {', '.join(ENGINES)}")
    return "duckdb"


def open_index(
    path: str | Path | None = None,
    *,
    engine: Engine | None = None,
    heap_size: int = BULK_HEAP_BYTES,
    num_threads: int = INDEX_THREADS,
) -> SearchIndex:
    """A new or existing index of `engine` at `path` (in memory / a private temporary directory when
    None); `engine` defaults to `default_engine()`. DSLError when `path` holds an index of another
    engine or version. `heap_size` and `num_threads` size tantivy's writer (DuckDB's limits are
    process-wide: dsl/duck/conn.py)."""
    if (engine or default_engine()) == "duckdb":
        from cm_mcp.dsl.duck.index import DuckIndex

        return DuckIndex(path)
    try:
        from cm_mcp.dsl.index import DocIndex
    except ImportError:
        from cm_mcp.dsl.errors import DSLError

        raise DSLError(
            "engine", "tantivy is not installed (pip install 'cm-mcp[tantivy]'); the default engine is duckdb"
        ) from None
    return DocIndex(path, heap_size=heap_size, num_threads=num_threads)


def engine_of(path: Path) -> Engine | None:
    """The engine whose index is in directory `path`, None when there is none."""
    for marker, engine in _MARKERS.items():
        if (path / marker).exists():
            return engine
    return None
