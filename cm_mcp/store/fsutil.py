"""Small file-system helpers shared by the store and the export jobs."""

from __future__ import annotations

import contextlib
import os
import secrets
import threading
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import anyio
from filelock import FileLock, Timeout


def atomic_write(path: Path, data: bytes) -> None:
    """Write `data` to `path` so a reader (or a crash) only ever sees the old or the new content."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        with open(temp, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temp, path)
    finally:
        temp.unlink(missing_ok=True)


class NamedLock:
    """A lock exclusive across the threads of this process and across processes sharing a data dir:
    a thread lock per path, then an OS file lock (flock / LockFileEx) on that path, which the OS
    releases if its holder dies. filelock alone is re-entrant within a process; the thread lock is
    what keeps two threads or tasks here apart."""

    def __init__(self, path: Path) -> None:
        with _THREAD_LOCKS_GUARD:
            self._thread = _THREAD_LOCKS.setdefault(str(path), threading.Lock())
        self._file = FileLock(path, thread_local=False)

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        """Hold it, blocking until it is free (for worker threads)."""
        with self._thread, self._file:
            yield

    @contextlib.asynccontextmanager
    async def held_async(self, poll_seconds: float) -> AsyncIterator[None]:
        """Hold it, waiting cancellably; polled, since another process's lock has no event to await."""
        while not self._try_acquire():  # noqa: ASYNC110
            await anyio.sleep(poll_seconds)
        try:
            yield
        finally:
            self._release()

    def acquire(self) -> None:
        """Take it, blocking; `release` may then be called from another thread (a background writer
        finishing what the caller started)."""
        self._thread.acquire()
        try:
            self._file.acquire()
        except BaseException:
            self._thread.release()
            raise

    def release(self) -> None:
        self._release()

    def is_held(self) -> bool:
        """True while someone (this process or another) holds it."""
        if not self._try_acquire():
            return True
        self._release()
        return False

    def _try_acquire(self) -> bool:
        if not self._thread.acquire(blocking=False):
            return False
        try:
            self._file.acquire(timeout=0)  # flock LOCK_NB: never blocks
        except Timeout:
            self._thread.release()
            return False
        return True

    def _release(self) -> None:
        self._file.release()
        self._thread.release()


_THREAD_LOCKS: dict[str, threading.Lock] = {}
_THREAD_LOCKS_GUARD = threading.Lock()
