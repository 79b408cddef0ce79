"""One export, end to end: submit -> poll -> download each completed partition -> verify -> store.

    result = await run_export(client, LogsBatchRequest(...), store=store, progress=callback)

Polling (item 30) starts after `poll_initial` seconds and grows by `poll_growth` up to `poll_max`,
never past the token's assumed 2 h life counted from submission (item 29). Every poll re-reads the
whole partition list and matches partitions by (start_time, end_time) (item 27); a completed
partition is downloaded at once, up to `concurrency` at a time, while polling goes on. A 403 on a
file asks for an early poll to get a fresh URL (item 28). The export finishes when every partition
is downloaded, verified against its count and its file stored, or final as failed; failed ones are
reported with a request body that re-submits just their time range (item 24).

Indexing is not on this path: tantivy indexes ~10k docs/s, 50x slower than a verified download, so
the result is published with its files and `index_state="building"`, and the store builds the
search index in a background thread (ResultStore.ensure_index; a search waits for it). The exact
distinct count (`records`, de-duplicated on `_id`) is still known at once: each download's parser
adds its records' `_id`s to one set as the file arrives (Downloader `id_sink`), whose size is the
distinct count (1M records of 17-byte ids: ~100 MB; the id bytes are kept rather than 64-bit hashes
because building a set of ints costs a Python int per record, 60% more CPU on the critical path).

Cancellation: the caller's cancel scope stops polling and downloads at once; temporary files and
the half-built result are removed, the job file keeps what was verified, so
`resume_export(client, token, ...)` continues while the token lives, also after a restart.
"""

from __future__ import annotations

import logging
import shutil
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from functools import partial

import anyio
import anyio.abc
import httpx2
from pydantic import ValidationError

from cm_mcp.api.client import CMClient
from cm_mcp.api.endpoints import ENDPOINTS
from cm_mcp.api.errors import BatchTokenExpiredError, ServerError, TransportError
from cm_mcp.api.requests import LogsBatchRequest, WorkloadsBatchRequest
from cm_mcp.api.responses import Partition, partitions_from_status
from cm_mcp.api.settings import Settings
from cm_mcp.api.times import format_utc
from cm_mcp.batch.download import DownloadedFile, Downloader, DownloadPolicy
from cm_mcp.batch.errors import (
    BatchError,
    DownloadError,
    FileTooLargeError,
    HostNotAllowedError,
    InsecureURLError,
    TokenLifetimeError,
    URLExpiredError,
)
from cm_mcp.batch.jobs import ExportKind, JobFiles, JobState, PartitionRecord, prune_jobs
from cm_mcp.batch.limits import ExportLimits
from cm_mcp.batch.models import ExportResult, ProgressEvent, Stage
from cm_mcp.store import FailedPartition, ResultBuilder, ResultInfo, ResultStore, StoredFile
from cm_mcp.store.errors import RecordFileError
from cm_mcp.store.formats import count_file_records

logger = logging.getLogger("cm_mcp.batch")

Progress = Callable[[ProgressEvent], Awaitable[None]]
Clock = Callable[[], datetime]
BatchRequest = LogsBatchRequest | WorkloadsBatchRequest

#: Consecutive failed status polls (5xx, no answer) tolerated before the export gives up; a long
#: export should survive a short outage, the API client already retried each of them.
MAX_POLL_FAILURES = 5


def _utc_now() -> datetime:
    return datetime.now(UTC)


