"""tantivy (DocIndex, the previous engine) vs DuckDB (DuckIndex, the engine now) on the same export
files, in the same run: time until the files are queryable, CPU per document, disk, peak memory, and
the latency of the questions follow-ups ask. Plus the storage decision behind DuckIndex: the same
rows in a DuckDB database file instead of Parquet.

    .venv/bin/python bench/engines.py [--docs 300000] [--shape sandbox|wide] [--repeat 5]

- baseline:        json.loads of every line of the files (plain Python's floor for touching each record)
- tantivy:         DocIndex.add_lines over the files, as the store built indexes before
- duckdb:          DuckIndex.add_files: DuckDB reads the files itself into Parquet segments (the store now)
- duckdb table:    the same typed rows written to a DuckDB database file instead (not used: see below)

The files are time-ordered partitions, as an export's are (the API cuts them by time window and
returns hits by @timestamp).

Each build runs in its own process (its peak RSS is its own). Query latencies are medians of
`--repeat` runs through each engine's own API (the same OpenSearch DSL), in a fresh process per engine.

`--sandbox-volume N` (default 30000, the sandbox's default volume; 0 skips it) also times the sandbox's
cold index build with each engine: generating its logs and workloads and indexing them from Python
dicts (what a first `serve --sandbox` does before data is ready), against generating them alone.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import random
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

LEVEL = "regex.extractions.logLevel"
QUESTIONS: dict[str, tuple[str, Any]] = {
    "count term": ("count", [{"term": {LEVEL: "ERROR"}}]),
    "terms agg": ("aggs", {"l": {"terms": {"field": LEVEL}}}),
    "terms > terms sub-agg": (
        "aggs",
        {"d": {"terms": {"field": "service"}, "aggs": {"l": {"terms": {"field": LEVEL, "size": 3}}}}},
    ),
    "date_histogram 1h, ERROR": (
        "aggs_errors",
        {"h": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h"}}},
    ),
    "match 2 words": ("count", [{"match": {"message": "timeout refused"}}]),
    "search page 100": ("search", [{"term": {LEVEL: "ERROR"}}]),
    "search page 100, deep cursor": ("deep", [{"exists": {"field": "message"}}]),
}


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def write_files(folder: Path, docs: list[dict[str, Any]], parts: int = 4) -> list[Path]:
    """Time-ordered partition files, like an export's (one time window each, hits by @timestamp)."""
    docs = sorted(docs, key=lambda d: (d["_source"]["@timestamp"], d["_id"]))
    per = -(-len(docs) // parts)
    paths = []
    for i in range(parts):
        path = folder / f"part-{i}.ndjson.gz"
        with gzip.open(path, "wt", compresslevel=1) as handle:
            for doc in docs[i * per : (i + 1) * per]:
                handle.write(json.dumps(doc, separators=(",", ":")) + "\n")
        paths.append(path)
    return paths


def dir_mb(path: Path) -> float:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) / 1e6


# --- children ---------------------------------------------------------------------------------------
def child_build(engine: str, target: Path, paths: list[Path]) -> dict[str, Any]:
    started, cpu = time.perf_counter(), cpu_seconds()
    if engine == "baseline":
        from cm_mcp.store.files import iter_file_lines

        n = sum(1 for p in paths for _ in iter_file_lines(p))
    elif engine == "tantivy":
        from cm_mcp.dsl import open_index
        from cm_mcp.store.files import iter_file_lines

        index = open_index(target, engine="tantivy")
        n = sum(index.add_lines(iter_file_lines(p), commit=False) for p in paths)
        index.close()
    elif engine == "duckdb":
        from cm_mcp.dsl.duck.index import DuckIndex
        from cm_mcp.store.indexing import source_file

        n = DuckIndex(target).add_files([source_file(p) for p in paths])
    else:  # duckdb table: DuckIndex's typed rows, in a database file
        n = _duckdb_table(target, paths)
    return {
        "docs": n,
        "seconds": time.perf_counter() - started,
        "cpu": cpu_seconds() - cpu,
        "rss_mb": peak_rss_mb(),
        "disk_mb": dir_mb(target) if target.exists() else 0.0,
    }


