"""One export, end to end: submit -> poll -> download each completed partition -> verify -> store.

    result = await run_export(client, LogsBatchRequest(...), ExportOptions(store, progress=callback))

`run_export` submits the batch (the only call that costs quota) and hands the job to a run
(run.py: polling, downloads, retries, heartbeats), which publishes the result (publish.py).
`resume_export(client, token, options)` continues a job from its file while the token lives, also
after a restart: it never submits anything. It downloads only what is missing: partitions never
fetched, and those that failed for a transient reason (an expired URL, a damaged transfer, a 5xx,
a file above the size limit), with fresh URLs from a fresh status poll. Partitions the API reported
`failed` stay failed: their resubmission bodies say how to get them (item 24).

Indexing is not on this path: the result is published with its files and `index_state="building"`,
and the store builds the search index in a background thread (a search waits for it). The exact
distinct count (`records`, de-duplicated on the store's record key) is known at once: each
download's parser adds its records' keys to one set as the file arrives (Downloader `id_sink`).

Cancellation: the caller's cancel scope stops polling and downloads at once; temporary files and
the half-built result are removed, the job file keeps what was verified.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from contextlib import AsyncExitStack

import anyio

from cm_mcp.api.client import CMClient
from cm_mcp.api.endpoints import ENDPOINTS
from cm_mcp.api.requests import LogsBatchRequest, WorkloadsBatchRequest
from cm_mcp.batch.errors import BatchError, NothingRecoveredError, TokenLifetimeError
from cm_mcp.batch.failures import failed_partition
from cm_mcp.batch.jobs import ExportKind, JobFiles, JobState, prune_jobs
from cm_mcp.batch.models import ExportResult
from cm_mcp.batch.options import ExportOptions
from cm_mcp.batch.progress import ProgressReporter
from cm_mcp.batch.publish import export_result
from cm_mcp.batch.run import ExportRun

logger = logging.getLogger("cm_mcp.batch")

BatchRequest = LogsBatchRequest | WorkloadsBatchRequest


async def run_export(
    client: CMClient,
    request: BatchRequest,
    options: ExportOptions,
    *,
    on_submitted: Callable[[JobState], None] | None = None,
) -> ExportResult:
    """Submit `request` as a batch and drive it to a stored result (see the module docstring).

    `on_submitted` gets the job as soon as the batch is accepted: from then on a failure leaves a job
    that `resume_export` can continue, and the caller needs its token to say so. Raises
    NothingRecoveredError (failed partitions, no data), BatchTokenExpiredError (404 on status),
    HostNotAllowedError / InsecureURLError, APIError or JWTExpiredError from the submission or a
    status poll, TokenLifetimeError.
    """
    kind: ExportKind = "workloads" if isinstance(request, WorkloadsBatchRequest) else "logs"
    store = options.store
    await anyio.to_thread.run_sync(prune_jobs, store.data_dir)
    body = request.to_body()
    endpoint = ENDPOINTS[f"{kind}_batch"]
    reporter = ProgressReporter(options.progress, heartbeat=options.limits.heartbeat)
    async with reporter.beating(lambda: (0, f"waiting for the API to accept the {kind} batch")):
        response = await client.post(endpoint, body)
    data = response.get("data")
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise BatchError(f"the {endpoint.path} response has no data.token")
    job = JobState(kind=kind, token=token.strip(), request=body, submitted_at=options.now())
    files = JobFiles(store.data_dir, job.token)
    files.save(job)
    logger.info("export %s: submitted %s batch", files.name, kind)
    if on_submitted is not None:
        on_submitted(job)
    async with files.running():
        await reporter.step("submitted", f"submitted the {kind} batch; waiting for partitions", steps=0)
        return await ExportRun(client, job, files, options, reporter).run()


async def resume_export(client: CMClient, token: str, options: ExportOptions) -> ExportResult:
    """Continue the export of `token` from its job file (also after a restart); never submits.

    A finished export returns its stored result (ResultEvictedError if it is gone); a partial one
    whose missing partitions a fresh download can fetch is continued while the token lives, and its
    new result replaces the partial one. JobNotFoundError when no job is known; TokenLifetimeError
    past the token's life; NothingRecoveredError again for an export the API failed entirely. While
    another run of the same export is in progress (here or in another process) this waits for it,
    with heartbeats, then returns its result or continues where it stopped."""
    files = JobFiles(options.store.data_dir, token)
    files.load()  # JobNotFoundError at once, not after waiting for a lock
    limits = options.limits
    reporter = ProgressReporter(options.progress, heartbeat=limits.heartbeat)
    async with AsyncExitStack() as held:
        other_run = "another run of this export (here or in another process) holds it; waiting for it"
        async with reporter.beating(lambda: (0, other_run)):
            await held.enter_async_context(files.running())
        job = files.load()  # as the previous run left it
        now = options.now()
        token_usable = now < job.submitted_at + limits.token_lifetime - limits.token_margin
        if job.result_id and (job.phase == "done" or (job.phase == "partial" and not token_usable)):
            return _stored_result(job, files, options)
        if job.phase == "failed":
            failed = [failed_partition(r, job.request) for r in job.partitions if r.state == "failed"]
            raise NothingRecoveredError(job.kind, len(job.partitions), failed, resumable=False)
        if now >= job.submitted_at + limits.token_lifetime:
            job.phase = "expired"
            files.save(job)
            raise TokenLifetimeError(
                f"the batch token was issued at {job.submitted_at:%Y-%m-%d %H:%M} UTC and has expired "
                f"(tokens live {limits.token_lifetime}); re-submit the batch request to export again"
            )
        retried = job.retry_transient()
        if retried:
            logger.info("export %s: retrying %d partition(s) with fresh URLs", files.name, retried)
        # Staged files that went missing are found (and re-fetched) by ExportRun._recount_staged.
        job.phase = "running"
        files.save(job)
        return await ExportRun(client, job, files, options, reporter).run()


def _stored_result(job: JobState, files: JobFiles, options: ExportOptions) -> ExportResult:
    """The result a finished (or no longer resumable) export stored; nothing more to fetch."""
    assert job.result_id is not None
    if job.phase == "partial":
        job.phase = "done"  # the token can fetch nothing more
        files.save(job)
    return export_result(options.store.get(job.result_id), job, options)
