"""Batch export jobs: a token, a list of time partitions, and their files.

A job's partitions go pending -> processing -> completed (or failed under faults). States are a pure
function of the time elapsed since submission, so no background thread is needed and tests inject
the clock: partition i of n starts at ``batch_seconds * i / (2n)`` and finishes at
``batch_seconds * (i + 1) / n`` (stretched by its slowness factor), i.e. they complete one after
another over `batch_seconds`. Tokens expire `token_ttl_seconds` (2 h) after submission, counted from
the batch call (reference item 29); an expired or unknown token raises TokenUnknown.

Partition files (`write_partition_file`) hold the same ``_index/_id/_source`` envelopes as scroll
responses, one per line; formats: ``ndjson.gz`` (default), ``ndjson``, ``json`` (one array).
"""

from __future__ import annotations

import base64
import gzip
import json
import math
import os
import secrets
import threading
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any, Final, Literal, cast

from cm_mcp.sandbox.faults import FaultInjector, FileVariant

PartitionState = Literal["pending", "processing", "completed", "failed"]
FileFormat = Literal["ndjson.gz", "ndjson", "json"]
FILE_FORMATS: Final[tuple[FileFormat, ...]] = ("ndjson.gz", "ndjson", "json")
#: What S3 would send for each object: a .gz object is served as-is (no Content-Encoding), so clients
#: must recognise it from the type or the magic bytes (reference item 28).
CONTENT_TYPES: Final[dict[str, str]] = {
    "ndjson.gz": "application/gzip",
    "ndjson": "application/x-ndjson",
    "json": "application/json",
}
DEFAULT_TARGET_PER_PARTITION: Final = 100_000
#: The reference's 404 text for an unknown or expired batch token.
TOKEN_UNKNOWN_MESSAGE: Final = "No record of this token. Note: Tokens expire after 2 hours"


class TokenUnknown(Exception):
    """No record of this token (never issued, or expired)."""


@dataclass(frozen=True)
class Partition:
    index: int
    start: datetime
    end: datetime
    count: int
    starts_at: float  # seconds after submission when processing begins
    done_at: float  # seconds after submission when the final state is reached
    fails: bool


@dataclass(frozen=True)
class PartitionStatus:
    partition: Partition
    state: PartitionState
    object_key: str

    @property
    def completed(self) -> bool:
        return self.state == "completed"


@dataclass(frozen=True)
class BatchJob:
    token: str
    kind: str  # "logs", "workloads" or "v1_logs"
    query: Any  # the engine's query descriptor, stored as given
    created: float  # epoch seconds
    partitions: tuple[Partition, ...]
    file_format: FileFormat

    def object_key(self, index: int) -> str:
        return f"{self.kind}/{self.token}/part-{index:04d}.{self.file_format}"

    def status(self, now: float) -> list[PartitionStatus]:
        elapsed = now - self.created
        out = []
        for p in self.partitions:
            state: PartitionState
            if elapsed >= p.done_at:
                state = "failed" if p.fails else "completed"
            elif elapsed >= p.starts_at:
                state = "processing"
            else:
                state = "pending"
            out.append(PartitionStatus(p, state, self.object_key(p.index)))
        return out


def split_time_range(
    start: datetime,
    end: datetime,
    total: int,
    target_per_partition: int = DEFAULT_TARGET_PER_PARTITION,
    max_partitions: int = 1000,
) -> list[tuple[datetime, datetime]]:
    """Split [start, end) into ceil(total / target) (at least 1) contiguous, equal time slices.

    Each slice starts where the previous one ends, and the last ends exactly at `end`.
    """
    if end <= start:
        raise ValueError("end must be after start")
    if target_per_partition <= 0:
        raise ValueError("target_per_partition must be > 0")
    n = min(max(1, math.ceil(max(total, 0) / target_per_partition)), max_partitions)
    step = (end - start) / n
    bounds = [start + step * i for i in range(n)] + [end]
    return [(bounds[i], bounds[i + 1]) for i in range(n)]


def new_token() -> str:
    """A random URL-safe token like the reference's (``a6EBWDj2yr5v1UUG``): 16 chars, no padding."""
    return base64.urlsafe_b64encode(secrets.token_bytes(12)).decode().rstrip("=")


