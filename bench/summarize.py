"""Summariser throughput, output size and peak memory at 1k..1M synthetic logs, vs baselines.

Baselines in the same run: json.dumps of the first hits cut to the same budget (what a naive tool
returns), and drain3 with its default config over the same messages (template mining only).
Run: .venv/bin/python bench/summarize.py [max_n]
"""

from __future__ import annotations

import json
import random
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cm_mcp.summarize import estimate_tokens, render_logs, summarize_logs

BUDGET = 4000
LEVELS = ["ERROR", "WARN", "INFO", "INFO", "INFO", "DEBUG"]


def make_hits(n: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    templates = [
        lambda: (
            f"upstream connect error to 10.0.{rng.randint(0, 9)}.{rng.randint(1, 254)}:8443 after {rng.randint(1, 999)}ms"
        ),
        lambda: f"GET /api/v1/orders/{rng.randint(1, 10**6)} 200 in {rng.randint(1, 400)}ms",
        lambda: f"request_id={rng.getrandbits(64):016x} user={rng.randint(1, 5000)} checkout completed",
        lambda: f"retrying payment {rng.randint(1, 10**5)} attempt {rng.randint(1, 5)} of 5",
        lambda: f"cache miss for key session:{rng.getrandbits(32):08x} ttl={rng.randint(1, 3600)}s",
        lambda: f"worker {rng.randint(1, 64)} heartbeat ok load={rng.random():.2f}",
        lambda: f"db pool exhausted: {rng.randint(1, 50)} waiting, max={rng.choice([20, 50])}",
        lambda: (
            f"Connection reset by peer ({rng.randint(100, 60000)}) on /10.1.{rng.randint(0, 9)}.{rng.randint(1, 254)}"
        ),
    ]
    hits = []
    for i in range(n):
        k = min(int(rng.expovariate(0.6)), len(templates) - 1)
        hits.append(
            {
                "_index": "logs",
                "_id": str(i),
                "_source": {
                    "@timestamp": f"2024-05-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}Z",
                    "message": templates[k](),
                    "regex": {"extractions": {"logLevel": LEVELS[(k + i) % len(LEVELS)]}},
                    "service": "payments",
                },
            }
        )
    return hits


def measure(fn: Any) -> tuple[Any, float, float]:
    """(result, seconds, peak MiB): timed without tracemalloc (it slows Python ~2x), then re-run traced."""
    start = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - start
    tracemalloc.start()
    fn()
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return out, elapsed, peak


def naive(hits: list[dict[str, Any]]) -> str:
    out, size = [], 0
    for hit in hits:
        line = json.dumps(hit)
        if size + len(line) > BUDGET * 4:
            break
        out.append(line)
        size += len(line) + 1
    return "\n".join(out)


def drain_default(hits: list[dict[str, Any]]) -> int:
    miner = TemplateMiner(config=TemplateMinerConfig())
    for hit in hits:
        miner.add_log_message(hit["_source"]["message"])
    return len(miner.drain.clusters)


def main() -> None:
    max_n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(f"budget={BUDGET} tokens; memory = tracemalloc peak during the call (excludes the input)")
    print(
        f"{'n':>9} {'ours logs/s':>12} {'tokens':>7} {'tmpl':>5} {'peak MiB':>9} | "
        f"{'drain3 default logs/s':>21} {'clusters':>8} | {'json.dumps hits shown':>21}"
    )
    for n in (1_000, 10_000, 100_000, 1_000_000):
        if n > max_n:
            break
        hits = make_hits(n)
        summary, secs, peak = measure(lambda h=hits: summarize_logs(h, max_tokens=BUDGET))
        tokens = estimate_tokens(render_logs(summary))
        templates = len(summary.templates) + summary.omitted.templates
        start = time.perf_counter()
        clusters = drain_default(hits) if n <= 100_000 else None
        dsecs = time.perf_counter() - start
        base = naive(hits)
        drain_txt = (
            f"{n / dsecs:21,.0f} {clusters:>8}" if clusters is not None else f"{'(skipped)':>21} {'':>8}"
        )
        print(
            f"{n:>9,} {n / secs:12,.0f} {tokens:7,} {templates:5} {peak:9.1f} | {drain_txt} | "
            f"{base.count(chr(10)) + 1:>21,}"
        )


if __name__ == "__main__":
    main()
