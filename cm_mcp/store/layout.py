"""Where the store keeps what, and the small helpers every part of it uses (see store.py for the layout)."""

from __future__ import annotations

import contextlib
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Final

from cm_mcp.dsl.engine import engine_of
from cm_mcp.store.fsutil import NamedLock

META: Final = "meta.json"
TOMBSTONES: Final = ".tombstones.json"
#: Lock files (`<id>.build.lock`, `<id>.meta.lock`, `tombstones.lock`), outside the result folders so
#: that taking a lock never re-creates the folder of an evicted result.
LOCKS_DIR: Final = ".locks"
#: Inside `index/`, written last: an index without it is incomplete and is rebuilt.
INDEX_READY: Final = ".ready"
INDEX_DIR: Final = "index"
INDEX_TEMP_PREFIX: Final = ".index-"


def now() -> datetime:
    return datetime.now(UTC)


def dir_bytes(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def mark_ready(index_dir: Path) -> None:
    """Mark the index in `index_dir` complete; the marker names its engine (see `index_ready`)."""
    (index_dir / INDEX_READY).write_text(
        json.dumps({"engine": engine_of(index_dir), "at": now().isoformat()})
    )


def index_ready(index_dir: Path, engine: str) -> bool:
    """Whether `index_dir` holds a complete index of `engine`. An index of another engine (a result
    indexed before the store changed engines) or with a marker from before markers named one is not:
    it is rebuilt from the result's files on first use."""
    try:
        marker = json.loads((index_dir / INDEX_READY).read_text())
    except (OSError, ValueError):
        return False
    return isinstance(marker, dict) and marker.get("engine") == engine


def named_lock(root: Path, name: str) -> NamedLock:
    """The lock `name` of the store at `root`.

    Exclusive across every ResultStore of this process (tests and the server may hold several for
    one data dir) and across processes (a `cm-mcp call` beside a running server). "<id>.build"
    serialises index builds and page writes of one result (held for the whole build or write);
    "<id>.meta" is a short leaf lock making "index swap + meta update" and eviction exclusive, so a
    build finishing during an eviction cannot resurrect the evicted result; "tombstones" guards the
    tombstone file's read-modify-write.
    """
    return NamedLock(root / LOCKS_DIR / f"{name}.lock")


def locked(root: Path, name: str) -> contextlib.AbstractContextManager[None]:
    """`named_lock(root, name)`, held (blocking) for the `with` block."""
    return named_lock(root, name).held()