class BatchRegistry:
    def __init__(
        self,
        *,
        batch_seconds: float = 3.0,
        token_ttl_seconds: float = 2 * 3600,
        file_format: FileFormat = "ndjson.gz",
        faults: FaultInjector | None = None,
    ) -> None:
        if file_format not in FILE_FORMATS:
            raise ValueError(f"file_format must be one of {', '.join(FILE_FORMATS)}")
        self.batch_seconds = batch_seconds
        self.token_ttl_seconds = token_ttl_seconds
        self.file_format: FileFormat = file_format
        self.faults = faults or FaultInjector()
        self._jobs: dict[str, BatchJob] = {}
        self._lock = threading.Lock()

    def submit(
        self,
        kind: str,
        query: Any,
        partitions: Sequence[tuple[datetime, datetime, int]],
        now: float | None = None,
    ) -> str:
        """Register a job over `partitions` (start, end, record count); returns its token."""
        t = now if now is not None else time.time()
        n = max(1, len(partitions))
        parts = []
        for i, (start, end, count) in enumerate(partitions):
            starts_at = self.batch_seconds * i / (2 * n)
            done_at = self.batch_seconds * (i + 1) / n
            slow = self.faults.partition_slowness()
            parts.append(
                Partition(
                    index=i,
                    start=start,
                    end=end,
                    count=count,
                    starts_at=starts_at,
                    done_at=starts_at + (done_at - starts_at) * slow,
                    fails=self.faults.partition_fails(),
                )
            )
        with self._lock:
            self._purge(t)
            token = new_token()
            while token in self._jobs:
                token = new_token()
            self._jobs[token] = BatchJob(token, kind, query, t, tuple(parts), self.file_format)
        return token

    def get(self, token: str, now: float | None = None) -> BatchJob:
        """The job of `token` (whitespace trimmed, as the reference specifies); raises TokenUnknown."""
        t = now if now is not None else time.time()
        with self._lock:
            job = self._jobs.get(token.strip())
            if job is None or t - job.created >= self.token_ttl_seconds:
                raise TokenUnknown(TOKEN_UNKNOWN_MESSAGE)
            return job

    def status(self, token: str, now: float | None = None) -> list[PartitionStatus]:
        t = now if now is not None else time.time()
        return self.get(token, t).status(t)

    def _purge(self, now: float) -> None:
        for tok in [k for k, j in self._jobs.items() if now - j.created >= self.token_ttl_seconds]:
            del self._jobs[tok]

    def __len__(self) -> int:
        return len(self._jobs)


# ---------------------------------------------------------------------------------------------------------
# Partition files
# ---------------------------------------------------------------------------------------------------------

_GARBAGE: Final = b"\x00\xff\xfe\x1f\x8b<garbage>\x00\xff"


def _dump(hit: Mapping[str, Any]) -> bytes:
    return json.dumps(hit, ensure_ascii=False, separators=(",", ":")).encode()


def write_partition_file(
    path: str | Path,
    hits: Iterable[Mapping[str, Any]],
    fmt: FileFormat = "ndjson.gz",
    variant: FileVariant = "ok",
) -> int:
    """Stream `hits` into `path` in `fmt`; returns the number of records written.

    Records are written one at a time (never the whole file in memory). `variant` damages the finished
    file, for tests of readers (the sandbox itself damages downloads, not files): "truncated" cuts it
    mid-record (inside the last record; for gzip, inside the compressed stream), "corrupt" flips the
    bytes of `corruption_window` (bad deflate data / CRC for gzip, invalid JSON for the text formats).
    Either way a strict reader fails.
    """
    if fmt not in FILE_FORMATS:
        raise ValueError(f"unknown file format {fmt!r}")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    count = 0
    last_start = last_len = 0
    with open(p, "wb") as raw:
        out: IO[bytes] = cast(IO[bytes], raw)
        if fmt == "ndjson.gz":
            out = cast(IO[bytes], gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=5, mtime=0))
        try:
            if fmt == "json":
                out.write(b"[")
            pos = out.tell() if fmt != "ndjson.gz" else 0
            for hit in hits:
                rec = _dump(hit)
                if fmt == "json":
                    rec = (b"," if count else b"") + rec
                else:
                    rec += b"\n"
                last_start, last_len = pos, len(rec)
                out.write(rec)
                pos += len(rec)
                count += 1
            if fmt == "json":
                out.write(b"]")
        finally:
            if out is not raw:
                out.close()
    if variant == "truncated":
        _truncate(p, fmt, last_start, last_len)
    elif variant == "corrupt":
        _corrupt(p)
    return count


def _truncate(path: Path, fmt: FileFormat, last_start: int, last_len: int) -> None:
    size = path.stat().st_size
    if fmt == "ndjson.gz":
        cut = max(10, size * 2 // 3)  # past the 10-byte header, before the end-of-stream trailer
    elif last_len:
        cut = last_start + max(1, last_len // 2)
    else:
        cut = max(0, size - 1)
    os.truncate(path, min(cut, max(size - 1, 0)))


def corruption_window(size: int) -> tuple[int, int]:
    """(offset, length) of the bytes a corrupt file or transfer has flipped: in the middle, past a gzip
    header (so the file still *looks* gzipped); the whole file when it is tiny."""
    if size <= 2 * len(_GARBAGE):
        return 0, size
    return max(10, size // 2 - len(_GARBAGE) // 2), len(_GARBAGE)


def _corrupt(path: Path) -> None:
    size = path.stat().st_size
    if size == 0:
        path.write_bytes(_GARBAGE)
        return
    offset, length = corruption_window(size)
    with open(path, "r+b") as f:
        f.seek(offset)
        old = f.read(length)
        f.seek(offset)
        f.write(bytes(byte ^ 0xFF for byte in old))


def read_partition_file(path: str | Path, fmt: FileFormat = "ndjson.gz") -> list[dict[str, Any]]:
    """Strict reader (tests and tooling): raises on any damage."""
    p = Path(path)
    if fmt == "json":
        data = json.loads(p.read_bytes().decode("utf-8"))
        if not isinstance(data, list):
            raise ValueError("partition file is not a JSON array")
        return data
    blob = gzip.decompress(p.read_bytes()) if fmt == "ndjson.gz" else p.read_bytes()
    text = blob.decode("utf-8")
    if text and not text.endswith("\n"):
        raise ValueError("partition file ends mid-record")
    return [json.loads(line) for line in text.splitlines() if line]
