"""What the MCP layer costs: logs_scroll through a stdio MCP session vs the same request with plain
httpx2 (and with the bare API client), against the same sandbox, in the same run.

    .venv/bin/python bench/mcp_overhead.py [--calls 30] [--sizes 100,10000] [--volume 60000]

The sandbox runs in its own process, so neither side shares a GIL with the server. Baseline: a plain
httpx2 POST of the same body, JSON decoded (what any client pays for the data). The API client adds
validation into typed models; the MCP tool adds the summary, the text rendering and the protocol, and
keeps the page in the local store (off the response path: written while the answer goes out).

Issue targets: size 100 within ~15 ms of plain httpx2; size 10,000 within 2x of it.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import httpx2 as httpx
from mcp import Client, StdioServerParameters

from cm_mcp.api.client import CMClient
from cm_mcp.api.requests import LogsScrollRequest, parse_request

ARGS = {
    "application": "atr",
    "app_type": "kubernetes",
    "domain": ["pay.example.com", "identity.example.com"],
    "start_time": "now-7d",
    "end_time": "now",
}
SANDBOX = """
import sys
from pathlib import Path
from cm_mcp.sandbox.config import SandboxConfig
from cm_mcp.sandbox.runner import start_sandbox_thread
config = SandboxConfig(port=0, volume=int(sys.argv[2]), data_dir=Path(sys.argv[1]))
config.quota_limits = {name: None for name in config.quota_limits}
handle = start_sandbox_thread(config)
print(handle.url, handle.token, flush=True)
sys.stdin.readline()
handle.stop()
"""


async def plain(url: str, token: str, calls: int, size: int) -> list[float]:
    times = []
    body = parse_request(LogsScrollRequest, {**ARGS, "size": size}).to_body()
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        for _ in range(calls):
            started = time.perf_counter()
            response = await client.post("/v2/logs/scroll", json=body, headers=headers)
            response.raise_for_status()
            json.loads(response.content)
            times.append(time.perf_counter() - started)
    return times


async def api_client(url: str, token: str, calls: int, size: int) -> list[float]:
    times = []
    async with CMClient(api_url=url, token=token) as client:
        for _ in range(calls):
            request = parse_request(LogsScrollRequest, {**ARGS, "size": size})
            started = time.perf_counter()
            await client.call("logs_scroll", request)
            times.append(time.perf_counter() - started)
    return times


async def over_stdio(url: str, token: str, data_dir: str, calls: int, size: int) -> list[float]:
    env = {**os.environ, "CM_API_URL": url, "CM_API_TOKEN": token, "CM_DATA_DIR": data_dir}
    params = StdioServerParameters(command=sys.executable, args=["-m", "cm_mcp.cli", "serve"], env=env)
    times = []
    async with Client(params) as client:
        await client.list_tools()
        for _ in range(calls):
            started = time.perf_counter()
            result = await client.call_tool("logs_scroll", {**ARGS, "size": size})
            times.append(time.perf_counter() - started)
            assert not result.is_error, result.content
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--calls", type=int, default=30)
    parser.add_argument("--sizes", default="100,10000")
    parser.add_argument("--volume", type=int, default=60_000, help="sandbox logs per day")
    options = parser.parse_args()
    sizes = [int(s) for s in options.sizes.split(",")]
    warm = 3
    with tempfile.TemporaryDirectory() as tmp:
        sandbox = subprocess.Popen(
            [sys.executable, "-c", SANDBOX, str(Path(tmp) / "sandbox"), str(options.volume)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        assert sandbox.stdin is not None
        assert sandbox.stdout is not None
        try:
            url, token = sandbox.stdout.readline().decode().split()
            for size in sizes:
                calls = options.calls if size <= 1000 else max(5, options.calls // 4)
                rows = {
                    "plain httpx2": anyio.run(plain, url, token, calls + warm, size)[warm:],
                    "API client": anyio.run(api_client, url, token, calls + warm, size)[warm:],
                    "stdio MCP tool call": anyio.run(
                        over_stdio, url, token, str(Path(tmp) / f"mcp-{size}"), calls + warm, size
                    )[warm:],
                }
                base = statistics.median(rows["plain httpx2"]) * 1000
                print(f"logs_scroll size={size}, {calls} calls each (after {warm} warm-up), medians:")
                for name, times in rows.items():
                    ms = statistics.median(times) * 1000
                    print(f"  {name:<20} {ms:9.1f} ms   +{ms - base:8.1f} ms   {ms / base:5.2f}x plain")
        finally:
            sandbox.stdin.close()
            sandbox.wait(30)


if __name__ == "__main__":
    main()
