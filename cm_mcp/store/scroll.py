"""Scroll pages kept as results, answered before they are stored.

The first page of a scroll starts a result; a continuation (`{"scroll_id": s}`) joins the result whose
previous page returned `s`. `keep_page` decides the page's result id at once (for a new result it also
takes the result's build lock, free since the id is new) and writes the page in a background thread,
so the tool answers without waiting for the page's files and index. Nothing reads a page before it is
stored:

- in this process, `ResultStore.get`/`list` (and through them search, aggs, count, sample) wait for
  the pending writes of the result (`wait_pending`); pages are written one at a time, in the order
  they were kept, so a continuation never overtakes its previous page;
- in another process, `get` of a result without meta.json waits for its build lock, which the writer
  holds until the new result is published (an appended page is written under it too).

Writer threads are not daemons: a `cm-mcp call` that exits right after answering still stores its page.
"""

from __future__ import annotations

import builtins
import logging
import os
import threading
import time
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from cm_mcp.dsl import DocQuery, SearchIndex
from cm_mcp.store.builder import dumps_line, write_page
from cm_mcp.store.fsutil import NamedLock
from cm_mcp.store.layout import INDEX_DIR, INDEX_READY, dir_bytes, locked, mark_ready, named_lock, now
from cm_mcp.store.models import ResultInfo, ResultKind

if TYPE_CHECKING:
    from cm_mcp.store.store import ResultStore

logger = logging.getLogger("cm_mcp.store")

#: `_id` lookups per query when de-duplicating a scroll page against what is stored.
ID_LOOKUP_CHUNK: Final = 1000
#: A page kept with `start=False` is written after this at the latest, released or not (a caller
#: cancelled between keeping and releasing it must not leave readers, or interpreter exit, waiting).
UNRELEASED_START_SECONDS: Final = 2.0
#: A reader waits at most this long for a pending page write (a write takes well under a second; a
#: stuck disk must not hang every follow-up forever).
PENDING_WAIT_SECONDS: Final = 600.0

_PENDING = threading.Condition()
# Pending page writes by result folder, and by (store root, next scroll id) the result a continuation
# joins while the page that returned that scroll id is still being written.
_PENDING_RESULTS: Counter[str] = Counter()
_PENDING_SCROLLS: dict[tuple[str, str], str] = {}
_RESERVE = threading.Lock()  # deciding ids and queueing writes, one page at a time
_last_write: threading.Thread | None = None


class KeptPage:
    """A page queued for storing: its result id, and `write()` to let the writer start."""

    def __init__(self, result_id: str, go: threading.Event) -> None:
        self.result_id = result_id
        self._go = go

    def write(self) -> None:
        """Let the page be written (idempotent). Until then every reader of the result waits."""
        self._go.set()


def keep_page(
    store: ResultStore,
    request: Mapping[str, Any],
    hits: Sequence[Mapping[str, Any]],
    *,
    kind: ResultKind,
    next_scroll_id: str | None,
    upstream_total: int | None,
    start: bool = True,
) -> KeptPage:
    """Queue the page for storing; its result id, at once (see the module docstring). With
    `start=False` the writer waits for `KeptPage.write()` (or `UNRELEASED_START_SECONDS`): a caller
    that answers first keeps the writer's Python work (it needs the GIL too) out of its answer's way;
    readers of the result wait for the write either way."""
    global _last_write
    root = str(store.root)
    scroll_id = request.get("scroll_id")
    lock: NamedLock | None = None
    with _RESERVE:
        result_id = _PENDING_SCROLLS.pop((root, scroll_id), None) if scroll_id else None
        if result_id is None and scroll_id:
            existing = find_scroll(store, scroll_id)
            result_id = existing.id if existing is not None else None
        if result_id is None:
            result_id = store.new_id()
            lock = named_lock(store.root, f"{result_id}.build")
            lock.acquire()  # a new id: free at once; released by the writer once the result exists
        if next_scroll_id:
            _PENDING_SCROLLS[(root, next_scroll_id)] = result_id
        with _PENDING:
            _PENDING_RESULTS[str(store.root / result_id)] += 1
        page = _PageWrite(
            store, result_id, lock, dict(request), list(hits), kind, next_scroll_id, upstream_total
        )
        go = threading.Event()
        if start:
            go.set()
        writer = threading.Thread(target=page.run, args=(_last_write, go), name=f"cm-page-{result_id}")
        _last_write = writer
        writer.start()
    return KeptPage(result_id, go)


