"""The export fault matrix (issue 9 item 7), through real MCP sessions against the sandbox over HTTP.

Each fault alone and combined: the export is called with the fault on, the fault is cleared, and the
call the first answer hands over (the free resume call, or for what the API failed the resubmission
bodies) is made. Then the stored result must hold exactly the sandbox's own count of the window, with
no second batch submission (counted by the sandbox) except the resubmissions of ranges the API
failed. Faults act where they would on a real network (cm_mcp/sandbox/faults.py): expired presigned
URLs; truncated, corrupt or 5xx downloads (per download); slow or failed partitions; the API down,
resetting connections or throttling while the export polls; the JWT expiring mid-export.

`pytest -s -k matrix tests/test_export_faults.py` prints the figures (cases, records lost, submissions).
"""

from __future__ import annotations

import itertools
import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import anyio
import httpx2
import pytest
from mcp import Client

from cm_mcp.api.client import CMClient
from cm_mcp.api.settings import Settings
from cm_mcp.api.times import format_utc
from cm_mcp.sandbox.runner import RunningSandbox
from cm_mcp.server.app import build_server
from tests.conftest import fast_retries

pytestmark = pytest.mark.anyio

SCOPE: dict[str, Any] = {"application": "atr", "app_type": "kubernetes", "domain": ["*"]}
#: every fault off (what a case returns the sandbox to)
CLEAR: dict[str, Any] = {
    "expired_url": False,
    "truncated_file_rate": 0.0,
    "corrupt_file_rate": 0.0,
    "download_error_rate": 0.0,
    "partition_fail_rate": 0.0,
    "slow_partition_factor": 1.0,
    "slow_partition_rate": 0.25,
    "error_rate": 0.0,
    "reset_rate": 0.0,
    "burst_429": 0,
    "seed": 0,
}
Progress = Callable[[float, float | None, str | None], Awaitable[None]]


def _text(result: Any) -> str:
    return "\n".join(getattr(block, "text", "") for block in result.content)


def _window(days_back: int = 7) -> dict[str, str]:
    """A window frozen in the past (the sandbox serves nothing stamped after now)."""
    now = datetime.now(UTC).replace(microsecond=0)
    return {
        "start_time": format_utc(now - timedelta(days=days_back)),
        "end_time": format_utc(now - timedelta(days=1)),
    }


class Sandbox:
    """The session sandbox's control endpoints: faults, statistics, JWTs."""

    def __init__(self, running: RunningSandbox, http: httpx2.AsyncClient) -> None:
        self.running, self.http = running, http

    async def faults(self, **config: Any) -> None:
        response = await self.http.post("/_sandbox/faults", content=json.dumps(config))
        assert response.status_code == 200, response.text

    async def stats(self) -> dict[str, Any]:
        body: dict[str, Any] = (await self.http.get("/_sandbox/stats")).json()
        return body

    async def submissions(self) -> int:
        return int((await self.stats())["requests"].get("/v2/logs/batch", {}).get("total", 0))

    async def jwt(self, ttl_seconds: int) -> str:
        token: str = (await self.http.get("/_sandbox/token", params={"ttl": ttl_seconds})).json()["token"]
        return token


@pytest.fixture
async def control(sandbox: RunningSandbox) -> AsyncIterator[Sandbox]:
    async with httpx2.AsyncClient(base_url=sandbox.url) as http:
        box = Sandbox(sandbox, http)
        try:
            yield box
        finally:
            await box.faults(**CLEAR)


def _settings(sandbox: RunningSandbox, data_dir: Path, token_file: Path) -> Settings:
    """The server's settings; the JWT is read from `token_file` on every request (so it can expire)."""
    return Settings(
        _env_file=None,
        data_dir=data_dir,
        api_url=sandbox.url,
        api_token_file=token_file,
        download_allowed_hosts=["*.amazonaws.com", urlsplit(sandbox.url).netloc],
    )


@asynccontextmanager
async def _mcp(settings: Settings) -> AsyncIterator[Client]:
    async with (
        CMClient(settings, retry_policy=fast_retries()) as api,
        Client(build_server(settings, client=api), raise_exceptions=True) as client,
    ):
        yield client


@dataclass
class Case:
    name: str
    #: faults on from the start of the export
    faults: dict[str, Any] = field(default_factory=dict)
    #: faults switched on once the batch is submitted (the API going down while the export polls)
    after_submit: dict[str, Any] = field(default_factory=dict)
    #: the JWT expires once the batch is submitted
    jwt_expires: bool = False
    #: CM_MAX_DOWNLOAD_BYTES of the first call (the resume runs with the default, as after raising it)
    max_download_bytes: int | None = None
    #: what the first call may answer: "complete", "incomplete" (a partial result a resume completes),
    #: "error" (an isError with the resume call), "failed" (isError: only resubmissions can help)
    first: tuple[str, ...] = ("error",)


