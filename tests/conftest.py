"""Shared pytest fixtures.

The sandbox fixtures run one real sandbox for the whole session (uvicorn on an ephemeral 127.0.0.1
port, 3,000 logs/day, fixed seed, its own temporary data dir, an extra scenarios file) and hand out
`CMClient`s bound to it. Async fixtures and tests run on asyncio through anyio (`anyio_backend`).
"""

from __future__ import annotations

import inspect
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

try:  # installed with the agent's provider SDKs
    import sniffio
except ImportError:  # pragma: no cover
    sniffio = None  # type: ignore[assignment]

from cm_mcp.api.client import CMClient
from cm_mcp.api.retry import RetryPolicy
from cm_mcp.api.times import format_utc, is_date_math, resolve_date_math
from cm_mcp.sandbox.config import SandboxConfig
from cm_mcp.sandbox.runner import RunningSandbox, serve_sandbox

#: A scenarios file in the documented format (cm_mcp/sandbox/incidents.py), loaded by the session sandbox.
EXTRA_SCENARIOS: dict[str, Any] = {
    "incidents": [
        {
            "id": "test-quasar-disk-full",
            "kind": "logs",
            "application": "quasar",
            "app_type": "ec2",
            "domain": "quasar-test.example.com",
            "start": "now-30h",
            "minutes": 7,
            "per_minute": 13,
            "level": "ERROR",
            "messages": ["No space left on device while writing /var/lib/quasar/{hex}.seg"],
        },
        {
            "id": "test-eventops-timeouts",
            "kind": "logs",
            "application": "eventops",
            "app_type": "serverless",
            "log_group": "/aws/lambda/test-timeouts",
            "tenant": "acme",
            "stage": "prod",
            "start": "now-2h",
            "minutes": 3,
            "per_minute": 11,
            "level": "ERROR",
            "messages": ["Task timed out after {int}.00 seconds"],
        },
    ]
}


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture(scope="session")
def sandbox_config(tmp_path_factory: pytest.TempPathFactory) -> SandboxConfig:
    root = tmp_path_factory.mktemp("sandbox")
    scenarios = root / "scenarios.json"
    scenarios.write_text(json.dumps(EXTRA_SCENARIOS), encoding="utf-8")
    return SandboxConfig(
        port=0,
        seed=7,
        volume=3000,
        workloads_per_day=300,
        scenarios_file=scenarios,
        data_dir=root / "data",
        batch_seconds=0.4,
        target_per_partition=1500,
        # Generous: the session shares one token; quota behaviour is tested on a separate app.
        quota_limits=dict.fromkeys(
            (
                "logs_scroll",
                "logs_batch",
                "logs_aggs",
                "workloads_scroll",
                "workloads_batch",
                "workloads_aggs",
                "v1_logs_scroll",
                "v1_logs_batch",
                "billing_query",
            ),
            100000,
        ),
    )


@pytest.fixture(scope="session")
async def sandbox(sandbox_config: SandboxConfig) -> AsyncIterator[RunningSandbox]:
    """The session's sandbox, over real HTTP."""
    async with serve_sandbox(sandbox_config) as running:
        yield running


def frozen(window: dict[str, Any]) -> dict[str, Any]:
    """`window` with its relative times resolved once, now. Two calls over a relative window resolve it
    a few seconds apart, i.e. over two different windows: compare counts over a frozen one."""
    now = datetime.now(UTC)
    fixed = dict(window)
    for key, rounding in (("start_time", "down"), ("end_time", "up")):
        value = fixed.get(key)
        if isinstance(value, str) and is_date_math(value):
            fixed[key] = format_utc(resolve_date_math(value, now, rounding))
    return fixed


def fast_retries(max_retries: int = 6) -> RetryPolicy:
    """The client's real policy with millisecond backoff, so fault tests stay fast."""
    return RetryPolicy(max_retries=max_retries, base_delay=0.01, max_delay=0.05)


@pytest.fixture
async def client(sandbox: RunningSandbox) -> AsyncIterator[CMClient]:
    """A `CMClient` bound to the session sandbox (fast retries)."""
    async with CMClient(api_url=sandbox.url, token=sandbox.token, retry_policy=fast_retries()) as c:
        yield c


@pytest.fixture
def sandbox_data_dir(sandbox_config: SandboxConfig) -> Path:
    assert sandbox_config.data_dir is not None
    return sandbox_config.data_dir


@pytest.fixture(autouse=True)
def _sync_tests_run_outside_any_event_loop(request: pytest.FixtureRequest) -> Iterator[None]:
    """Let a synchronous test call `anyio.run` (as the CLI code does) while session-scoped async
    fixtures are alive.

    anyio's pytest plugin marks the main thread as running asyncio (sniffio's context variable) for as
    long as its test runner lives, which is the whole session once the session sandbox is up; with
    sniffio installed (the provider SDKs of the agent extra pull it in) `anyio.run` then refuses to
    start. A synchronous test runs no event loop, so it gets the variable cleared.
    """
    if inspect.iscoroutinefunction(request.function) or sniffio is None:
        yield
        return
    token = sniffio.current_async_library_cvar.set(None)
    try:
        yield
    finally:
        sniffio.current_async_library_cvar.reset(token)
