"""Benchmark of cm_mcp.dsl: index build docs/s, aggregation and search latency.

.venv/bin/python bench/dsl.py [--docs 200000] [--path DIR]
"""

from __future__ import annotations

import argparse
import random
import statistics
import tempfile
import time
from collections.abc import Callable
from typing import Any

from cm_mcp.dsl import DocIndex
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


def timed(label: str, fn: Callable[[], object], repeat: int = 5) -> None:
    times = []
    for _ in range(repeat):
        t = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t) * 1000)
    print(f"{label:<44} median {statistics.median(times):8.1f} ms   min {min(times):8.1f} ms")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--docs", type=int, default=200_000)
    ap.add_argument("--batch", type=int, default=50_000)
    ap.add_argument("--path", default=None, help="index directory (default: a temporary one)")
    args = ap.parse_args()
    rnd = random.Random(0)
    hits = [make_hit(i, rnd) for i in range(args.docs)]
    with tempfile.TemporaryDirectory() as tmp:
        ix = DocIndex(args.path or tmp)
        t = time.perf_counter()
        for start in range(0, len(hits), args.batch):
            ix.add(hits[start : start + args.batch])
        elapsed = time.perf_counter() - t
        print(f"index build: {args.docs} docs in {elapsed:.1f} s = {args.docs / elapsed:,.0f} docs/s")
        errors = [{"term": {"regex.extractions.logLevel": "ERROR"}}]
        timed("count ERROR", lambda: ix.count(errors))
        timed(
            "terms domain + avg duration",
            lambda: ix.aggregate(
                None,
                {
                    "d": {
                        "terms": {"field": "atr.domain_name"},
                        "aggs": {"a": {"avg": {"field": "response.duration_ms"}}},
                    }
                },
            ),
        )
        timed(
            "date_histogram 5m (288 buckets)",
            lambda: ix.aggregate(
                errors, {"h": {"date_histogram": {"field": "@timestamp", "fixed_interval": "5m"}}}
            ),
        )
        timed(
            "terms level > filter emulated",
            lambda: ix.aggregate(
                None,
                {
                    "l": {
                        "terms": {"field": "regex.extractions.logLevel"},
                        "aggs": {"f": {"filter": {"range": {"response.status_code": {"gte": 500}}}}},
                    }
                },
            ),
        )
        timed(
            "search first page 100 (match)",
            lambda: ix.search([{"match": {"message": "timeout refused"}}], 100),
        )
        _, cursor = ix.search(errors, 100)
        timed("search next page 100 (cursor)", lambda: ix.search(errors, 100, after=cursor))
        ix.close()


if __name__ == "__main__":
    main()
