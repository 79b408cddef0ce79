"""Benchmark of cm_mcp.dsl, both engines in the same run: index build docs/s, aggregation and search
latency. DuckDB (`DuckIndex`) is the engine now; tantivy (`DocIndex`) the one before.

.venv/bin/python bench/dsl.py [--docs 200000] [--batch 50000] [--engines duckdb,tantivy]

Index build is reported next to `json.loads` of the same documents, timed in the same run, because
this machine's speed varies a lot with load: the ratio is the number to compare across runs. CPU time
per document (all threads, the engine's included) is less sensitive to load than wall time.

Two document shapes: the sandbox's own logs (~400 bytes, 8 leaves: what the sandbox and real exports
look like) and a wide ~1 KB synthetic document (25 leaves, unique ids and user agents). Two ways in
from Python: `add` (dicts, as the sandbox and scroll pages add them) and `add_lines` (the stored JSON
text with its parsed dict). A build from export files does not go through Python at all on DuckDB
(`add_files`: bench/engines.py, bench/export.py). Issue target: >= 50k docs/s.
"""

from __future__ import annotations

import argparse
import itertools
import json
import random
import resource
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from cm_mcp.dsl import ENGINES, SearchIndex, open_index
from cm_mcp.dsl.datemath import iso_ms, parse_iso_ms

BASE = parse_iso_ms("2026-11-26T00:00:00Z")
WORDS = [
    "GET",
    "POST",
    "timeout",
    "connection",
    "refused",
    "user",
    "order",
    "payment",
    "processed",
    "failed",
    "retrying",
    "upstream",
    "latency",
]


def make_hit(i: int, rnd: random.Random) -> dict[str, Any]:
    """A ~1 KB log document shaped like the sandbox's."""
    return {
        "_index": "logs-atr-2026.11.26",
        "_id": f"doc-{i:09d}",
        "_source": {
            "@timestamp": iso_ms(BASE + rnd.randrange(86_400_000)),
            "message": " ".join(rnd.choices(WORDS, k=25)),
            "regex": {"extractions": {"logLevel": rnd.choice(["INFO", "WARN", "ERROR", "DEBUG"])}},
            "atr": {"domain_name": rnd.choice(["payments", "orders", "search", "auth"]), "infra_type": "ec2"},
            "request": {
                "method": rnd.choice(["GET", "POST"]),
                "path": f"/api/v1/items/{rnd.randrange(10000)}",
                "headers": {
                    "user-agent": "Mozilla/5.0 (X11; Linux x86_64)",
                    "x-request-id": f"{rnd.getrandbits(64):016x}",
                },
            },
            "response": {
                "status_code": rnd.choice([200, 200, 404, 500, 503]),
                "bytes": rnd.randrange(100000),
                "duration_ms": rnd.random() * 1000,
            },
            "host": {"name": f"ip-10-0-{rnd.randrange(255)}-{rnd.randrange(255)}"},
            "kubernetes": {
                "pod": f"atr-{rnd.getrandbits(32):08x}",
                "namespace": "prod",
                "labels": {"app": "atr"},
            },
            "trace": {"id": f"{rnd.getrandbits(128):032x}"},
        },
    }


def cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


def median_ms(fn: Callable[[], object], repeat: int = 5) -> float:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times)


def build_rates(label: str, docs: list[dict[str, Any]], batch: int, engines: list[str]) -> None:
    """Build an index of `docs` both ways with each engine, against json.loads of the same documents."""
    lines = [json.dumps(h, separators=(",", ":")).encode() for h in docs]
    t = time.perf_counter()
    for line in lines:
        json.loads(line)
    loads_rate = len(docs) / (time.perf_counter() - t)
    print(f"{label}: {len(docs):,} docs; json.loads baseline {loads_rate:,.0f} docs/s")
    for engine in engines:
        for way in ("add", "add_lines"):
            with tempfile.TemporaryDirectory() as tmp:
                ix = open_index(tmp, engine=engine)  # type: ignore[arg-type]
                t, c = time.perf_counter(), cpu_seconds()
                for start in range(0, len(docs), batch):
                    if way == "add":
                        ix.add(docs[start : start + batch], commit=False)
                    else:
                        ix.add_lines(
                            zip(lines[start : start + batch], docs[start : start + batch], strict=True),
                            commit=False,
                        )
                ix.close()
                elapsed, cpu = time.perf_counter() - t, cpu_seconds() - c
                rate = len(docs) / elapsed
                print(
                    f"  {engine:<8} {way:<9} {rate:9,.0f} docs/s ({rate / loads_rate:.2f}x json.loads), "
                    f"cpu {cpu / len(docs) * 1e6:.1f} us/doc"
                )


QUESTIONS: dict[str, tuple[Any, Any]] = {
    "count ERROR": ("count", [{"term": {"regex.extractions.logLevel": "ERROR"}}]),
    "terms domain + avg duration": (
        "aggs",
        {
            "d": {
                "terms": {"field": "atr.domain_name"},
                "aggs": {"a": {"avg": {"field": "response.duration_ms"}}},
            }
        },
    ),
    "date_histogram 5m (288 buckets), ERROR": (
        "aggs_errors",
        {"h": {"date_histogram": {"field": "@timestamp", "fixed_interval": "5m"}}},
    ),
    "terms level > filter sub-agg": (
        "aggs",
        {
            "l": {
                "terms": {"field": "regex.extractions.logLevel"},
                "aggs": {"f": {"filter": {"range": {"response.status_code": {"gte": 500}}}}},
            }
        },
    ),
    "search first page 100 (match)": ("search", [{"match": {"message": "timeout refused"}}]),
    "search next page 100 (cursor)": ("next", [{"term": {"regex.extractions.logLevel": "ERROR"}}]),
}


def question_times(index: SearchIndex) -> dict[str, float]:
    errors = [{"term": {"regex.extractions.logLevel": "ERROR"}}]
    _, cursor = index.search(errors, 100)
    out = {}
    for label, (kind, body) in QUESTIONS.items():
        if kind == "count":
            out[label] = median_ms(lambda body=body: index.count(body))
        elif kind == "aggs":
            out[label] = median_ms(lambda body=body: index.aggregate(None, body))
        elif kind == "aggs_errors":
            out[label] = median_ms(lambda body=body: index.aggregate(errors, body))
        elif kind == "search":
            out[label] = median_ms(lambda body=body: index.search(body, 100))
        else:
            out[label] = median_ms(lambda body=body: index.search(body, 100, after=cursor))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--engines", default=",".join(ENGINES))
    args = ap.parse_args()
    engines = args.engines.split(",")
    from cm_mcp.sandbox.data import DataSpec, generate_logs

    sandbox_hits = list(itertools.islice(generate_logs(DataSpec.create(seed=42)), args.docs))
    rnd = random.Random(0)
    hits = [make_hit(i, rnd) for i in range(args.docs)]
    for label, docs in (("sandbox logs (~400 B)", sandbox_hits), ("wide synthetic (~1 KB)", hits)):
        build_rates(label, docs, args.batch, engines)
    times: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        for engine in engines:
            index = open_index(f"{tmp}/{engine}", engine=engine)  # type: ignore[arg-type]
            index.add(hits)
            times[engine] = question_times(index)
    print(f"\n{'query (median of 5), wide docs':<44}" + "".join(f"{e:>12}" for e in engines))
    for label in QUESTIONS:
        print(f"{label:<44}" + "".join(f"{times[e][label]:10.1f}ms" for e in engines))


if __name__ == "__main__":
    main()
