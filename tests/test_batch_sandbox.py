"""Exports against the real sandbox (session fixture from conftest): counts, aggs, faults, resume."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from cm_mcp.api.client import CMClient
from cm_mcp.api.errors import BatchTokenExpiredError
from cm_mcp.api.requests import LogsAggsRequest, LogsBatchRequest, parse_request
from cm_mcp.batch import (
    ExportLimits,
    ExportOptions,
    NothingRecoveredError,
    ProgressEvent,
    job_status,
    resume_export,
    run_export,
)
from cm_mcp.batch.download import DownloadPolicy
from cm_mcp.batch.jobs import JobFiles, JobState, unfinished_jobs
from cm_mcp.ops.interrupted import unfinished_exports
from cm_mcp.sandbox.runner import RunningSandbox
from cm_mcp.store import ResultStore
from tests.conftest import frozen

pytestmark = pytest.mark.anyio

LIMITS = ExportLimits(poll_initial=0.05, poll_growth=1.5, poll_max=0.2, retry_backoff=0.01)
POLICY = DownloadPolicy(allowed_hosts=("127.0.0.1:*",))
SCOPE: dict[str, Any] = {"application": "atr", "app_type": "kubernetes", "domain": ["*"]}
#: frozen once: the aggs count and the export it is compared with must see the same window
WINDOW = frozen({"start_time": "now-7d", "end_time": "now"})
LEVELS = {"lv": {"terms": {"field": "regex.extractions.logLevel", "size": 20}}}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[ResultStore]:
    return ResultStore(tmp_path)


@asynccontextmanager
async def faults(sandbox: RunningSandbox, **config: Any) -> AsyncIterator[None]:
    async with httpx2.AsyncClient(base_url=sandbox.url) as http:
        before = (await http.get("/_sandbox/faults")).json()
        response = await http.post("/_sandbox/faults", content=json.dumps(config))
        assert response.status_code == 200, response.text
        try:
            yield
        finally:
            await http.post("/_sandbox/faults", content=json.dumps(before))


async def upstream(client: CMClient) -> dict[str, Any]:
    body = await client.post("logs_aggs", parse_request(LogsAggsRequest, {**SCOPE, **WINDOW, "aggs": LEVELS}))
    data: dict[str, Any] = body["data"]
    return data


async def export(client: CMClient, store: ResultStore, **kwargs: Any) -> Any:
    request = parse_request(LogsBatchRequest, {**SCOPE, **WINDOW})
    return await run_export(client, request, options(store, **kwargs))


def options(store: ResultStore, **kwargs: Any) -> ExportOptions:
    return ExportOptions(store, **{"limits": LIMITS, "policy": POLICY, **kwargs})


def buckets(aggs: dict[str, Any]) -> dict[str, int]:
    return {b["key"]: b["doc_count"] for b in aggs["lv"]["buckets"]}


async def test_export_holds_exactly_the_upstream_count_and_aggs(client: CMClient, store: ResultStore) -> None:
    events: list[ProgressEvent] = []

    async def on_progress(event: ProgressEvent) -> None:
        events.append(event)

    expected = await upstream(client)
    result = await export(client, store, progress=on_progress)
    assert result.complete
    assert result.partitions > 1
    assert result.records == expected["total_documents"] > 0
    local = store.aggs(result.result_id, LEVELS)
    assert local["total_documents"] == expected["total_documents"]
    assert buckets(local["aggregations"]) == buckets(expected["aggregations"])
    progress = [e.progress for e in events]
    assert progress == sorted(set(progress))
    assert events[-1].progress == events[-1].total == result.partitions + 1  # + storing the result


async def test_faults_never_count_damaged_or_failed_partitions(
    client: CMClient, store: ResultStore, sandbox: RunningSandbox
) -> None:
    expected = (await upstream(client))["total_documents"]
    async with faults(
        sandbox,
        error_rate=0.2,
        partition_fail_rate=0.2,
        truncated_file_rate=0.2,
        corrupt_file_rate=0.2,
        seed=3,
    ):
        result = await export(client, store)
    assert result.failed_partitions  # with these rates and seed some partitions fail
    state = job_status(store.data_dir, _token_of(store, result.job))
    assert state is not None
    missing = sum(p.count or 0 for p in state.partitions if p.state == "failed")
    assert result.records + missing == expected
    assert result.complete is False
    for failed in result.failed_partitions:
        assert failed.resubmit["start_time"] == failed.start_time


async def test_expired_urls_are_refreshed_then_reported(
    client: CMClient, store: ResultStore, sandbox: RunningSandbox
) -> None:
    async with faults(sandbox, expired_url=True):
        with pytest.raises(NothingRecoveredError) as caught:
            await export(client, store)
    assert caught.value.resumable
    assert all("403" in f.error and f.cause == "download" for f in caught.value.failed)
    assert store.list() == []


async def test_unknown_token_is_a_clear_error(client: CMClient, store: ResultStore) -> None:
    files = JobFiles(store.data_dir, "not-a-real-token")
    files.save(JobState(kind="logs", token="not-a-real-token", request={**SCOPE}, submitted_at=_now()))
    with pytest.raises(BatchTokenExpiredError, match="expire"):
        await resume_export(client, "not-a-real-token", options(store))


async def _cancelled_export(client: CMClient, store: ResultStore) -> str:
    """Start an export, cancel it after its first partition; its token."""

    async def on_progress(event: ProgressEvent) -> None:
        if event.progress >= 1:
            first_partition.set()

    first_partition = anyio.Event()
    async with anyio.create_task_group() as tg:

        async def go() -> None:
            await export(client, store, progress=on_progress)

        tg.start_soon(go)
        await first_partition.wait()
        tg.cancel_scope.cancel()
    (job,) = unfinished_jobs(store.data_dir, lifetime=timedelta(hours=2))
    return job.token


async def test_cancel_then_resume_gets_the_exact_count(
    client: CMClient, store: ResultStore, sandbox: RunningSandbox
) -> None:
    expected = (await upstream(client))["total_documents"]
    token = await _cancelled_export(client, store)
    assert store.list() == []
    assert not list(store.data_dir.rglob("*.part-*"))
    jobs = list((store.data_dir / "jobs").glob("*.json"))
    assert len(jobs) == 1
    state = JobState.model_validate_json(jobs[0].read_text())
    assert state.phase == "running"
    assert state.token == token
    # What results_list offers the model: the cancelled export, with the call that continues it.
    (unfinished,) = unfinished_exports(store.data_dir)
    assert unfinished.resume == {"tool": "logs_batch_status", "arguments": {"token": token, "download": True}}
    assert unfinished.partitions_done >= 1
    assert unfinished.running is False  # the cancelled run let go of it
    async with CMClient(api_url=sandbox.url, token=sandbox.token) as fresh:  # "after a restart"
        result = await resume_export(fresh, token, options(ResultStore(store.data_dir)))
    assert result.complete
    assert result.records == expected
    assert unfinished_exports(store.data_dir) == []  # stored now: nothing left to continue
    assert unfinished_jobs(store.data_dir, lifetime=timedelta(hours=2)) == []


async def test_two_resumes_of_one_export_run_it_once(client: CMClient, store: ResultStore) -> None:
    expected = (await upstream(client))["total_documents"]
    token = await _cancelled_export(client, store)

    results: list[Any] = []

    async def resume() -> None:
        results.append(await resume_export(client, token, options(store)))

    async with anyio.create_task_group() as tg:  # e.g. two parallel tool calls
        tg.start_soon(resume)
        tg.start_soon(resume)
    first, second = results
    assert first.result_id == second.result_id  # the second waited, then found it done
    assert first.records == second.records == expected
    assert [info.id for info in store.list()] == [first.result_id]


HOLD_JOB = """
import sys
from pathlib import Path
import anyio
from cm_mcp.batch.jobs import JobFiles