def _duckdb_table(target: Path, paths: list[Path]) -> int:
    import duckdb

    # the structure as DuckIndex settles it, then one typed table in a database file
    target.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(target / "docs.duckdb"), config={"threads": 2, "memory_limit": "768MB"})
    files = "[" + ", ".join(f"'{p}'" for p in paths) + "]"
    shapes = con.execute(
        f"SELECT DISTINCT json_structure(json->'_source') FROM read_json_objects({files}, format='newline_delimited', compression='gzip')"
    ).fetchall()
    from cm_mcp.dsl.duck.structure import dumps, merge, normalise, source_structure

    merged: Any = "NULL"
    for (text,) in shapes:
        merged = merge(merged, normalise(json.loads(text)))
    hit = dumps({"_id": "VARCHAR", "_index": "VARCHAR", "_source": source_structure(merged)})
    con.execute(
        "CREATE TABLE docs AS SELECT row_number() OVER () AS did, j._id AS id, j._index AS ix, "
        "CAST(json AS VARCHAR) AS raw, j._source AS src FROM (SELECT json, json_transform(json, ?) AS j "
        f"FROM read_json_objects({files}, format='newline_delimited', compression='gzip'))",
        [hit],
    )
    con.execute("CHECKPOINT")
    row = con.execute("SELECT count(*) FROM docs").fetchone()
    con.close()
    return int(row[0]) if row else 0


def child_questions(engine: str, target: Path, repeat: int) -> dict[str, Any]:
    if engine == "duckdb table":
        return _table_questions(target, repeat)
    from cm_mcp.dsl import open_index

    started = time.perf_counter()
    index = open_index(target, engine=engine)  # type: ignore[arg-type]
    first = index.aggregate(None, QUESTIONS["terms agg"][1])
    out: dict[str, Any] = {"first aggs (open + answer)": time.perf_counter() - started}
    errors = [{"term": {LEVEL: "ERROR"}}]
    _, deep = index.search([{"exists": {"field": "message"}}], 1000)
    for _ in range(20):
        _, deep = index.search([{"exists": {"field": "message"}}], 1000, after=deep)
    for label, (kind, body) in QUESTIONS.items():
        runs = []
        for _ in range(repeat):
            t = time.perf_counter()
            if kind == "count":
                index.count(body)
            elif kind == "aggs":
                index.aggregate(None, body)
            elif kind == "aggs_errors":
                index.aggregate(errors, body)
            elif kind == "search":
                index.search(body, 100)
            else:
                index.search(body, 100, after=deep)
            runs.append(time.perf_counter() - t)
        out[label] = statistics.median(runs)
    out["check"] = first["l"]["buckets"][0]
    out["rss_mb"] = peak_rss_mb()
    return out


def _table_questions(target: Path, repeat: int) -> dict[str, Any]:
    import duckdb

    started = time.perf_counter()
    con = duckdb.connect(str(target / "docs.duckdb"), read_only=True)
    sql = "SELECT src.regex.extractions.logLevel k, count(*) FROM docs GROUP BY k ORDER BY 2 DESC"
    con.execute(sql).fetchall()
    out: dict[str, Any] = {"first aggs (open + answer)": time.perf_counter() - started}
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        con.execute(sql).fetchall()
        runs.append(time.perf_counter() - t)
    out["terms agg"] = statistics.median(runs)
    runs = []
    for _ in range(repeat):
        t = time.perf_counter()
        fresh = duckdb.connect(str(target / "docs.duckdb"), read_only=True)
        fresh.execute("SELECT 1").fetchall()
        fresh.close()
        runs.append(time.perf_counter() - t)
    out["open the database file"] = statistics.median(runs)
    out["rss_mb"] = peak_rss_mb()
    return out


def child_sandbox(engine: str, target: Path, volume: int) -> dict[str, Any]:
    from cm_mcp.dsl import open_index
    from cm_mcp.sandbox.data import DataSpec, generate_logs, generate_workloads

    spec = DataSpec.create(seed=42, volume=volume)
    started, cpu = time.perf_counter(), cpu_seconds()
    n = 0
    for kind, docs in (("logs", generate_logs(spec)), ("workloads", generate_workloads(spec))):
        if engine == "generate only":
            n += sum(1 for _ in docs)
            continue
        index = open_index(target / kind, engine=engine)  # type: ignore[arg-type]
        n += index.add(docs, commit=False)
        index.close()
    return {
        "docs": n,
        "seconds": time.perf_counter() - started,
        "cpu": cpu_seconds() - cpu,
        "rss_mb": peak_rss_mb(),
    }


def child(*args: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, __file__, "_child", *args], capture_output=True, text=True, check=False
    )
    if done.returncode != 0:
        raise SystemExit(done.stderr)
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


