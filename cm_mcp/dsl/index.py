"""`DocIndex`: OpenSearch hits in a tantivy index, with count / search (cursor) / aggregate."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import tantivy

from cm_mcp.dsl import schema as sc
from cm_mcp.dsl.aggs import AggRunner
from cm_mcp.dsl.engine import BULK_HEAP_BYTES, INDEX_THREADS, SMALL_HEAP_BYTES
from cm_mcp.dsl.errors import DSLError
from cm_mcp.dsl.project import project
from cm_mcp.dsl.query import QueryCompiler, and_all, count_matches
from cm_mcp.dsl.spec import (
    Order,
    QueryLike,
    as_doc_query,
    decode_cursor,
    encode_cursor,
    sort_key,
    timestamp_ms,
)

__all__ = ["BULK_HEAP_BYTES", "INDEX_THREADS", "SMALL_HEAP_BYTES", "DocIndex"]

_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


class DocIndex:
    """Hits indexed in tantivy, in memory (`path=None`) or in a directory that can be reopened.

    Not thread-safe for writes; reads after `add` see the new documents (each `add` commits).
    """

    engine = "tantivy"

    def __init__(
        self,
        path: str | Path | None = None,
        *,
        heap_size: int = BULK_HEAP_BYTES,
        num_threads: int = INDEX_THREADS,
    ):
        self.path = Path(path) if path is not None else None
        if self.path is not None:
            self.path.mkdir(parents=True, exist_ok=True)
            marker = self.path / sc.MARKER_FILE
            if (self.path / "cm-duck-manifest.json").exists():
                raise DSLError(
                    "index", f"{self.path} was built by another engine (DuckDB); delete it and rebuild it"
                )
            if tantivy.Index.exists(str(self.path)):
                try:
                    found = json.loads(marker.read_text())
                except (OSError, ValueError):
                    found = None
                if found != sc.schema_marker():
                    raise DSLError(
                        "index",
                        f"{self.path} was built by another version of the engine ({found or 'no marker'}, "
                        f"need {sc.schema_marker()}); delete the directory and rebuild it",
                    )
                self._index = tantivy.Index.open(str(self.path))
            else:
                self._index = tantivy.Index(sc.build_schema(), path=str(self.path), reuse=False)
                marker.write_text(json.dumps(sc.schema_marker()))
        else:
            self._index = tantivy.Index(sc.build_schema())
        self._heap = heap_size
        self._threads = num_threads
        self._writer: tantivy.IndexWriter | None = None

    # -- writing ------------------------------------------------------------------------------------
    def add(self, hits: Iterable[Mapping[str, Any]], *, commit: bool = True) -> int:
        """Index hits ({_index, _id, _source}); returns how many were added."""
        add_json = self._writer_for_adds().add_json
        n = 0
        for hit in hits:
            add_json(doc_json(hit))
            n += 1
        if commit:
            self.commit()
        return n

    def add_lines(
        self, records: Iterable[tuple[bytes | None, Mapping[str, Any]]], *, commit: bool = True
    ) -> int:
        """Index hits read from files: (the hit's JSON text as stored, or None; the parsed hit).

        The stored text becomes the document as it is (no second serialisation), which is what
        makes a build from export files cheap; a hit without it goes through `doc_json`.
        """
        add_json = self._writer_for_adds().add_json
        n = 0
        for raw, hit in records:
            add_json(doc_json(hit) if raw is None else raw_doc_json(raw, hit))
            n += 1
        if commit:
            self.commit()
        return n

    def _writer_for_adds(self) -> tantivy.IndexWriter:
        if self._writer is None:
            self._writer = self._index.writer(heap_size=self._heap, num_threads=self._threads)
        return self._writer

    def commit(self) -> None:
        if self._writer is not None:
            self._writer.commit()
        self._index.reload()

    def close(self) -> None:
        """Commit and release the writer (and its directory lock) so the index can be reopened."""
        if self._writer is not None:
            self._writer.commit()
            self._writer.wait_merging_threads()
            self._writer = None
        self._index.reload()

    def __enter__(self) -> DocIndex:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __len__(self) -> int:
        return int(self._index.searcher().num_docs)

    # -- reading ------------------------------------------------------------------------------------
    def compile(self, query: QueryLike = None, *, now: datetime | None = None) -> tantivy.Query:
        return self._compile(query, now)[0]

    def _compile(self, query: QueryLike, now: datetime | None) -> tuple[tantivy.Query, QueryCompiler]:
        q = as_doc_query(query)
        compiler = QueryCompiler(self._index, now or q.now)
        return compiler.build(q), compiler

    def count(self, query: QueryLike = None, *, now: datetime | None = None) -> int:
        return count_matches(self._index.searcher(), self.compile(query, now=now))

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
        """One page of hits ordered by (@timestamp, _id); pass the returned cursor as `after`.

        The cursor holds values, not document addresses, so it survives reopening the index. It is
        None when the page came back short (nothing more to read).
        """
        if size <= 0:
            raise DSLError("size", "must be positive")
        tq = self.compile(query, now=now)
        cursor = decode_cursor(after) if after else None
        searcher = self._index.searcher()
        out = self._hits(searcher, tq, size, cursor, order)
        next_cursor = encode_cursor(*sort_key(out[-1])) if len(out) == size else None
        if fields is not None:
            out = [{**h, "_source": project(h.get("_source") or {}, fields)} for h in out]
        return out, next_cursor

    def aggregate(
        self, query: QueryLike, aggs: Mapping[str, Any], *, now: datetime | None = None
    ) -> dict[str, Any]:
        tq, compiler = self._compile(query, now)
        searcher = self._index.searcher()
        runner = AggRunner(
            searcher=searcher,
            compiler=compiler,
            top_hits=lambda q, size, order: self._top_hits(searcher, q, size, order),
        )
        return runner.run(tq, aggs, "aggs")

    # -- internals ----------------------------------------------------------------------------------
    def _top_hits(
        self, searcher: tantivy.Searcher, q: tantivy.Query, size: int, order: Order
    ) -> tuple[int, list[dict[str, Any]]]:
        total = count_matches(searcher, q)
        if total == 0 or size <= 0:
            return total, []
        return total, self._hits(searcher, q, size, None, order)

    def _hits(
        self,
        searcher: tantivy.Searcher,
        q: tantivy.Query,
        size: int,
        cursor: tuple[int, str] | None,
        order: Order,
    ) -> list[dict[str, Any]]:
        """The next `size` hits after `cursor`, loaded and sorted by (@timestamp, _id)."""
        hits = [self._load(searcher, a) for a in self._page(searcher, q, size, cursor, order)]
        hits.sort(key=sort_key, reverse=order == "desc")
        return hits

    def _page(
        self,
        searcher: tantivy.Searcher,
        q: tantivy.Query,
        size: int,
        cursor: tuple[int, str] | None,
        order: Order,
    ) -> list[tantivy.DocAddress]:
        """Addresses of the next `size` docs in (ts, id) order. tantivy sorts by one fast field, so
        ts ties are resolved by a second search over the tie group sorted by the `id` fast field."""
        torder = tantivy.Order.Asc if order == "asc" else tantivy.Order.Desc
        schema = self._index.schema
        out: list[tantivy.DocAddress] = []
        if cursor is not None:
            c_ts, c_id = cursor
            tie = and_all([q, ts_eq(c_ts, schema)])
            n = count_matches(searcher, tie)
            if n:
                for key, addr in searcher.search(
                    tie, n, count=False, order_by_field=sc.ID, order=torder
                ).hits:
                    if (key > c_id) if order == "asc" else (key < c_id):
                        out.append(addr)
                        if len(out) == size:
                            return out
            rest = and_all([q, _ts_beyond(c_ts, order, schema)])
        else:
            rest = q
        need = size - len(out)
        res = searcher.search(rest, need, count=False, order_by_field=sc.TS, order=torder).hits
        if not res:
            return out
        boundary = res[-1][0]
        out.extend(addr for key, addr in res if key != boundary)
        need = size - len(out)
        group = and_all([rest, ts_eq(boundary, schema)])
        out.extend(
            addr
            for _, addr in searcher.search(group, need, count=False, order_by_field=sc.ID, order=torder).hits
        )
        return out

    @staticmethod
    def _load(searcher: tantivy.Searcher, addr: tantivy.DocAddress) -> dict[str, Any]:
        raw = searcher.doc(addr).get_first(sc.RAW)
        hit: dict[str, Any] = json.loads(raw or b"{}")
        return hit


def ts_eq(ms: int, schema: tantivy.Schema) -> tantivy.Query:
    return tantivy.Query.range_query(schema, sc.TS, tantivy.FieldType.Integer, ms, ms)


def _ts_beyond(ms: int, order: Order, schema: tantivy.Schema) -> tantivy.Query:
    if order == "asc":
        return tantivy.Query.range_query(schema, sc.TS, tantivy.FieldType.Integer, ms + 1, None)
    return tantivy.Query.range_query(schema, sc.TS, tantivy.FieldType.Integer, None, ms - 1)


def raw_doc_json(raw: bytes, hit: Mapping[str, Any]) -> str:
    """`doc_json(hit)` from the hit's own JSON text `raw` (a line of a stored file), which must parse to
    `hit`: the text is used as it is for the document and its stored copy instead of serialising the
    hit again. Falls back to `doc_json` for hits the fast path does not take (see there)."""
    src = hit.get("_source")
    if not (type(src) is dict and type(hit.get("_id")) is str and type(hit.get("_index")) is str):
        return doc_json(hit)
    try:
        text = raw.decode().strip()
    except UnicodeDecodeError:
        return doc_json(hit)
    if not (text.startswith("{") and text.endswith("}")):
        return doc_json(hit)
    return (
        text[:-1]
        + _TS_KEY
        + str(timestamp_ms(src))
        + _TX_KEY
        + _text_json(src)
        + _RAW_KEY
        + _B64(raw).decode()
        + '"}'
    )


def doc_json(hit: Mapping[str, Any]) -> str:
    """The tantivy document for one hit, as the JSON string `IndexWriter.add_json` parses in Rust.

    The hit is serialised once: that text is both the stored copy (`@raw`, base64 as bytes fields
    take in JSON) and, with `@ts`/`@tx`/`@raw` appended, the document itself, since the schema's
    `_source`/`_id`/`_index` fields are named after the hit's keys. Hits whose `_id`/`_index` are not
    strings or whose `_source` is not an object are normalised (`str()`, `{}`) for the index only.
    """
    src = hit.get("_source")
    if (
        type(hit) is dict
        and type(src) is dict
        and type(hit.get("_id")) is str
        and type(hit.get("_index")) is str
    ):
        raw = _DUMPS(hit)
        head = raw[:-1]
    else:
        raw = _DUMPS(dict(hit))
        src = dict(src) if isinstance(src, Mapping) else {}
        head = _DUMPS({sc.IX: str(hit.get("_index", "")), sc.ID: str(hit.get("_id", "")), sc.KW: src})[:-1]
    # Appended last: with a duplicate key the last one wins, so the hit cannot override these.
    return (
        head
        + _TS_KEY
        + str(timestamp_ms(src))
        + _TX_KEY
        + _text_json(src)
        + _RAW_KEY
        + _B64(raw.encode()).decode()
        + '"}'
    )


_B64 = base64.b64encode
_TS_KEY = f',"{sc.TS}":'
_TX_KEY = f',"{sc.TX}":'
_RAW_KEY = f',"{sc.RAW}":"'
# (name, path parts, `"name":`) of the text fields; single-key ones take the `dict.get` fast path.
_TEXT_PATHS = tuple((f, f.split("."), _DUMPS(f) + ":") for f in sc.TEXT_FIELDS)


def _text_json(src: dict[str, Any]) -> str:
    """`{"message": ..., "error.message": ...}` for the `@tx` field (`{}` when there is no text)."""
    parts: list[str] = []
    for name, path, key in _TEXT_PATHS:
        if len(path) == 1:
            value = src.get(name)
            if value is None:
                continue
        else:
            if path[0] not in src and name not in src:
                continue  # the common case, decided without walking the paths
            found = list(_leaves(src, path))
            if not found:
                continue
            value = found[0] if len(found) == 1 else found
        parts.append(key + _DUMPS(value))
    return "{" + ",".join(parts) + "}"


def _leaves(node: Any, path: list[str]) -> Iterable[Any]:
    """Values at a dotted path, through nested objects, literal dotted keys and arrays (OpenSearch)."""
    if isinstance(node, list):
        for item in node:
            yield from _leaves(item, path)
        return
    if not path:
        if node is not None:
            yield node
        return
    if isinstance(node, Mapping):
        for i in range(1, len(path) + 1):
            key = ".".join(path[:i])
            if key in node:
                yield from _leaves(node[key], path[i:])
