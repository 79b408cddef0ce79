"""Files of hits into Parquet segments, entirely inside DuckDB (no per-document Python).

Per file, two passes of DuckDB's own JSON reader: `json_structure` of every record (merged into the
index's structure, see structure.py), then `json_transform` of each record into the typed row written
to the segment. A file DuckDB cannot take as it is (bare documents or non-string ids, which need the
store's normalisation; a record count other than the verified one; anything DuckDB fails to parse) is
read through its `fallback` instead: the store's own reader, one prepared line per record.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import secrets
from collections.abc import Callable, Collection, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import duckdb

from cm_mcp.dsl.duck import segments as sg
from cm_mcp.dsl.duck.source import WRAP_KEY, SourceFile
from cm_mcp.dsl.duck.structure import (
    INTEGERS,
    JSON,
    Structure,
    json_nodes,
    merge,
    normalise,
    quote,
    relative_path,
    source_structure,
)
from cm_mcp.dsl.errors import DSLError
from cm_mcp.dsl.spec import MISSING_TS, timestamp_value_ms

logger = logging.getLogger("cm_mcp.dsl")

_WRAPPED_PATH: Final = quote(f'$."{WRAP_KEY}"')
#: The timestamp shape DuckDB converts itself; any other value is converted by Python, once per value.
_STRICT_TS: Final = r"\d{4}-\d{2}-\d{2}T([01]\d|2[0-3]):[0-5]\d:[0-5]\d\.\d{3}Z"
_I64: Final = (-(2**63), 2**63 - 1)
#: Files read per statement: two gzip files keep both cores busy (bench/engines.py); more makes
#: progress coarser (the build reports after each statement) and gains nothing on two cores.
FILES_PER_STATEMENT: Final = 2


@dataclass
class _Scan:
    source: SourceFile  # what pass 2 reads: the file itself or its prepared copy
    hit_shapes: list[dict[str, Any]]
    rows: int
    temp: Path | None = None

    @property
    def reader(self) -> tuple[bool, bool]:
        return self.source.gzip, self.source.array


class Loader:
    """Appends files to the index in `folder` whose manifest is `manifest` (updated in place).

    Files are read several per statement (`FILES_PER_STATEMENT`): DuckDB reads each gzip file in one
    thread, so one file at a time would leave a core idle. Each statement writes one segment.
    """

    def __init__(self, cur: duckdb.DuckDBPyConnection, folder: Path, manifest: sg.Manifest) -> None:
        self.cur = cur
        self.folder = folder
        self.manifest = manifest

    def add(
        self,
        files: Sequence[SourceFile],
        *,
        dedup: bool = False,
        on_progress: Callable[[int], None] | None = None,
        between_files: Callable[[], None] | None = None,
    ) -> int:
        scans: list[_Scan] = []
        try:
            for chunk in _chunks(list(files), lambda f: (f.gzip, f.array)):
                if between_files is not None:
                    between_files()
                scans.extend(self._scan(chunk))
            self._settle_structure(scans)
            added = 0
            for batch in _chunks(scans, lambda s: (*s.reader, s.source.prepared)):
                if between_files is not None:
                    between_files()
                added += self._write(batch, dedup)
                if on_progress is not None:
                    on_progress(added)
            return added
        finally:
            for scan in scans:
                if scan.temp is not None:
                    scan.temp.unlink(missing_ok=True)

    # -- pass 1: structures and counts ------------------------------------------------------------------
    def _scan(self, chunk: list[SourceFile]) -> list[_Scan]:
        """Per file: the record shapes and count, or its prepared copy when DuckDB cannot take it."""
        shapes = self._shapes([f.path for f in chunk], chunk[0].gzip, chunk[0].array)
        if shapes is None and len(chunk) > 1:  # one of them fails to parse: find which
            return [scan for f in chunk for scan in self._scan([f])]
        out = []
        for source in chunk:
            mine = (shapes or {}).get(str(source.path))
            ok = mine is not None and all(_regular(s) for s, _ in mine)
            if ok and mine is not None and source.records is not None:
                ok = sum(n for _, n in mine) == source.records
            if ok and mine is not None:
                out.append(_Scan(source, [s for s, _ in mine], sum(n for _, n in mine)))
            else:
                out.append(self._prepared(source))
        return out

    def _prepared(self, source: SourceFile) -> _Scan:
        logger.info(
            "%s: read through the store's reader (records DuckDB cannot take as they are)", source.path.name
        )
        if source.fallback is None:
            raise DSLError("files", f"{source.path.name}: not a file of hit records the index can read")
        temp = self.folder / f".prepared-{secrets.token_hex(4)}.ndjson"
        with open(temp, "wb") as out:
            for line in source.fallback():
                out.write(line)
        shapes = (self._shapes([temp], False, False) or {}).get(str(temp), [])
        if not all(_regular(s) for s, _ in shapes):
            temp.unlink(missing_ok=True)
            raise DSLError("files", f"{source.path.name}: prepared records are not loadable")
        prepared = SourceFile(temp, prepared=True)
        return _Scan(prepared, [s for s, _ in shapes], sum(n for _, n in shapes), temp)

    def _shapes(
        self, paths: list[Path], gz: bool, array: bool
    ) -> dict[str, list[tuple[dict[str, Any], int]]] | None:
        try:
            rows = self.cur.execute(
                f"SELECT filename, json_structure(json), count(*) FROM {_reader(paths, gz, array, filename=True)} "
                "GROUP BY ALL"
            ).fetchall()
        except duckdb.Error as exc:
            # not parseable by DuckDB: the fallback reads it (and reports real damage)
            logger.info("DuckDB cannot read %s as it is (%s)", ", ".join(p.name for p in paths), exc)
            return None
        out: dict[str, list[tuple[dict[str, Any], int]]] = {str(p): [] for p in paths}
        for name, text, n in rows:
            out.setdefault(name, []).append((json.loads(text), int(n)))
        return out

    def _settle_structure(self, scans: list[_Scan]) -> None:
        merged: Structure = self.manifest.structure if self.manifest.segments else "NULL"
        for scan in scans:
            for shape in scan.hit_shapes:
                src = shape.get("_source")
                merged = merge(merged, normalise(src if isinstance(src, dict) else "NULL"))
        settled = source_structure(merged)
        if settled == self.manifest.structure:
            return
        old = self.manifest.segments
        self.manifest.structure = settled
        if old:
            self.manifest.segments = [self._restructure(seg) for seg in old]
            sg.write_manifest(self.folder, self.manifest)
            kept = {name for seg in self.manifest.segments for name in seg.files()}
            for seg in old:
                _remove(self.folder, seg, kept)

    # -- pass 2: typed rows -----------------------------------------------------------------------------
    def _write(self, batch: list[_Scan], dedup: bool) -> int:
        """One segment of the files of `batch` (read in one statement); returns the rows written."""
        wrapped = any(WRAP_KEY in s for scan in batch for s in scan.hit_shapes)
        hit: dict[str, Structure] = {
            "_id": "VARCHAR",
            "_index": "VARCHAR",
            "_source": self.manifest.structure,
        }
        gz, array = batch[0].reader
        reader = _reader([scan.source.path for scan in batch], gz, array)
        numbered = f"{self.manifest.next_did - 1} + row_number() OVER () AS did"
        select = (
            f"SELECT {numbered}, j._id AS id, coalesce(j._index, '') AS ix, {self._ts_expr('j._source')} AS ts, "
            f"j._source AS src FROM (SELECT json_transform(json, {sg.structure_literal(hit)}) AS j FROM {reader})"
        )
        target = sg.new_name(self.folder, "docs")
        if dedup:
            self.cur.execute(f"CREATE OR REPLACE TEMP TABLE _stage AS {select}")
            seen = [seg.docs for seg in self.manifest.segments]
            anti = (
                f"AND NOT EXISTS (SELECT 1 FROM {sg._read(self.folder, seen)} p WHERE p.id = s.id)"
                if seen
                else ""
            )
            select = (
                f"SELECT * FROM _stage s WHERE true {anti} "
                "QUALIFY row_number() OVER (PARTITION BY s.id ORDER BY s.did) = 1 ORDER BY s.did"
            )
        written = self._copy(select, target)
        if dedup:
            self.cur.execute("DROP TABLE IF EXISTS _stage")
        if written and not batch[0].source.prepared and self._count(target, "id = ''"):
            # An empty `_id`: the store gives such records a synthetic one, which only its reader does.
            target.unlink()
            if len(batch) > 1:
                return sum(self._write([scan], dedup) for scan in batch)
            return self._write([self._prepared(batch[0].source)], dedup)
        if not written:
            target.unlink(missing_ok=True)
            self.manifest.next_did += sum(scan.rows for scan in batch)
            return 0
        # The hits as added, read again (cheap: no parse) into their own file with small row groups.
        raw = f"json_extract_string(json, {_WRAPPED_PATH})" if wrapped else "NULL"
        kept = f"WHERE did IN (SELECT did FROM read_parquet({sg.sql_path(target)}))" if dedup else ""
        hits = sg.new_name(self.folder, "hits")
        self.cur.execute(
            f"COPY (SELECT * FROM (SELECT {numbered}, CAST(coalesce({raw}, json) AS VARCHAR) AS raw FROM {reader}) "
            f"{kept}) TO {sg.sql_path(hits)} {sg.HITS_OPTIONS}"
        )
        self.manifest.next_did += sum(scan.rows for scan in batch)
        target = self._fix_timestamps(target)
        target, hits = self._in_time_order(target, hits)
        leaves = self._leaves(target)
        self.manifest.segments.append(
            sg.Segment(target.name, hits.name, leaves.name if leaves else None, written)
        )
        return written

    def _copy(self, select: str, target: Path) -> int:
        row = self.cur.execute(f"COPY ({select}) TO {sg.sql_path(target)} {sg.PARQUET_OPTIONS}").fetchone()
        return int(row[0]) if row else 0

    def _count(self, docs: Path, condition: str) -> int:
        row = self.cur.execute(
            f"SELECT count(*) FROM read_parquet({sg.sql_path(docs)}) WHERE {condition}"
        ).fetchone()
        return int(row[0]) if row else 0

    # -- timestamps ---------------------------------------------------------------------------------------
    def _stamp_type(self) -> str | None:
        root = self.manifest.structure
        stamp = root.get("@timestamp") if isinstance(root, dict) else None
        return stamp if isinstance(stamp, str) else None

    def _ts_expr(self, src: str) -> str:
        """Epoch ms in SQL for the common shapes; NULL where Python must decide (`_fix_timestamps`)."""
        kind = self._stamp_type()
        stamp = f"struct_extract({src}, {quote('@timestamp')})"
        if kind == "VARCHAR":
            return (
                f"CASE WHEN {stamp} IS NULL THEN {MISSING_TS} WHEN regexp_full_match({stamp}, '{_STRICT_TS}') "
                f"THEN epoch_ms(TRY_CAST(left({stamp}, 23) AS TIMESTAMP)) END"
            )
        if kind in INTEGERS:
            return f"CASE WHEN {stamp} IS NULL THEN {MISSING_TS} ELSE TRY_CAST({stamp} AS BIGINT) END"
        if kind == JSON:
            return f"CASE WHEN {stamp} IS NULL THEN {MISSING_TS} END"
        return f"{MISSING_TS}::BIGINT"

    def _fix_timestamps(self, docs: Path) -> Path:
        """Rewrite the segment with the epoch ms of timestamps SQL left to Python (rare shapes)."""
        if not self._count(docs, "ts IS NULL"):
            return docs
        kind = self._stamp_type()
        text = f"CAST(struct_extract(s.src, {quote('@timestamp')}) AS VARCHAR)"
        values = [
            r[0]
            for r in self.cur.execute(
                f"SELECT DISTINCT {text} FROM read_parquet({sg.sql_path(docs)}) s WHERE s.ts IS NULL"
            ).fetchall()
        ]
        mapping = ", ".join(f"({quote(v)}, {_python_ms(v, kind)})" for v in values)
        fixed = sg.new_name(self.folder, "docs")
        self._copy(
            f"SELECT s.* REPLACE (coalesce(s.ts, m.ms, {MISSING_TS}) AS ts) FROM read_parquet({sg.sql_path(docs)}) s "
            f"LEFT JOIN (VALUES {mapping}) m(t, ms) ON m.t = {text} ORDER BY s.did",
            fixed,
        )
        docs.unlink()
        return fixed

    def _in_time_order(self, docs: Path, hits: Path) -> tuple[Path, Path]:
        """The segment's rows numbered in (@timestamp, _id) order, rewritten if they were not.

        Export partitions and scroll pages come in time order already (checked: one pass over `ts`);
        generated or shuffled documents do not, and then a page of hits would be scattered over every
        row group of the hits file, and a time window could skip none of the documents' groups."""
        source = f"read_parquet({sg.sql_path(docs)})"
        row = self.cur.execute(
            f"SELECT count(*) FILTER (WHERE back), min(did) FROM "
            f"(SELECT did, ts < lag(ts) OVER (ORDER BY did) AS back FROM {source})"
        ).fetchone()
        if not row or not row[0]:
            return docs, hits
        self.cur.execute(
            f"CREATE OR REPLACE TEMP TABLE _renumber AS SELECT did AS old, "
            f"{int(row[1]) - 1} + row_number() OVER (ORDER BY ts, id, did) AS did FROM {source}"
        )
        ordered_docs, ordered_hits = sg.new_name(self.folder, "docs"), sg.new_name(self.folder, "hits")
        self._copy(
            f"SELECT r.did, d.id, d.ix, d.ts, d.src FROM {source} d JOIN _renumber r ON r.old = d.did ORDER BY r.did",
            ordered_docs,
        )
        self.cur.execute(
            f"COPY (SELECT r.did, h.raw FROM read_parquet({sg.sql_path(hits)}) h JOIN _renumber r ON r.old = h.did "
            f"ORDER BY r.did) TO {sg.sql_path(ordered_hits)} {sg.HITS_OPTIONS}"
        )
        self.cur.execute("DROP TABLE _renumber")
        docs.unlink()
        hits.unlink()
        return ordered_docs, ordered_hits

    # -- JSON subtrees --------------------------------------------------------------------------------------
    def _leaves(self, docs: Path) -> Path | None:
        """The typed scalar leaves of the segment's JSON subtrees, by OpenSearch field path."""
        nodes = list(json_nodes(self.manifest.structure))
        if not nodes:
            return None
        parts = []
        for base, expr, many in nodes:
            value = f"unnest({expr})" if many else expr
            parts.append(
                f"SELECT u.did, {quote(base)} AS base, t.fullkey AS fk, t.type AS ty, t.atom AS atom "
                f"FROM (SELECT s.did, {value} AS v FROM read_parquet({sg.sql_path(docs)}) s) u, json_tree(u.v) t "
                "WHERE t.type NOT IN ('OBJECT', 'ARRAY', 'NULL')"
            )
        self.cur.execute(f"CREATE OR REPLACE TEMP TABLE _lv AS {' UNION ALL '.join(parts)}")
        try:
            keys = self.cur.execute("SELECT DISTINCT base, fk FROM _lv").fetchall()
            if not keys:
                return None
            rows = ", ".join(
                f"({quote(base)}, {quote(fk)}, {quote('.'.join(p for p in (base, relative_path(fk)) if p))})"
                for base, fk in keys
            )
            target = sg.new_name(self.folder, "leaves")
            self._copy(
                "SELECT l.did, m.path, "
                "CASE WHEN l.ty = 'VARCHAR' THEN json_extract_string(l.atom, '$') END AS s, "
                "CASE WHEN l.ty IN ('UBIGINT', 'BIGINT', 'HUGEINT') THEN TRY_CAST(l.atom AS BIGINT) END AS i, "
                "CASE WHEN l.ty IN ('UBIGINT', 'BIGINT', 'HUGEINT', 'DOUBLE') THEN TRY_CAST(l.atom AS DOUBLE) END AS n, "
                "CASE WHEN l.ty = 'BOOLEAN' THEN l.atom = 'true' END AS b "
                f"FROM _lv l JOIN (VALUES {rows}) m(base, fk, path) ON m.base = l.base AND m.fk = l.fk "
                "ORDER BY l.did, m.path",
                target,
            )
            return target
        finally:
            self.cur.execute("DROP TABLE IF EXISTS _lv")

    def _restructure(self, seg: sg.Segment) -> sg.Segment:
        """The segment under the index's new structure (typed again from its own `src`)."""
        target = sg.new_name(self.folder, "docs")
        structure = sg.structure_literal(self.manifest.structure)
        self._copy(
            f"SELECT did, id, ix, ts, json_transform(to_json(src), {structure}) AS src "
            f"FROM read_parquet({sg.sql_path(self.folder / seg.docs)}) ORDER BY did",
            target,
        )
        leaves = self._leaves(target)
        return sg.Segment(target.name, seg.hits, leaves.name if leaves else None, seg.rows)