# --- driver ---------------------------------------------------------------------------------------------
def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--docs", type=int, default=300_000)
    parser.add_argument("--shape", choices=["sandbox", "wide"], default="sandbox")
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--sandbox-volume", type=int, default=30_000)
    options = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="cm-engines-") as tmp:
        root = Path(tmp)
        # generated in a child: the children below then start from a small process (peak RSS is kept
        # across exec on Linux, so a parent holding the documents would inflate every child's figure)
        n = child("generate", options.shape, str(root), str(options.docs))["docs"]
        paths = sorted(root.glob("part-*.ndjson.gz"))
        size = sum(p.stat().st_size for p in paths) / 1e6
        print(
            f"{n:,} {options.shape}-shaped docs in 4 ndjson.gz files ({size:.1f} MB); load average {os.getloadavg()[0]:.1f}"
        )
        args = [str(p) for p in paths]
        builds = {
            name: child("build", name, str(root / name.replace(" ", "-")), *args)
            for name in ("baseline", "tantivy", "duckdb", "duckdb table")
        }
        base = builds["baseline"]["seconds"]
        print(
            f"\n{'build':<14} {'queryable after':>15} {'docs/s':>9} {'vs json.loads':>13} {'CPU us/doc':>10} {'disk MB':>8} {'peak RSS MB':>11}"
        )
        for name, b in builds.items():
            rate = n / b["seconds"]
            disk = f"{b['disk_mb']:8.1f}" if name != "baseline" else f"{'-':>8}"
            print(
                f"{name:<14} {b['seconds']:14.2f}s {rate:9,.0f} {base / b['seconds']:12.2f}x "
                f"{b['cpu'] / n * 1e6:10.1f} {disk} {b['rss_mb']:11.0f}"
            )
        t, d = builds["tantivy"], builds["duckdb"]
        print(
            f"duckdb vs tantivy: {t['seconds'] / d['seconds']:.1f}x faster to queryable, "
            f"{t['cpu'] / d['cpu']:.1f}x less CPU, {t['disk_mb'] / d['disk_mb']:.1f}x less disk"
        )
        answers = {
            name: child("questions", name, str(root / name.replace(" ", "-")), str(options.repeat))
            for name in ("tantivy", "duckdb", "duckdb table")
        }
        print(
            f"\n{'question (median of ' + str(options.repeat) + ')':<34} {'tantivy':>10} {'duckdb':>10} {'duckdb table':>13}"
        )
        labels = ["first aggs (open + answer)", *QUESTIONS, "open the database file"]
        for label in labels:
            cells = []
            for name in ("tantivy", "duckdb", "duckdb table"):
                value = answers[name].get(label)
                cells.append(f"{value * 1000:8.1f}ms" if isinstance(value, float) else f"{'-':>10}")
            print(f"{label:<34} {cells[0]:>10} {cells[1]:>10} {cells[2]:>13}")
        same = answers["tantivy"]["check"] == answers["duckdb"]["check"]
        print(f"(top level bucket, both engines: {answers['duckdb']['check']}; equal: {same})")
        if options.sandbox_volume:
            runs = {
                name: child(
                    "sandbox",
                    name,
                    str(root / f"sandbox-{name.replace(' ', '-')}"),
                    str(options.sandbox_volume),
                )
                for name in ("generate only", "tantivy", "duckdb")
            }
            gen = runs["generate only"]["seconds"]
            print(
                f"\nsandbox cold build, volume {options.sandbox_volume:,}/day ({runs['duckdb']['docs']:,} docs):"
            )
            for name, r in runs.items():
                print(
                    f"  {name:<14} {r['seconds']:6.2f} s ({r['docs'] / r['seconds']:9,.0f} docs/s, "
                    f"{r['seconds'] / gen:4.1f}x generation alone), CPU {r['cpu'] / r['docs'] * 1e6:5.1f} us/doc, "
                    f"peak RSS {r['rss_mb']:.0f} MB"
                )


def child_generate(shape: str, folder: Path, count: int) -> dict[str, Any]:
    if shape == "sandbox":
        import itertools

        from cm_mcp.sandbox.data import DataSpec, generate_logs

        spec = DataSpec.create(seed=42, volume=count // 7 * 2 + 1000, builtin_incidents=False)
        docs = list(itertools.islice(generate_logs(spec), count))
    else:
        from dsl import make_hit

        rnd = random.Random(0)
        docs = [make_hit(i, rnd) for i in range(count)]
    write_files(folder, docs, 4)
    return {"docs": len(docs)}


if __name__ == "__main__":
    if len(sys.argv) > 2 and sys.argv[1] == "_child":
        what, engine, target = sys.argv[2], sys.argv[3], Path(sys.argv[4])
        if what == "generate":
            result = child_generate(engine, Path(sys.argv[4]), int(sys.argv[5]))
        elif what == "sandbox":
            result = child_sandbox(engine, target, int(sys.argv[5]))
        elif what == "build":
            result = child_build(engine, target, [Path(p) for p in sys.argv[5:]])
        else:
            result = child_questions(engine, target, int(sys.argv[5]))
        print(json.dumps(result))
    else:
        main()
