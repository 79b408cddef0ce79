"""A sandbox started with `build_in_background` accepts connections before its data exists; requests
made meanwhile wait for the data and are then answered."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest

from cm_mcp.sandbox import runner
from cm_mcp.sandbox.config import SandboxConfig
from cm_mcp.sandbox.incidents import ScenarioError

pytestmark = pytest.mark.anyio

BODY = {
    "application": "atr",
    "app_type": "kubernetes",
    "domain": ["pay.example.com"],
    "start_time": "now-1d",
    "end_time": "now",
    "aggs": {"levels": {"terms": {"field": "regex.extractions.logLevel"}}},
}


async def test_requests_made_during_the_build_wait_for_the_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    release = threading.Event()
    real_create = runner.create_app

    def held_create(*args: Any, **kwargs: Any) -> Any:
        assert release.wait(120)  # the build, held until the test has looked at the server
        return real_create(*args, **kwargs)

    monkeypatch.setattr(runner, "create_app", held_create)
    config = SandboxConfig(port=0, volume=500, workloads_per_day=50, data_dir=tmp_path)
    answers: list[httpx2.Response] = []
    async with runner.serve_sandbox(config, build_in_background=True) as running:
        assert running.app is None  # serving, with no data yet
        with pytest.raises(RuntimeError, match="still building"):
            _ = running.state
        headers = {"Authorization": f"Bearer {running.token}"}
        async with httpx2.AsyncClient(timeout=120) as http:
            health = (await http.get(f"{running.url}/_sandbox/health")).json()
        assert health["status"] == "building"  # answered at once, saying the data is not there yet

        async def ask() -> None:
            async with httpx2.AsyncClient(timeout=120) as http:
                answers.append(await http.post(f"{running.url}/v2/logs/aggs", json=BODY, headers=headers))

        async with anyio.create_task_group() as tg:
            tg.start_soon(ask)
            await anyio.sleep(0.3)
            assert answers == []  # waiting for the data, not refused
            release.set()
        assert running.app is None  # the handle was made before the build; the server has it now
        async with httpx2.AsyncClient(timeout=120) as http:
            health = (await http.get(f"{running.url}/_sandbox/health")).json()
        assert health["status"] == "ok"
    assert answers[0].status_code == 200, answers[0].text
    levels = answers[0].json()["data"]["aggregations"]["levels"]["buckets"]
    assert sum(bucket["doc_count"] for bucket in levels) > 0


async def test_a_bad_scenarios_file_fails_at_start_not_in_the_background(tmp_path: Path) -> None:
    bad = tmp_path / "scenarios.json"
    bad.write_text("{not json")
    config = SandboxConfig(port=0, volume=500, data_dir=tmp_path, scenarios_file=bad)
    with pytest.raises(ScenarioError):
        async with runner.serve_sandbox(config, build_in_background=True):
            pass
