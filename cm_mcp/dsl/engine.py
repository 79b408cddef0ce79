"""Which engine answers the DSL, and the interface both implement.

DuckDB (`DuckIndex`: Parquet segments) is the default for the result store and the sandbox; tantivy
(`DocIndex`) is kept as the reference the DuckDB engine is tested against (tests/test_dsl_engine.py
runs every oracle test on both) and as the baseline of the benchmarks. The numbers behind the choice
are in bench/engines.py and the README.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, Final, Literal, Protocol

from cm_mcp.dsl.spec import Order, QueryLike

Engine = Literal["duckdb", "tantivy"]
ENGINES: Final[tuple[Engine, ...]] = ("duckdb", "tantivy")
DEFAULT_ENGINE: Final[Engine] = "duckdb"


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


def open_index(path: str | Path | None = None, *, engine: Engine = DEFAULT_ENGINE) -> SearchIndex:
    """A new or existing index of `engine` at `path` (in memory / a private temporary directory when
    None). DSLError when `path` holds an index of another engine or version."""
    if engine == "duckdb":
        from cm_mcp.dsl.duck.index import DuckIndex

        return DuckIndex(path)
    from cm_mcp.dsl.index import DocIndex

    return DocIndex(path)
