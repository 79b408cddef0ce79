"""Retention, eviction and debris: results older than `max_age` go first, then the oldest until the total size
is under `max_bytes`; the newest result is never evicted by size, so one oversized export stays usable
until the next one arrives. An evicted id leaves a tombstone, so a later lookup can say why it is gone."""

from __future__ import annotations

import builtins
import json
import shutil
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Final

from cm_mcp.store.errors import ResultEvictedError, ResultNotFoundError
from cm_mcp.store.fsutil import atomic_write
from cm_mcp.store.layout import LOCKS_DIR, META, TOMBSTONES, locked, now

if TYPE_CHECKING:
    from cm_mcp.store.store import ResultStore

#: Tombstones kept (oldest dropped): enough to explain any recently quoted id.
MAX_TOMBSTONES: Final = 1000


def enforce_retention(store: ResultStore, *, keep: str | None = None) -> builtins.list[str]:
    """Evict by age, then by total size (oldest first); returns the evicted ids."""
    evicted: builtins.list[str] = []
    results = sorted(store.scan(), key=lambda r: r.created)  # scan: writers call this too
    current = now()
    for info in list(results):
        if info.id != keep and current - info.created > store.max_age:
            evict(store.root, info.id, f"older than {age_text(store.max_age)}")
            evicted.append(info.id)
            results.remove(info)
    total = sum(r.bytes for r in results)
    for info in results:
        if total <= store.max_bytes:
            break
        if info.id == keep:
            continue
        evict(store.root, info.id, f"the store exceeded {size_text(store.max_bytes)}")
        evicted.append(info.id)
        total -= info.bytes
    return evicted


def evict(root: Path, result_id: str, reason: str) -> None:
    folder = root / result_id
    with locked(root, "tombstones"):
        stones = tombstones(root)
        stones[result_id] = {"evicted_at": now().isoformat(), "reason": reason}
        if len(stones) > MAX_TOMBSTONES:
            for old in sorted(stones, key=lambda k: stones[k]["evicted_at"])[:-MAX_TOMBSTONES]:
                del stones[old]
        atomic_write(root / TOMBSTONES, json.dumps(stones, indent=1).encode())
    with locked(root, f"{result_id}.meta"):
        # meta.json first: from that instant the directory is no longer a result for readers.
        (folder / META).unlink(missing_ok=True)
    shutil.rmtree(folder, ignore_errors=True)


def tombstones(root: Path) -> dict[str, dict[str, str]]:
    try:
        data = json.loads((root / TOMBSTONES).read_bytes())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def missing(root: Path, result_id: str, retention: str) -> ResultNotFoundError:
    """The error for an id that is not stored: evicted (with when and why) or never known."""
    stone = tombstones(root).get(result_id)
    if stone is None:
        return ResultNotFoundError(result_id)
    return ResultEvictedError(
        result_id, datetime.fromisoformat(stone["evicted_at"]), stone["reason"], retention
    )


def remove_stale_builds(root: Path, stale_seconds: float) -> None:
    """Debris of crashed processes: old `.building-*` folders, and the lock files of results
    long gone (a lock file is never removed while its result exists: that would race its users)."""
    cutoff = time.time() - stale_seconds
    for folder in root.glob(".building-*"):
        try:
            if folder.stat().st_mtime < cutoff:
                shutil.rmtree(folder, ignore_errors=True)
        except OSError:
            continue
    for lock_file in root.glob(f"{LOCKS_DIR}/r*.lock"):
        result_id = lock_file.name.split(".", 1)[0]
        try:
            if not (root / result_id).exists() and lock_file.stat().st_mtime < cutoff:
                lock_file.unlink()
        except OSError:
            continue


def size_text(size: int) -> str:
    for unit, factor in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
        if size >= factor:
            return f"{size / factor:.1f} {unit}"
    return f"{size} bytes"


def age_text(age: timedelta) -> str:
    seconds = age.total_seconds()
    if seconds >= 86400:
        return f"{seconds / 86400:g} days"
    if seconds >= 3600:
        return f"{seconds / 3600:g} hours"
    return f"{seconds:g} seconds"
