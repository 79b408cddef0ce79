"""Start-up: cold and warm start of `cm-mcp serve --sandbox` to `initialize` and to the first tool
result, and `cm-mcp call`, each against a baseline measured in the same run.

    .venv/bin/python bench/startup.py [--repeat 3] [--volume N] [--engines duckdb,tantivy]

- baseline:  a minimal stdio MCP server on the same SDK (one trivial tool): what any Python MCP server
             pays to start (interpreter + the mcp SDK), to `initialize` and to its first tool result.
- cold:      `cm-mcp serve --sandbox` with a new empty CM_DATA_DIR (a fresh machine: the sandbox builds
             its index), to `initialize`, then to the first `logs_aggs` result (which needs the data).
- warm:      the same with the data dir of the cold run (the index cache is reused).
- engines:   cold and warm are measured once per engine in each repetition (CM_INDEX_ENGINE; DuckDB is
             the engine now, tantivy the one before), so their figures come from the same run.
- call:      `cm-mcp call results_list` (warm, no API request) and `cm-mcp call --sandbox logs_aggs`
             (warm index cache) as whole processes, against the baseline's start-to-first-result.

Every figure is printed with its ratio to the baseline of the same repetition; medians over
`--repeat` runs (the machine is shared: single runs vary by tens of percent).
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
from mcp import Client, StdioServerParameters

from cm_mcp.dsl.engine import ENGINE_ENV, ENGINES

ROOT = Path(__file__).resolve().parents[1]
MINIMAL_SERVER = """
from mcp.server.mcpserver import MCPServer
server = MCPServer("minimal")
@server.tool()
def ping() -> str:
    return "pong"
server.run("stdio")
"""
AGGS: dict[str, object] = {
    "application": "atr",
    "app_type": "kubernetes",
    "domain": ["pay.example.com"],
    "start_time": "now-1d",
    "end_time": "now",
    "aggs": {"levels": {"terms": {"field": "regex.extractions.logLevel"}}},
}


async def session_times(
    params: StdioServerParameters, tool: str, arguments: dict[str, object]
) -> tuple[float, float]:
    """(seconds to `initialize` answered, seconds to the first tool result), from process spawn."""
    started = time.perf_counter()
    async with Client(params) as client:
        initialized = time.perf_counter() - started
        result = await client.call_tool(tool, arguments)
        first = time.perf_counter() - started
        if result.is_error:
            raise RuntimeError(f"{tool} failed: {result.content}")
    return initialized, first


def cm_params(data_dir: Path, volume: int | None, engine: str) -> StdioServerParameters:
    args = ["-m", "cm_mcp.cli", "serve", "--sandbox"]
    if volume is not None:
        args += ["--volume", str(volume)]
    env = {**os.environ, "CM_DATA_DIR": str(data_dir), ENGINE_ENV: engine}
    return StdioServerParameters(command=sys.executable, args=args, env=env)


def call_seconds(data_dir: Path, engine: str, *args: str) -> float:
    env = {**os.environ, "CM_DATA_DIR": str(data_dir), ENGINE_ENV: engine}
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "cm_mcp.cli", "call", *args],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument(
        "--volume", type=int, default=None, help="sandbox logs per day (default: its default)"
    )
    parser.add_argument("--engines", default=",".join(ENGINES), help="comma-separated: duckdb, tantivy")
    options = parser.parse_args()
    engines = [name for name in options.engines.split(",") if name]
    rows: dict[str, list[float]] = {}

    def record(name: str, seconds: float, baseline: float) -> None:
        rows.setdefault(name, []).append(seconds)
        rows.setdefault(name + " ratio", []).append(seconds / baseline)

    with tempfile.TemporaryDirectory(prefix="cm-startup-") as tmp:
        script = Path(tmp) / "minimal_server.py"
        script.write_text(MINIMAL_SERVER)
        minimal = StdioServerParameters(command=sys.executable, args=[str(script)])
        for run in range(options.repeat):
            base_init, base_first = anyio.run(session_times, minimal, "ping", {})
            volume = ["--volume", str(options.volume)] if options.volume is not None else []
            rows.setdefault("baseline initialize", []).append(base_init)
            rows.setdefault("baseline first result", []).append(base_first)
            for engine in engines:
                data_dir = Path(tmp) / f"data-{engine}-{run}"  # new and empty: a fresh machine
                server = cm_params(data_dir, options.volume, engine)
                cold_init, cold_first = anyio.run(session_times, server, "logs_aggs", AGGS)
                warm_init, warm_first = anyio.run(session_times, server, "logs_aggs", AGGS)
                call = call_seconds(data_dir, engine, "results_list")
                sandbox_call = call_seconds(
                    data_dir, engine, "--sandbox", "logs_aggs", json.dumps(AGGS), *volume
                )
                record(f"{engine}: cold initialize", cold_init, base_init)
                record(f"{engine}: cold first logs_aggs", cold_first, base_first)
                record(f"{engine}: warm initialize", warm_init, base_init)
                record(f"{engine}: warm first logs_aggs", warm_first, base_first)
                record(f"{engine}: cm-mcp call results_list", call, base_first)
                record(f"{engine}: cm-mcp call --sandbox logs_aggs", sandbox_call, base_first)
                print(
                    f"run {run + 1} {engine}: baseline {base_init:.2f}/{base_first:.2f} s, "
                    f"cold {cold_init:.2f}/{cold_first:.2f} s, warm {warm_init:.2f}/{warm_first:.2f} s, "
                    f"call {call:.2f} / --sandbox {sandbox_call:.2f} s",
                    flush=True,
                )
    print(f"\nmedians of {options.repeat} runs (seconds; ratio = against the baseline of the same run)")
    for name, values in rows.items():
        if name.endswith(" ratio"):
            continue
        ratio = rows.get(name + " ratio")
        tail = f"   {statistics.median(ratio):5.2f}x baseline" if ratio else ""
        print(f"  {name:<44} {statistics.median(values):6.2f} s{tail}")


if __name__ == "__main__":
    main()