CASES = [
    Case("expired_url", {"expired_url": True}),
    Case("truncated", {"truncated_file_rate": 1.0}),
    Case("corrupt", {"corrupt_file_rate": 1.0}),
    Case("5xx_on_download", {"download_error_rate": 1.0}),
    Case("slow_partitions", {"slow_partition_factor": 6.0, "slow_partition_rate": 1.0}, first=("complete",)),
    Case("partition_failed", {"partition_fail_rate": 1.0}, first=("failed",)),
    Case("api_down_while_polling", after_submit={"error_rate": 1.0}),
    Case("resets_while_polling", after_submit={"reset_rate": 1.0}),
    Case("throttled_while_polling", after_submit={"burst_429": 1000}),
    Case("jwt_expires_mid_export", jwt_expires=True),
    Case("over_size_limit", max_download_bytes=2_000),
    Case(
        "transfer_faults_some",
        {"truncated_file_rate": 0.5, "corrupt_file_rate": 0.5, "download_error_rate": 0.5, "seed": 11},
        first=("complete", "incomplete", "error"),
    ),
    Case(
        "every_transfer_fault",
        {
            "expired_url": True,
            "truncated_file_rate": 1.0,
            "corrupt_file_rate": 1.0,
            "download_error_rate": 1.0,
        },
    ),
    Case(
        "everything_at_once",
        {
            "expired_url": True,
            "truncated_file_rate": 0.4,
            "corrupt_file_rate": 0.4,
            "download_error_rate": 0.4,
            "partition_fail_rate": 0.4,
            "slow_partition_factor": 4.0,
            "slow_partition_rate": 0.5,
            "error_rate": 0.2,
            "seed": 5,
        },
        after_submit={"error_rate": 1.0},
        jwt_expires=True,
        first=("error", "failed"),
    ),
]

#: the matrix's figures, printed at the end of the module (pytest -s)
FIGURES: list[dict[str, Any]] = []


@pytest.fixture(scope="module", autouse=True)
def _print_figures() -> Any:
    yield
    if FIGURES:
        print(
            "\nexport fault matrix: case | first answer | calls | records expected / stored / lost | submissions"
        )
        for row in FIGURES:
            print(
                f"  {row['case']:<26} {row['first']:<10} {row['calls']:>2} calls  {row['expected']:>6,} / "
                f"{row['stored']:>6,} / {row['lost']}  batch submissions {row['submissions']} "
                f"(resubmissions of failed ranges: {row['resubmissions']})"
            )


def _classify(result: Any) -> str:
    if not result.is_error:
        return "complete" if result.structured_content["complete"] else "incomplete"
    return "error" if "_batch_status {" in _text(result) else "failed"


def _resume_call(result: Any) -> dict[str, Any]:
    """The free call the answer hands over: from an error's text or a partial result's `resume`."""
    if not result.is_error:
        structured = result.structured_content
        outcome = structured.get("export", structured)
        resume: dict[str, Any] = outcome["resume"]
        return resume
    text = _text(result)
    arguments = json.loads(text.split("with: logs_batch_status ", 1)[1].split(". Calling", 1)[0])
    return {"tool": "logs_batch_status", "arguments": arguments}


def _resubmissions(text: str) -> list[dict[str, Any]]:
    """The ready resubmission bodies in an answer (lines `  - start .. end (error): {json}`)."""
    return [
        json.loads(line[line.index("): {") + 3 :])
        for line in text.splitlines()
        if line.startswith("  - ") and "): {" in line
    ]


async def _run(case: Case, control: Sandbox, tmp_path: Path) -> dict[str, Any]:
    token_file = tmp_path / "jwt"
    token_file.write_text(control.running.token)
    settings = _settings(control.running, tmp_path / "data", token_file)
    first_settings = settings
    if case.max_download_bytes is not None:
        first_settings = settings.model_copy(update={"max_download_bytes": case.max_download_bytes})
    window = {**SCOPE, **_window()}
    async with _mcp(first_settings) as mcp:
        counted = await mcp.call_tool(
            "logs_aggs", {**window, "aggs": {"n": {"value_count": {"field": "@timestamp"}}}}
        )
        expected = counted.structured_content["summary"]["total_documents"]  # type: ignore[index]
        assert expected > 0
        submissions = await control.submissions()
        submitted = anyio.Event()

        async def on_progress(progress: float, total: float | None, message: str | None) -> None:
            if submitted.is_set() or not (message or "").startswith("submitted"):
                return
            submitted.set()
            if case.after_submit:
                await control.faults(**case.after_submit)
            if case.jwt_expires:
                token_file.write_text(await control.jwt(0))  # expired from now on

        await control.faults(**{**CLEAR, **case.faults})
        try:
            with anyio.fail_after(180):
                first = await mcp.call_tool("logs_batch", window, progress_callback=on_progress)
        finally:
            await control.faults(**CLEAR)
            token_file.write_text(await control.jwt(3600))  # a fresh JWT, as the user would set
    outcome = _classify(first)
    assert outcome in case.first, f"{case.name}: {outcome}: {_text(first)}"
    _check_advice(case, first)
    async with _mcp(settings) as mcp:  # the fault cleared (or the limit raised), the same data dir
        calls, final = 1, first
        resubmitted: list[dict[str, Any]] = []
        if outcome in ("error", "incomplete"):
            call = _resume_call(first)
            with anyio.fail_after(180):
                final = await mcp.call_tool(call["tool"], call["arguments"])
            calls += 1
            assert not final.is_error, f"{case.name}: the resume failed: {_text(final)}"
        stored = 0
        if not final.is_error:
            export = final.structured_content.get("export") or final.structured_content  # type: ignore[union-attr]
            stored = export["records"]
            resubmitted = [p["resubmit"] for p in export["failed_partitions"]]
            assert all(p["cause"] in ("upstream", "not_ready") for p in export["failed_partitions"]), export
        else:
            resubmitted = _resubmissions(_text(final))
        assert (calls == 1) == (outcome in ("complete", "failed"))
        # What the API failed: the advised resubmissions, exactly as printed, fetch the rest.
        for body in resubmitted:
            with anyio.fail_after(180):
                again = await mcp.call_tool("logs_batch", body)
            assert not again.is_error, _text(again)
            stored += again.structured_content["records"]  # type: ignore[index]
            calls += 1
    submitted_batches = await control.submissions() - submissions
    row = {
        "case": case.name,
        "first": outcome,
        "calls": calls,
        "expected": expected,
        "stored": stored,
        "lost": expected - stored,
        "submissions": submitted_batches,
        "resubmissions": len(resubmitted),
    }
    FIGURES.append(row)
    return row


