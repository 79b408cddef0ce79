"""What the MCP layer costs: logs_scroll through a stdio MCP session vs the same request with plain
httpx2 (and with the bare API client), against the same sandbox, in the same run.

    .venv/bin/python bench/mcp_overhead.py [--calls 30] [--sizes 100,10000] [--volume 60000]

The sandbox runs in its own process, so neither side shares a GIL with the server. Baseline: a plain
httpx2 POST of the same body, JSON decoded (what any client pays for the data). The three ways are
timed back to back in each round and compared per round (the machine is shared: load drifts). The API client adds
the page's validation as the tool does it (`scroll_page`: the envelope's model, the hits checked as plain
dicts); the MCP tool adds the summary, the text rendering and the protocol, and keeps the page in the
local store (off the response path: written while the answer goes out).

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
from cm_mcp.api.pages import parse_scroll_page
from cm_mcp.api.requests import LogsScrollRequest, parse_request
from cm_mcp.api.responses import LogsScrollResponse, parse_response

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


async def paired(url: str, token: str, data_dir: str, calls: int, size: int) -> dict[str, list[float]]:
    """Each round: plain httpx2, the API client and the MCP tool, back to back (so load drifts hit
    all three alike), then a results_list through the same session, which waits for the page's
    write: the writer of one round never overlaps the next round's timed calls."""
    body = parse_request(LogsScrollRequest, {**ARGS, "size": size}).to_body()
    headers = {"Authorization": f"Bearer {token}"}
    env = {**os.environ, "CM_API_URL": url, "CM_API_TOKEN": token, "CM_DATA_DIR": data_dir}
    params = StdioServerParameters(command=sys.executable, args=["-m", "cm_mcp.cli", "serve"], env=env)
    rows: dict[str, list[float]] = {
        "plain httpx2": [],
        "API client": [],
        "stdio MCP tool call": [],
        "then results_list": [],
    }
    async with (
        httpx.AsyncClient(base_url=url, timeout=120) as http,
        CMClient(api_url=url, token=token) as api,
        Client(params) as mcp,
    ):
        await mcp.list_tools()
        for _ in range(calls):
            started = time.perf_counter()
            response = await http.post("/v2/logs/scroll", json=body, headers=headers)
            response.raise_for_status()
            json.loads(response.content)
            rows["plain httpx2"].append(time.perf_counter() - started)
            request = parse_request(LogsScrollRequest, {**ARGS, "size": size})
            started = time.perf_counter()
            await api.scroll_page("logs_scroll", request)
            rows["API client"].append(time.perf_counter() - started)
            started = time.perf_counter()
            result = await mcp.call_tool("logs_scroll", {**ARGS, "size": size})
            rows["stdio MCP tool call"].append(time.perf_counter() - started)
            assert not result.is_error, result.content
            started = time.perf_counter()
            await mcp.call_tool("results_list", {})
            rows["then results_list"].append(time.perf_counter() - started)
    return rows


async def components(url: str, token: str, size: int, data_dir: str, repeat: int = 5) -> dict[str, float]:
    """Medians (ms) of what the tool does with one page besides the request, on the same hits here:
    checking the page and the summary (on the response path), storing the page (off it since issue 10;
    it was on it), and for comparison the per-hit models and dumps the page checks replaced."""
    from cm_mcp.store import ResultStore
    from cm_mcp.summarize import summarize_logs

    body = parse_request(LogsScrollRequest, {**ARGS, "size": size}).to_body()
    async with httpx.AsyncClient(base_url=url, timeout=120) as client:
        response = await client.post(
            "/v2/logs/scroll", json=body, headers={"Authorization": f"Bearer {token}"}
        )
    raw = response.json()
    hits = parse_scroll_page("logs_scroll", raw).hits
    store = ResultStore(data_dir)
    out: dict[str, list[float]] = {
        "page checks": [],
        "per-hit models + dumps (the old page step)": [],
        "summary": [],
        "storing the page": [],
    }
    for _ in range(repeat):
        started = time.perf_counter()
        parse_scroll_page("logs_scroll", raw)
        out["page checks"].append(time.perf_counter() - started)
        started = time.perf_counter()
        models = parse_response("logs_scroll", raw)
        assert isinstance(models, LogsScrollResponse)
        [hit.model_dump(by_alias=True) for hit in models.data.logs]
        out["per-hit models + dumps (the old page step)"].append(time.perf_counter() - started)
        started = time.perf_counter()
        summarize_logs(hits, total_matched=len(hits), max_tokens=4000)
        out["summary"].append(time.perf_counter() - started)
        started = time.perf_counter()
        store.add_scroll_page(body, hits, kind="logs")
        out["storing the page"].append(time.perf_counter() - started)
    return {name: statistics.median(times) * 1000 for name, times in out.items()}


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
                calls = options.calls if size <= 1000 else max(5, options.calls // 3)
                rows = anyio.run(paired, url, token, str(Path(tmp) / f"mcp-{size}"), calls + warm, size)
                rows = {name: times[warm:] for name, times in rows.items()}
                plain = rows["plain httpx2"]
                print(f"logs_scroll size={size}, {calls} rounds (after {warm} warm-up), medians:")
                for name, times in rows.items():
                    ms = statistics.median(times) * 1000
                    if name == "then results_list":
                        print(
                            f"  {name:<20} {ms:9.1f} ms   (waits for the page's write; not part of the answer)"
                        )
                        continue
                    extra = statistics.median(t - p for t, p in zip(times, plain, strict=True)) * 1000
                    ratio = statistics.median(t / p for t, p in zip(times, plain, strict=True))
                    print(
                        f"  {name:<20} {ms:9.1f} ms   +{extra:8.1f} ms   {ratio:5.2f}x plain (per-round medians)"
                    )
                parts = anyio.run(components, url, token, size, str(Path(tmp) / f"parts-{size}"))
                print(
                    "  of which, timed on the same hits in this process: "
                    + ", ".join(
                        f"{name} {ms:.1f} ms" + (")" if name.startswith("(") else "")
                        for name, ms in parts.items()
                    )
                    + " (storing runs after the answer is made)"
                )
        finally:
            sandbox.stdin.close()
            sandbox.wait(30)


if __name__ == "__main__":
    main()
