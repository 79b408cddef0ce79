"""The local result store: every export and scroll kept on disk, searchable without spending quota.

Layout under `<data_dir>/results/` (names in layout.py):
- `<id>/meta.json`   a ResultInfo; written last, so a directory without it is not a result
- `<id>/files/`      export partition files exactly as downloaded (gzip or not, NDJSON or array:
                     re-reading them uses store/formats.py), scroll pages as NDJSON envelopes
- `<id>/index/`      a cm_mcp.dsl index (DuckDB: Parquet) of the distinct documents (de-duplicated on `_id`),
                     complete only when it holds the `.ready` marker
- `<id>/.index-*/`   an index being built; renamed to `index/` (marker inside) when complete
- `.building-<id>/`  a result being built; renamed to `<id>` only when complete, removed on failure
- `.tombstones.json` id -> when and why a result was evicted, so a later lookup can say so
- `.locks/`          lock files of the locks below (cross-process; see `layout.named_lock`)

Files are kept as downloaded (not normalised) because that costs nothing extra and stays verifiable
against the source; the index is what every follow-up query reads.

The parts: `builder.py` builds a result and publishes it by one rename; `scroll.py` keeps scroll
pages (answered first, stored by a background writer that every reader waits for); `indexing.py`
builds an export's index from its files after publication (one build per result at a time, across
processes); `retention.py` evicts by age and size and leaves tombstones.

Two ways to get an index. Small results (`create`, scroll pages) are indexed while they are built
and published ready. Exports are published as soon as their files are verified (`defer_index`,
meta `index_state: "building"`, `records` already exact from the export's id hashes) and the store
builds the index from the files in a background thread. `search`/`aggs`/`count` call `ensure_index`,
which waits for that build or runs it, so no answer ever comes from a partial index. A build cut
short by a process exit leaves no marker and is simply redone on next use; so is the index of a
result written before the marker existed. `sample()` reads records straight from the files, for
summaries that should not wait for the index.

Retention (`enforce_retention`, run after every new result): see retention.py.
"""

from __future__ import annotations

import builtins
import secrets
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import timedelta
from pathlib import Path
from typing import Any, Final

from cm_mcp.dsl import DocQuery, Engine, SearchIndex, open_index
from cm_mcp.dsl.engine import INDEX_THREADS, SMALL_HEAP_BYTES, default_engine
from cm_mcp.store import indexing, retention, scroll
from cm_mcp.store.builder import ResultBuilder, publish_one_page
from cm_mcp.store.errors import ResultNotFoundError, StoreError
from cm_mcp.store.files import sample_file_records
from cm_mcp.store.fsutil import atomic_write
from cm_mcp.store.layout import INDEX_DIR, META, index_ready, locked, named_lock, now
from cm_mcp.store.models import ResultInfo, ResultKind, ResultSource, SearchPage

#: Default retention: a week of investigations, within a few GiB of disk.
DEFAULT_MAX_BYTES: Final = 5 * 1024**3
DEFAULT_MAX_AGE: Final = timedelta(days=7)
#: A `.building-*` directory older than this is debris of a crashed process.
STALE_BUILD_SECONDS: Final = 6 * 3600


