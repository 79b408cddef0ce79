"""Summariser throughput against drain3 in the same run, output size and peak memory, 1k..1M logs.

.venv/bin/python bench/summarize.py [--max-n 1000000] [--repeats 3] [--sets synthetic,loghub,distinct]

Per size and repeat, in this order on the same already-parsed hits (dicts, as a scroll page or a
stored result gives them):
  ours     `summarize_logs`: the whole summary (levels, timestamps, templates, samples, budget fit)
  miner    our template mining alone (`TemplateGrouper.add` + `finish`), like for like with drain3
  drain3   drain3's `TemplateMiner` with its default config over the same messages (mining only)
Rates are logs per CPU second of this process (the work is single-threaded: "on one core"). Load on
this machine varies a lot (other processes share its 2 cores), so each ratio is taken within one
repeat and the medians are printed; absolute logs/s are for orientation only. Peak memory is the
tracemalloc peak of one more summary call (the input excluded). Two message sets: `synthetic` (eight
service-log templates with random values), `loghub` (the real messages of ../shared/loghub,
cycled; skipped when absent), which has ~900 templates and far more distinct shapes, and `distinct`
(every message its own key: 4-10 random lowercase words, nothing to mask or group), the worst case
for the miner: every message is masked afresh and the key table fills and compacts again and again.
"""

from __future__ import annotations

import argparse
import csv
import json
import random
import statistics
import sys
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

from drain3 import TemplateMiner
from drain3.template_miner_config import TemplateMinerConfig

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from cm_mcp.summarize import estimate_tokens, render_logs, summarize_logs
from cm_mcp.summarize.templates import TemplateGrouper

BUDGET = 4000
#: drain3 compares a message with every cluster of its length and first token: with nothing in
#: common it is quadratic (1,300 logs/s at 10,000 distinct messages), so it is skipped past this.
DRAIN3_DISTINCT_LIMIT = 10_000
LEVELS = ["ERROR", "WARN", "INFO", "INFO", "INFO", "DEBUG"]
LOGHUB = Path(__file__).resolve().parents[2] / "shared" / "loghub"


def synthetic_messages(n: int, seed: int = 1) -> list[str]:
    rng = random.Random(seed)
    templates: list[Callable[[], str]] = [
        lambda: (
            f"upstream connect error to 10.0.{rng.randint(0, 9)}.{rng.randint(1, 254)}:8443"
            f" after {rng.randint(1, 999)}ms"
        ),
        lambda: f"GET /api/v1/orders/{rng.randint(1, 10**6)} 200 in {rng.randint(1, 400)}ms",
        lambda: f"request_id={rng.getrandbits(64):016x} user={rng.randint(1, 5000)} checkout completed",
        lambda: f"retrying payment {rng.randint(1, 10**5)} attempt {rng.randint(1, 5)} of 5",
        lambda: f"cache miss for key session:{rng.getrandbits(32):08x} ttl={rng.randint(1, 3600)}s",
        lambda: f"worker {rng.randint(1, 64)} heartbeat ok load={rng.random():.2f}",
        lambda: f"db pool exhausted: {rng.randint(1, 50)} waiting, max={rng.choice([20, 50])}",
        lambda: (
            f"Connection reset by peer ({rng.randint(100, 60000)}) on"
            f" /10.1.{rng.randint(0, 9)}.{rng.randint(1, 254)}"
        ),
    ]
    return [templates[min(int(rng.expovariate(0.6)), len(templates) - 1)]() for _ in range(n)]


def loghub_messages(n: int) -> list[str] | None:
    files = sorted(LOGHUB.glob("*/*_2k.log_structured.csv")) if LOGHUB.is_dir() else []
    if not files:
        return None
    pool: list[str] = []
    for path in files:
        with path.open(newline="", encoding="utf-8") as f:
            pool.extend(row["Content"] for row in csv.DictReader(f))
    random.Random(2).shuffle(pool)
    return [pool[i % len(pool)] for i in range(n)]


def distinct_messages(n: int, seed: int = 3) -> list[str]:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz"

    def word() -> str:
        return "".join(rng.choice(letters) for _ in range(rng.randint(3, 9)))

    return [" ".join(word() for _ in range(rng.randint(4, 10))) for _ in range(n)]


