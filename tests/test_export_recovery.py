"""Exports recover while the token lives (issue 9 item 1), against a fake API and file host.

A partition that failed for a transient reason is downloaded again by a resume, with fresh URLs from
a fresh status poll; a resume fetches only what is missing and never submits a batch; what the API
reported `failed` stays failed with a resubmission body; an empty result is a success.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cm_mcp.api.errors import JWTExpiredError
from cm_mcp.api.times import format_utc
from cm_mcp.batch import (
    DownloadPolicy,
    ExportLimits,
    ExportOptions,
    ExportResult,
    NothingRecoveredError,
    ProgressEvent,
    job_status,
    resume_export,
    run_export,
)
from cm_mcp.batch.jobs import JobFiles
from cm_mcp.ops.interrupted import missing_lines
from cm_mcp.store import FailedPartition, ResultEvictedError, ResultStore
from tests.test_batch_export import FAST, POLICY, request
from tests.test_batch_fakes import (
    LOGS_REQUEST_ARGS,
    T0,
    FakeBatchAPI,
    FakePartition,
    StreamingMock,
    corrupt,
    encode,
    even_partitions,
    fake_client,
    truncate,
)

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def options(api: FakeBatchAPI, store: ResultStore, **changes: Any) -> ExportOptions:
    settings: dict[str, Any] = {"limits": FAST, "policy": POLICY, "download_transport": StreamingMock(api)}
    return ExportOptions(store, **{**settings, **changes})


async def export(api: FakeBatchAPI, store: ResultStore, **changes: Any) -> ExportResult:
    async with fake_client(api) as client:
        return await run_export(client, request(), options(api, store, **changes))


async def resume(api: FakeBatchAPI, store: ResultStore, **changes: Any) -> ExportResult:
    async with fake_client(api) as client:
        return await resume_export(client, api.token, options(api, store, **changes))


# --- each transient fault: on, then cleared and resumed -------------------------------------------


def _expired(p: FakePartition, on: bool) -> None:
    p.expired_downloads = 10**6 if on else 0


def _server_error(p: FakePartition, on: bool) -> None:
    p.error_downloads = 10**6 if on else 0


def _damaged(damage: Callable[[bytes], bytes]) -> Callable[[FakePartition, bool], None]:
    def switch(p: FakePartition, on: bool) -> None:
        p.bodies = [damage(encode(p.hits))] if on else []

    return switch


def _short(p: FakePartition, on: bool) -> None:  # a whole, valid file with fewer records than counted
    p.bodies = [encode(p.hits[:-3])] if on else []


TRANSIENT = {
    "expired_url": _expired,
    "5xx_on_download": _server_error,
    "truncated": _damaged(truncate),
    "corrupt": _damaged(corrupt),
    "count_mismatch": _short,
}


@pytest.mark.parametrize("fault", sorted(TRANSIENT))
async def test_a_fault_on_every_partition_then_cleared_is_recovered_by_a_resume(
    tmp_path: Path, fault: str
) -> None:
    """The issue's case: 0 of N records, the fault clears, the resume call gets all N."""
    api = FakeBatchAPI(even_partitions(500, 5))
    for partition in api.partitions:
        TRANSIENT[fault](partition, True)
    store = ResultStore(tmp_path)
    with pytest.raises(NothingRecoveredError) as caught:
        await export(api, store)
    assert caught.value.resumable
    assert {p.cause for p in caught.value.failed} == {"download"}
    assert store.list() == []
    polls_before = api.polls
    for partition in api.partitions:
        TRANSIENT[fault](partition, False)
    result = await resume(api, store)
    assert result.complete and result.records == 500 and result.failed_partitions == []
    assert len(api.submitted) == 1, "a resume never submits"
    assert api.polls > polls_before, "a resume polls for fresh URLs"
    state = job_status(tmp_path, api.token)
    assert state is not None and state.phase == "done"