def wait_pending(store: ResultStore, result_id: str | None = None) -> None:
    """Return once no page write of `result_id` (None: of any result of `store`) is pending here."""
    prefix = str(store.root / result_id) if result_id else str(store.root) + os.sep
    deadline = time.monotonic() + PENDING_WAIT_SECONDS

    def settled() -> bool:
        if result_id:
            return _PENDING_RESULTS[prefix] == 0
        return not any(count and key.startswith(prefix) for key, count in _PENDING_RESULTS.items())

    with _PENDING:
        while not settled():
            left = deadline - time.monotonic()
            if left <= 0:
                logger.warning("gave up waiting for a page write of %s", result_id or store.root)
                return
            _PENDING.wait(left)


def find_scroll(store: ResultStore, scroll_id: str) -> ResultInfo | None:
    return next((r for r in store.scan() if r.source == "scroll" and r.next_scroll_id == scroll_id), None)


class _PageWrite:
    def __init__(
        self,
        store: ResultStore,
        result_id: str,
        lock: NamedLock | None,
        request: dict[str, Any],
        hits: builtins.list[Mapping[str, Any]],
        kind: ResultKind,
        next_scroll_id: str | None,
        upstream_total: int | None,
    ) -> None:
        self.store, self.result_id, self.lock = store, result_id, lock
        self.request, self.hits, self.kind = request, hits, kind
        self.next_scroll_id, self.upstream_total = next_scroll_id, upstream_total

    def run(self, previous: threading.Thread | None, go: threading.Event) -> None:
        try:
            go.wait(UNRELEASED_START_SECONDS)
            if previous is not None:
                previous.join()  # pages are stored in the order they were kept
            self._write()
        except Exception:
            logger.exception("result %s: storing a scroll page failed", self.result_id)
        finally:
            if self.lock is not None:
                self.lock.release()
            with _RESERVE:
                key = (str(self.store.root), self.next_scroll_id or "")
                if _PENDING_SCROLLS.get(key) == self.result_id:
                    del _PENDING_SCROLLS[key]  # on disk now: found there
            with _PENDING:
                _PENDING_RESULTS[str(self.store.root / self.result_id)] -= 1
                _PENDING.notify_all()

    def _write(self) -> None:
        store, request = self.store, self.request
        if self.lock is not None:  # a new result, its build lock already held
            store.create_page(
                result_id=self.result_id,
                kind=self.kind,
                request=request,
                hits=self.hits,
                complete=self.next_scroll_id is None,
                next_scroll_id=self.next_scroll_id,
                upstream_total=self.upstream_total,
            )
            return
        with locked(store.root, f"{self.result_id}.build"):
            info = store.read_info(self.result_id)
            if info.index_state != "ready":
                info = store.build_index_locked(info)
            append_page(store, info, self.hits, self.next_scroll_id, self.upstream_total)
        store.enforce_retention(keep=self.result_id)


def append_page(
    store: ResultStore,
    info: ResultInfo,
    hits: Sequence[Mapping[str, Any]],
    next_scroll_id: str | None,
    upstream_total: int | None,
) -> ResultInfo:
    """Add a page to a stored scroll result whose index is ready. Caller holds its build lock."""
    folder = store.folder(info.id)
    # Not ready while it changes: a crash before the marker is back means a rebuild from the files.
    (folder / INDEX_DIR / INDEX_READY).unlink()
    index = store.new_index(folder / INDEX_DIR, bulk=len(hits) >= 20_000)
    lines = [dumps_line(hit) for hit in hits]  # one serialisation for the file and the index
    try:
        present = _present_ids(index, [str(h.get("_id", "")) for h in hits])
        fresh: builtins.list[tuple[bytes | None, Mapping[str, Any]]] = []
        batch_ids: set[str] = set()
        for line, hit in zip(lines, hits, strict=True):
            hid = str(hit.get("_id", ""))
            if hid in present or hid in batch_ids:
                continue
            batch_ids.add(hid)
            fresh.append((line, hit))
        if fresh:
            index.add_lines(fresh)
    finally:
        index.close()
    info.files.append(write_page(folder / "files" / f"page-{info.pages + 1:04d}.ndjson", lines))
    info.pages += 1
    info.records += len(fresh)
    info.records_received += len(hits)
    info.next_scroll_id = next_scroll_id
    info.complete = next_scroll_id is None
    info.upstream_total = upstream_total if upstream_total is not None else info.upstream_total
    info.updated = now()
    info.bytes = dir_bytes(folder)
    store.write_meta(info)
    mark_ready(folder / INDEX_DIR)
    info.index_state = "ready"
    return info


def _present_ids(index: SearchIndex, ids: builtins.list[str]) -> set[str]:
    present: set[str] = set()
    for i in range(0, len(ids), ID_LOOKUP_CHUNK):
        chunk = ids[i : i + ID_LOOKUP_CHUNK]
        hits, _ = index.search(DocQuery(filters=[{"terms": {"_id": chunk}}]), size=len(chunk))
        present.update(str(h.get("_id", "")) for h in hits)
    return present
