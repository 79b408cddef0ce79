"""What the MCP layer costs: a small logs_scroll through stdio MCP vs the same request through the bare
API client, against the same sandbox, in the same run.

    .venv/bin/python bench/mcp_overhead.py [--calls 60] [--size 20]

Prints the medians and their difference. The MCP path includes validation, the summary and the
text rendering, so the difference is "what the model gets for free", not transport alone.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import anyio
from mcp import Client, StdioServerParameters

from cm_mcp.api.client import CMClient
from cm_mcp.api.requests import LogsScrollRequest, parse_request
from cm_mcp.sandbox.config import SandboxConfig
from cm_mcp.sandbox.runner import start_sandbox_thread

ARGS = {
    "application": "atr",
    "app_type": "kubernetes",
    "domain": ["pay.example.com"],
    "start_time": "now-6h",
    "end_time": "now",
}


async def bare(url: str, token: str, calls: int, size: int) -> list[float]:
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
    parser.add_argument("--calls", type=int, default=60)
    parser.add_argument("--size", type=int, default=20)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        config = SandboxConfig(port=0, volume=3000, workloads_per_day=300, data_dir=Path(tmp) / "sandbox")
        config.quota_limits = {"logs_scroll": 100_000}
        sandbox = start_sandbox_thread(config)
        try:
            warm = 5
            direct = anyio.run(bare, sandbox.url, sandbox.token, options.calls + warm, options.size)[warm:]
            mcp = anyio.run(over_stdio, sandbox.url, sandbox.token, tmp, options.calls + warm, options.size)[
                warm:
            ]
        finally:
            sandbox.stop()
    d, m = statistics.median(direct) * 1000, statistics.median(mcp) * 1000
    print(f"logs_scroll size={options.size}, {options.calls} calls each (after {warm} warm-up)")
    print(f"  bare API client      median {d:7.2f} ms")
    print(f"  stdio MCP tool call  median {m:7.2f} ms")
    print(f"  difference           {m - d:7.2f} ms ({m / d:.2f}x)")


if __name__ == "__main__":
    main()
