"""The local result store: every export and scroll kept on disk, searchable without spending quota.

Layout under `<data_dir>/results/`:
- `<id>/meta.json`   a ResultInfo; written last, so a directory without it is not a result
- `<id>/files/`      export partition files exactly as downloaded (gzip or not, NDJSON or array:
                     re-reading them uses store/formats.py), scroll pages as NDJSON envelopes
- `<id>/index/`      a cm_mcp.dsl DocIndex of the distinct documents (de-duplicated on `_id`),
                     complete only when it holds the `.ready` marker
- `<id>/.index-*/`   an index being built; renamed to `index/` (marker inside) when complete
- `.building-<id>/`  a result being built; renamed to `<id>` only when complete, removed on failure
- `.tombstones.json` id -> when and why a result was evicted, so a later lookup can say so
- `.locks/`          lock files of the locks below (cross-process; see `_locked`)

Files are kept as downloaded (not normalised) because that costs nothing extra and stays verifiable
against the source; the index is what every follow-up query reads.

Two ways to get an index. Small results (`create`, scroll pages) are indexed while they are built
and published ready. Exports are published as soon as their files are verified (`defer_index`,
meta `index_state: "building"`, `records` already exact from the export's id hashes) and the store
builds the index from the files in a background thread, one build per result at a time (a
per-result lock, held across every ResultStore and every process on the data dir).
`search`/`aggs`/`count` call `ensure_index`, which waits for that build or runs it, so no answer
ever comes from a partial index. A build cut short by a process exit leaves no marker and is simply redone on next use; so
is the index of a result written before the marker existed. `sample()` reads records straight
from the files, for summaries that should not wait for the index.

Retention (`enforce_retention`, run after every new result): results older than `max_age` go first,
then the oldest until the total size is under `max_bytes`; the newest result is never evicted by
size, so one oversized export stays usable until the next one arrives.
"""

from __future__ import annotations

import atexit
import builtins
import contextlib
import json
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from cm_mcp.dsl import DocIndex, DocQuery
from cm_mcp.store.errors import ResultEvictedError, ResultNotFoundError, StoreError
from cm_mcp.store.formats import iter_file_records, sample_file_records
from cm_mcp.store.fsutil import NamedLock, atomic_write
from cm_mcp.store.models import (
    FailedPartition,
    IndexState,
    ResultInfo,
    ResultKind,
    ResultSource,
    SearchPage,
    StoredFile,
)

#: Default retention: a week of investigations, within a few GiB of disk.
DEFAULT_MAX_BYTES: Final = 5 * 1024**3
DEFAULT_MAX_AGE: Final = timedelta(days=7)
logger = logging.getLogger("cm_mcp.store")

#: tantivy writer memory; the 256 MB engine default would dominate the process's RSS. bench/export.py
#: at 1M logs: 32 MB and one thread peak at 323 MB with the build as fast (31 s) as 64 MB (453 MB
#: with one thread, 361 MB with two); the Python side (parse + DocIndex.add) is the bottleneck.
INDEX_HEAP_BYTES: Final = 32_000_000
INDEX_THREADS: Final = 1
#: Records per DocIndex.add in a background build; also how often the build checks for shutdown.
INDEX_BUILD_BATCH: Final = 2_000
#: Inside `index/`, written last: an index without it is incomplete and is rebuilt.
INDEX_READY: Final = ".ready"
INDEX_DIR: Final = "index"
INDEX_TEMP_PREFIX: Final = ".index-"
#: How long interpreter exit waits for a background build to notice it should stop.
SHUTDOWN_JOIN_SECONDS: Final = 5.0
#: Tombstones kept (oldest dropped): enough to explain any recently quoted id.
MAX_TOMBSTONES: Final = 1000
#: A `.building-*` directory older than this is debris of a crashed process.
STALE_BUILD_SECONDS: Final = 6 * 3600
#: `_id` lookups per query when de-duplicating a scroll page against what is stored.
_ID_LOOKUP_CHUNK: Final = 1000

