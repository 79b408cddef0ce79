"""Batch exports in one call, as the `*_batch` tools and `*_batch_status` with download=true run them
(no MCP here).

`export` drives `batch.run_export` (submit -> poll -> download -> verify -> store) and summarises the
stored result from a sample read straight from its files (`ResultStore.sample`), so the tool answers
while the store still builds the result's search index in the background. A failure after the batch
was accepted becomes `ExportInterrupted`, which carries the free call that continues it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any

import anyio

from cm_mcp.api.client import CMClient
from cm_mcp.api.errors import BatchTokenExpiredError, CMError
from cm_mcp.api.fields import LEVEL_FIELDS, WORKLOAD_STATE_FIELD
from cm_mcp.api.requests import LogsBatchRequest, WorkloadsBatchRequest
from cm_mcp.api.settings import Settings
from cm_mcp.batch import (
    ExportOptions,
    ExportResult,
    JobNotFoundError,
    JobState,
    NothingRecoveredError,
    TokenLifetimeError,
    job_status,
    job_summary,
    resume_export,
    run_export,
)
from cm_mcp.batch.jobs import JobFiles
from cm_mcp.ops.interrupted import ExportInterrupted, missing_lines, resume_call, resume_until
from cm_mcp.ops.results import BatchStatusResult, ExportOutcome, PartitionInfo, Progress, Rendered
from cm_mcp.store import ResultStore
from cm_mcp.summarize import render_logs, summarize_logs, summarize_records
from cm_mcp.summarize.budget import summary_budget
from cm_mcp.summarize.fields import raw_level, source_of

#: Records an export's summary is built from: enough for templates and levels, bounded in time.
SUMMARY_SAMPLE = 10_000
#: What a caller should know while the index is being built.
_BUILDING_NOTE = (
    " The search index is being built in the background; the first results_search / results_aggs waits"
    " for it (exact counts, never a partial index)."
)


def resource_uri(result_id: str) -> str:
    return f"cm://results/{result_id}"


async def export(
    client: CMClient,
    request: LogsBatchRequest | WorkloadsBatchRequest,
    *,
    store: ResultStore,
    settings: Settings,
    progress: Progress | None,
    max_tokens: int,
) -> Rendered:
    submitted: list[JobState] = []
    options = ExportOptions(store=store, progress=progress, settings=settings)
    try:
        result = await run_export(client, request, options, on_submitted=submitted.append)
    except CMError as exc:
        if submitted and _resumable(exc):
            # The job as last saved (partitions downloaded since submission), else as submitted.
            saved = await anyio.to_thread.run_sync(job_status, store.data_dir, submitted[0].token)
            raise ExportInterrupted(saved or submitted[0], exc) from exc
        raise
    return await _outcome(result, store, max_tokens, token=submitted[0].token)


async def resume(
    client: CMClient,
    token: str,
    *,
    store: ResultStore,
    settings: Settings,
    progress: Progress | None,
    max_tokens: int,
    status_endpoint: str,
) -> Rendered:
    """Continue (or finish) the export of `token`: the status tool's result shape, from the job's
    own record of the partitions (no extra request), with the finished export in `export`."""
    options = ExportOptions(store=store, progress=progress, settings=settings)
    try:
        result = await resume_export(client, token, options)
    except CMError as exc:
        job = await anyio.to_thread.run_sync(job_status, store.data_dir, token)
        if job is not None and _resumable(exc):
            raise ExportInterrupted(job, exc) from exc
        raise
    outcome, text = await _export_outcome(result, store, max_tokens, token=token)
    job = await anyio.to_thread.run_sync(JobFiles(store.data_dir, token).load)  # as resume_export left it
    return Rendered(structured=_status_of(job, status_endpoint, outcome), text=text)


def _status_of(job: JobState, endpoint: str, outcome: ExportOutcome) -> BatchStatusResult:
    partitions = [
        PartitionInfo(
            start=record.start_time,
            end=record.end_time,
            status=record.server_status,
            count=record.count,
            ready=record.state == "downloaded",
        )
        for record in job.partitions
    ]
    return BatchStatusResult.of(
        endpoint, job.token, partitions, done=job.phase == "done", local=job_summary(job), export=outcome
    )


#: Failures after which the export cannot be continued: its token is dead.
_NOT_RESUMABLE = (BatchTokenExpiredError, TokenLifetimeError, JobNotFoundError)


def _resumable(exc: CMError) -> bool:
    """Can the export's resume call (no quota) get further after `exc`?"""
    if isinstance(exc, NothingRecoveredError):
        return exc.resumable  # else every partition needs a new batch: the error lists them
    return not isinstance(exc, _NOT_RESUMABLE)