@pytest.mark.parametrize("fault", sorted(TRANSIENT))
async def test_a_partial_export_is_completed_by_a_resume_that_fetches_only_what_is_missing(
    tmp_path: Path, fault: str
) -> None:
    api = FakeBatchAPI(even_partitions(600, 6))
    for partition in api.partitions[1:3]:
        TRANSIENT[fault](partition, True)
    store = ResultStore(tmp_path)
    partial = await export(api, store)
    assert not partial.complete and partial.resumable
    assert partial.records == 400 and partial.missing_records == 200 and partial.expected_records == 600
    assert [p.cause for p in partial.failed_partitions] == ["download", "download"]
    assert store.get(partial.result_id).complete is False  # searchable meanwhile
    downloads = [p.downloads for p in api.partitions]
    for partition in api.partitions:
        TRANSIENT[fault](partition, False)
    result = await resume(api, store)
    assert result.complete and result.records == 600
    assert result.replaced_result == partial.result_id
    assert len(api.submitted) == 1
    fetched_again = [p.downloads - before for p, before in zip(api.partitions, downloads, strict=True)]
    assert fetched_again == [0, 1, 1, 0, 0, 0], "only the missing partitions are downloaded"
    assert [info.id for info in store.list()] == [result.result_id]
    with pytest.raises(ResultEvictedError, match=f"replaced by {result.result_id}"):
        store.get(partial.result_id)
    assert store.aggs(result.result_id, {})["total_documents"] == 600
    assert not (tmp_path / "jobs" / JobFiles(tmp_path, api.token).name).exists()  # staging cleaned up


async def test_a_resume_while_the_fault_persists_keeps_the_partial_result_resumable(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(300, 3))
    api.partitions[2].expired_downloads = 10**6
    store = ResultStore(tmp_path)
    first = await export(api, store)
    second = await resume(api, store)  # still expired: another partial result, still resumable
    assert (second.records, second.resumable, second.replaced_result) == (200, True, first.result_id)
    api.partitions[2].expired_downloads = 0
    third = await resume(api, store)
    assert third.complete and third.records == 300 and len(api.submitted) == 1


async def test_a_permanent_failure_is_never_retried_and_has_a_ready_resubmission(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(300, 3))
    api.partitions[1].failed = True
    store = ResultStore(tmp_path)
    result = await export(api, store)
    assert not result.complete and not result.resumable
    (failed,) = result.failed_partitions
    assert failed.cause == "upstream" and failed.count == 100
    body = json.loads(json.dumps(failed.resubmit))  # plain JSON, ready to send
    assert (body["start_time"], body["end_time"]) == (failed.start_time, failed.end_time)
    assert body["domain"] == ["*"] and body["application"] == "atr"
    polls = api.polls
    again = await resume(api, store)  # nothing the token can fetch: the stored result, no request
    assert again.result_id == result.result_id and api.polls == polls and len(api.submitted) == 1


async def test_every_partition_failed_upstream_is_an_error_that_a_resume_cannot_fix(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(200, 2))
    for partition in api.partitions:
        partition.failed = True
    store = ResultStore(tmp_path)
    with pytest.raises(NothingRecoveredError) as caught:
        await export(api, store)
    assert not caught.value.resumable
    assert "2 failed upstream" in str(caught.value)
    polls = api.polls
    with pytest.raises(NothingRecoveredError):
        await resume(api, store)
    assert api.polls == polls and len(api.submitted) == 1


async def test_a_file_above_the_size_limit_is_fetched_by_a_resume_with_a_higher_limit(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(400, 2))
    store = ResultStore(tmp_path)
    small = DownloadPolicy(
        allowed_hosts=POLICY.allowed_hosts, max_bytes=len(encode(api.partitions[0].hits)) - 1
    )
    with pytest.raises(NothingRecoveredError) as caught:
        await export(api, store, policy=small)
    assert {p.cause for p in caught.value.failed} == {"too_large"}
    assert caught.value.resumable
    assert all(p.downloads == 1 for p in api.partitions), "the same file is as large again: no retry"
    result = await resume(api, store)  # CM_MAX_DOWNLOAD_BYTES raised
    assert result.complete and result.records == 400 and len(api.submitted) == 1