class ResultStore:
    """Stored results under `<data_dir>/results/`; see the module docstring. Blocking I/O: call it
    from a worker thread in async code."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        max_bytes: int = DEFAULT_MAX_BYTES,
        max_age: timedelta = DEFAULT_MAX_AGE,
        index_heap: int = indexing.INDEX_HEAP_BYTES,
        index_threads: int = INDEX_THREADS,
        background_index: bool = True,
        engine: Engine | None = None,
    ) -> None:
        """`engine` answers follow-ups: `default_engine()` unless given (tantivy: tests, benchmarks);
        `index_heap`/`index_threads` size tantivy's writer of builds from files (exports, large pages);
        `background_index=False` leaves a deferred index to be built by its first search (tests,
        benchmarks that time the build on its own)."""
        self.data_dir = Path(data_dir)
        self.root = self.data_dir / "results"
        self.root.mkdir(parents=True, exist_ok=True)
        self.max_bytes = max_bytes
        self.max_age = max_age
        self.index_heap = index_heap
        self.index_threads = index_threads
        self.background_index = background_index
        self.engine: Engine = engine or default_engine()
        self._lock = threading.RLock()
        retention.remove_stale_builds(self.root, STALE_BUILD_SECONDS)

    # --- creating ------------------------------------------------------------------------------------

    def new_id(self) -> str:
        return f"r{now():%Y%m%d-%H%M%S}-{secrets.token_hex(3)}"

    def new_index(self, path: Path, *, bulk: bool = False) -> SearchIndex:
        """An index of the store's engine at `path`; a tantivy writer sized for the job: the store's
        bulk settings for builds from files and large pages, tantivy's minimum for a small page."""
        if bulk:
            return open_index(
                path, engine=self.engine, heap_size=self.index_heap, num_threads=self.index_threads
            )
        return open_index(path, engine=self.engine, heap_size=SMALL_HEAP_BYTES, num_threads=1)

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
        hits = list(hits)
        builder = ResultBuilder(
            self,
            kind=kind,
            source=source,
            request=request,
            start_time=start_time,
            end_time=end_time,
            expected_hits=len(hits),
        )
        return publish_one_page(builder, hits, complete=complete)

    def create_page(
        self,
        *,
        result_id: str,
        kind: ResultKind,
        request: Mapping[str, Any],
        hits: Sequence[Mapping[str, Any]],
        complete: bool,
        next_scroll_id: str | None,
        upstream_total: int | None,
    ) -> ResultInfo:
        """The first page of a scroll as a new result under the reserved `result_id`."""
        builder = ResultBuilder(
            self,
            kind=kind,
            source="scroll",
            request=request,
            start_time=request.get("start_time"),
            end_time=request.get("end_time"),
            result_id=result_id,
            expected_hits=len(hits),
        )
        return publish_one_page(
            builder, hits, complete=complete, next_scroll_id=next_scroll_id, upstream_total=upstream_total
        )

    def keep_scroll_page(
        self,
        request: Mapping[str, Any],
        hits: Sequence[Mapping[str, Any]],
        *,
        kind: ResultKind,
        next_scroll_id: str | None = None,
        upstream_total: int | None = None,
        start: bool = True,
    ) -> scroll.KeptPage:
        """Keep one scroll page: its result id at once, the page stored in the background (every read
        of the result waits for it; `start=False`: not before `write()`, see scroll.py). A continuation
        (`request` is `{"scroll_id": s}`) joins the result whose previous page returned `s`; any other
        request starts a new result. `complete` becomes True when a page comes back without a next
        scroll id."""
        return scroll.keep_page(
            self,
            request,
            hits,
            kind=kind,
            next_scroll_id=next_scroll_id,
            upstream_total=upstream_total,
            start=start,
        )

    def add_scroll_page(
        self,
        request: Mapping[str, Any],
        hits: Sequence[Mapping[str, Any]],
        *,
        kind: ResultKind,
        next_scroll_id: str | None = None,
        upstream_total: int | None = None,
    ) -> ResultInfo:
        """`keep_scroll_page`, returning once the page is stored: the result as it is then."""
        kept = self.keep_scroll_page(
            request, hits, kind=kind, next_scroll_id=next_scroll_id, upstream_total=upstream_total
        )
        return self.get(kept.result_id)

    # --- reading -------------------------------------------------------------------------------------

    def list(self) -> builtins.list[ResultInfo]:
        """Every stored result, newest first (after any page write pending in this process)."""
        scroll.wait_pending(self)
        return self.scan()

    def scan(self) -> builtins.list[ResultInfo]:
        """`list()` without waiting for pending page writes (the writers' own view)."""
        out = []
        for meta in self.root.glob(f"*/{META}"):
            try:
                out.append(self._with_index_state(ResultInfo.model_validate_json(meta.read_bytes())))
            except (OSError, ValueError):
                continue  # being evicted right now, or damaged: not a usable result
        return sorted(out, key=lambda r: r.created, reverse=True)

    def get(self, result_id: str) -> ResultInfo:
        """The result's metadata, once any page write of it is done (here or, for a result not
        published yet, in another process); ResultEvictedError or ResultNotFoundError when it is not
        stored."""
        self.folder(result_id)  # validates the id before it names a lock
        scroll.wait_pending(self, result_id)
        try:
            return self.read_info(result_id)
        except ResultNotFoundError as not_found:
            if result_id in retention.tombstones(self.root):
                raise
            lock = named_lock(self.root, f"{result_id}.build")
            if not lock.is_held():
                raise
            with lock.held():  # published by its writer (another process) when released
                pass
            try:
                return self.read_info(result_id)
            except ResultNotFoundError:
                raise not_found from None

    def read_info(self, result_id: str) -> ResultInfo:
        """The result's metadata as on disk now, without waiting for anything."""
        folder = self.folder(result_id)
        try:
            return self._with_index_state(ResultInfo.model_validate_json((folder / META).read_bytes()))
        except FileNotFoundError:
            raise self.missing(result_id) from None

    def _with_index_state(self, info: ResultInfo) -> ResultInfo:
        # The marker, not meta.json, is the truth: a build may have finished (or died) since meta was
        # written, and results from before this field existed have no marker at all.
        ready = index_ready(self.root / info.id / INDEX_DIR, self.engine)
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
        folder = self.folder(result_id) / "files"
        hits: builtins.list[dict[str, Any]] = []
        ids: set[str] = set()
        with indexing.sampling():
            for stored, quota in zip(files, quotas, strict=True):
                for hit in sample_file_records(folder / stored.name, quota, stored.records):
                    key = str(hit.get("_id", ""))
                    if key not in ids:  # overlapping partitions: the same document once, as in search
                        ids.add(key)
                        hits.append(hit)
        hits.sort(key=lambda h: (str((h.get("_source") or {}).get("@timestamp", "")), str(h.get("_id", ""))))
        return hits[:n], info.records

    def files(self, result_id: str) -> builtins.list[Path]:
        info = self.get(result_id)
        return [self.folder(result_id) / "files" / f.name for f in info.files]

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

    # --- the index -----------------------------------------------------------------------------------

    def ensure_index(self, result_id: str) -> ResultInfo:
        """Return once the result's index is complete: at once if it is, after the build in progress
        if one is running, otherwise after building it here from the stored files."""
        info = self.get(result_id)
        if info.index_state == "ready":
            return info
        with locked(self.root, f"{result_id}.build"):
            info = self.read_info(result_id)
            if info.index_state == "ready":
                return info
            info = self.build_index_locked(info)
        self.enforce_retention(keep=result_id)  # the index adds to the result's size
        return info

    def build_index_locked(self, info: ResultInfo) -> ResultInfo:
        """Build the result's index from its files now. Caller holds the result's build lock."""
        return indexing.build_index(self, info)

    def build_index_in_background(self, result_id: str) -> threading.Thread:
        """Start `ensure_index` in a daemon thread (see indexing.py for interpreter exit)."""
        return indexing.start_background_build(self, result_id)

    def index_progress(self, result_id: str) -> int | None:
        """Records indexed so far by a build of `result_id` running in this process; None when no
        build runs here (none at all, or one in another process)."""
        return indexing.index_progress(self.folder(result_id))

    # --- removing ------------------------------------------------------------------------------------

    def delete(self, result_id: str, *, reason: str = "deleted on request") -> None:
        self.get(result_id)
        retention.evict(self.root, result_id, reason)

    def enforce_retention(self, *, keep: str | None = None) -> builtins.list[str]:
        """Evict by age, then by total size (oldest first); returns the evicted ids."""
        with self._lock:
            return retention.enforce_retention(self, keep=keep)

    @property
    def retention_text(self) -> str:
        return (
            f"at most {retention.size_text(self.max_bytes)} and {retention.age_text(self.max_age)}, "
            "oldest evicted first"
        )

    # --- internals -----------------------------------------------------------------------------------

    def folder(self, result_id: str) -> Path:
        if not result_id or "/" in result_id or "\\" in result_id or result_id.startswith("."):
            raise ResultNotFoundError(result_id)
        return self.root / result_id

    def missing(self, result_id: str) -> ResultNotFoundError:
        return retention.missing(self.root, result_id, self.retention_text)

    def write_meta(self, info: ResultInfo) -> None:
        atomic_write(self.root / info.id / META, info.model_dump_json(indent=1).encode())

    def _open_index(self, result_id: str) -> SearchIndex:
        self.ensure_index(result_id)  # never a partial index: wait for (or run) the build
        return open_index(self.folder(result_id) / INDEX_DIR, engine=self.engine)