def make_hits(messages: list[str]) -> list[dict[str, Any]]:
    return [
        {
            "_index": "logs",
            "_id": str(i),
            "_source": {
                "@timestamp": f"2024-05-01T{i // 3600 % 24:02d}:{i // 60 % 60:02d}:{i % 60:02d}.000Z",
                "message": message,
                "regex": {"extractions": {"logLevel": LEVELS[(len(message) + i) % len(LEVELS)]}},
                "service": "payments",
            },
        }
        for i, message in enumerate(messages)
    ]


def ours(hits: list[dict[str, Any]]) -> int:
    summary = summarize_logs(hits, max_tokens=BUDGET)
    return len(summary.templates) + summary.omitted.templates


def miner(hits: list[dict[str, Any]]) -> int:
    grouper = TemplateGrouper()
    for hit in hits:
        grouper.add(hit["_source"]["message"])
    return len(grouper.finish()[1])


def drain3_default(hits: list[dict[str, Any]]) -> int:
    template_miner = TemplateMiner(config=TemplateMinerConfig())
    for hit in hits:
        template_miner.add_log_message(hit["_source"]["message"])
    return len(template_miner.drain.clusters)


def timed(fn: Callable[[list[dict[str, Any]]], int], hits: list[dict[str, Any]]) -> tuple[float, int]:
    """(logs per CPU second, fn's result): CPU time of this process, the work being single-threaded,
    so that other processes competing for the cores inflate it far less than wall time."""
    start = time.process_time()
    out = fn(hits)
    return len(hits) / (time.process_time() - start), out


def peak_mib(hits: list[dict[str, Any]]) -> float:
    tracemalloc.start()
    summarize_logs(hits, max_tokens=BUDGET)
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    tracemalloc.stop()
    return peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-n", type=int, default=1_000_000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-memory", action="store_true", help="skip the (slow) tracemalloc run")
    parser.add_argument("--sets", default="synthetic,loghub,distinct", help="message sets, comma-separated")
    args = parser.parse_args()
    print(f"budget={BUDGET} tokens; medians of {args.repeats} repeats; ratio = ours / drain3 per repeat")
    header = (
        f"{'set':<9} {'n':>9} {'ours/s':>9} {'miner/s':>9} {'drain3/s':>9} {'ours/d3':>8} {'miner/d3':>9}"
        f" {'tmpl':>5} {'d3 clust':>8} {'tokens':>6} {'peak MiB':>8}"
    )
    print(header)
    results = []
    sets: tuple[tuple[str, Callable[[int], list[str] | None]], ...] = (
        ("synthetic", synthetic_messages),
        ("loghub", loghub_messages),
        ("distinct", distinct_messages),
    )
    for name, source in (entry for entry in sets if entry[0] in args.sets.split(",")):
        for n in (1_000, 10_000, 100_000, 1_000_000):
            if n > args.max_n:
                break
            messages = source(n)
            if messages is None:
                print(f"{name:<9} skipped: {LOGHUB} not found")
                break
            hits = make_hits(messages)
            rows: list[tuple[float, float, float]] = []
            for _ in range(args.repeats):
                ours_rate, templates = timed(ours, hits)
                miner_rate, _ = timed(miner, hits)
                if name == "distinct" and n > DRAIN3_DISTINCT_LIMIT:
                    drain_rate, clusters = float("nan"), -1  # quadratic here: hours
                else:
                    drain_rate, clusters = timed(drain3_default, hits)
                rows.append((ours_rate, miner_rate, drain_rate))
            rate = [statistics.median(row[i] for row in rows) for i in range(3)]
            ratio_ours = statistics.median(row[0] / row[2] for row in rows)
            ratio_miner = statistics.median(row[1] / row[2] for row in rows)
            tokens = estimate_tokens(render_logs(summarize_logs(hits, max_tokens=BUDGET)))
            peak = float("nan") if args.no_memory else peak_mib(hits)
            print(
                f"{name:<9} {n:>9,} {rate[0]:>9,.0f} {rate[1]:>9,.0f} {rate[2]:>9,.0f} {ratio_ours:>8.2f}"
                f" {ratio_miner:>9.2f} {templates:>5} {clusters:>8} {tokens:>6,} {peak:>8.1f}",
                flush=True,
            )
            results.append({"set": name, "n": n, "rates": rate, "ours_vs_drain3": ratio_ours})
    print(json.dumps(results))


if __name__ == "__main__":
    main()
