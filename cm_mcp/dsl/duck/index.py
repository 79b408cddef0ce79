"""`DuckIndex`: OpenSearch hits in Parquet segments queried by DuckDB, with the `DocIndex` interface
(add / add_lines / add_files, count, search with a cursor, aggregate) and the same answers."""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import tempfile
import weakref
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final, Literal, TypeVar

import duckdb

from cm_mcp.dsl.duck import segments as sg
from cm_mcp.dsl.duck.aggs import AggRunner
from cm_mcp.dsl.duck.conn import cursor
from cm_mcp.dsl.duck.filters import FilterCompiler, all_of
from cm_mcp.dsl.duck.load import Loader
from cm_mcp.dsl.duck.source import SourceFile, prepare_line
from cm_mcp.dsl.duck.structure import Resolved, quote
from cm_mcp.dsl.duck.values import Ctx
from cm_mcp.dsl.errors import DSLError
from cm_mcp.dsl.project import project
from cm_mcp.dsl.spec import (
    MAX_TOKEN_BYTES,
    TOKEN_RE,
    Order,
    QueryLike,
    as_doc_query,
    decode_cursor,
    encode_cursor,
)

T = TypeVar("T")
#: Lines per pending file of `add`/`add_lines` (see `_Pending`).
PENDING_FILE_LINES: Final = 50_000

#: The tantivy engine's marker file: a directory holding it is an index of the other engine.
_TANTIVY_MARKER = "cm-dsl-schema.json"


