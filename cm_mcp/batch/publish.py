"""The end of an export run: the verified partitions become a stored result (or nothing does).

- Every partition verified and none failed: a complete result, even with 0 records (an empty
  result is an answer, not a failure).
- Some data and some failed partitions: a partial result (`complete=False`) that says what is
  missing. While a failed partition can still be fetched with the live token (`download`,
  `too_large`), the job stays `partial` and keeps its verified files, so a resume downloads only the
  rest and publishes a new, fuller result that replaces this one.
- Failed partitions and not one record: no result; NothingRecoveredError says what failed, and the
  job stays resumable when a resume can fetch something.

The result gets hard links to the staged files (a copy where the file system has none), so the job's
own copies stay for a resume at no extra disk cost.
"""

from __future__ import annotations

import contextlib
import logging
import os
import shutil
from pathlib import Path

from cm_mcp.batch.errors import NothingRecoveredError
from cm_mcp.batch.failures import failed_partition
from cm_mcp.batch.jobs import JobFiles, JobState, token_hash
from cm_mcp.batch.models import ExportResult
from cm_mcp.batch.options import ExportOptions
from cm_mcp.store import ResultInfo, ResultNotFoundError, ResultStore, StoredFile

logger = logging.getLogger("cm_mcp.batch")


def publish(
    job: JobState,
    files: JobFiles,
    options: ExportOptions,
    *,
    distinct: int,
    received: int,
    elapsed_seconds: float,
) -> ExportResult:
    """Store the job's verified partitions as a result (see the module docstring); runs in a thread."""
    store = options.store
    failed = [failed_partition(r, job.request) for r in job.partitions if r.state == "failed"]
    token_lives = job.phase != "expired" and (
        options.now() < job.submitted_at + options.limits.token_lifetime - options.limits.token_margin
    )
    resumable = token_lives and any(r.retryable for r in job.partitions)
    if failed and job.downloaded_records == 0:
        job.phase = "running" if resumable else "failed"
        files.save(job)
        raise NothingRecoveredError(job.kind, len(job.partitions), failed, resumable=resumable)
    builder = store.builder(
        kind=job.kind,
        source="export",
        request=job.request,
        start_time=job.request.get("start_time"),
        end_time=job.request.get("end_time"),
        defer_index=True,  # built from the stored files after publication (ResultStore.ensure_index)
    )
    try:
        for record in job.partitions:
            if record.state == "downloaded" and record.file:
                linked = builder.dir / record.file
                _link_or_copy(files.staging / record.file, linked)
                builder.add_file(
                    linked,
                    StoredFile(
                        name=record.file,
                        bytes=record.bytes or 0,
                        records=record.records or 0,
                        format=record.format or "",
                        start_time=record.start_time,
                        end_time=record.end_time,
                    ),
                )
        info = builder.finish(complete=not failed, failed=failed, records=distinct, records_received=received)
    except BaseException:
        builder.abort()
        raise
    replaced = job.result_id
    job.result_id = info.id
    job.phase = "partial" if resumable else "done"
    files.save(job)
    if not resumable:
        shutil.rmtree(files.staging, ignore_errors=True)
    if replaced and replaced != info.id:
        _retire(store, replaced, info.id)
    logger.info(
        "export %s: stored as %s (%d records, %d partitions missing, index %s)",
        files.name,
        info.id,
        info.records,
        len(failed),
        info.index_state,
    )
    return export_result(info, job, options, elapsed_seconds=elapsed_seconds, replaced=replaced)


def export_result(
    info: ResultInfo,
    job: JobState,
    options: ExportOptions,
    *,
    elapsed_seconds: float = 0.0,
    replaced: str | None = None,
) -> ExportResult:
    """The ExportResult of the job's stored result `info`."""
    counts = [record.count for record in job.partitions]
    expires = job.submitted_at + options.limits.token_lifetime
    return ExportResult(
        result_id=info.id,
        kind=job.kind,
        complete=info.complete,
        partitions=len(job.partitions),
        records=info.records,
        records_received=info.records_received,
        failed_partitions=info.failed_partitions,
        files=info.files,
        polls=job.polls,
        elapsed_seconds=elapsed_seconds,
        job=token_hash(job.token),
        index_state=info.index_state,
        expected_records=sum(c for c in counts if c is not None) if None not in counts else None,
        missing_records=sum(p.count or 0 for p in info.failed_partitions),
        resumable=job.phase == "partial" and options.now() < expires - options.limits.token_margin,
        token_expires_at=expires,
        replaced_result=replaced if replaced != info.id else None,
    )


def _link_or_copy(source: Path, target: Path) -> None:
    try:
        os.link(source, target)
    except OSError:  # another file system, or links not supported: a copy does the same
        shutil.copy2(source, target)


def _retire(store: ResultStore, old: str, new: str) -> None:
    """The earlier partial result of this export: the new one holds all of it, and more."""
    with contextlib.suppress(ResultNotFoundError):  # evicted or deleted meanwhile: nothing to replace
        store.delete(
            old, reason=f"replaced by {new}, the same export resumed with more partitions: use {new}"
        )
