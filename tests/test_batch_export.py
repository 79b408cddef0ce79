"""run_export / resume_export end to end against a fake API (MockTransport) and fake file host."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from cm_mcp.api.errors import BatchTokenExpiredError
from cm_mcp.api.requests import LogsBatchRequest, parse_request
from cm_mcp.batch import (
    ExportLimits,
    ExportOptions,
    HostNotAllowedError,
    JobNotFoundError,
    NothingRecoveredError,
    ProgressEvent,
    TokenLifetimeError,
    job_status,
    resume_export,
    run_export,
)
from cm_mcp.batch.download import DownloadPolicy
from cm_mcp.batch.jobs import JobFiles, JobState, unfinished_jobs
from cm_mcp.store import ResultStore
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
    make_hits,
    truncate,
)

pytestmark = pytest.mark.anyio

FAST = ExportLimits(poll_initial=0.005, poll_growth=1.5, poll_max=0.03, retry_backoff=0.005)
POLICY = DownloadPolicy(allowed_hosts=("*.amazonaws.com",))


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def request() -> LogsBatchRequest:
    return parse_request(LogsBatchRequest, LOGS_REQUEST_ARGS)


class Events:
    def __init__(self) -> None:
        self.events: list[ProgressEvent] = []

    async def __call__(self, event: ProgressEvent) -> None:
        self.events.append(event)

    def check_monotonic(self) -> None:
        values = [e.progress for e in self.events]
        assert all(a < b for a, b in itertools.pairwise(values)), values  # strictly, as MCP requires
        last = self.events[-1]
        assert last.stage == "done"
        assert last.progress == last.total


def leftovers(root: Path) -> list[Path]:
    """Half-built results and temporary download files."""
    return [*(root / "results").glob(".building-*"), *root.rglob("*.part-*")]


async def export(api: FakeBatchAPI, store: ResultStore, **kwargs: Any) -> Any:
    async with fake_client(api) as client:
        options = ExportOptions(
            store,
            limits=kwargs.pop("limits", FAST),
            policy=POLICY,
            download_transport=StreamingMock(api),
            **kwargs,
        )
        return await run_export(client, request(), options)


async def test_export_end_to_end(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(1000, 6))
    api.partitions[1].bodies = [encode(api.partitions[1].hits, "ndjson")]
    api.partitions[2].bodies = [encode(api.partitions[2].hits, "json")]
    api.partitions[3].bodies = [encode(api.partitions[3].hits, "json.gz", bare=True)]
    store = ResultStore(tmp_path)
    events = Events()
    result = await export(api, store, progress=events)
    assert result.complete
    assert result.records == 1000
    assert result.partitions == 6
    assert result.failed_partitions == []
    assert len(result.files) == 6
    events.check_monotonic()
    assert events.events[-1].total == 7  # the partitions, then storing the result
    assert events.events[-1].message == "export finished: 6/6 partitions, 1,000 distinct logs"
    assert all(h is None for h in api.auth_headers_on_files)  # the JWT never goes to the file host
    assert api.submitted == [request().to_body()]
    # the stored result answers follow-ups without the API
    page = store.search(result.result_id, [{"term": {"regex.extractions.logLevel": "ERROR"}}], size=10)
    assert page.total == 200
    assert len(page.hits) == 10
    aggs = store.aggs(result.result_id, {"lv": {"terms": {"field": "regex.extractions.logLevel"}}})
    assert aggs["total_documents"] == 1000
    assert {b["key"]: b["doc_count"] for b in aggs["aggregations"]["lv"]["buckets"]} == {
        "INFO": 800,
        "ERROR": 200,
    }
    state = job_status(tmp_path, api.token)
    assert state is not None
    assert state.phase == "done"
    assert state.result_id == result.result_id
    assert api.token not in str(list((tmp_path / "jobs").iterdir()))  # token only hashed in names
    assert not list((tmp_path / "jobs").glob("*/*"))  # staged files moved into the result


async def test_failed_partition_is_reported_with_resubmission(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(300, 3))
    api.partitions[1].failed = True
    store = ResultStore(tmp_path)
    result = await export(api, store)
    assert not result.complete
    assert result.records == 200
    (failed,) = result.failed_partitions
    assert failed.start_time == "2026-01-19T01:00:00.000Z"
    assert failed.end_time == "2026-01-19T02:00:00.000Z"
    assert failed.resubmit["start_time"] == failed.start_time
    assert failed.resubmit["domain"] == ["*"]
    assert "failed" in failed.error
    assert store.get(result.result_id).complete is False


@pytest.mark.parametrize("damage", [truncate, corrupt])
async def test_damaged_file_is_refetched_once(tmp_path: Path, damage: Any) -> None:
    api = FakeBatchAPI(even_partitions(400, 2))
    good = encode(api.partitions[0].hits)
    api.partitions[0].bodies = [damage(good), good]
    result = await export(api, ResultStore(tmp_path))
    assert result.complete
    assert result.records == 400
    assert api.partitions[0].downloads == 2


async def test_a_file_damaged_on_every_download_fails_for_this_run_only(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(400, 2))
    api.partitions[0].bodies = [truncate(encode(api.partitions[0].hits))]
    api.partitions[1].count = 999  # the file holds 200: a count mismatch, every time
    store = ResultStore(tmp_path)
    with pytest.raises(NothingRecoveredError) as caught:
        await export(api, store)
    error = caught.value
    assert error.resumable  # transfer failures: the token can fetch them again
    assert [p.cause for p in error.failed] == ["download", "download"]
    assert api.partitions[0].downloads == FAST.attempts == 3
    assert "(3 downloads)" in error.failed[0].error
    assert "999" in error.failed[1].error
    assert "2 of 2 partitions have no data: 2 failed to download" in str(error)
    assert store.list() == []  # nothing recovered: no empty result stored
    state = job_status(tmp_path, api.token)
    assert state is not None and state.phase == "running"  # listed as resumable


async def test_failed_partition_overlapping_a_verified_one_counts_only_verified_records(
    tmp_path: Path,
) -> None:
    hits = make_hits(300)
    api = FakeBatchAPI(
        [
            FakePartition(T0, T0 + timedelta(hours=1), hits[:200]),
            FakePartition(T0 + timedelta(hours=1), T0 + timedelta(hours=2), hits[150:]),
        ]
    )
    # Parsed past the 50 shared ids (and then some) before the stream turns out truncated, twice.
    api.partitions[1].bodies = [encode(api.partitions[1].hits)[:-40]]
    result = await export(api, ResultStore(tmp_path))
    assert len(result.failed_partitions) == 1
    assert (result.records, result.records_received) == (200, 200)


async def test_expired_url_triggers_a_fresh_poll(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(100, 1))
    api.partitions[0].expired_downloads = 2
    result = await export(api, ResultStore(tmp_path))
    assert result.complete
    assert result.records == 100
    assert api.polls >= 3  # one poll per fresh URL


async def test_url_expiring_forever_fails_the_partition(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(100, 1))
    api.partitions[0].expired_downloads = 100
    with pytest.raises(NothingRecoveredError) as caught:
        await export(api, ResultStore(tmp_path))
    (failed,) = caught.value.failed
    assert "403" in failed.error and failed.cause == "download"
    assert api.polls == 1 + FAST.url_refreshes  # one fresh URL per refresh, then given up


async def test_duplicates_across_partitions_are_stored_once(tmp_path: Path) -> None:
    hits = make_hits(150)
    parts = [
        FakePartition(T0, T0 + timedelta(hours=1), hits[:100]),
        FakePartition(T0 + timedelta(hours=1), T0 + timedelta(hours=2), hits[80:]),
    ]
    result = await export(FakeBatchAPI(parts), ResultStore(tmp_path))
    assert result.records == 150
    assert result.records_received == 170
    assert result.duplicates == 20


async def test_status_5xx_bursts_are_survived(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(100, 2))
    api.status_errors = [500, 503, 503, 503, 500]
    result = await export(api, ResultStore(tmp_path))
    assert result.records == 100


async def test_expired_token_is_a_clear_error(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(100, 2))
    api.expired = True
    store = ResultStore(tmp_path)
    with pytest.raises(BatchTokenExpiredError, match="2 hours"):
        await export(api, store)
    state = job_status(tmp_path, api.token)
    assert state is not None
    assert state.phase == "expired"
    assert store.list() == []


async def test_disallowed_host_stops_the_export_and_names_the_setting(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(100, 1), files_base="https://files.example.org")
    with pytest.raises(HostNotAllowedError, match=r"files\.example\.org.*CM_DOWNLOAD_ALLOWED_HOSTS"):
        await export(api, ResultStore(tmp_path))
    assert job_status(tmp_path, api.token) is not None


async def test_polling_stops_at_the_token_lifetime(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(100, 2))
    api.partitions[1].ready_at_poll = 10**6
    limits = ExportLimits(
        poll_initial=0.01, poll_max=0.02, token_lifetime=timedelta(seconds=0.3), token_margin=timedelta(0)
    )
    # without the lifetime the last partition is polled forever: the deadline fails the test then
    with anyio.fail_after(60):
        result = await export(api, ResultStore(tmp_path), limits=limits)
    assert result.records == 50
    assert "lifetime" in result.failed_partitions[0].error


async def test_poll_intervals_grow_and_are_bounded(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(10, 1))
    api.partitions[0].ready_at_poll = 6
    times: list[float] = []
    api.on_poll = lambda n: times.append(anyio.current_time())
    # wide margins: the steps (0.1 s -> 0.4 s, capped) dwarf scheduling noise on a loaded machine
    limits = ExportLimits(poll_initial=0.1, poll_growth=4.0, poll_max=0.4)
    await export(api, ResultStore(tmp_path), limits=limits)
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert gaps[0] >= 0.09
    assert gaps[1] >= gaps[0] + 0.15
    # uncapped, the 4th and 5th waits would be 6.4 s and 25.6 s; capped they are 0.4 s. The bound
    # sits far from both, so a loaded machine's scheduling delays never decide the outcome.
    assert all(gap < 5.0 for gap in gaps), gaps


async def test_cancel_then_resume_after_restart(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(600, 6))
    for i, p in enumerate(api.partitions):
        p.ready_at_poll = 1 if i < 2 else 4
    store = ResultStore(tmp_path)
    progressed = anyio.Event()

    async def on_progress(event: ProgressEvent) -> None:
        if event.progress >= 2:
            progressed.set()

    async with fake_client(api) as client, anyio.create_task_group() as tg:

        async def go() -> None:
            options = ExportOptions(
                store,
                progress=on_progress,
                limits=ExportLimits(poll_initial=5, poll_max=5),  # stays waiting after poll 1
                policy=POLICY,
                download_transport=StreamingMock(api),
            )
            await run_export(client, request(), options)

        tg.start_soon(go)
        await progressed.wait()
        tg.cancel_scope.cancel()

    # nothing partial is a result; no temp or half-built files; the job is resumable
    assert store.list() == []
    assert not leftovers(tmp_path)
    state = job_status(tmp_path, api.token)
    assert state is not None
    assert state.phase == "running"
    assert sum(p.state == "downloaded" for p in state.partitions) == 2
    downloads_before = [p.downloads for p in api.partitions]

    # "restart": new client, new store object, same data directory
    events = Events()
    async with fake_client(api) as client:
        options = ExportOptions(
            ResultStore(tmp_path),
            progress=events,
            limits=FAST,
            policy=POLICY,
            download_transport=StreamingMock(api),
        )
        result = await resume_export(client, api.token, options)
    assert result.complete
    assert result.records == 600
    assert [p.downloads for p in api.partitions][:2] == downloads_before[:2]  # not fetched again
    events.check_monotonic()
    # resuming a finished export returns the stored result
    async with fake_client(api) as client:
        again = await resume_export(client, api.token, ExportOptions(ResultStore(tmp_path)))
    assert again.result_id == result.result_id


async def test_resume_unknown_or_expired_token(tmp_path: Path) -> None:
    api = FakeBatchAPI(even_partitions(10, 1))
    async with fake_client(api) as client:
        with pytest.raises(JobNotFoundError):
            await resume_export(client, "nope", ExportOptions(ResultStore(tmp_path)))
    api.partitions[0].ready_at_poll = 10**6
    api.expired = False
    limits = ExportLimits(poll_initial=0.01, poll_max=0.01)
    store = ResultStore(tmp_path)
    with anyio.move_on_after(0.2):
        await export(api, store, limits=limits)
    later = datetime.now(UTC) + timedelta(hours=3)
    async with fake_client(api) as client:
        with pytest.raises(TokenLifetimeError, match="re-submit"):
            await resume_export(client, api.token, ExportOptions(store, now=lambda: later))


def test_old_job_files_are_pruned_recent_ones_kept(tmp_path: Path) -> None:
    import os
    import time

    from cm_mcp.batch.jobs import prune_jobs

    jobs = tmp_path / "jobs"
    (jobs / "old").mkdir(parents=True)
    (jobs / "old" / "part-0000.ndjson.gz").write_bytes(b"x")
    (jobs / "old.json").write_text("{}")
    (jobs / "new.json").write_text("{}")
    two_days_ago = time.time() - 2 * 86400
    os.utime(jobs / "old.json", (two_days_ago, two_days_ago))
    assert prune_jobs(tmp_path) == 1
    assert not (jobs / "old.json").exists()
    assert not (jobs / "old").exists()
    assert (jobs / "new.json").exists()


def test_unfinished_jobs_are_running_ones_whose_token_lives(tmp_path: Path) -> None:
    now = datetime(2026, 1, 19, 12, 0, tzinfo=UTC)

    def job(token: str, minutes_ago: int, phase: str = "running") -> None:
        state = JobState(
            kind="logs",
            token=token,
            request={},
            submitted_at=now - timedelta(minutes=minutes_ago),
            phase=phase,
        )
        JobFiles(tmp_path, token).save(state)

    job("fresh", 10)
    job("older", 100)
    job("dead", 121)  # past the 2 h token life: cannot be continued
    job("finished", 5, phase="done")
    job("gone", 30, phase="expired")
    (tmp_path / "jobs" / "junk.json").write_text("{not json")  # half-written or damaged: skipped
    found = unfinished_jobs(tmp_path, lifetime=timedelta(hours=2), now=now)
    assert [j.token for j in found] == ["fresh", "older"]  # newest first
