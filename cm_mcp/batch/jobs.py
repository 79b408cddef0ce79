"""Local state of an export, persisted for resume: `<data_dir>/jobs/<sha256(token)[:16]>.json`.

Written atomically (temp file + rename) after every change. Holds the batch token (needed to resume;
it is not the JWT and grants only this batch's files for 2 h) but the file *name* is a hash, so the
token never shows in directory listings or logs. Downloaded, verified partition files wait in
`jobs/<hash>/` until the export is complete; the result gets hard links to them, so a partial
export keeps its verified files here for the resume that fetches the rest.

One run at a time per job (`JobFiles.running`): a resume called while the export still runs, in this
process or another, waits for it instead of racing it over the same staged files.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import shutil
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final, Literal

from pydantic import BaseModel, Field

from cm_mcp.batch.errors import JobNotFoundError
from cm_mcp.store.fsutil import NamedLock, atomic_write

ExportKind = Literal["logs", "workloads"]
#: How often a run waiting for another run of the same job tries the lock again.
RUN_LOCK_POLL_SECONDS: Final = 0.2

#: pending: not downloaded yet (whatever the server says); downloaded: verified file on disk (or
#: nothing to download: an empty partition); failed: no data in this run, `cause` says why.
LocalState = Literal["pending", "downloaded", "failed"]
#: Why a failed partition has no data, which decides what fetches it (reference items 24, 28, 29):
#: - upstream: the API reported it `failed`; final for this token: a new batch for its range.
#: - not_ready: still not completed when the token's life ran out; likewise a new batch.
#: - download: the transfer failed (expired URL, 5xx, dropped connection, corrupt or short file) while
#:   the API still holds the file: a resume polls for fresh URLs and downloads it again, at no quota.
#: - too_large: above CM_MAX_DOWNLOAD_BYTES: a resume after raising the limit, or narrower ranges.
FailureCause = Literal["upstream", "not_ready", "download", "too_large"]
#: Causes a resume retries while the token lives (a fresh status poll, a new download).
RETRYABLE_CAUSES: Final[frozenset[str]] = frozenset({"download", "too_large"})
#: running: started, not finished (a run holds it, or it was cut off); partial: a result is stored
#: but some partitions can still be fetched with the token (resume); done: stored, nothing more to
#: fetch with this token; failed: nothing stored and nothing the token can fetch; expired: the API
#: no longer knows the token.
JobPhase = Literal["running", "partial", "done", "failed", "expired"]


class PartitionRecord(BaseModel):
    key: str  # "start/end" as normalised by cm_mcp.api.responses (item 27: identity across polls)
    start_time: str | None = None
    end_time: str | None = None
    state: LocalState = "pending"
    server_status: str = "unknown"
    count: int | None = None  # provisional until completed (item 26)
    file: str | None = None  # name inside the job's staging directory, then the result's files/
    records: int | None = None  # records found in the verified file
    bytes: int | None = None
    format: str | None = None
    error: str | None = None
    cause: FailureCause | None = None

    @property
    def retryable(self) -> bool:
        return self.state == "failed" and self.cause in RETRYABLE_CAUSES


class JobState(BaseModel):
    kind: ExportKind
    token: str
    request: dict[str, Any]
    submitted_at: datetime
    phase: JobPhase = "running"
    partitions: list[PartitionRecord] = Field(default_factory=list)
    polls: int = 0
    result_id: str | None = None
    updated_at: datetime | None = None

    def partition(self, key: str) -> PartitionRecord | None:
        return next((p for p in self.partitions if p.key == key), None)

    @property
    def downloaded_records(self) -> int:
        return sum(p.records or 0 for p in self.partitions if p.state == "downloaded")

    @property
    def done_count(self) -> int:
        """Partitions final in this run: downloaded or failed."""
        return sum(1 for p in self.partitions if p.state != "pending")

    @property
    def downloaded_count(self) -> int:
        """Partitions whose data is verified and kept (empty ones included)."""
        return sum(1 for p in self.partitions if p.state == "downloaded")

    def retry_transient(self) -> int:
        """Put the partitions that failed for a reason a new download can fix back to pending (a
        resume); how many."""
        retried = [p for p in self.partitions if p.retryable]
        for record in retried:
            record.state, record.error, record.cause = "pending", None, None
        return len(retried)


def token_hash(token: str) -> str:
    return hashlib.sha256(token.strip().encode()).hexdigest()[:16]


class JobFiles:
    """Where one job's state and staged files live."""

    def __init__(self, data_dir: Path, token: str) -> None:
        self.root = Path(data_dir) / "jobs"
        self.name = token_hash(token)
        self.state_path = self.root / f"{self.name}.json"
        self.staging = self.root / self.name
        self._run_lock = NamedLock(self.root / f"{self.name}.lock")

    def load(self) -> JobState:
        try:
            text = self.state_path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise JobNotFoundError(
                "No local export state for this batch token (it was not started from this data "
                "directory, or its result was already stored and the job cleaned up)."
            ) from None
        return JobState.model_validate_json(text)

    def save(self, state: JobState) -> None:
        state.updated_at = datetime.now(UTC)
        atomic_write(self.state_path, state.model_dump_json(indent=1).encode())

    def running(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Hold this job's run lock, waiting (cancellably) while another run holds it."""
        self.root.mkdir(parents=True, exist_ok=True)
        return self._run_lock.held_async(RUN_LOCK_POLL_SECONDS)

    def is_running(self) -> bool:
        """True while a run of this job holds its lock, here or in another process."""
        return self._run_lock.is_held()


#: Job files outlive their token (2 h) only to answer "already exported" and to resume; after a day
#: neither is possible (the token is dead, the result is in the store), so they are pruned.
JOB_RETENTION: Final = timedelta(days=1)


def prune_jobs(
    data_dir: str | Path, *, older_than: timedelta = JOB_RETENTION, now: datetime | None = None
) -> int:
    """Remove job states (and their staging folders) untouched for `older_than`; how many went."""
    root = Path(data_dir) / "jobs"
    cutoff = (now or datetime.now(UTC)).timestamp() - older_than.total_seconds()
    removed = 0
    for state_path in root.glob("*.json"):
        try:
            if state_path.stat().st_mtime >= cutoff:
                continue
            shutil.rmtree(root / state_path.stem, ignore_errors=True)
            state_path.unlink(missing_ok=True)
            (root / f"{state_path.stem}.lock").unlink(missing_ok=True)  # a day idle: nobody holds it
            removed += 1
        except OSError:
            continue  # another process is pruning or writing it: not ours to fight over
    return removed


def job_status(data_dir: str | Path, token: str) -> JobState | None:
    """The local state of the export of `token` (what is downloaded already); None when unknown."""
    try:
        return JobFiles(Path(data_dir), token).load()
    except JobNotFoundError:
        return None


def unfinished_jobs(
    data_dir: str | Path, *, lifetime: timedelta, now: datetime | None = None
) -> list[JobState]:
    """Exports still running, interrupted, or stored with partitions a resume can still fetch, whose
    token lives (`lifetime` after submission), newest first: what a `*_batch_status` call with
    download=true can continue."""
    now = now or datetime.now(UTC)
    jobs = []
    for state_path in (Path(data_dir) / "jobs").glob("*.json"):
        try:
            job = JobState.model_validate_json(state_path.read_bytes())
        except (OSError, ValueError):
            continue  # being written or pruned right now, or damaged: not resumable anyway
        if job.phase in ("running", "partial") and job.submitted_at + lifetime > now:
            jobs.append(job)
    return sorted(jobs, key=lambda job: job.submitted_at, reverse=True)


def job_summary(state: JobState) -> dict[str, Any]:
    """A compact JSON-able view for a status tool (no token)."""
    by_state = dict(Counter(p.state for p in state.partitions))
    return {
        "kind": state.kind,
        "phase": state.phase,
        "submitted_at": state.submitted_at.isoformat(),
        "partitions": len(state.partitions),
        "partitions_by_state": by_state,
        "downloaded_records": state.downloaded_records,
        "retryable_partitions": sum(1 for p in state.partitions if p.retryable),
        "result_id": state.result_id,
        "request": json.loads(json.dumps(state.request)),
    }
