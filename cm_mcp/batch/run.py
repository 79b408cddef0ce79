"""One run of an export's job: poll the status, download each completed partition, verify, publish.

Polling (item 30) goes out at once, then waits `poll_initial` seconds, growing by `poll_growth` up to
`poll_max`, never past the token's assumed 2 h life from submission (item 29). Every poll re-reads
the whole partition list and matches partitions by (start_time, end_time) (item 27); a completed
partition is downloaded at once, up to `concurrency` at a time, while polling goes on.

Failures, by what fixes them (failures.py): a 403 on a file asks for an early poll and a fresh URL
(item 28), up to `url_refreshes` times; any other transfer failure (5xx, dropped connection, corrupt
or short file) is downloaded again after a back-off, up to `attempts` downloads. A partition still
failing is `download`-failed for this run, and the next resume retries it with fresh URLs; the API
saying `failed` is final for the token (`upstream`). A status poll that fails for good (the API down,
the JWT expired...) stops polling, lets the downloads in flight finish (presigned URLs need no JWT,
and every verified file is kept for the resume), then raises.

The run reports a step after every poll and partition, and heartbeats during every wait in between
(progress.py), each saying what it waits for.
"""

from __future__ import annotations

import logging
import time
from functools import partial

import anyio
import anyio.abc
from pydantic import ValidationError

from cm_mcp.api.client import CMClient
from cm_mcp.api.errors import BatchTokenExpiredError, CMError, ServerError, TransportError
from cm_mcp.api.partitions import Partition, partitions_from_status
from cm_mcp.api.times import format_utc
from cm_mcp.batch.download import DownloadedFile, Downloader
from cm_mcp.batch.errors import (
    BatchError,
    DownloadError,
    FileTooLargeError,
    HostNotAllowedError,
    InsecureURLError,
    URLExpiredError,
)
from cm_mcp.batch.jobs import FailureCause, JobFiles, JobState, PartitionRecord
from cm_mcp.batch.models import ExportResult, Stage
from cm_mcp.batch.options import ExportOptions
from cm_mcp.batch.progress import ProgressReporter
from cm_mcp.batch.publish import publish
from cm_mcp.store.errors import RecordFileError
from cm_mcp.store.files import count_file_records

logger = logging.getLogger("cm_mcp.batch")

#: Consecutive failed status polls (5xx, no answer) tolerated before the run stops; a long export
#: should survive a short outage, and the API client already retried each of them.
MAX_POLL_FAILURES = 5
#: What a download in flight is doing when it is not retrying (heartbeat text).
_DOWNLOADING = "downloading"