def _count_field(hits: Sequence[Mapping[str, Any]], kind: str) -> str:
    """The field to count levels (logs) or states (workloads) by, as the stored records spell it:
    serverless logs carry `logLevel`, ec2/kubernetes logs `regex.extractions.logLevel`."""
    if kind != "logs":
        return WORKLOAD_STATE_FIELD
    found = next((level for hit in hits if (level := raw_level(source_of(hit))) is not None), None)
    return found[0] if found else LEVEL_FIELDS[0]


async def stored_outcome(result: ExportResult, store: ResultStore, max_tokens: int) -> Rendered:
    """The `*_batch` answer for an export already stored: the response cache answers an identical
    request with it (cm_mcp/ops/cached.py `stored_export`, called by the tool before `export`). Only
    complete exports are cached: there is nothing to resume, so no token."""
    return await _outcome(result, store, max_tokens, token="")


async def _outcome(result: ExportResult, store: ResultStore, max_tokens: int, *, token: str) -> Rendered:
    outcome, text = await _export_outcome(result, store, max_tokens, token=token)
    return Rendered(structured=outcome, text=text)


async def _export_outcome(
    result: ExportResult, store: ResultStore, max_tokens: int, *, token: str
) -> tuple[ExportOutcome, str]:
    # A sample spread over every partition file, not the index: the export returns before the index
    # is built, and a spread sample shows the whole time range, not its first 10,000 records.
    hits, total = await anyio.to_thread.run_sync(lambda: store.sample(result.result_id, SUMMARY_SAMPLE))
    index_state = await anyio.to_thread.run_sync(lambda: store.get(result.result_id).index_state)
    summarize = summarize_logs if result.kind == "logs" else summarize_records
    header = f"{_headline(result)}, stored as result {result.result_id} ({resource_uri(result.result_id)}). "
    header += "Follow-up questions: results_search / results_aggs with this result_id cost no API request."
    if result.replaced_result:
        header += f" It replaces the partial result {result.replaced_result} of this export."
    if len(hits) < total:
        level_field = _count_field(hits, result.kind)
        header += (
            f"\nThe summary below comes from an even sample of {len(hits):,} of the {total:,} records: its "
            f"level and template counts are the sample's. For exact counts over everything use results_aggs, "
            f'e.g. {{"result_id": "{result.result_id}", "aggs": {{"levels": {{"terms": {{"field": '
            f'"{level_field}"}}}}}}}}.'
        )
    if index_state != "ready":
        header += _BUILDING_NOTE
    failed = [partition.model_dump() for partition in result.failed_partitions]
    resume = resume_until(result.kind, token, result.token_expires_at) if result.resumable else None
    if result.failed_partitions:
        header += f"\nMISSING {len(failed)} of {result.partitions} partitions:\n" + "\n".join(
            missing_lines(result.kind, result.failed_partitions, resume=resume)
        )
    summary = summarize(
        hits,
        total_matched=total,
        # the structured content repeats the failed partitions (programs resubmit from it): paid too
        max_tokens=summary_budget(max_tokens, header, json.dumps(failed, default=str)),
        local_result_id=result.result_id,
    )
    outcome = ExportOutcome(
        result_id=result.result_id,
        resource_uri=resource_uri(result.result_id),
        complete=result.complete,
        partitions=result.partitions,
        records=result.records,
        duplicates=result.duplicates,
        failed_partitions=failed,
        elapsed_seconds=result.elapsed_seconds,
        summary=summary,
        index_state=index_state,
        resume=_resume_call(result, token),
    )
    return outcome, f"{header}\n{render_logs(summary)}"


def _headline(result: ExportResult) -> str:
    """`export complete: N logs in P partitions ...` or `export INCOMPLETE: ...` with the counts."""
    noun = result.kind
    dropped = f"{result.duplicates:,} duplicates dropped"
    if result.complete:
        return (
            f"export complete: {result.records:,} {noun} in {result.partitions} partitions ({dropped}), "
            "verified against the API's counts"
        )
    kept = result.partitions - len(result.failed_partitions)
    received = f"{result.records_received:,}"
    if result.expected_records is not None:
        received += f" of {result.expected_records:,}"
    return (
        f"export INCOMPLETE: {received} {noun} received (the API's counts) from {kept} of "
        f"{result.partitions} partitions, {result.records:,} distinct ({dropped}); "
        f"{result.missing_records:,} {noun} missing (see MISSING below)"
    )


def _resume_call(result: ExportResult, token: str) -> dict[str, Any] | None:
    if not result.resumable:
        return None
    tool, arguments = resume_call(result.kind, token)
    return {"tool": tool, "arguments": arguments}


# --- follow-ups on stored results ----------------------------------------------------------------
