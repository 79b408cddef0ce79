"""Benchmark of the sandbox: index build rate, aggs latency and scroll page latency, with a baseline.

    .venv/bin/python bench/sandbox.py [--volume 143000] [--seed 42]

`--volume` is logs per day; 7 days x 143,000 ~= 1M logs (the default). The baseline is a plain Python
loop over the same generated documents, counting and bucketing what the aggs request computes, so the
printed ratio says how much the index buys per query.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cm_mcp.api.requests import LogsAggsRequest, LogsScrollRequest, parse_request
from cm_mcp.sandbox.data import DataSpec, generate_logs, generate_workloads
from cm_mcp.sandbox.engine import SandboxEngine, logs_selection


def timed(fn: Callable[[], Any], repeat: int = 5) -> tuple[float, Any]:
    """Median seconds of `repeat` runs, and the last result."""
    times, result = [], None
    for _ in range(repeat):
        t = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t)
    return statistics.median(times), result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--volume", type=int, default=143_000, help="logs per day (7 days)")
    # (--volume 30000 is the sandbox's default: what a first start builds)
    parser.add_argument("--seed", type=int, default=42)
    args = parser.parse_args()
    spec = DataSpec.create(seed=args.seed, volume=args.volume)
    now = datetime.now(UTC)

    with tempfile.TemporaryDirectory(prefix="cm-mcp-bench-") as tmp:
        t = time.perf_counter()
        generated = sum(1 for _ in generate_logs(spec)) + sum(1 for _ in generate_workloads(spec))
        gen_s = time.perf_counter() - t
        t = time.perf_counter()
        engine = SandboxEngine.open_or_build(spec, Path(tmp))
        build = time.perf_counter() - t
        docs = sum(engine.info.counts.values())
        assert docs == generated, (docs, generated)
        print(
            f"index build (cold): {docs:,} docs in {build:.1f} s = {docs / build:,.0f} docs/s; generating "
            f"them alone: {gen_s:.1f} s ({docs / gen_s:,.0f} docs/s): the build is {build / gen_s:.1f}x generation"
        )
        t = time.perf_counter()
        SandboxEngine.open_or_build(spec, Path(tmp))
        print(f"index reopen (warm): {time.perf_counter() - t:.3f} s")

        scope = {"application": "atr", "app_type": "kubernetes", "domain": ["*"]}
        window = {"start_time": "now-7d", "end_time": "now+1h"}
        aggs = {
            "levels": {"terms": {"field": "regex.extractions.logLevel", "size": 10}},
            "hourly": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h"}},
        }
        aggs_req = parse_request(LogsAggsRequest, {**scope, **window, "aggs": aggs}, now=now)
        sel = logs_selection(aggs_req, now)
        agg_s, result = timed(lambda: (engine.aggregate(sel, aggs), engine.count(sel)))
        total = result[1]
        print(f"aggs terms+date_histogram over {total:,} matching docs: {agg_s * 1000:.1f} ms (median)")

        scroll_req = parse_request(LogsScrollRequest, {**scope, **window, "size": 1000}, now=now)
        ssel = logs_selection(scroll_req, now)
        first_s, (_, cursor) = timed(lambda: engine.page(ssel, 1000))
        deep_cursor = cursor
        for _ in range(50):
            _, deep_cursor = engine.page(ssel, 1000, deep_cursor)
        deep_s, _ = timed(lambda: engine.page(ssel, 1000, deep_cursor))
        print(f"scroll page of 1000: first {first_s * 1000:.1f} ms, page 52 {deep_s * 1000:.1f} ms (median)")

        # Baseline: the same count + terms + hourly histogram by a plain loop over the documents.
        hits = list(generate_logs(spec))
        lo, hi = sel.start.isoformat()[:19], sel.end.isoformat()[:19]

        def baseline() -> tuple[int, Counter[str], Counter[str]]:
            n, levels, hours = 0, Counter[str](), Counter[str]()
            for hit in hits:
                src = hit["_source"]
                atr = src.get("atr")
                if not atr or atr.get("infra_type") != "kubernetes":
                    continue
                ts = src["@timestamp"]
                if not lo <= ts[:19] <= hi:
                    continue
                n += 1
                levels[src["regex"]["extractions"]["logLevel"]] += 1
                hours[ts[:13]] += 1
            return n, levels, hours

        base_s, (n, _, _) = timed(baseline, repeat=3)
        assert n == total, (n, total)
        print(f"baseline python loop over {len(hits):,} docs: {base_s * 1000:.1f} ms (median)")
        print(f"ratio baseline/index aggs: {base_s / agg_s:.1f}x")


if __name__ == "__main__":
    main()
