"""Exports that stopped or came back incomplete, and how to get the rest: for free when possible.

Once the API has accepted a batch it keeps running upstream for the token's life, and every verified
partition stays on disk (cm_mcp.batch.jobs), so `<kind>_batch_status` with `download: true`
continues the export at no quota: it polls for fresh URLs and downloads only what is missing.
Calling `<kind>_batch` again would submit a second batch and spend a request of a ~50/day quota, so a
failed, cancelled, cut-off or incomplete export hands the model its token, and a new batch is
advised only for what the token cannot fetch (a partition the API reported `failed`, or any once the
token has expired), with a ready, valid-JSON body for just that range.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from cm_mcp.api.errors import CMError
from cm_mcp.api.times import format_utc, parse_iso8601
from cm_mcp.batch import JobState, unfinished_jobs
from cm_mcp.batch.failures import CAUSE_LABELS, by_cause, records_of
from cm_mcp.batch.jobs import JobFiles
from cm_mcp.batch.limits import TOKEN_LIFETIME
from cm_mcp.store import FailedPartition


def resume_call(kind: str, token: str) -> tuple[str, dict[str, Any]]:
    """The tool call that continues the export of `token`: (tool name, arguments)."""
    return f"{kind}_batch_status", {"token": token, "download": True}


def resume_text(kind: str, token: str) -> str:
    """The resume call as the model should send it: `tool {json arguments}`."""
    tool, arguments = resume_call(kind, token)
    return f"{tool} {json.dumps(arguments)}"


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
        self.partitions_kept = job.downloaded_count
        self.records = job.downloaded_records
        self.cause = cause


def interrupted_text(error: ExportInterrupted, cause_text: str) -> str:
    """The isError text of an interrupted export: the cause explained, then how to continue."""
    failed: Sequence[FailedPartition] = getattr(error.cause, "failed", ())
    lines = [
        cause_text,
        f"The export stopped, but its batch was accepted and goes on upstream; {error.partitions_kept}/"
        f"{error.partitions} partitions ({error.records:,} records) are downloaded and kept. Once the cause "
        f"is fixed, continue it at no quota before {format_utc(error.expires_at)} (when its token expires) "
        f"with: {resume_text(error.kind, error.token)}. Calling {error.kind}_batch again would submit a new "
        "batch and cost quota.",
    ]
    # What fixes each other kind of failure (the paragraph above covers transfer failures): raising the
    # size limit, or a new batch for what the API failed, which the resume call cannot fetch.
    others = [p for p in failed if p.cause != "download"]
    if others:
        lines += missing_lines(
            error.kind, others, resume=resume_until(error.kind, error.token, error.expires_at)
        )
    return "\n".join(lines)


def resume_until(kind: str, token: str, expires_at: datetime) -> str:
    """The resume call and its deadline, for `missing_lines`."""
    return f"{resume_text(kind, token)} before {format_utc(expires_at)} (when the batch token expires)"


def missing_lines(kind: str, failed: Sequence[FailedPartition], *, resume: str | None) -> list[str]:
    """What fetches each group of missing partitions, by cause (batch/failures.py): the free resume
    call (`resume`, None once the token cannot fetch anything) for transfer failures; raising the size
    limit or narrower windows for files above it; a new batch for just the range of what the API
    failed or the dead token can no longer fetch (valid JSON, ready to send)."""
    lines = []
    for cause, group in by_cause(failed).items():
        records = records_of(group)
        head = f"- {len(group)} {CAUSE_LABELS.get(cause, cause)}"
        detail = (
            f" ({records}; last error: {group[0].error})" if records else f" (last error: {group[0].error})"
        )
        if cause == "download" and resume is not None:
            lines.append(
                f"{head}{detail}: the API still holds these files. Continue at no quota with {resume}: it "
                "polls for fresh URLs and downloads only the missing partitions; nothing is resubmitted."
            )
        elif cause == "too_large":
            raise_limit = f"Raise CM_MAX_DOWNLOAD_BYTES and continue with {resume}; or e" if resume else "E"
            lines.append(
                f"{head}{detail}: resubmitting the same range would make the same file. {raise_limit}xport "
                f"each range in narrower windows with {kind}_batch (a new batch each), e.g. its two halves:"
            )
            lines += [f"  - {json.dumps(body)}" for partition in group for body in _halves(partition)]
        else:
            expired = " and the batch token has expired" if cause == "download" else ""
            counted = f" ({records})" if records else ""
            lines.append(
                f"{head}{counted}{expired}: resubmit just their ranges with {kind}_batch (a new batch: one "
                "request each), as is:"
            )
            lines += [
                f"  - {p.start_time} .. {p.end_time} ({p.error}): {json.dumps(p.resubmit)}" for p in group
            ]
    return lines


def _halves(partition: FailedPartition) -> list[dict[str, Any]]:
    """The partition's resubmission split at the middle of its range (itself when it has none)."""
    body = partition.resubmit
    try:
        start, end = parse_iso8601(body["start_time"]), parse_iso8601(body["end_time"])
    except (KeyError, TypeError, ValueError):
        return [body]
    middle = format_utc(start + (end - start) / 2)
    return [{**body, "end_time": middle}, {**body, "start_time": middle}]


class UnfinishedExport(BaseModel):
    """An export whose token still lives and that a resume can take further."""

    kind: str
    submitted_at: str
    token_expires_at: str
    partitions: int
    #: partitions downloaded and kept (empty ones included)
    partitions_done: int
    downloaded_records: int
    #: True while a run holds it (this server or another process): its resume call would wait for it
    running: bool
    #: "interrupted" (never stored) or "partial" (stored without some partitions a resume can fetch)
    state: str = "interrupted"
    #: the call that continues it at no quota: {"tool": ..., "arguments": {...}}
    resume: dict[str, Any]


def unfinished_exports(data_dir: Path, *, now: datetime | None = None) -> list[UnfinishedExport]:
    """Exports running in some process, cut off (cancelled, failed, server restarted) or stored
    incomplete with partitions the token can still fetch, newest first."""
    out = []
    for job in unfinished_jobs(data_dir, lifetime=TOKEN_LIFETIME, now=now or datetime.now(UTC)):
        tool, arguments = resume_call(job.kind, job.token)
        out.append(
            UnfinishedExport(
                kind=job.kind,
                submitted_at=format_utc(job.submitted_at),
                token_expires_at=format_utc(token_expiry(job)),
                partitions=len(job.partitions),
                partitions_done=job.downloaded_count,
                downloaded_records=job.downloaded_records,
                running=JobFiles(data_dir, job.token).is_running(),
                state="partial" if job.phase == "partial" else "interrupted",
                resume={"tool": tool, "arguments": arguments},
            )
        )
    return out
