"""Start-up of `cm-mcp ask` to its first model request, and what that first request weighs.

    .venv/bin/python bench/agent_startup.py [--runs 5]

Each run spawns `cm-mcp ask` as a user would, against a scripted model on 127.0.0.1 (tests/
scripted_llm.py) that answers at once, and takes the time from the spawn to the first model request
arriving. Cases: `--sandbox` with a cold index (a fresh data dir: the sandbox builds it), `--sandbox`
with the index cached, and the real-API path (`cm-mcp serve` child against an already running
sandbox). Baselines measured in the same run: a bare Python start (`python -c pass`) and
`cm-mcp --version` (the CLI's own start-up).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from cm_mcp.sandbox.config import SandboxConfig
from cm_mcp.sandbox.runner import serve_sandbox
from tests.scripted_llm import Reply, ScriptedLLM


def _env(data_dir: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CM_", "ANTHROPIC_", "OPENAI_"))}
    return {**env, "CM_DATA_DIR": str(data_dir), "ANTHROPIC_API_KEY": "bench-key-0123456789", **extra}


async def _first_request(args: list[str], env: dict[str, str]) -> tuple[float, int]:
    llm = ScriptedLLM([lambda seen: Reply("done")])
    async with llm.serve():
        command = [sys.executable, "-m", "cm_mcp.cli", "ask", "q", "--base-url", llm.url, *args]
        started = time.monotonic()
        done = await anyio.run_process(command, env=env, check=False)
        if done.returncode != 0:
            raise SystemExit(done.stderr.decode())
        return llm.requests[0].at - started, llm.requests[0].tokens


def _timed(command: list[str]) -> float:
    started = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True)
    return time.perf_counter() - started


async def main(runs: int) -> None:
    python = statistics.median(_timed([sys.executable, "-c", "pass"]) for _ in range(runs))
    version = statistics.median(
        _timed([sys.executable, "-m", "cm_mcp.cli", "--version"]) for _ in range(runs)
    )
    print(f"baseline: python -c pass {python:.2f} s, cm-mcp --version {version:.2f} s (medians of {runs})")
    sandbox = ["--sandbox", "--volume", "3000"]
    with tempfile.TemporaryDirectory() as tmp:
        cold = []
        for run in range(min(runs, 3)):
            seconds, tokens = await _first_request(sandbox, _env(Path(tmp) / f"cold{run}"))
            cold.append(seconds)
        warm_dir = Path(tmp) / "cold0"
        warm = [(await _first_request(sandbox, _env(warm_dir)))[0] for _ in range(runs)]
        config = SandboxConfig(port=0, volume=3000, data_dir=Path(tmp) / "api")
        async with serve_sandbox(config) as api:
            env = _env(Path(tmp) / "real", CM_API_URL=api.url, CM_API_TOKEN=api.token)
            real = [(await _first_request([], env))[0] for _ in range(runs)]
    print(
        f"ask --sandbox, index built on the way (volume 3000): {statistics.median(cold):.2f} s median of {len(cold)}"
    )
    print(
        f"ask --sandbox, index cached:                        {statistics.median(warm):.2f} s median ({min(warm):.2f}-{max(warm):.2f})"
    )
    print(
        f"ask against a running API (cm-mcp serve child):     {statistics.median(real):.2f} s median ({min(real):.2f}-{max(real):.2f})"
    )
    print(f"  = {statistics.median(real) / version:.1f}x the CLI's own start-up")
    print(f"first model request: ~{tokens:,} tokens (system prompt, 13 tool schemas, question, status note)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    anyio.run(main, parser.parse_args().runs)