def _check_advice(case: Case, first: Any) -> None:
    """The advice of the first answer fits its cause (issue 9: a file over the size limit must not be
    told to resubmit the same range)."""
    text = _text(first)
    if case.max_download_bytes is not None:
        assert "Raise CM_MAX_DOWNLOAD_BYTES and continue with logs_batch_status" in text, text
        assert "resubmit just" not in text
        halves = [json.loads(line[4:]) for line in text.splitlines() if line.startswith("  - {")]
        assert halves and all(h["start_time"] < h["end_time"] for h in halves)
    if case.name == "expired_url":
        assert "failed to download" in text and "403" in text and "logs_batch_status" in text


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
async def test_matrix(case: Case, control: Sandbox, tmp_path: Path) -> None:
    row = await _run(case, control, tmp_path)
    assert row["lost"] == 0, row
    assert row["submissions"] == 1 + row["resubmissions"], "a resume never submits a batch"


async def test_heartbeats_keep_a_slow_export_audible(control: Sandbox, tmp_path: Path) -> None:
    """A client that resets its timeout on progress hears from the export at least every 2 s."""
    token_file = tmp_path / "jwt"
    token_file.write_text(control.running.token)
    times: list[float] = []
    received: list[tuple[float, float | None, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        times.append(time.monotonic())
        received.append((progress, total, message))

    await control.faults(slow_partition_factor=20.0, slow_partition_rate=1.0)
    async with _mcp(_settings(control.running, tmp_path / "data", token_file)) as mcp:
        started = time.monotonic()
        with anyio.fail_after(180):
            result = await mcp.call_tool("logs_batch", {**SCOPE, **_window()}, progress_callback=on_progress)
        ended = time.monotonic()
    assert not result.is_error, _text(result)
    gaps = [b - a for a, b in zip([started, *times], [*times, ended], strict=True)]
    print(
        f"\nheartbeats: {len(times)} notifications over {ended - started:.1f} s, max gap {max(gaps):.2f} s, "
        f"median {sorted(gaps)[len(gaps) // 2]:.2f} s"
    )
    assert max(gaps) <= 2.0, gaps
    values = [value for value, _, _ in received]
    assert all(a < b for a, b in itertools.pairwise(values))
    waits = [message for _, _, message in received if message and "waiting for the API to prepare" in message]
    assert waits, "heartbeats say what the export waits for"
    assert (received[-1][2] or "").startswith("export finished")


async def test_an_empty_export_is_a_complete_result_with_zero_records(
    control: Sandbox, tmp_path: Path
) -> None:
    """Issue 9: it failed ("the file is empty ... after 2 downloads") and advised a resubmission."""
    token_file = tmp_path / "jwt"
    token_file.write_text(control.running.token)
    nothing = {**SCOPE, "domain": ["no-such-domain.example.com"], **_window()}
    async with _mcp(_settings(control.running, tmp_path / "data", token_file)) as mcp:
        with anyio.fail_after(120):
            result = await mcp.call_tool("logs_batch", nothing)
        assert not result.is_error, _text(result)
        outcome = result.structured_content
        assert outcome is not None
        assert (outcome["complete"], outcome["records"], outcome["failed_partitions"]) == (True, 0, [])
        assert _text(result).startswith("export complete: 0 logs in 1 partitions")
        search = await mcp.call_tool("results_search", {"result_id": outcome["result_id"]})
        assert not search.is_error and search.structured_content["summary"]["matched"] == 0  # type: ignore[index]
