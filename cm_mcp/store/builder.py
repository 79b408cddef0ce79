"""`ResultBuilder`: a result under construction in `.building-<id>/`, published by one rename."""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from cm_mcp.dsl import SearchIndex
from cm_mcp.store.errors import StoreError
from cm_mcp.store.formats import record_key
from cm_mcp.store.fsutil import atomic_write
from cm_mcp.store.layout import INDEX_DIR, META, dir_bytes, mark_ready, now
from cm_mcp.store.models import FailedPartition, IndexState, ResultInfo, ResultKind, ResultSource, StoredFile

if TYPE_CHECKING:
    from cm_mcp.store.store import ResultStore


_ENCODE = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


def dumps_line(hit: Mapping[str, Any]) -> bytes:
    """One NDJSON line of a page file; also the hit's text for the index (`add_lines`), so a page is
    serialised once for both."""
    return _ENCODE(hit).encode() + b"\n"


def write_page(path: Path, lines: Sequence[bytes]) -> StoredFile:
    """Write `lines` (from `dumps_line`) as one NDJSON page; its StoredFile entry."""
    data = b"".join(lines)
    path.write_bytes(data)
    return StoredFile(name=path.name, bytes=len(data), records=len(lines), format="ndjson")


class ResultBuilder:
    """A result under construction in `.building-<id>/`: add documents, register files, then `finish`.

    With `defer_index` (exports) there is no index while building: the caller registers verified
    files and passes the counts to `finish`, and the store indexes the files after publication.
    Not thread-safe; one builder per export. Everything it made disappears with `abort()`.
    """

    def __init__(
        self,
        store: ResultStore,
        *,
        kind: ResultKind,
        source: ResultSource,
        request: Mapping[str, Any],
        start_time: str | None = None,
        end_time: str | None = None,
        defer_index: bool = False,
        result_id: str | None = None,
        expected_hits: int = 0,
    ) -> None:
        """`result_id`: an id reserved beforehand (a scroll page answered before it is stored);
        `expected_hits` sizes the index writer (a page of 100 needs far less than an export)."""
        self.store = store
        self.id = result_id or store.new_id()
        self.dir = store.root / f".building-{self.id}"
        self.dir.mkdir(parents=True)
        self.index: SearchIndex | None = (
            None if defer_index else store.new_index(self.dir / INDEX_DIR, bulk=expected_hits >= 20_000)
        )
        self.kind: ResultKind = kind
        self.source: ResultSource = source
        self.request = dict(request)
        self.start_time, self.end_time = start_time, end_time
        self.received = 0
        self.added = 0
        self._seen: set[bytes] = set()  # record_key: the one de-duplication key (exports count by it)
        self._files: list[tuple[Path, StoredFile]] = []

    def add_hits(self, hits: Iterable[Mapping[str, Any]], lines: Sequence[bytes] | None = None) -> int:
        """Index the hits whose `_id` is new to this result; returns how many were new. `lines`: the
        hits' JSON text (`dumps_line`), indexed as it is instead of serialising the hits again."""
        if self.index is None:
            raise StoreError("this result defers its index: register files and pass the counts to finish()")
        seen = self._seen
        fresh: list[tuple[bytes | None, Mapping[str, Any]]] = []
        for i, hit in enumerate(hits):
            self.received += 1
            key = record_key(hit)
            if key in seen:
                continue
            seen.add(key)
            fresh.append((lines[i] if lines is not None else None, hit))
        if fresh:
            self.index.add_lines(fresh, commit=False)
        self.added += len(fresh)
        return len(fresh)

    def add_file(self, path: Path, info: StoredFile) -> None:
        """Register a file to move into `files/` on `finish` (it stays where it is until then)."""
        self._files.append((path, info))

    def finish(
        self,
        *,
        complete: bool,
        failed: Sequence[FailedPartition] = (),
        next_scroll_id: str | None = None,
        upstream_total: int | None = None,
        pages: int = 0,
        records: int | None = None,
        records_received: int | None = None,
    ) -> ResultInfo:
        """Publish the result. A deferred-index result takes `records` (distinct, exact: the export
        hashed every `_id`) and `records_received` from the caller; if `records` is not given it is
        provisionally the received count and corrected when the index is built."""
        state: IndexState = "ready"
        if self.index is not None:
            self.index.close()
            mark_ready(self.dir / INDEX_DIR)
            records, records_received = self.added, self.received
        else:
            records_received = records_received or 0
            records = records_received if records is None else records
            if records_received == 0:
                # Nothing to index: an empty index now beats a thread for nothing.
                self.store.new_index(self.dir / INDEX_DIR).close()
                mark_ready(self.dir / INDEX_DIR)
            else:
                state = "building"
        files_dir = self.dir / "files"
        files_dir.mkdir(exist_ok=True)
        for path, stored in self._files:
            os.replace(path, files_dir / stored.name)
        created = now()
        info = ResultInfo(
            id=self.id,
            source=self.source,
            kind=self.kind,
            request=self.request,
            start_time=self.start_time,
            end_time=self.end_time,
            created=created,
            updated=created,
            records=records,
            records_received=records_received,
            complete=complete,
            files=[stored for _, stored in self._files],
            failed_partitions=list(failed),
            pages=pages,
            next_scroll_id=next_scroll_id,
            upstream_total=upstream_total,
            index_state=state,
        )
        info.bytes = dir_bytes(self.dir)
        atomic_write(self.dir / META, info.model_dump_json(indent=1).encode())
        final = self.store.root / self.id
        os.replace(self.dir, final)
        self.store.enforce_retention(keep=self.id)
        if state == "building" and self.store.background_index:
            self.store.build_index_in_background(self.id)
        return info

    def abort(self) -> None:
        """Drop everything built so far (cancellation, failure): nothing partial is ever a result."""
        try:
            if self.index is not None:
                self.index.close()
        finally:
            shutil.rmtree(self.dir, ignore_errors=True)


def publish_one_page(
    builder: ResultBuilder,
    hits: Sequence[Mapping[str, Any]],
    *,
    complete: bool,
    next_scroll_id: str | None = None,
    upstream_total: int | None = None,
) -> ResultInfo:
    """A one-page result: `hits` indexed and stored as `page-0001.ndjson`."""
    try:
        lines = [dumps_line(hit) for hit in hits]  # one serialisation for the file and the index
        builder.add_hits(hits, lines)
        page = builder.dir / "page-0001.ndjson"
        builder.add_file(page, write_page(page, lines))
        return builder.finish(
            complete=complete, next_scroll_id=next_scroll_id, upstream_total=upstream_total, pages=1
        )
    except BaseException:
        builder.abort()
        raise