class DuckIndex:
    """Hits in Parquet segments under `path` (a private temporary directory when None).

    Writes go to a pending file until `commit` (each `add` commits unless told not to) and become one
    segment; reads see committed segments only. Not thread-safe for writes.
    """

    engine = "duckdb"

    def __init__(self, path: str | Path | None = None) -> None:
        if path is None:
            temp = tempfile.mkdtemp(prefix="cm-duck-index-")
            weakref.finalize(self, shutil.rmtree, temp, True)
            path = temp
        self.path = Path(path)
        self.path.mkdir(parents=True, exist_ok=True)
        if (self.path / _TANTIVY_MARKER).exists():
            raise DSLError(
                "index", f"{self.path} was built by another engine (tantivy); delete it and rebuild it"
            )
        try:
            self.manifest = sg.read_manifest(self.path) or sg.Manifest()
        except (ValueError, KeyError, TypeError) as exc:
            raise DSLError(
                "index",
                f"{self.path} was built by another version of the engine ({exc}); delete the directory and rebuild it",
            ) from None
        self._pending = _Pending(self.path)

    # -- writing ------------------------------------------------------------------------------------
    def add(self, hits: Iterable[Mapping[str, Any]], *, commit: bool = True) -> int:
        """Index hits ({_index, _id, _source}); returns how many were added."""
        write = self._pending.write
        n = 0
        for hit in hits:
            write(prepare_line(hit))
            n += 1
        if commit:
            self.commit()
        return n

    def add_lines(
        self, records: Iterable[tuple[bytes | None, Mapping[str, Any]]], *, commit: bool = True
    ) -> int:
        """Index hits read from files: (the hit's JSON text as stored, or None; the parsed hit)."""
        write = self._pending.write
        n = 0
        for raw, hit in records:
            write(prepare_line(hit, raw))
            n += 1
        if commit:
            self.commit()
        return n

    def add_files(
        self,
        files: Sequence[SourceFile],
        *,
        dedup: bool = False,
        on_progress: Callable[[int], None] | None = None,
        between_files: Callable[[], None] | None = None,
    ) -> int:
        """Index every record of `files` (the first of each `_id` when `dedup`), read by DuckDB itself;
        returns how many were added. `on_progress` gets the running count after each file;
        `between_files` runs before each (it may wait, or raise to stop the build)."""
        self.commit()
        with self._session() as cur:
            added = Loader(cur, self.path, self.manifest).add(
                files, dedup=dedup, on_progress=on_progress, between_files=between_files
            )
        sg.write_manifest(self.path, self.manifest)
        return added

    def commit(self) -> None:
        files = self._pending.take()
        try:
            if files:
                with self._session() as cur:
                    Loader(cur, self.path, self.manifest).add([SourceFile(p, prepared=True) for p in files])
                sg.write_manifest(self.path, self.manifest)
        finally:
            for path in files:
                path.unlink(missing_ok=True)

    def close(self) -> None:
        """Commit; an index without documents still gets its manifest (it is an index of this engine)."""
        self.commit()
        if not (self.path / sg.MANIFEST).exists():
            sg.write_manifest(self.path, self.manifest)

    def __enter__(self) -> DuckIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return self.manifest.count

    # -- reading ------------------------------------------------------------------------------------
    def count(self, query: QueryLike = None, *, now: datetime | None = None) -> int:
        def run(cur: duckdb.DuckDBPyConnection) -> int:
            where = self._compiler(cur, query, now)[1]
            row = cur.execute(f"SELECT count(*) FROM docs d WHERE {where}").fetchone()
            return int(row[0]) if row else 0

        return self._read(run)

    def search(
        self,
        query: QueryLike = None,
        size: int = 100,
        *,
        after: str | None = None,
        fields: Sequence[str] | None = None,
        order: Order = "asc",
        now: datetime | None = None,
    ) -> tuple[list[dict[str, Any]], str | None]:
        """One page of hits ordered by (@timestamp, _id); pass the returned cursor as `after`. The
        cursor holds values, so it survives reopening; it is None when the page came back short."""
        if size <= 0:
            raise DSLError("size", "must be positive")
        position = decode_cursor(after) if after else None

        def run(cur: duckdb.DuckDBPyConnection) -> tuple[list[dict[str, Any]], str | None]:
            where = self._compiler(cur, query, now)[1]
            direction = "ASC" if order == "asc" else "DESC"
            if position is not None:
                ts, doc_id = position
                beyond = ">" if order == "asc" else "<"
                # the plain bound first: a filter Parquet row-group statistics can skip groups with
                after_ts = f"d.ts {beyond}= {ts}"
                tie = f"(d.ts {beyond} {ts} OR d.id {beyond} {quote(doc_id)})"
                where = all_of([where, after_ts, tie])
            rows = cur.execute(
                f"SELECT d.did, d.ts, d.id FROM docs d WHERE {where} "
                f"ORDER BY d.ts {direction}, d.id {direction} LIMIT {size}"
            ).fetchall()
            hits = _load(cur, [r[0] for r in rows])
            cursor_out = encode_cursor(rows[-1][1], rows[-1][2]) if len(rows) == size else None
            return hits, cursor_out

        hits, next_cursor = self._read(run)
        if fields is not None:
            hits = [{**h, "_source": project(h.get("_source") or {}, fields)} for h in hits]
        return hits, next_cursor

    def aggregate(
        self, query: QueryLike, aggs: Mapping[str, Any], *, now: datetime | None = None
    ) -> dict[str, Any]:
        def run(cur: duckdb.DuckDBPyConnection) -> dict[str, Any]:
            compiler, where = self._compiler(cur, query, now)
            return AggRunner(cur, compiler, lambda ctx, size, order: _top_hits(cur, ctx, size, order)).run(
                where, aggs
            )

        return self._read(run)

    # -- internals ----------------------------------------------------------------------------------
    def _compiler(
        self, cur: duckdb.DuckDBPyConnection, query: QueryLike, now: datetime | None
    ) -> tuple[FilterCompiler, str]:
        q = as_doc_query(query)
        compiler = FilterCompiler(
            self.manifest.structure,
            now or q.now,
            sloppy=lambda field, tokens, slop, where: _sloppy_phrase(cur, field, tokens, slop, where),
        )
        return compiler, compiler.build(q)

    @contextlib.contextmanager
    def _session(self) -> Iterator[duckdb.DuckDBPyConnection]:
        cur = cursor()
        try:
            cur.execute(
                f"CREATE OR REPLACE TEMP VIEW docs AS SELECT * FROM {sg.docs_relation(self.path, self.manifest)}"
            )
            cur.execute(
                f"CREATE OR REPLACE TEMP VIEW leaves AS SELECT * FROM {sg.leaves_relation(self.path, self.manifest)}"
            )
            cur.execute(
                f"CREATE OR REPLACE TEMP VIEW hits AS SELECT * FROM {sg.hits_relation(self.path, self.manifest)}"
            )
            yield cur
        finally:
            cur.close()

    def _read(self, run: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
        """`run` in a session on the current manifest; once more on a newer one if a file it listed
        has gone meanwhile (another process restructured the index)."""
        self._refresh()
        try:
            with self._session() as cur:
                return run(cur)
        except duckdb.IOException:
            before = self.manifest
            self._refresh()
            if self.manifest is before:
                raise
            with self._session() as cur:
                return run(cur)

    def _refresh(self) -> None:
        try:
            found = sg.read_manifest(self.path)
        except (ValueError, KeyError, TypeError):
            return
        if found is not None and found != self.manifest:
            self.manifest = found


class _Pending:
    """Lines added but not committed yet, in files of at most PENDING_FILE_LINES lines: DuckDB reads
    two files at a time (one thread each), so a large `add` loads on both cores."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.files: list[Path] = []
        self._out: IO[bytes] | None = None
        self._lines = 0

    def write(self, line: bytes) -> None:
        if self._out is None or self._lines >= PENDING_FILE_LINES:
            self._rotate()
        assert self._out is not None
        self._out.write(line)
        self._lines += 1

    def _rotate(self) -> None:
        if self._out is not None:
            self._out.close()
        path = self.folder / f".pending-{secrets.token_hex(4)}.ndjson"
        self._out = open(path, "wb")  # noqa: SIM115 - closed by _rotate() or take()
        self.files.append(path)
        self._lines = 0

    def take(self) -> list[Path]:
        """The pending files, closed; the next write starts a new one."""
        if self._out is not None:
            self._out.close()
            self._out = None
        files, self.files = self.files, []
        return files


def _load(cur: duckdb.DuckDBPyConnection, dids: list[int]) -> list[dict[str, Any]]:
    """The hits of `dids`, in that order (a second, narrow read: only these rows' `raw`)."""
    if not dids:
        return []
    rows = dict(
        cur.execute(f"SELECT did, raw FROM hits WHERE did IN ({', '.join(map(str, dids))})").fetchall()
    )
    return [json.loads(rows[d]) for d in dids]


def _top_hits(
    cur: duckdb.DuckDBPyConnection, ctx: Ctx, size: int, order: Literal["asc", "desc"]
) -> dict[int, tuple[int, list[dict[str, Any]]]]:
    direction = "ASC" if order == "asc" else "DESC"
    totals = dict(cur.execute(f"SELECT d.g, count(*) FROM {ctx.rows()} GROUP BY d.g").fetchall())
    picked: list[tuple[int, int]] = []
    if size > 0 and totals:
        picked = cur.execute(
            f"SELECT g, did FROM (SELECT d.g, d.did, row_number() OVER (PARTITION BY d.g ORDER BY d.ts {direction}, "
            f"d.id {direction}) AS rn FROM {ctx.rows()}) WHERE rn <= {size} ORDER BY g, rn"
        ).fetchall()
    hits = dict(zip([d for _, d in picked], _load(cur, [d for _, d in picked]), strict=True))
    out: dict[int, tuple[int, list[dict[str, Any]]]] = {}
    for g, total in totals.items():
        out[g] = (int(total), [hits[d] for gg, d in picked if gg == g])
    return out


def _sloppy_phrase(
    cur: duckdb.DuckDBPyConnection, field: Resolved, tokens: list[str], slop: int, where: str
) -> list[int]:
    """Documents whose field has a value with `tokens` in order within `slop` positions (tantivy's
    sloppy phrase), checked here in Python on the documents that have every token."""
    parts = []
    for column in field.columns:
        if column.type == "VARCHAR":
            value = f"unnest({column.expr})" if column.many else column.expr
            parts.append(f"SELECT d.did, {value} AS v FROM docs d WHERE {where}")
    if field.loose:
        parts.append(
            f"SELECT l.did, l.s AS v FROM leaves l WHERE l.path = {quote(field.path)} AND l.s IS NOT NULL "
            f"AND l.did IN (SELECT d.did FROM docs d WHERE {where})"
        )
    if not parts:
        return []
    found = set()
    for did, text in cur.execute(" UNION ALL ".join(parts)).fetchall():
        if did not in found and isinstance(text, str) and phrase_within(text, tokens, slop):
            found.add(did)
    return sorted(found)


def phrase_within(text: str, tokens: list[str], slop: int) -> bool:
    """tantivy's phrase match with slop: each term's positions shifted back by its place in the
    phrase, consecutive terms then at most `slop` apart (either way)."""
    positions: dict[str, list[int]] = {}
    for pos, run in enumerate(TOKEN_RE.findall(text)):
        token = run.lower()
        if len(token.encode()) < MAX_TOKEN_BYTES:
            positions.setdefault(token, []).append(pos)
    left = list(positions.get(tokens[0], []))
    for offset, token in enumerate(tokens[1:], start=1):
        right = [p - offset for p in positions.get(token, [])]
        left = _slop_intersect(left, right, slop)
        if not left:
            return False
    return bool(left)


def _slop_intersect(left: list[int], right: list[int], slop: int) -> list[int]:
    out: list[int] = []
    li = ri = 0
    while li < len(left) and ri < len(right):
        lv, rv = left[li], right[ri]
        if abs(lv - rv) <= slop:
            while li + 1 < len(left) and left[li + 1] <= rv:
                li += 1
            out.append(rv)
            li += 1
            ri += 1
        elif lv < rv:
            li += 1
        else:
            ri += 1
    return out