async def test_an_empty_result_is_a_success_with_zero_records(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(0, 2))  # completed, count 0, a URL to a gzip of nothing
    result = await export(api, ResultStore(tmp_path))
    assert result.complete and result.records == 0 and result.failed_partitions == []
    assert result.files == []
    assert all(p.downloads == 1 for p in api.partitions)  # verified, once


@pytest.mark.parametrize("body", [b"", b"\n", encode([], "ndjson.gz"), encode([], "json")])
async def test_an_empty_partition_among_full_ones_is_verified_and_not_stored(
    tmp_path: Path, body: bytes
) -> None:
    api = FakeBatchAPI(even_partitions(200, 2))
    api.partitions.append(
        FakePartition(api.partitions[-1].end, api.partitions[-1].end + timedelta(hours=1), [])
    )
    api.partitions[-1].bodies = [body]
    result = await export(api, ResultStore(tmp_path))
    assert result.complete and result.records == 200 and len(result.files) == 2


async def test_an_empty_file_where_records_were_counted_is_a_transfer_failure(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(200, 2))
    api.partitions[1].bodies = [b""]
    result = await export(api, ResultStore(tmp_path))
    (failed,) = result.failed_partitions
    assert failed.cause == "download" and "0 records" in failed.error and result.resumable


async def test_the_api_down_while_polling_keeps_the_downloads_in_flight_and_resumes(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(400, 4))
    for i, partition in enumerate(api.partitions):
        partition.ready_at_poll = 1 if i < 2 else 2

    def outage(poll: int) -> None:
        if poll == 1:
            api.status_errors = [503] * 1000  # every poll after the first fails

    api.on_poll = outage
    store = ResultStore(tmp_path)
    async with fake_client(api) as client:
        with pytest.raises(Exception, match="503") as caught:
            await run_export(client, request(), options(api, store))
    assert type(caught.value).__name__ == "ServerError"
    state = job_status(tmp_path, api.token)
    assert state is not None and state.downloaded_count == 2  # the downloads in flight were finished
    api.status_errors, api.on_poll = [], None
    result = await resume(api, store)
    assert result.complete and result.records == 400 and len(api.submitted) == 1
    assert [p.downloads for p in api.partitions] == [1, 1, 1, 1]


async def test_a_jwt_expiring_mid_export_stops_it_resumably(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(300, 3))
    for partition, ready_at in zip(api.partitions, (1, 1, 3), strict=True):
        partition.ready_at_poll = ready_at
    wall = [datetime.now(UTC)]

    def jwt_expires_after_the_first_poll(poll: int) -> None:
        if poll == 1:
            wall[0] += timedelta(hours=13)  # past the test JWT's 12 h: the client refuses to send

    api.on_poll = jwt_expires_after_the_first_poll
    store = ResultStore(tmp_path)
    async with fake_client(api, now=lambda: wall[0]) as client:
        with pytest.raises(JWTExpiredError):
            await run_export(client, request(), options(api, store))
    state = job_status(tmp_path, api.token)
    assert state is not None and state.phase == "running" and state.downloaded_count == 2
    result = await resume(api, store)  # a fresh JWT
    assert result.complete and result.records == 300 and len(api.submitted) == 1
    assert [p.downloads for p in api.partitions] == [1, 1, 1]


# --- progress ----------------------------------------------------------------------------------


async def test_heartbeats_during_every_wait_say_what_is_awaited_and_strictly_increase(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(300, 3))
    api.partitions[2].ready_at_poll = 3
    api.partitions[0].error_downloads = 1  # one download retried after a back-off
    events: list[ProgressEvent] = []

    async def on_progress(event: ProgressEvent) -> None:
        events.append(event)

    limits = ExportLimits(poll_initial=0.3, poll_growth=1.0, poll_max=0.3, retry_backoff=0.3, heartbeat=0.05)
    result = await export(api, ResultStore(tmp_path), limits=limits, progress=on_progress)
    assert result.complete
    values = [e.progress for e in events]
    assert all(a < b for a, b in itertools.pairwise(values)), values
    messages = " | ".join(e.message for e in events)
    assert "waiting for the API to prepare 1 partition(s); next status poll in" in messages
    assert "part-0000 is downloaded again in 0.3 s (download 1 failed: HTTP 503" in messages
    assert all(event.progress < 4 for event in events[:-1])  # only the end reaches the total
    assert events[-1].message == "export finished: 3/3 partitions, 300 distinct logs"
    assert (events[-1].progress, events[-1].total) == (4, 4)


