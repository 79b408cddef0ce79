"""Building a result's search index from its stored files: in a background thread after an export
is published, or by the first search that needs it; never more than one build of a result at a time
(its "<id>.build" lock, across processes), and never a partial index answered (the ready marker is
written last, the finished index swapped in under the result's meta lock)."""

from __future__ import annotations

import atexit
import builtins
import contextlib
import logging
import os
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, Final

from cm_mcp.dsl import SearchIndex
from cm_mcp.dsl.duck.source import SourceFile, prepare_line
from cm_mcp.dsl.engine import BULK_HEAP_BYTES, INDEX_THREADS
from cm_mcp.store.errors import ResultNotFoundError, StoreError
from cm_mcp.store.files import file_shape, iter_file_lines
from cm_mcp.store.formats import record_key
from cm_mcp.store.layout import INDEX_DIR, INDEX_TEMP_PREFIX, META, dir_bytes, locked, mark_ready
from cm_mcp.store.models import ResultInfo

if TYPE_CHECKING:
    from cm_mcp.store.store import ResultStore

logger = logging.getLogger("cm_mcp.store")

#: tantivy writer memory and threads of a build from files. bench/export.py at 1M logs: 64 MB and two
#: threads build fastest now that the Python side feeds documents without re-serialising them.
INDEX_HEAP_BYTES: Final = BULK_HEAP_BYTES
#: Records per DocIndex.add in a tantivy build from files; also how often it checks for shutdown (a
#: DuckDB build reads each file in one statement and checks between files).
INDEX_BUILD_BATCH: Final = 2_000
#: How long interpreter exit waits for a background build to notice it should stop.
SHUTDOWN_JOIN_SECONDS: Final = 5.0
#: A build never waits longer than this for samplers (a stuck sampler must not stall it forever).
SAMPLER_PRIORITY_SECONDS: Final = 30.0

__all__ = ["INDEX_HEAP_BYTES", "INDEX_THREADS", "IndexBuildInterrupted"]


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


@contextlib.contextmanager
def sampling() -> Iterator[None]:
    """Held while a sample is read: background builds pause between batches meanwhile."""
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


@atexit.register
def _stop_builds() -> None:
    """Background builds run in daemon threads (a server exit must not wait minutes for them); ask
    them to stop between batches so they clean up their temporary directory, and wait a little."""
    _SHUTDOWN.set()
    for thread in list(_BUILDERS):
        thread.join(SHUTDOWN_JOIN_SECONDS)


def start_background_build(store: ResultStore, result_id: str) -> threading.Thread:
    """`store.ensure_index(result_id)` in a daemon thread (see `_stop_builds` for interpreter exit)."""
    thread = threading.Thread(
        target=_background_build, args=(store, result_id), name=f"cm-index-{result_id}", daemon=True
    )
    _BUILDERS.add(thread)
    thread.start()
    return thread


def _background_build(store: ResultStore, result_id: str) -> None:
    started = time.monotonic()
    try:
        info = store.ensure_index(result_id)
        logger.info(
            "result %s: index ready, %d records (%.1f s)", result_id, info.records, time.monotonic() - started
        )
    except (ResultNotFoundError, IndexBuildInterrupted):
        pass  # evicted or deleted meanwhile; or the process is exiting (rebuilt on next use)
    except Exception:
        # Nobody awaits this thread: log, and leave the result without a marker so the first
        # search builds it again (and reports the error if it persists).
        logger.exception("result %s: building the index failed", result_id)
    finally:
        _BUILDERS.discard(threading.current_thread())