async def run_export(
    client: CMClient,
    request: BatchRequest,
    *,
    store: ResultStore,
    progress: Progress | None = None,
    settings: Settings | None = None,
    limits: ExportLimits | None = None,
    policy: DownloadPolicy | None = None,
    download_transport: httpx2.AsyncBaseTransport | None = None,
    now: Clock = _utc_now,
    on_submitted: Callable[[JobState], None] | None = None,
) -> ExportResult:
    """Submit `request` as a batch and drive it to a stored result (see the module docstring).

    `policy` defaults to the allow-list of `settings` (CM_DOWNLOAD_ALLOWED_HOSTS); `download_transport`
    is an httpx2 transport for the file downloads (tests). `on_submitted` gets the job as soon as the
    batch is accepted: from then on a failure leaves a job that `resume_export` can continue, and the
    caller needs its token to say so. Raises BatchTokenExpiredError (404 on status), HostNotAllowedError /
    InsecureURLError, APIError from the submission or a status poll, TokenLifetimeError.
    """
    kind: ExportKind = "workloads" if isinstance(request, WorkloadsBatchRequest) else "logs"
    await anyio.to_thread.run_sync(prune_jobs, store.data_dir)
    body = request.to_body()
    endpoint = ENDPOINTS[f"{kind}_batch"]
    response = await client.post(endpoint, body)
    data = response.get("data")
    token = data.get("token") if isinstance(data, dict) else None
    if not isinstance(token, str) or not token.strip():
        raise BatchError(f"the {endpoint.path} response has no data.token")
    job = JobState(kind=kind, token=token.strip(), request=body, submitted_at=now())
    files = JobFiles(store.data_dir, job.token)
    files.save(job)
    logger.info("export %s: submitted %s batch", files.name, kind)
    if on_submitted is not None:
        on_submitted(job)
    async with files.running():
        export = _Export(
            client, job, files, store, progress, settings, limits, policy, download_transport, now
        )
        await export.emit("submitted", f"submitted the {kind} batch; waiting for partitions")
        return await export.run()


async def resume_export(
    client: CMClient,
    token: str,
    *,
    store: ResultStore,
    progress: Progress | None = None,
    settings: Settings | None = None,
    limits: ExportLimits | None = None,
    policy: DownloadPolicy | None = None,
    download_transport: httpx2.AsyncBaseTransport | None = None,
    now: Clock = _utc_now,
) -> ExportResult:
    """Continue the export of `token` from its job file (also after a restart); verified partitions
    are not downloaded again. A finished export returns its stored result (ResultEvictedError if it
    is gone); JobNotFoundError when no job is known; TokenLifetimeError past the token's life.
    While another run of the same export is in progress (here or in another process) this waits for
    it, then returns its result or continues where it stopped."""
    files = JobFiles(store.data_dir, token)
    files.load()  # JobNotFoundError at once, not after waiting for a lock
    limits = limits or ExportLimits()
    async with files.running():
        job = files.load()  # as the previous run left it
        if job.phase == "done" and job.result_id:
            return _result_from_store(store, job, files.name)
        if now() >= job.submitted_at + limits.token_lifetime:
            job.phase = "expired"
            files.save(job)
            raise TokenLifetimeError(
                f"the batch token was issued at {job.submitted_at:%Y-%m-%d %H:%M} UTC and has expired "
                f"(tokens live {limits.token_lifetime}); re-submit the batch request to export again"
            )
        # Staged files that went missing are found (and re-fetched) by _Export._recount_staged.
        job.phase = "running"
        files.save(job)
        export = _Export(
            client, job, files, store, progress, settings, limits, policy, download_transport, now
        )
        return await export.run()