class ExportRun:
    """Drives one job to a published result (or a resumable stop); one instance per run."""

    def __init__(
        self,
        client: CMClient,
        job: JobState,
        files: JobFiles,
        options: ExportOptions,
        reporter: ProgressReporter,
    ) -> None:
        self.client = client
        self.job = job
        self.files = files
        self.options = options
        self.limits = options.limits
        self.reporter = reporter
        self.started = time.monotonic()
        self.deadline = job.submitted_at + self.limits.token_lifetime - self.limits.token_margin
        #: partition key -> what its download is doing ("downloading" or a retry's wait)
        self.in_flight: dict[str, str] = {}
        #: the record keys (`_id`s) of the partition files parsed so far: its size is the exact
        #: distinct count. Each download's parser adds to it directly, in its worker thread (a set per
        #: file and a union on the event loop cost 0.75x -> 0.89x of raw throughput, bench/export.py).
        #: A download that fails after parsing part of a file sets `seen_tainted`; publishing then
        #: recounts from the verified files, so a failed attempt never counts.
        self.seen: set[bytes] = set()
        self.seen_tainted = False
        self.received = 0
        self.bytes_in = 0
        self.refreshes: dict[str, int] = {}
        self.wake = anyio.Event()
        self.poll_now = False
        self.next_poll = time.monotonic()
        self.polling_since: float | None = None
        #: a status poll failed for good: no more polls; raised once the downloads in flight are done
        self.stopping: Exception | None = None
        self.publishing = False
        self.limiter = anyio.CapacityLimiter(self.limits.concurrency)

    # --- the whole run -------------------------------------------------------------------------------

    async def run(self) -> ExportResult:
        try:
            await self._recount_staged()
            async with self.reporter.beating(self._heartbeat):
                try:
                    async with (
                        Downloader(
                            self.options.download_policy, transport=self.options.download_transport
                        ) as downloader,
                        anyio.create_task_group() as tg,
                    ):
                        await self._poll_loop(tg, downloader)
                except ExceptionGroup as group:
                    # Callers get the typed error (BatchTokenExpiredError, HostNotAllowedError...).
                    raise _first_error(group) from None
                self.publishing = True
                result = await anyio.to_thread.run_sync(self._publish)
        except BaseException:
            if self.job.phase == "running":
                self.files.save(self.job)  # what is verified stays, for the resume
            raise
        await self.reporter.finish("done", self._message(final=True))
        return result

    def _publish(self) -> ExportResult:
        if self.seen_tainted:
            self.seen = self._verified_keys()
        return publish(
            self.job,
            self.files,
            self.options,
            distinct=len(self.seen),
            received=self.received,
            elapsed_seconds=round(time.monotonic() - self.started, 3),
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
        self.next_poll = time.monotonic()  # the first poll goes out at once; partitions may be ready
        failures = 0
        listed = bool(self.job.partitions)
        while True:
            if self.stopping is not None:
                if not self.in_flight:
                    raise self.stopping
            elif listed and self._all_final():
                return
            if self.poll_now:
                self.poll_now, interval = False, self.limits.poll_initial
                self.next_poll = min(self.next_poll, time.monotonic())
            waiting = self.stopping is None and (bool(self._unclaimed()) or not listed)
            if waiting and time.monotonic() >= self.next_poll:
                if self.options.now() >= self.deadline:
                    self._give_up_at_deadline()
                    continue
                try:
                    await self._poll(tg, downloader)
                    failures = 0
                    listed = listed or bool(self.job.partitions)
                except (ServerError, TransportError) as exc:
                    failures += 1
                    logger.warning("export %s: status poll failed (%s)", self.files.name, exc)
                    if failures >= MAX_POLL_FAILURES:
                        self._stop(exc)
                except CMError as exc:  # the token or the JWT expired, the quota, the API's answer...
                    self._stop(exc)
                self.next_poll = time.monotonic() + interval
                interval = min(interval * self.limits.poll_growth, self.limits.poll_max)
                continue
            timeout = None
            if waiting:
                left = (self.deadline - self.options.now()).total_seconds()
                timeout = max(0.0, min(self.next_poll - time.monotonic(), left))
            self.wake = anyio.Event()
            with anyio.move_on_after(timeout):
                await self.wake.wait()

    def _stop(self, exc: Exception) -> None:
        if self.in_flight:
            logger.warning(
                "export %s: stopping (%s) once %d download(s) in flight finish",
                self.files.name,
                type(exc).__name__,
                len(self.in_flight),
            )
        self.stopping = exc

    async def _poll(self, tg: anyio.abc.TaskGroup, downloader: Downloader) -> None:
        self.polling_since = time.monotonic()
        try:
            body = await self.client.post(f"{self.job.kind}_batch_status", {"token": self.job.token})
        except BatchTokenExpiredError as exc:
            self.job.phase = "expired"
            self.files.save(self.job)
            if not self.job.partitions:
                raise  # nothing known to keep: the error says to submit again
            self._token_gone(exc)
            return
        finally:
            self.polling_since = None
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
                self._fail(record, "upstream", f"the API reported the partition as {part.status!r}")
            elif part.is_empty:
                record.state, record.records, record.bytes = "downloaded", 0, 0
            elif part.ready and part.url is not None:
                self.in_flight[record.key] = _DOWNLOADING
                expected = part.count if part.completed else None
                tg.start_soon(self._download, record, part.url, expected, downloader)
        self.files.save(self.job)
        await self._step("polling")

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

    def _all_final(self) -> bool:
        return self.job.done_count == len(self.job.partitions)

    def _token_gone(self, exc: BatchTokenExpiredError) -> None:
        """The API forgot the token mid-export: what is verified is kept and published; the rest
        needs a new batch for its range (failures.py: `not_ready`)."""
        for record in self._unclaimed():
            self._fail(record, "not_ready", f"the API no longer knows the batch token: {exc}")
        self.wake.set()

    def _give_up_at_deadline(self) -> None:
        for record in self._unclaimed():
            self._fail(
                record,
                "not_ready",
                f"not ready before the batch token's lifetime ran out ({self.limits.token_lifetime} "
                "from submission)",
            )
        self.wake.set()

    # --- downloading ---------------------------------------------------------------------------------

    async def _download(
        self, record: PartitionRecord, url: str, expected: int | None, downloader: Downloader
    ) -> None:
        stem = f"part-{self.job.partitions.index(record):04d}"
        try:
            for attempt in range(1, self.limits.attempts + 1):
                self.in_flight[record.key] = _DOWNLOADING
                async with self.limiter:
                    try:
                        got = await self._fetch(downloader, url, stem, expected)
                    except (HostNotAllowedError, InsecureURLError):
                        raise  # a configuration problem: stop the export, it stays resumable
                    except URLExpiredError as exc:
                        self._url_expired(record, exc)
                        return
                    except FileTooLargeError as exc:
                        self._fail(record, "too_large", exc.detail)  # the same file is as large again
                        return
                    except (RecordFileError, DownloadError) as exc:
                        problem: Exception = exc
                    else:
                        await self._verified(record, got)
                        return
                logger.warning("export %s: %s download %d: %s", self.files.name, stem, attempt, problem)
                if attempt == self.limits.attempts:
                    self._fail(record, "download", f"{problem} ({attempt} downloads)")
                    return
                delay = self.limits.retry_backoff * 2 ** (attempt - 1)
                self.in_flight[record.key] = (
                    f"{stem} is downloaded again in {delay:g} s (download {attempt} failed: {problem})"
                )
                await anyio.sleep(delay)
        finally:
            self.in_flight.pop(record.key, None)
            self.wake.set()

    async def _fetch(
        self, downloader: Downloader, url: str, stem: str, expected: int | None
    ) -> DownloadedFile:
        try:
            return await downloader.fetch(
                url,
                self.files.staging,
                stem,
                expected_records=expected,
                id_sink=self.seen,
                on_bytes=self._count_bytes,
            )
        except (HostNotAllowedError, InsecureURLError, URLExpiredError):
            raise  # refused before a byte of the body was parsed: nothing went into `seen`
        except BaseException:
            self.seen_tainted = True
            raise

    def _count_bytes(self, size: int) -> None:
        self.bytes_in += size

    async def _verified(self, record: PartitionRecord, got: DownloadedFile) -> None:
        name: str | None = got.path.name
        if got.records == 0:  # an empty partition: verified, nothing to store
            got.path.unlink(missing_ok=True)
            name = None
        record.state, record.file, record.error, record.cause = "downloaded", name, None, None
        record.records, record.bytes, record.format = got.records, got.bytes, got.format
        self.received += got.records
        self.files.save(self.job)
        await self._step("downloading")

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
            self._fail(record, "download", f"{exc}; still refused after {tries - 1} fresh URLs")
            return
        self.poll_now = True  # item 28: a fresh status poll hands out a fresh URL

    def _fail(self, record: PartitionRecord, cause: FailureCause, error: str) -> None:
        record.state, record.cause, record.error, record.file = "failed", cause, error, None
        self.files.save(self.job)
        logger.warning("export %s: partition %s failed (%s): %s", self.files.name, record.key, cause, error)

    # --- progress ------------------------------------------------------------------------------------

    async def _step(self, stage: Stage) -> None:
        total = len(self.job.partitions) + 1 if self.job.partitions else None  # +1: storing the result
        await self.reporter.step(stage, self._message(), steps=self.job.done_count, total=total)

    def _message(self, *, final: bool = False) -> str:
        total = len(self.job.partitions)
        failed = sum(1 for r in self.job.partitions if r.state == "failed")
        # While running: records of verified partitions (`seen` also holds files still arriving);
        # at the end the exact distinct count.
        records = f"{len(self.seen):,} distinct" if final else f"{self.received:,}"
        text = f"{self.job.done_count}/{total} partitions, {records} {self.job.kind}"
        if failed:
            text += f", {failed} failed"
        return "export finished: " + text if final else text

    def _heartbeat(self) -> tuple[int, str]:
        return self.job.done_count, f"{self._message()}; {self._waiting_for()}"

    def _waiting_for(self) -> str:
        """What the run is waiting for right now, in words (heartbeats)."""
        now = time.monotonic()
        if self.publishing:
            return "storing the result"
        if self.stopping is not None:
            return (
                f"stopping ({type(self.stopping).__name__}); waiting for {len(self.in_flight)} download(s) "
                "in flight to finish, so that their partitions are kept"
            )
        waits = []
        if self.polling_since is not None:
            waits.append(
                f"waiting for the answer to status poll {self.job.polls + 1} ({now - self.polling_since:.0f} s)"
            )
        downloading = sum(1 for state in self.in_flight.values() if state == _DOWNLOADING)
        if downloading:
            waits.append(f"downloading {downloading} partition file(s), {self.bytes_in / 1e6:,.1f} MB so far")
        waits += [state for state in self.in_flight.values() if state != _DOWNLOADING]
        unclaimed = len(self._unclaimed())
        if self.polling_since is None and (unclaimed or not self.job.partitions):
            what = f"{unclaimed} partition(s)" if self.job.partitions else "the partition list"
            waits.append(
                f"waiting for the API to prepare {what}; next status poll in "
                f"{max(0.0, self.next_poll - now):.0f} s"
            )
        return "; ".join(waits) or "working"


def _first_error(group: BaseExceptionGroup[Exception]) -> Exception:
    first = group.exceptions[0]
    return _first_error(first) if isinstance(first, BaseExceptionGroup) else first