def build_index(store: ResultStore, info: ResultInfo) -> ResultInfo:
    """Index every stored file into a temporary directory and swap it in. Caller holds the build lock."""
    folder = store.folder(info.id)
    # Debris of an interrupted build, or an index without marker (crash, or an older version).
    for debris in folder.glob(f"{INDEX_TEMP_PREFIX}*"):
        shutil.rmtree(debris, ignore_errors=True)
    shutil.rmtree(folder / INDEX_DIR, ignore_errors=True)
    temp = folder / f"{INDEX_TEMP_PREFIX}{secrets.token_hex(4)}"
    paths = [folder / "files" / f.name for f in info.files]
    _BUILD_PROGRESS[str(folder)] = 0  # running here from now on (index_progress)
    try:
        index = store.new_index(temp, bulk=True)
        try:
            # records == records_received means no duplicates at all: skip the ~80 MB id set.
            added = fill_index(
                index,
                paths,
                dedup=info.records != info.records_received,
                on_progress=lambda n: _BUILD_PROGRESS.__setitem__(str(folder), n),
                records=[f.records for f in info.files],
            )
        finally:
            index.close()
        mark_ready(temp)
        del index  # release the engine's handles on the temporary path before the rename
        with locked(store.root, f"{info.id}.meta"):
            if not (folder / META).exists():
                raise store.missing(info.id)  # evicted while building
            os.replace(temp, folder / INDEX_DIR)
            fresh = store.read_info(info.id)
            if fresh.records != added:
                logger.warning(
                    "result %s: the index holds %d distinct records, meta said %d; meta corrected",
                    info.id,
                    added,
                    fresh.records,
                )
            fresh.records = added
            fresh.bytes = dir_bytes(folder)
            store.write_meta(fresh)
        return fresh
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        if not (folder / META).exists():
            raise store.missing(info.id) from None
        raise
    finally:
        _BUILD_PROGRESS.pop(str(folder), None)


def index_progress(folder: Path) -> int | None:
    """Records indexed so far by a build of the result in `folder` running in this process."""
    return _BUILD_PROGRESS.get(str(folder))


def fill_index(
    index: SearchIndex,
    paths: Sequence[Path],
    *,
    dedup: bool,
    on_progress: Callable[[int], None] | None = None,
    records: Sequence[int] | None = None,
) -> int:
    """Add every record of `paths` to `index` (the first of each `_id` when `dedup`); returns how
    many. `on_progress` gets the running count after each file (DuckDB) or batch (tantivy).

    DuckDB reads the files itself (`add_files`; `records`, the verified counts, let it tell a file
    it cannot take as it is from a good one); tantivy gets each record with its stored JSON text
    (`add_lines`): no second serialisation of a million documents."""
    add_files = getattr(index, "add_files", None)
    if add_files is not None:
        counts = list(records) if records is not None else [None] * len(paths)
        files = [source_file(path, count) for path, count in zip(paths, counts, strict=True)]
        added: int = add_files(files, dedup=dedup, on_progress=on_progress, between_files=_between_batches)
        return added

    def distinct() -> Iterator[tuple[bytes | None, dict[str, Any]]]:
        seen: set[bytes] = set()
        for path in paths:
            for raw, hit in iter_file_lines(path):
                if dedup:
                    key = record_key(hit)  # the key the export counted by, as ResultBuilder.add_hits
                    if key in seen:
                        continue
                    seen.add(key)
                yield raw, hit

    added = 0
    batch: builtins.list[tuple[bytes | None, dict[str, Any]]] = []
    for item in distinct():
        batch.append(item)
        if len(batch) >= INDEX_BUILD_BATCH:
            _between_batches()
            added += index.add_lines(batch, commit=False)
            batch = []
            if on_progress is not None:
                on_progress(added)
    if batch:
        added += index.add_lines(batch, commit=False)
    return added


def _between_batches() -> None:
    """Stop if the process is exiting; step aside while a sampler runs (see `sampling`)."""
    if _SHUTDOWN.is_set():
        raise IndexBuildInterrupted("the process is exiting")
    _NO_SAMPLERS.wait(SAMPLER_PRIORITY_SECONDS)


def source_file(path: Path, records: int | None = None) -> SourceFile:
    """A stored file as the DuckDB engine reads it: compression and layout sniffed from its bytes, the
    verified record count, and the store's reader as the fallback for what DuckDB cannot take as it
    is (bare documents, non-string ids: see `formats.normalise`; damage, which the reader reports)."""
    gz, array = file_shape(path)

    def prepared() -> Iterator[bytes]:
        for raw, hit in iter_file_lines(path):
            yield prepare_line(hit, raw)

    return SourceFile(Path(path), gzip=gz, array=array, records=records, fallback=prepared)
