"""`cm-mcp sandbox` and the sandbox options, as a user runs them: real processes, real signals, a shell.

- the one line it prints is `eval`'d by bash, and a separate `cm-mcp serve` given those settings
  completes an export from it (the download host is among them);
- SIGTERM and SIGINT remove its temporary batch-file folder (also `serve --sandbox`'s), and a folder
  left by a killed process is removed by the next start;
- `--quota FAMILY=N` (repeatable) is validated with a clear error and applies, on every command that
  can start a sandbox.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import pytest
from mcp import Client, StdioServerParameters

from cm_mcp.api.times import format_utc
from cm_mcp.cli import build_parser
from cm_mcp.sandbox.cli import config_options
from cm_mcp.sandbox.config import SandboxConfig
from cm_mcp.sandbox.quotas import DEFAULT_LIMITS
from cm_mcp.sandbox.state import sweep_stale_files

#: Generous: the first start on a loaded 2-core machine builds the index.
START_DEADLINE_SECONDS = 120
EXIT_DEADLINE_SECONDS = 60
SCOPE = {"application": "atr", "app_type": "kubernetes", "domain": ["*"]}
# Frozen once, in the past (records before the current hour never change): the expected count and the
# export agree however long the export's process takes to start.
_HOUR = datetime.now(UTC).replace(minute=0, second=0, microsecond=0)
WINDOW = {
    "start_time": format_utc(_HOUR - timedelta(days=3)),
    "end_time": format_utc(_HOUR - timedelta(days=1)),
}


#: A loaded 2-core machine can take seconds to answer the first request after a start (httpx2's 5 s
#: default is too tight for a test; the product's own client has its settings).
HTTP_TIMEOUT_SECONDS = 60.0


def _env(data_dir: Path) -> dict[str, str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CM_")}
    return {**clean, "CM_DATA_DIR": str(data_dir)}


def _post(url: str, **kwargs: Any) -> httpx2.Response:
    return httpx2.post(url, timeout=HTTP_TIMEOUT_SECONDS, **kwargs)


def _get(url: str) -> httpx2.Response:
    return httpx2.get(url, timeout=HTTP_TIMEOUT_SECONDS)


def _cm_mcp(*args: str) -> list[str]:
    return [sys.executable, "-m", "cm_mcp.cli", *args]


@contextmanager
def _sandbox_process(data_dir: Path, *extra: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """`cm-mcp sandbox` on a free port; its first stdout line. Stopped (SIGTERM) on the way out."""
    args = _cm_mcp("sandbox", "--port", "0", "--volume", "300", "--data-dir", str(data_dir), *extra)
    with subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=_env(data_dir)
    ) as proc:
        try:
            assert proc.stdout is not None
            line = proc.stdout.readline()  # blocks until it serves (or exits: then the line is empty)
            assert line, proc.stderr.read() if proc.stderr else "no output"
            yield proc, line
        finally:
            if proc.poll() is None:
                proc.terminate()
            proc.wait(EXIT_DEADLINE_SECONDS)


def _shell_env(line: str) -> dict[str, str]:
    """What `eval "$line"` leaves in a real shell's environment (the CM_* part), starting from one
    without CM_* variables (a run with CM_INDEX_ENGINE or CM_DATA_DIR set must not see them here)."""
    script = 'eval "$1"; env -0'
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CM_")}
    out = subprocess.run(
        ["bash", "-c", script, "bash", line], capture_output=True, check=True, env=clean
    ).stdout
    pairs = (item.split("=", 1) for item in out.decode().split("\0") if "=" in item)
    return {k: v for k, v in pairs if k.startswith("CM_")}


def _files_folders(data_dir: Path) -> list[Path]:
    return sorted((data_dir / "sandbox").glob("files-*"))


def test_the_printed_line_is_eval_ready_and_a_separate_serve_exports_from_it(tmp_path: Path) -> None:
    with _sandbox_process(tmp_path / "sandbox") as (proc, line):
        assert line.startswith("export ") and line.endswith("\n")
        env = _shell_env(line)
        assert set(env) == {"CM_API_URL", "CM_API_TOKEN", "CM_DOWNLOAD_ALLOWED_HOSTS"}
        assert env["CM_API_URL"].startswith("http://127.0.0.1:") and env["CM_API_TOKEN"].startswith("eyJ")
        port = env["CM_API_URL"].rsplit(":", 1)[1]
        assert env["CM_DOWNLOAD_ALLOWED_HOSTS"] == f"127.0.0.1:{port}"
        expected = _post(
            f"{env['CM_API_URL']}/v2/logs/aggs",
            json={**SCOPE, **WINDOW, "aggs": {"n": {"value_count": {"field": "_id"}}}},
            headers={"Authorization": f"Bearer {env['CM_API_TOKEN']}"},
        ).json()["data"]["total_documents"]
        assert expected > 0

        # `cm-mcp serve` in a shell that evaluated the line, exactly as the README shows.
        serve = f'eval "$1"; exec {sys.executable} -m cm_mcp.cli serve'
        params = StdioServerParameters(
            command="bash", args=["-c", serve, "bash", line], env=_env(tmp_path / "client")
        )
        result = _run(_export_over_stdio(params))
        assert result["records"] == expected and result["complete"] is True, result
        proc.terminate()
        out, err = proc.communicate(timeout=EXIT_DEADLINE_SECONDS)
    assert out == "" and proc.returncode == 0  # nothing but the one line on stdout
    assert env["CM_API_TOKEN"] not in err  # the JWT is printed once, where it was asked for


async def _export_over_stdio(params: StdioServerParameters) -> dict[str, Any]:
    async with Client(params) as client:
        exported = await client.call_tool("logs_batch", {**SCOPE, **WINDOW})
    assert not exported.is_error, exported.content
    assert exported.structured_content is not None
    return exported.structured_content


def _run(coro: Any) -> Any:
    import anyio

    async def main() -> Any:
        with anyio.fail_after(START_DEADLINE_SECONDS):
            return await coro

    return anyio.run(main)


def _download_one_partition(line: str) -> None:
    env = _shell_env(line)
    headers = {"Authorization": f"Bearer {env['CM_API_TOKEN']}"}
    url = env["CM_API_URL"]
    token = _post(f"{url}/v2/logs/batch", json={**SCOPE, **WINDOW}, headers=headers).json()["data"]["token"]
    deadline = time.monotonic() + START_DEADLINE_SECONDS
    while True:
        entries = _post(f"{url}/v2/logs/batch/status", json={"token": token}, headers=headers).json()
        if all(e["completed"] for e in entries["presigned_urls"]):
            break
        assert time.monotonic() < deadline, entries
        time.sleep(0.1)
    assert _get(entries["presigned_urls"][0]["presigned_url"]).status_code == 200


@pytest.mark.parametrize("stop", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_cm_mcp_sandbox_removes_its_batch_files_when_stopped(tmp_path: Path, stop: signal.Signals) -> None:
    with _sandbox_process(tmp_path) as (proc, line):
        _download_one_partition(line)
        (folder,) = _files_folders(tmp_path)
        assert any(path.is_file() for path in folder.rglob("part-*"))
        proc.send_signal(stop)
        assert proc.wait(EXIT_DEADLINE_SECONDS) == 0
    assert _files_folders(tmp_path) == []


@pytest.mark.parametrize(
    ("stop", "status"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["SIGTERM", "SIGINT"]
)
def test_serve_sandbox_removes_its_batch_files_when_stopped(
    tmp_path: Path, stop: signal.Signals, status: int
) -> None:
    """The stdio server reads stdin until EOF: it must still stop, and clean up, on a signal."""
    args = _cm_mcp("serve", "--sandbox", "--volume", "300")
    with subprocess.Popen(
        args, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=_env(tmp_path)
    ) as proc:
        deadline = time.monotonic() + START_DEADLINE_SECONDS
        while not _files_folders(tmp_path):  # the folder appears once the sandbox is up
            assert proc.poll() is None and time.monotonic() < deadline, "the sandbox did not start"
            time.sleep(0.1)
        proc.send_signal(stop)
        assert proc.wait(EXIT_DEADLINE_SECONDS) == status
    assert _files_folders(tmp_path) == []


def test_a_folder_left_by_a_killed_sandbox_is_removed_by_the_next_start(tmp_path: Path) -> None:
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    root = tmp_path / "sandbox"
    stale = root / f"files-{dead.stdout.strip()}-abcd1234"
    live = root / f"files-{os.getpid()}-efgh5678"  # this process: alive, kept
    legacy = root / "files-w6ntfvf9"  # no pid in the name: its owner cannot be known, kept
    for folder in (stale, live, legacy):
        (folder / "logs").mkdir(parents=True)
    assert sweep_stale_files(root) == [stale]
    assert not stale.exists() and live.exists() and legacy.exists()


# --- quotas ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "command", [["sandbox"], ["serve", "--sandbox"], ["call", "logs_aggs", "{}", "--sandbox"], ["demo"]]
)
def test_quota_option_on_every_command_that_starts_a_sandbox(command: list[str]) -> None:
    args = build_parser().parse_args([*command, "--quota", "all=100000", "--quota", "logs_scroll=1000"])
    limits = config_options(args)["quota_limits"]
    config = SandboxConfig(quota_limits=limits)
    assert config.quota_limits["logs_scroll"] == 1000  # later options win
    assert config.quota_limits["billing_query"] == 100000
    assert "logs_batch_status" not in limits  # free endpoints stay free


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("logs_scrol=5", "unknown quota family 'logs_scrol'; use one of: logs_scroll, "),
        ("logs_batch_status=5", "logs_batch_status is free: status polls are not counted"),
        ("logs_scroll=-1", "logs_scroll: the daily limit must be between 0 and 1000000000, got -1"),
        ("logs_scroll=lots", "logs_scroll: the daily limit must be a whole number, got 'lots'"),
        ("logs_scroll", "expected FAMILY=N (e.g. logs_scroll=1000), got 'logs_scroll'"),
    ],
)
def test_invalid_quota_options_fail_clearly(value: str, message: str, tmp_path: Path) -> None:
    done = subprocess.run(
        _cm_mcp("serve", "--sandbox", "--quota", value),
        capture_output=True,
        text=True,
        env=_env(tmp_path),
        timeout=60,
    )
    assert done.returncode == 2
    assert "argument --quota" in done.stderr and message in done.stderr, done.stderr
    assert not (tmp_path / "sandbox").exists()  # refused before anything started


def test_quota_limits_apply(tmp_path: Path) -> None:
    with _sandbox_process(tmp_path, "--quota", "billing_query=1", "--quota", "logs_aggs=7") as (_proc, line):
        env = _shell_env(line)
        headers = {"Authorization": f"Bearer {env['CM_API_TOKEN']}"}
        body = {"domain": "pay.example.com", "time_range": "now-1d"}
        first = _post(f"{env['CM_API_URL']}/v1/query", json=body, headers=headers)
        second = _post(f"{env['CM_API_URL']}/v1/query", json=body, headers=headers)
        aggs = _post(
            f"{env['CM_API_URL']}/v2/logs/aggs",
            json={**SCOPE, **WINDOW, "aggs": {"n": {"value_count": {"field": "_id"}}}},
            headers=headers,
        )
    assert first.json()["daily_requests_remaining"] == 0
    assert second.status_code == 429 and "limit of 1" in second.json()["detail"]
    assert aggs.json()["meta"]["rate_limit"]["daily_remaining"] == 6


def test_quota_families_are_the_counted_endpoints() -> None:
    with pytest.raises(ValueError, match="unknown quota families nope"):
        SandboxConfig(quota_limits={"nope": 3})
    with pytest.raises(ValueError, match="daily limits must be >= 0"):
        SandboxConfig(quota_limits={"logs_scroll": -1})
    assert json.dumps(SandboxConfig().quota_limits) == json.dumps(DEFAULT_LIMITS)
