"""tantivy (our DocIndex) vs DuckDB for the store: time until a stored export is queryable, and query
latency, on the same NDJSON.gz files, in the same run.

    .venv/bin/python bench/engines.py [--docs 300000] [--shape sandbox|wide]   (needs `pip install duckdb`)

- tantivy:          DocIndex.add_lines over the files (what the store's build does), then a terms
                    aggregation and a filtered count through the OpenSearch DSL.
- duckdb table:     read_ndjson(files, sample_size=-1) into a table (schema inferred over every record:
                    a field seen once must still be a column), then the same two questions in SQL.
- duckdb on files:  no ingest at all: each question scans the gzip files again.
- parquet:          the table written as Parquet (what Spark/Trino/Athena would read), then the questions.

Baseline: json.loads of every line of the same files (plain Python's floor for touching each record).
The SQL is hand-written for these two questions only; what it would take to put the whole DSL on
DuckDB with identical answers is in the engine decision of issue 10's closing note.
"""

from __future__ import annotations

import argparse
import gzip
import json
import random
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))


def write_files(folder: Path, docs: list[dict[str, Any]], parts: int = 4) -> list[Path]:
    paths = []
    for i in range(parts):
        path = folder / f"part-{i}.ndjson.gz"
        with gzip.open(path, "wt", compresslevel=1) as handle:
            for doc in docs[i::parts]:
                handle.write(json.dumps(doc, separators=(",", ":")) + "\n")
        paths.append(path)
    return paths


def timed(fn: Any) -> tuple[float, Any]:
    started = time.perf_counter()
    out = fn()
    return time.perf_counter() - started, out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--docs", type=int, default=300_000)
    parser.add_argument("--shape", choices=["sandbox", "wide"], default="sandbox")
    options = parser.parse_args()
    try:
        import duckdb
    except ImportError:
        print("skipped: duckdb is not installed (pip install duckdb)")
        return
    from cm_mcp.dsl import DocIndex
    from cm_mcp.store.formats import iter_file_lines

    if options.shape == "sandbox":
        import itertools

        from cm_mcp.sandbox.data import DataSpec, generate_logs

        docs = list(itertools.islice(generate_logs(DataSpec.create(seed=42)), options.docs))
        level, value = "regex.extractions.logLevel", "ERROR"
    else:
        from dsl import make_hit

        rnd = random.Random(0)
        docs = [make_hit(i, rnd) for i in range(options.docs)]
        level, value = "regex.extractions.logLevel", "ERROR"
    n = len(docs)
    with tempfile.TemporaryDirectory(prefix="cm-engines-") as tmp:
        paths = write_files(Path(tmp), docs, 4)
        del docs
        base, _ = timed(lambda: sum(1 for p in paths for _ in iter_file_lines(p)))
        print(
            f"{n:,} {options.shape} docs in 4 ndjson.gz files; json.loads of every line: {n / base:,.0f} docs/s"
        )

        def tantivy_build() -> DocIndex:
            index = DocIndex(Path(tmp) / "tantivy")
            for path in paths:
                index.add_lines(iter_file_lines(path), commit=False)
            index.close()
            return index

        build, index = timed(tantivy_build)
        aggs = {"l": {"terms": {"field": level}}}
        agg_s, agg = timed(lambda: index.aggregate(None, aggs))
        cnt_s, cnt = timed(lambda: index.count([{"term": {level: value}}]))
        rows = [("tantivy DocIndex", build, agg_s, cnt_s, cnt)]

        con = duckdb.connect()
        files = "[" + ",".join(f"'{p}'" for p in paths) + "]"
        col = "_source." + ".".join(f'"{part}"' for part in level.split("."))
        load, _ = timed(
            lambda: con.execute(f"CREATE TABLE t AS SELECT * FROM read_ndjson({files}, sample_size=-1)")
        )
        q_agg = f"SELECT {col} AS k, count(*) FROM {{src}} GROUP BY k ORDER BY 2 DESC LIMIT 10"
        q_cnt = f"SELECT count(*) FROM {{src}} WHERE {col} = '{value}'"

        def ask(src: str) -> tuple[float, float, int]:
            a, _ = timed(lambda: con.execute(q_agg.format(src=src)).fetchall())
            c, out = timed(lambda: con.execute(q_cnt.format(src=src)).fetchone())
            return a, c, int(out[0])

        rows.append(("duckdb table", load, *ask("t")))
        rows.append(("duckdb on the files", 0.0, *ask(f"read_ndjson({files}, sample_size=-1)")))
        parquet = Path(tmp) / "result.parquet"
        write, _ = timed(lambda: con.execute(f"COPY t TO '{parquet}' (FORMAT parquet)"))
        rows.append(("duckdb over parquet", load + write, *ask(f"read_parquet('{parquet}')")))
    print(
        f"{'engine':<22} {'queryable after':>16} {'docs/s':>10} {'vs json.loads':>14} {'terms agg':>10} {'count':>8}"
    )
    for name, ready, agg_s, cnt_s, count in rows:
        rate = f"{n / ready:10,.0f}" if ready else f"{'-':>10}"
        ratio = f"{base / ready:13.2f}x" if ready else f"{'-':>14}"
        print(
            f"{name:<22} {ready:15.2f}s {rate} {ratio} {agg_s * 1000:8.1f}ms {cnt_s * 1000:6.1f}ms  ({count:,} {value})"
        )
    print(f"(agg counts agree: {agg['l']['buckets'][:1]})")


if __name__ == "__main__":
    main()