META: Final = "meta.json"
TOMBSTONES: Final = ".tombstones.json"
#: Lock files (`<id>.build.lock`, `<id>.meta.lock`, `tombstones.lock`), outside the result folders so
#: that taking a lock never re-creates the folder of an evicted result.
LOCKS_DIR: Final = ".locks"


def _now() -> datetime:
    return datetime.now(UTC)


def _dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def _dumps_line(hit: Mapping[str, Any]) -> bytes:
    return json.dumps(hit, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def _write_page(path: Path, hits: Sequence[Mapping[str, Any]]) -> StoredFile:
    """Write `hits` as one NDJSON page; its StoredFile entry."""
    data = b"".join(_dumps_line(h) for h in hits)
    path.write_bytes(data)
    return StoredFile(name=path.name, bytes=len(data), records=len(hits), format="ndjson")


class IndexBuildInterrupted(StoreError):
    """The process is exiting; the half-built index is dropped and rebuilt on next use."""


_SHUTDOWN = threading.Event()
_BUILDERS: set[threading.Thread] = set()
# Records indexed so far by the builds running in this process, by result folder (index_progress).
_BUILD_PROGRESS: dict[str, int] = {}
# Background builds step aside (between batches) while a sample() runs: both need the GIL, and the
# sample is what an export tool is waiting for; 4.6 s at 1M logs with the build running, ~1 s without.
_SAMPLERS = 0
_NO_SAMPLERS = threading.Event()
_NO_SAMPLERS.set()
_SAMPLERS_GUARD = threading.Lock()
#: A build never waits longer than this for samplers (a stuck sampler must not stall it forever).
SAMPLER_PRIORITY_SECONDS: Final = 30.0


@contextlib.contextmanager
def _sampling() -> Iterator[None]:
    global _SAMPLERS
    with _SAMPLERS_GUARD:
        _SAMPLERS += 1
        _NO_SAMPLERS.clear()
    try:
        yield
    finally:
        with _SAMPLERS_GUARD:
            _SAMPLERS -= 1
            if _SAMPLERS == 0:
                _NO_SAMPLERS.set()


def _locked(root: Path, name: str) -> contextlib.AbstractContextManager[None]:
    """The lock `name` of the store at `root`, held (blocking) for the `with` block.

    Exclusive across every ResultStore of this process (tests and the server may hold several for
    one data dir) and across processes (a `cm-mcp call` beside a running server). "<id>.build"
    serialises index builds of one result (held for the whole build); "<id>.meta" is a short leaf
    lock making "index swap + meta update" and eviction exclusive, so a build finishing during an
    eviction cannot resurrect the evicted result; "tombstones" guards the tombstone file's
    read-modify-write.
    """
    return NamedLock(root / LOCKS_DIR / f"{name}.lock").held()


@atexit.register
def _stop_builds() -> None:
    """Background builds run in daemon threads (a server exit must not wait minutes for them); ask
    them to stop between batches so they clean up their temporary directory, and wait a little."""
    _SHUTDOWN.set()
    for thread in list(_BUILDERS):
        thread.join(SHUTDOWN_JOIN_SECONDS)


def _mark_ready(index_dir: Path) -> None:
    (index_dir / INDEX_READY).write_text(_now().isoformat())


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
    ) -> None:
        self.store = store
        self.id = store.new_id()
        self.dir = store.root / f".building-{self.id}"
        self.dir.mkdir(parents=True)
        self.index: DocIndex | None = None if defer_index else store.new_index(self.dir / INDEX_DIR)
        self.kind: ResultKind = kind
        self.source: ResultSource = source
        self.request = dict(request)
        self.start_time, self.end_time = start_time, end_time
        self.received = 0
        self.added = 0
        self._seen: set[int] = set()  # hash(_id): 64-bit, collision odds negligible at 10^7 docs
        self._files: list[tuple[Path, StoredFile]] = []

    def add_hits(self, hits: Iterable[Mapping[str, Any]]) -> int:
        """Index the hits whose `_id` is new to this result; returns how many were new."""
        if self.index is None:
            raise StoreError("this result defers its index: register files and pass the counts to finish()")
        seen = self._seen
        fresh = []
        for hit in hits:
            self.received += 1
            key = hash(str(hit.get("_id", "")))
            if key in seen:
                continue
            seen.add(key)
            fresh.append(hit)
        if fresh:
            self.index.add(fresh, commit=False)
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
            _mark_ready(self.dir / INDEX_DIR)
            records, records_received = self.added, self.received
        else:
            records_received = records_received or 0
            records = records_received if records is None else records
            if records_received == 0:
                # Nothing to index: an empty index now beats a thread for nothing.
                self.store.new_index(self.dir / INDEX_DIR).close()
                _mark_ready(self.dir / INDEX_DIR)
            else:
                state = "building"
        files_dir = self.dir / "files"
        files_dir.mkdir(exist_ok=True)
        for path, stored in self._files:
            os.replace(path, files_dir / stored.name)
        now = _now()
        info = ResultInfo(
            id=self.id,
            source=self.source,
            kind=self.kind,
            request=self.request,
            start_time=self.start_time,
            end_time=self.end_time,
            created=now,
            updated=now,
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
        info.bytes = _dir_bytes(self.dir)
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


class ResultStore:
    """Stored results under `<data_dir>/results/`; see the module docstring. Blocking I/O: call it
    from a worker thread in async code."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_age: timedelta = DEFAULT_MAX_AGE,
        index_heap: int = INDEX_HEAP_BYTES,
        index_threads: int = INDEX_THREADS,
        background_index: bool = True,
    ) -> None:
        """`background_index=False` leaves a deferred index to be built by its first search (tests,
        benchmarks that time the build on its own)."""
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "results"
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.index_heap = index_heap
        self.index_threads = index_threads
        self.background_index = background_index
        self._lock = threading.RLock()
        self._remove_stale_builds()

    # --- creating ------------------------------------------------------------------------------------

    def new_id(self) -> str:
        return f"r{_now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"

    def new_index(self, path: Path) -> DocIndex:
        return DocIndex(path, heap_size=self.index_heap, num_threads=self.index_threads)

    def builder(
        self,
        *,
        kind: ResultKind,
        source: ResultSource,
        request: Mapping[str, Any],
        start_time: str | None = None,
        end_time: str | None = None,
        defer_index: bool = False,
    ) -> ResultBuilder:
        return ResultBuilder(
            self,
            kind=kind,
            source=source,
            request=request,
            start_time=start_time,
            end_time=end_time,
            defer_index=defer_index,
        )

    def create(
        self,
        *,
        kind: ResultKind,
        source: ResultSource,
        request: Mapping[str, Any],
        hits: Iterable[Mapping[str, Any]] = (),
        start_time: str | None = None,
        end_time: str | None = None,
        complete: bool = True,
    ) -> ResultInfo:
        """A result from hits in memory (small results; exports use `builder` to stream files)."""
        return self._create(
            kind=kind,
            source=source,
            request=request,
            hits=list(hits),
            start_time=start_time,
            end_time=end_time,
            complete=complete,
        )

    def _create(
        self,
        *,
        kind: ResultKind,
        source: ResultSource,
        request: Mapping[str, Any],
        hits: Sequence[Mapping[str, Any]],
        start_time: str | None,
        end_time: str | None,
        complete: bool,
        next_scroll_id: str | None = None,
        upstream_total: int | None = None,
    ) -> ResultInfo:
        """A one-page result: `hits` indexed and stored as `page-0001.ndjson`."""
        builder = self.builder(
            kind=kind, source=source, request=request, start_time=start_time, end_time=end_time
        )
        try:
            builder.add_hits(hits)
            page = builder.dir / "page-0001.ndjson"
            builder.add_file(page, _write_page(page, hits))
            return builder.finish(
                complete=complete, next_scroll_id=next_scroll_id, upstream_total=upstream_total, pages=1
            )
        except BaseException:
            builder.abort()
            raise

    def add_scroll_page(
        self,
        request: Mapping[str, Any],
        hits: Sequence[Mapping[str, Any]],
        *,
        kind: ResultKind,
        next_scroll_id: str | None = None,
        upstream_total: int | None = None,
    ) -> ResultInfo:
        """Keep one scroll page. A continuation (`request` is `{"scroll_id": s}`) joins the result whose
        previous page returned `s`; any other request starts a new result. `complete` becomes True when
        a page comes back without a next scroll id."""
        scroll_id = request.get("scroll_id")
        with self._lock:
            existing = self._find_scroll(scroll_id) if scroll_id else None
            if existing is None:
                return self._create(
                    kind=kind,
                    source="scroll",
                    request=request,
                    hits=hits,
                    start_time=request.get("start_time"),
                    end_time=request.get("end_time"),
                    complete=next_scroll_id is None,
                    next_scroll_id=next_scroll_id,
                    upstream_total=upstream_total,
                )
            return self._append_page(existing, hits, next_scroll_id, upstream_total)

    def _find_scroll(self, scroll_id: str) -> ResultInfo | None:
        return next((r for r in self.list() if r.source == "scroll" and r.next_scroll_id == scroll_id), None)

    def _append_page(
        self,
        info: ResultInfo,
        hits: Sequence[Mapping[str, Any]],
        next_scroll_id: str | None,
        upstream_total: int | None,
    ) -> ResultInfo:
        info = self.ensure_index(info.id)
        folder = self.root / info.id
        # Not ready while it changes: a crash before the marker is back means a rebuild from the files.
        (folder / INDEX_DIR / INDEX_READY).unlink()
        index = self.new_index(folder / INDEX_DIR)
        try:
            present = self._present_ids(index, [str(h.get("_id", "")) for h in hits])
            fresh, batch_ids = [], set()
            for hit in hits:
                hid = str(hit.get("_id", ""))
                if hid in present or hid in batch_ids:
                    continue
                batch_ids.add(hid)
                fresh.append(hit)
            if fresh:
                index.add(fresh)
        finally:
            index.close()
        info.files.append(_write_page(folder / "files" / f"page-{info.pages + 1:04d}.ndjson", hits))
        info.pages += 1
        info.records += len(fresh)
        info.records_received += len(hits)
        info.next_scroll_id = next_scroll_id
        info.complete = next_scroll_id is None
        info.upstream_total = upstream_total if upstream_total is not None else info.upstream_total
        info.updated = _now()
        info.bytes = _dir_bytes(folder)
        self._write_meta(info)
        _mark_ready(folder / INDEX_DIR)
        info.index_state = "ready"
        self.enforce_retention(keep=info.id)
        return info

    @staticmethod
    def _present_ids(index: DocIndex, ids: builtins.list[str]) -> set[str]:
        present: set[str] = set()
        for i in range(0, len(ids), _ID_LOOKUP_CHUNK):
            chunk = ids[i : i + _ID_LOOKUP_CHUNK]
            hits, _ = index.search(DocQuery(filters=[{"terms": {"_id": chunk}}]), size=len(chunk))
            present.update(str(h.get("_id", "")) for h in hits)
        return present

    # --- reading -------------------------------------------------------------------------------------

    def list(self) -> builtins.list[ResultInfo]:
        """Every stored result, newest first."""
        out = []
        for meta in self.root.glob(f"*/{META}"):
            try:
                out.append(self._with_index_state(ResultInfo.model_validate_json(meta.read_bytes())))
            except (OSError, ValueError):
                continue  # being evicted right now, or damaged: not a usable result
        return sorted(out, key=lambda r: r.created, reverse=True)

    def get(self, result_id: str) -> ResultInfo:
        """The result's metadata; ResultEvictedError or ResultNotFoundError when it is not stored."""
        folder = self._folder(result_id)
        try:
            return self._with_index_state(ResultInfo.model_validate_json((folder / META).read_bytes()))
        except FileNotFoundError:
            raise self._missing(result_id) from None

    def _with_index_state(self, info: ResultInfo) -> ResultInfo:
        # The marker, not meta.json, is the truth: a build may have finished (or died) since meta was
        # written, and results from before this field existed have no marker at all.
        ready = (self.root / info.id / INDEX_DIR / INDEX_READY).exists()
        info.index_state = "ready" if ready else "building"
        return info

    def sample(self, result_id: str, n: int) -> tuple[builtins.list[dict[str, Any]], int]:
        """Up to `n` distinct records spread over every file of the result (each file contributes in
        proportion to its records, at least one, evenly through the file), read from the files, not
        the index: available the moment the result exists. Returns (hits in (@timestamp, _id)
        order, the result's distinct record count)."""

        info = self.get(result_id)
        files = [f for f in info.files if f.records > 0]
        if n <= 0 or not files:
            return [], info.records
        total = sum(f.records for f in files)
        quotas = [min(f.records, max(1, n * f.records // total)) for f in files]
        while sum(quotas) > n and max(quotas) > 1:
            quotas[quotas.index(max(quotas))] -= 1
        folder = self._folder(result_id) / "files"
        hits: builtins.list[dict[str, Any]] = []
        ids: set[str] = set()
        with _sampling():
            for stored, quota in zip(files, quotas, strict=True):
                for hit in sample_file_records(folder / stored.name, quota, stored.records):
                    key = str(hit.get("_id", ""))
                    if key not in ids:  # overlapping partitions: the same document once, as in search
                        ids.add(key)
                        hits.append(hit)
        hits.sort(key=lambda h: (str((h.get("_source") or {}).get("@timestamp", "")), str(h.get("_id", ""))))
        return hits[:n], info.records

    # --- the index -----------------------------------------------------------------------------------

    def ensure_index(self, result_id: str) -> ResultInfo:
        """Return once the result's index is complete: at once if it is, after the build in progress
        if one is running, otherwise after building it here from the stored files."""
        info = self.get(result_id)
        if info.index_state == "ready":
            return info
        self._folder(result_id)  # validates the id before it names a lock file
        with _locked(self.root, f"{result_id}.build"):
            info = self.get(result_id)
            if info.index_state == "ready":
                return info
            info = self._build_index(info)
        self.enforce_retention(keep=result_id)  # the index adds to the result's size
        return info

    def build_index_in_background(self, result_id: str) -> threading.Thread:
        """Start `ensure_index` in a daemon thread (see `_stop_builds` for interpreter exit)."""
        thread = threading.Thread(
            target=self._background_build, args=(result_id,), name=f"cm-index-{result_id}", daemon=True
        )
        _BUILDERS.add(thread)
        thread.start()
        return thread

    def _background_build(self, result_id: str) -> None:
        started = time.monotonic()
        try:
            info = self.ensure_index(result_id)
            logger.info(
                "result %s: index ready, %d records (%.1f s)",
                result_id,
                info.records,
                time.monotonic() - started,
            )
        except (ResultNotFoundError, IndexBuildInterrupted):
            pass  # evicted or deleted meanwhile; or the process is exiting (rebuilt on next use)
        except Exception:
            # Nobody awaits this thread: log, and leave the result without a marker so the first
            # search builds it again (and reports the error if it persists).
            logger.exception("result %s: building the index failed", result_id)
        finally:
            _BUILDERS.discard(threading.current_thread())

    def _build_index(self, info: ResultInfo) -> ResultInfo:
        """Index every stored file into a temporary directory and swap it in. Caller holds the build lock."""
        folder = self._folder(info.id)
        # Debris of an interrupted build, or an index without marker (crash, or an older version).
        for debris in folder.glob(f"{INDEX_TEMP_PREFIX}*"):
            shutil.rmtree(debris, ignore_errors=True)
        shutil.rmtree(folder / INDEX_DIR, ignore_errors=True)
        temp = folder / f"{INDEX_TEMP_PREFIX}{secrets.token_hex(4)}"
        paths = [folder / "files" / f.name for f in info.files]
        _BUILD_PROGRESS[str(folder)] = 0  # running here from now on (index_progress)
        try:
            index = self.new_index(temp)
            try:
                # records == records_received means no duplicates at all: skip the ~80 MB id set.
                added = _fill_index(
                    index,
                    paths,
                    dedup=info.records != info.records_received,
                    on_progress=lambda n: _BUILD_PROGRESS.__setitem__(str(folder), n),
                )
            finally:
                index.close()
            _mark_ready(temp)
            del index  # release tantivy's handles on the temporary path before the rename
            with _locked(self.root, f"{info.id}.meta"):
                if not (folder / META).exists():
                    raise self._missing(info.id)  # evicted while building
                os.replace(temp, folder / INDEX_DIR)
                fresh = self.get(info.id)
                if fresh.records != added:
                    logger.warning(
                        "result %s: the index holds %d distinct records, meta said %d; meta corrected",
                        info.id,
                        added,
                        fresh.records,
                    )
                fresh.records = added
                fresh.bytes = _dir_bytes(folder)
                self._write_meta(fresh)
            return fresh
        except BaseException:
            shutil.rmtree(temp, ignore_errors=True)
            if not (folder / META).exists():
                raise self._missing(info.id) from None
            raise
        finally:
            _BUILD_PROGRESS.pop(str(folder), None)

    def index_progress(self, result_id: str) -> int | None:
        """Records indexed so far by a build of `result_id` running in this process; None when no
        build runs here (none at all, or one in another process)."""
        return _BUILD_PROGRESS.get(str(self._folder(result_id)))

    def files(self, result_id: str) -> builtins.list[Path]:
        info = self.get(result_id)
        return [self._folder(result_id) / "files" / f.name for f in info.files]

    def search(
        self,
        result_id: str,
        filters: Sequence[Mapping[str, Any]] | None = None,
        fields: Sequence[str] | None = None,
        size: int = 100,
        order: str = "asc",
        after: str | None = None,
    ) -> SearchPage:
        """One page of stored documents matching `filters`, ordered by (@timestamp, _id)."""
        if order not in ("asc", "desc"):
            raise StoreError("order must be 'asc' or 'desc'")
        index = self._open_index(result_id)
        query = DocQuery(filters=list(filters or ()))
        hits, cursor = index.search(
            query, size, after=after, fields=fields, order="asc" if order == "asc" else "desc"
        )
        return SearchPage(hits, index.count(query), cursor)

    def aggs(
        self, result_id: str, aggs: Mapping[str, Any], filters: Sequence[Mapping[str, Any]] | None = None
    ) -> dict[str, Any]:
        """`{"aggregations": {...}, "total_documents": n}`, the `data` shape of /v2/*/aggs."""
        index = self._open_index(result_id)
        query = DocQuery(filters=list(filters or ()))
        return {"aggregations": index.aggregate(query, aggs), "total_documents": index.count(query)}

    def count(self, result_id: str, filters: Sequence[Mapping[str, Any]] | None = None) -> int:
        return self._open_index(result_id).count(DocQuery(filters=list(filters or ())))

    # --- removing ------------------------------------------------------------------------------------

    def delete(self, result_id: str, *, reason: str = "deleted on request") -> None:
        self.get(result_id)
        self._evict(result_id, reason)

    def enforce_retention(self, *, keep: str | None = None) -> builtins.list[str]:
        """Evict by age, then by total size (oldest first); returns the evicted ids."""
        evicted: builtins.list[str] = []
        with self._lock:
            results = sorted(self.list(), key=lambda r: r.created)
            now = _now()
            for info in list(results):
                if info.id != keep and now - info.created > self.max_age:
                    self._evict(info.id, f"older than {_age_text(self.max_age)}")
                    evicted.append(info.id)
                    results.remove(info)
            total = sum(r.bytes for r in results)
            for info in results:
                if total <= self.max_bytes:
                    break
                if info.id == keep:
                    continue
                self._evict(info.id, f"the store exceeded {_size_text(self.max_bytes)}")
                evicted.append(info.id)
                total -= info.bytes
        return evicted

    @property
    def retention_text(self) -> str:
        return f"at most {_size_text(self.max_bytes)} and {_age_text(self.max_age)}, oldest evicted first"

    # --- internals -----------------------------------------------------------------------------------

    def _folder(self, result_id: str) -> Path:
        if not result_id or "/" in result_id or "\\" in result_id or result_id.startswith("."):
            raise ResultNotFoundError(result_id)
        return self.root / result_id

    def _open_index(self, result_id: str) -> DocIndex:
        self.ensure_index(result_id)  # never a partial index: wait for (or run) the build
        return self.new_index(self._folder(result_id) / INDEX_DIR)

    def _write_meta(self, info: ResultInfo) -> None:
        atomic_write(self.root / info.id / META, info.model_dump_json(indent=1).encode())

    def _evict(self, result_id: str, reason: str) -> None:
        folder = self.root / result_id
        with _locked(self.root, "tombstones"):
            tombstones = self._tombstones()
            tombstones[result_id] = {"evicted_at": _now().isoformat(), "reason": reason}
            if len(tombstones) > MAX_TOMBSTONES:
                for old in sorted(tombstones, key=lambda k: tombstones[k]["evicted_at"])[:-MAX_TOMBSTONES]:
                    del tombstones[old]
            atomic_write(self.root / TOMBSTONES, json.dumps(tombstones, indent=1).encode())
        with _locked(self.root, f"{result_id}.meta"):
            # meta.json first: from that instant the directory is no longer a result for readers.
            (folder / META).unlink(missing_ok=True)
        shutil.rmtree(folder, ignore_errors=True)

    def _tombstones(self) -> dict[str, dict[str, str]]:
        try:
            data = json.loads((self.root / TOMBSTONES).read_bytes())
        except (OSError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def _missing(self, result_id: str) -> ResultNotFoundError:
        stone = self._tombstones().get(result_id)
        if stone is None:
            return ResultNotFoundError(result_id)
        return ResultEvictedError(
            result_id, datetime.fromisoformat(stone["evicted_at"]), stone["reason"], self.retention_text
        )

    def _remove_stale_builds(self) -> None:
        """Debris of crashed processes: old `.building-*` folders, and the lock files of results
        long gone (a lock file is never removed while its result exists: that would race its users)."""
        cutoff = time.time() - STALE_BUILD_SECONDS
        for folder in self.root.glob(".building-*"):
            try:
                if folder.stat().st_mtime < cutoff:
                    shutil.rmtree(folder, ignore_errors=True)
            except OSError:
                continue
        for lock_file in self.root.glob(f"{LOCKS_DIR}/r*.lock"):
            result_id = lock_file.name.split(".", 1)[0]
            try:
                if not (self.root / result_id).exists() and lock_file.stat().st_mtime < cutoff:
                    lock_file.unlink()
            except OSError:
                continue


def _fill_index(
    index: DocIndex, paths: Sequence[Path], *, dedup: bool, on_progress: Callable[[int], None] | None = None
) -> int:
    """Add every record of `paths` to `index` (the first of each `_id` when `dedup`); returns how
    many. `on_progress` gets the running count after each batch."""

    def distinct() -> Iterator[dict[str, Any]]:
        seen: set[int] = set()
        for path in paths:
            for hit in iter_file_records(path):
                if dedup:
                    key = hash(str(hit.get("_id", "")))  # as ResultBuilder.add_hits
                    if key in seen:
                        continue
                    seen.add(key)
                yield hit

    added = 0
    batch: builtins.list[dict[str, Any]] = []
    for hit in distinct():
        batch.append(hit)
        if len(batch) >= INDEX_BUILD_BATCH:
            if _SHUTDOWN.is_set():
                raise IndexBuildInterrupted("the process is exiting")
            _NO_SAMPLERS.wait(SAMPLER_PRIORITY_SECONDS)
            added += index.add(batch, commit=False)
            batch = []
            if on_progress is not None:
                on_progress(added)
    if batch:
        added += index.add(batch, commit=False)
    return added


def _size_text(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} bytes"


def _age_text(age: timedelta) -> str:
    seconds = age.total_seconds()
    if seconds >= 86400:
        return f"{seconds / 86400:g} days"
    if seconds >= 3600:
        return f"{seconds / 3600:g} hours"
    return f"{seconds:g} seconds"