# --- advice, by cause ----------------------------------------------------------------------------


def _failed(cause: str, hour: int, error: str) -> FailedPartition:
    start, end = T0 + timedelta(hours=hour), T0 + timedelta(hours=hour + 1)
    body = {**LOGS_REQUEST_ARGS, "start_time": format_utc(start), "end_time": format_utc(end)}
    return FailedPartition(
        start_time=body["start_time"],
        end_time=body["end_time"],
        status="completed",
        error=error,
        cause=cause,
        count=100,
        resubmit=body,
    )


def test_the_advice_for_missing_partitions_matches_each_cause() -> None:
    failed = [
        _failed("upstream", 0, "the API reported the partition as 'failed'"),
        _failed("too_large", 1, "the file at s3 is 9,000 bytes, above the limit of 8,000 bytes"),
        _failed("download", 2, "HTTP 403 from s3: the presigned URL has expired"),
    ]
    resume = 'logs_batch_status {"token": "t", "download": true} before 2026-01-19T02:00:00.000Z'
    lines = missing_lines("logs", failed, resume=resume)
    download, too_large = lines[0], lines[1]
    assert download.startswith("- 1 failed to download (100 records; last error: HTTP 403")
    assert resume in download and "resubmit" not in download.replace("nothing is resubmitted", "")
    assert too_large.startswith("- 1 over the download size limit")
    assert f"Raise CM_MAX_DOWNLOAD_BYTES and continue with {resume}" in too_large
    halves = [json.loads(line[4:]) for line in lines[2:4]]
    assert [h["start_time"] for h in halves] == ["2026-01-19T01:00:00.000Z", "2026-01-19T01:30:00.000Z"]
    assert (
        halves[0]["end_time"] == halves[1]["start_time"]
        and halves[1]["end_time"] == "2026-01-19T02:00:00.000Z"
    )
    upstream = lines[4:]
    assert (
        upstream[0].startswith("- 1 failed upstream")
        and "resubmit just their ranges with logs_batch" in upstream[0]
    )
    assert json.loads(upstream[1].split("): ", 1)[1]) == failed[0].resubmit  # valid JSON, as is
    # once the token cannot fetch anything: transfer failures need a new batch too, size advice stays
    dead = "\n".join(missing_lines("logs", failed, resume=None))
    assert "logs_batch_status" not in dead
    assert "failed to download (100 records) and the batch token has expired: resubmit" in dead
    assert "Export each range in narrower windows" in dead


async def test_a_token_the_api_forgets_mid_export_keeps_what_was_verified(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(300, 3))
    for partition, ready_at in zip(api.partitions, (1, 9, 9), strict=True):
        partition.ready_at_poll = ready_at

    def forget(poll: int) -> None:
        if poll == 2:
            api.expired = True  # from the third poll on: 404 "No record of this token"

    api.on_poll = forget
    store = ResultStore(tmp_path)
    result = await export(api, store)
    assert (result.records, result.complete, result.resumable) == (100, False, False)
    assert [p.cause for p in result.failed_partitions] == ["not_ready", "not_ready"]
    assert all("no longer knows the batch token" in p.error for p in result.failed_partitions)
    assert [p.resubmit["start_time"] for p in result.failed_partitions] == [
        p.start_time for p in result.failed_partitions
    ]
    requests = api.status_requests
    again = await resume(api, store)  # nothing the dead token can fetch: the stored result, no request
    assert again.result_id == result.result_id and api.status_requests == requests
    assert len(api.submitted) == 1