async def main():
    async with JobFiles(Path(sys.argv[1]), sys.argv[2]).running():
        print("held", flush=True)
        await anyio.to_thread.run_sync(sys.stdin.readline)  # held until killed

anyio.run(main)
"""


async def test_a_run_in_another_process_is_waited_for(client: CMClient, store: ResultStore) -> None:
    expected = (await upstream(client))["total_documents"]
    token = await _cancelled_export(client, store)
    other = await anyio.open_process(
        [sys.executable, "-c", HOLD_JOB, str(store.data_dir), token], stdin=subprocess.PIPE
    )
    try:
        assert other.stdout is not None
        assert (await other.stdout.receive()).strip() == b"held"
        (listed,) = unfinished_exports(store.data_dir)
        assert listed.running is True
        results: list[Any] = []
        heard = anyio.Event()
        events: list[ProgressEvent] = []

        async def on_progress(event: ProgressEvent) -> None:
            events.append(event)
            heard.set()

        async with anyio.create_task_group() as tg:

            async def resume() -> None:
                limits = dataclasses.replace(LIMITS, heartbeat=0.05)
                results.append(
                    await resume_export(client, token, options(store, progress=on_progress, limits=limits))
                )

            tg.start_soon(resume)
            with anyio.fail_after(60):
                await heard.wait()  # the wait for the other run is not silent
            assert results == []  # waiting for the other process's run
            assert "another run of this export" in events[0].message
            other.kill()  # it dies holding the lock: the OS releases it
        assert results[0].records == expected
    finally:
        with contextlib.suppress(ProcessLookupError):
            other.kill()
        await other.wait()


def _token_of(store: ResultStore, job_name: str) -> str:
    state = JobState.model_validate_json((store.data_dir / "jobs" / f"{job_name}.json").read_text())
    return state.token


def _now() -> Any:
    from datetime import UTC, datetime

    return datetime.now(UTC)