def _regular(shape: object) -> bool:
    """Whether records of this `json_structure` load as they are (see SourceFile / prepare_line)."""
    if not isinstance(shape, dict):
        return False
    src, doc_id, index = shape.get("_source"), shape.get("_id"), shape.get("_index", "VARCHAR")
    return (isinstance(src, dict) or src == JSON) and doc_id == "VARCHAR" and index == "VARCHAR"


def _reader(paths: list[Path], gz: bool, array: bool, *, filename: bool = False) -> str:
    layout = "array" if array else "newline_delimited"
    files = ", ".join(sg.sql_path(p) for p in paths)
    return (
        f"read_json_objects([{files}], format='{layout}', compression='{'gzip' if gz else 'none'}'"
        f"{', filename=true' if filename else ''})"
    )


def _chunks(items: list[Any], kind: Callable[[Any], object]) -> Iterator[list[Any]]:
    """Consecutive runs of items of one kind, at most FILES_PER_STATEMENT long (order kept)."""
    run: list[Any] = []
    for item in items:
        if run and (len(run) >= FILES_PER_STATEMENT or kind(item) != kind(run[0])):
            yield run
            run = []
        run.append(item)
    if run:
        yield run


def _python_ms(text: str | None, kind: str | None) -> int:
    if text is None:
        return MISSING_TS
    value: object = text
    if kind in (*INTEGERS, JSON):
        try:
            value = json.loads(text)
        except ValueError:
            return MISSING_TS
    ms = timestamp_value_ms(value)
    return ms if _I64[0] <= ms <= _I64[1] else MISSING_TS


def _remove(folder: Path, seg: sg.Segment, keep: Collection[str] = ()) -> None:
    for name in seg.files():
        if name not in keep:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(folder / name)
