"""Exports that stopped after their batch was submitted, and how to continue them for free.

Once the API has accepted a batch it keeps running upstream for the token's life, and every verified
partition stays on disk (cm_mcp.batch.jobs), so `<kind>_batch_status` with `download: true`
continues the export at no quota. Calling `<kind>_batch` again would submit a second batch and spend
a request of a ~50/day quota, so a failed, cancelled or cut-off export must hand the model its token.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cm_mcp.api.errors import CMError
from cm_mcp.api.times import format_utc
from cm_mcp.batch import JobState, unfinished_jobs
from cm_mcp.batch.jobs import JobFiles
from cm_mcp.batch.limits import TOKEN_LIFETIME


def resume_call(kind: str, token: str) -> tuple[str, dict[str, Any]]:
    """The tool call that continues the export of `token`: (tool name, arguments)."""
    return f"{kind}_batch_status", {"token": token, "download": True}


def token_expiry(job: JobState) -> datetime:
    return job.submitted_at + TOKEN_LIFETIME


class ExportInterrupted(CMError):
    """An export stopped by `cause` after its batch was submitted; resumable until `expires_at`."""

    def __init__(self, job: JobState, cause: Exception) -> None:
        super().__init__(str(cause))
        self.kind = job.kind
        self.token = job.token
        self.expires_at = token_expiry(job)
        self.partitions = len(job.partitions)
        self.partitions_done = job.done_count
        self.records = job.downloaded_records
        self.cause = cause


class UnfinishedExport(BaseModel):
    """An export whose token still lives and whose result is not stored yet."""

    kind: str
    submitted_at: str
    token_expires_at: str
    partitions: int
    partitions_done: int
    downloaded_records: int
    #: True while a run holds it (this server or another process): its resume call would wait for it
    running: bool
    #: the call that continues it at no quota: {"tool": ..., "arguments": {...}}
    resume: dict[str, Any]


def unfinished_exports(data_dir: Path, *, now: datetime | None = None) -> list[UnfinishedExport]:
    """Exports running in some process or cut off (cancelled, failed, server restarted), newest first."""
    out = []
    for job in unfinished_jobs(data_dir, lifetime=TOKEN_LIFETIME, now=now or datetime.now(UTC)):
        tool, arguments = resume_call(job.kind, job.token)
        out.append(
            UnfinishedExport(
                kind=job.kind,
                submitted_at=format_utc(job.submitted_at),
                token_expires_at=format_utc(token_expiry(job)),
                partitions=len(job.partitions),
                partitions_done=job.done_count,
                downloaded_records=job.downloaded_records,
                running=JobFiles(data_dir, job.token).is_running(),
                resume={"tool": tool, "arguments": arguments},
            )
        )
    return out