class _Export:
    def __init__(
        self,
        client: CMClient,
        job: JobState,
        files: JobFiles,
        store: ResultStore,
        progress: Progress | None,
        settings: Settings | None,
        limits: ExportLimits | None,
        policy: DownloadPolicy | None,
        transport: httpx2.AsyncBaseTransport | None,
        now: Clock,
    ) -> None:
        self.client = client
        self.job = job
        self.files = files
        self.store = store
        self.progress_cb = progress
        self.limits = limits or ExportLimits()
        self.policy = policy or DownloadPolicy.from_settings(settings or Settings())
        self.transport = transport
        self.now = now
        self.started = time.monotonic()
        self.deadline = job.submitted_at + self.limits.token_lifetime - self.limits.token_margin
        self.in_flight: set[str] = set()
        #: the record keys (`_id`s) of the partition files parsed so far: its size is the exact
        #: distinct count. Each download's parser adds to it directly, in its worker thread (a set per
        #: file and a union on the event loop cost 0.75x -> 0.89x of raw throughput, bench/export.py).
        #: A download that fails after parsing part of a file sets `seen_tainted`; `_finish` then
        #: recounts from the verified files, so a failed attempt never counts.
        self.seen: set[bytes] = set()
        self.seen_tainted = False
        self.received = 0
        self.refreshes: dict[str, int] = {}
        self.wake = anyio.Event()
        self.poll_now = False
        self.last_progress = 0.0
        self.limiter = anyio.CapacityLimiter(self.limits.concurrency)

    # --- the whole run -------------------------------------------------------------------------------

    async def run(self) -> ExportResult:
        builder = await anyio.to_thread.run_sync(
            lambda: self.store.builder(
                kind=self.job.kind,
                source="export",
                request=self.job.request,
                start_time=self.job.request.get("start_time"),
                end_time=self.job.request.get("end_time"),
                defer_index=True,  # built from the stored files after publication (module docstring)
            )
        )
        try:
            await self._recount_staged()
            try:
                async with (
                    Downloader(self.policy, transport=self.transport) as downloader,
                    anyio.create_task_group() as tg,
                ):
                    await self._poll_loop(tg, downloader)
            except ExceptionGroup as group:
                # Callers get the typed error (BatchTokenExpiredError, HostNotAllowedError...), not a group.
                raise _first_error(group) from None
            result = await anyio.to_thread.run_sync(self._finish, builder)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(builder.abort)
                if self.job.phase == "running":
                    self.files.save(self.job)  # what is verified stays, for resume_export
            raise
        await self.emit("done", self._message(final=True))
        return result

    def _finish(self, builder: ResultBuilder) -> ExportResult:
        failed = [self._failed(r) for r in self.job.partitions if r.state == "failed"]
        if self.seen_tainted:
            self.seen = self._verified_keys()
        for record in self.job.partitions:
            if record.state == "downloaded" and record.file:
                builder.add_file(
                    self.files.staging / record.file,
                    StoredFile(
                        name=record.file,
                        bytes=record.bytes or 0,
                        records=record.records or 0,
                        format=record.format or "",
                        start_time=record.start_time,
                        end_time=record.end_time,
                    ),
                )
        info = builder.finish(
            complete=not failed, failed=failed, records=len(self.seen), records_received=self.received
        )
        self.job.phase, self.job.result_id = "done", info.id
        self.files.save(self.job)
        shutil.rmtree(self.files.staging, ignore_errors=True)
        logger.info(
            "export %s: stored as %s (%d records, index %s)",
            self.files.name,
            info.id,
            info.records,
            info.index_state,
        )
        return _export_result(
            info, self.job, self.files.name, elapsed_seconds=round(time.monotonic() - self.started, 3)
        )

    async def _recount_staged(self) -> None:
        """Resumed: the `_id`s of partitions verified by an earlier run are not in memory; re-read
        their staged files (counting mode, no download). A staged file that no longer verifies is
        downloaded again."""
        for record in self.job.partitions:
            if record.state != "downloaded" or not record.file:
                continue
            path = self.files.staging / record.file
            try:
                parser = await anyio.to_thread.run_sync(partial(count_file_records, path, ids=True))
            except (OSError, RecordFileError) as exc:
                logger.warning(
                    "export %s: staged %s is unusable (%s); fetching again", self.files.name, path.name, exc
                )
                path.unlink(missing_ok=True)
                record.state, record.file, record.records = "pending", None, None
                continue
            self.seen |= parser.id_keys or set()
            self.received += record.records or 0
        self.files.save(self.job)

    # --- polling -------------------------------------------------------------------------------------

    async def _poll_loop(self, tg: anyio.abc.TaskGroup, downloader: Downloader) -> None:
        interval = self.limits.poll_initial
        next_poll = time.monotonic()  # the first poll goes out at once; partitions may be ready
        failures = 0
        seen_list = bool(self.job.partitions)
        while True:
            if seen_list and self._all_final():
                return
            if self.poll_now:
                self.poll_now, interval = False, self.limits.poll_initial
                next_poll = min(next_poll, time.monotonic())
            waiting = self._waiting_on_server() or not seen_list
            if waiting and time.monotonic() >= next_poll:
                if self.now() >= self.deadline:
                    self._give_up_at_deadline()
                    continue
                try:
                    await self._poll(tg, downloader)
                    failures = 0
                    seen_list = seen_list or bool(self.job.partitions)
                except (ServerError, TransportError) as exc:
                    failures += 1
                    logger.warning("export %s: status poll failed (%s)", self.files.name, exc)
                    if failures >= MAX_POLL_FAILURES:
                        raise
                next_poll = time.monotonic() + interval
                interval = min(interval * self.limits.poll_growth, self.limits.poll_max)
                continue
            timeout = None
            if waiting:
                left = (self.deadline - self.now()).total_seconds()
                timeout = max(0.0, min(next_poll - time.monotonic(), left))
            self.wake = anyio.Event()
            with anyio.move_on_after(timeout):
                await self.wake.wait()

    async def _poll(self, tg: anyio.abc.TaskGroup, downloader: Downloader) -> None:
        try:
            body = await self.client.post(f"{self.job.kind}_batch_status", {"token": self.job.token})
        except BatchTokenExpiredError:
            self.job.phase = "expired"
            self.files.save(self.job)
            raise
        try:
            partitions = partitions_from_status(body, self.job.kind)
        except ValidationError as exc:
            raise BatchError(
                f"the {self.job.kind} batch status response has an unexpected shape: {exc}"
            ) from None
        self.job.polls += 1
        for part in partitions:
            record = self._record_for(part)
            record.server_status = part.status
            if part.count is not None:
                record.count = part.count
            if record.state != "pending" or record.key in self.in_flight:
                continue
            if part.is_failed:
                self._fail(record, f"the server reported the partition as {part.status!r}")
            elif part.is_empty:
                record.state, record.records, record.bytes = "downloaded", 0, 0
            elif part.ready and part.url is not None:
                self.in_flight.add(record.key)
                expected = part.count if part.completed else None
                tg.start_soon(self._download, record, part.url, expected, downloader)
        self.files.save(self.job)
        await self.emit("polling", self._message())

    def _record_for(self, part: Partition) -> PartitionRecord:
        key = part.key if isinstance(part.key, str) else f"{part.key[0]}/{part.key[1]}"
        record = self.job.partition(key)
        if record is None:
            record = PartitionRecord(
                key=key,
                start_time=format_utc(part.start_time) if part.start_time else None,
                end_time=format_utc(part.end_time) if part.end_time else None,
            )
            self.job.partitions.append(record)
        return record

    def _unclaimed(self) -> list[PartitionRecord]:
        """Pending partitions not being downloaded: only a poll can move them on."""
        return [r for r in self.job.partitions if r.state == "pending" and r.key not in self.in_flight]

    def _waiting_on_server(self) -> bool:
        return bool(self._unclaimed())

    def _all_final(self) -> bool:
        return self.job.done_count == len(self.job.partitions)

    def _give_up_at_deadline(self) -> None:
        for record in self._unclaimed():
            self._fail(
                record,
                f"not ready before the batch token's lifetime ran out ({self.limits.token_lifetime} "
                "from submission)",
            )
        self.files.save(self.job)
        self.wake.set()

    # --- downloading ---------------------------------------------------------------------------------

    async def _download(
        self,
        record: PartitionRecord,
        url: str,
        expected: int | None,
        downloader: Downloader,
    ) -> None:
        stem = f"part-{self.job.partitions.index(record):04d}"
        try:
            async with self.limiter:
                for attempt in range(1, self.limits.attempts + 1):
                    try:
                        got = await self._fetch(downloader, url, stem, expected)
                    except (HostNotAllowedError, InsecureURLError):
                        raise  # a configuration problem: stop the export, it stays resumable
                    except URLExpiredError as exc:
                        self._url_expired(record, exc)
                        return
                    except FileTooLargeError as exc:
                        self._fail(record, str(exc))  # the same file would be just as large again
                        return
                    except (RecordFileError, DownloadError) as exc:
                        logger.warning("export %s: %s attempt %d: %s", self.files.name, stem, attempt, exc)
                        if attempt < self.limits.attempts:
                            continue
                        self._fail(record, f"{exc} (after {attempt} downloads)")
                        return
                    record.state, record.file, record.error = "downloaded", got.path.name, None
                    record.records, record.bytes, record.format = got.records, got.bytes, got.format
                    self.received += got.records
                    self.files.save(self.job)
                    await self.emit("downloading", self._message())
                    return
        finally:
            self.in_flight.discard(record.key)
            self.wake.set()

    async def _fetch(
        self, downloader: Downloader, url: str, stem: str, expected: int | None
    ) -> DownloadedFile:
        try:
            return await downloader.fetch(
                url, self.files.staging, stem, expected_records=expected, id_sink=self.seen
            )
        except (HostNotAllowedError, InsecureURLError, URLExpiredError):
            raise  # refused before a byte of the body was parsed: nothing went into `seen`
        except BaseException:
            self.seen_tainted = True
            raise

    def _verified_keys(self) -> set[bytes]:
        """The keys of the verified (staged) files only, re-read from disk: the exact distinct set
        after a failed download left some of its keys in `seen`."""
        keys: set[bytes] = set()
        for record in self.job.partitions:
            if record.state == "downloaded" and record.file:
                count_file_records(self.files.staging / record.file, ids=True, id_sink=keys)
        return keys

    def _url_expired(self, record: PartitionRecord, exc: URLExpiredError) -> None:
        tries = self.refreshes.get(record.key, 0) + 1
        self.refreshes[record.key] = tries
        if tries > self.limits.url_refreshes:
            self._fail(record, f"{exc}; still refused after {tries - 1} fresh URLs")
            return
        self.poll_now = True  # item 28: a fresh status poll hands out a fresh URL

    def _fail(self, record: PartitionRecord, error: str) -> None:
        record.state, record.error, record.file = "failed", error, None
        self.files.save(self.job)
        logger.warning("export %s: partition %s failed: %s", self.files.name, record.key, error)

    def _failed(self, record: PartitionRecord) -> FailedPartition:
        resubmit = dict(self.job.request)
        if record.start_time and record.end_time:
            resubmit["start_time"], resubmit["end_time"] = record.start_time, record.end_time
        return FailedPartition(
            start_time=record.start_time,
            end_time=record.end_time,
            status=record.server_status,
            error=record.error or "failed",
            resubmit=resubmit,
        )

    # --- progress ------------------------------------------------------------------------------------

    def _message(self, *, final: bool = False) -> str:
        total = len(self.job.partitions)
        failed = sum(1 for r in self.job.partitions if r.state == "failed")
        # While running: records of verified partitions (`seen` also holds files still arriving);
        # at the end the exact distinct count.
        records = len(self.seen) if final else self.received
        text = f"{self.job.done_count}/{total} partitions, {records:,} {self.job.kind}"
        if failed:
            text += f", {failed} failed"
        if final:
            text = "export finished: " + text
        return text

    async def emit(self, stage: Stage, message: str) -> None:
        if self.progress_cb is None:
            return
        self.last_progress = max(self.last_progress, float(self.job.done_count))
        total = float(len(self.job.partitions)) if self.job.partitions else None
        await self.progress_cb(ProgressEvent(self.last_progress, total, message, stage))


def _first_error(group: BaseExceptionGroup[Exception]) -> Exception:
    first = group.exceptions[0]
    return _first_error(first) if isinstance(first, BaseExceptionGroup) else first


def _result_from_store(store: ResultStore, job: JobState, name: str) -> ExportResult:
    assert job.result_id is not None
    return _export_result(store.get(job.result_id), job, name)


def _export_result(
    info: ResultInfo, job: JobState, name: str, *, elapsed_seconds: float = 0.0
) -> ExportResult:
    """The ExportResult of a stored export (`name`: the job's local name)."""
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
        job=name,
        index_state=info.index_state,
    )
