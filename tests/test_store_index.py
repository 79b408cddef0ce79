"""The deferred index of exported results: built in the background from the stored files, waited
for (never read partial), rebuilt after an interruption; `sample()` straight from the files."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from cm_mcp.api.requests import LogsBatchRequest, parse_request
from cm_mcp.batch import ExportLimits, ExportOptions, run_export
from cm_mcp.batch.download import DownloadPolicy
from cm_mcp.dsl import ENGINES
from cm_mcp.dsl.engine import ENGINE_ENV
from cm_mcp.ops import exports, stored
from cm_mcp.store import ResultNotFoundError, ResultStore, layout
from cm_mcp.store import indexing as store_module
from cm_mcp.store.store import STALE_BUILD_SECONDS
from tests.test_batch_fakes import (
    LOGS_REQUEST_ARGS,
    T0,
    FakeBatchAPI,
    FakePartition,
    StreamingMock,
    encode,
    even_partitions,
    fake_client,
    make_hits,
)

pytestmark = pytest.mark.anyio


@pytest.fixture(autouse=True, params=ENGINES)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test on both engines (subprocesses too: they inherit the environment)."""
    monkeypatch.setenv(ENGINE_ENV, request.param)
    return str(request.param)


FAST = ExportLimits(poll_initial=0.005, poll_growth=1.5, poll_max=0.03)
POLICY = DownloadPolicy(allowed_hosts=("*.amazonaws.com",))
LEVELS = {"lv": {"terms": {"field": "regex.extractions.logLevel"}}}


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def export(api: FakeBatchAPI, store: ResultStore) -> Any:
    async with fake_client(api) as client:
        return await run_export(
            client,
            parse_request(LogsBatchRequest, LOGS_REQUEST_ARGS),
            ExportOptions(store, limits=FAST, policy=POLICY, download_transport=StreamingMock(api)),
        )


def levels(aggs: dict[str, Any]) -> dict[str, int]:
    return {b["key"]: b["doc_count"] for b in aggs["aggregations"]["lv"]["buckets"]}


def overlapping_partitions() -> list[FakePartition]:
    """400 distinct documents in 4 partitions that overlap by 20 (60 duplicates), in every file
    format, including bare documents (synthetic ids) and ids the fast regex path cannot take."""
    hits = make_hits(400)
    hits[5]["_id"] = 'quoted "id" \\ with escapes'  # escapes: the exact per-line path
    hits[6] = {"_id": hits[6]["_id"], "_index": "logs", "_source": hits[6]["_source"]}  # key order
    parts = [
        FakePartition(T0, T0 + timedelta(hours=1), hits[0:120]),
        FakePartition(T0 + timedelta(hours=1), T0 + timedelta(hours=2), hits[100:220]),
        FakePartition(T0 + timedelta(hours=2), T0 + timedelta(hours=3), hits[200:320]),
        FakePartition(T0 + timedelta(hours=3), T0 + timedelta(hours=4), hits[300:400]),
    ]
    parts[1].bodies = [encode(parts[1].hits, "ndjson")]
    parts[2].bodies = [encode(parts[2].hits, "json.gz")]
    return parts


async def test_export_returns_before_the_index_and_aggs_wait_for_it(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, background_index=False)  # nothing builds until the first query
    api = FakeBatchAPI(even_partitions(1000, 6))
    result = await export(api, store)
    assert result.index_state == "building"
    assert result.records == 1000  # exact before any index exists
    info = store.get(result.result_id)
    assert info.index_state == "building"
    assert info.records == 1000
    assert not (tmp_path / "results" / result.result_id / "index").exists()
    aggs = store.aggs(result.result_id, LEVELS)  # builds it now
    assert aggs["total_documents"] == 1000
    assert levels(aggs) == {"INFO": 800, "ERROR": 200}
    assert store.get(result.result_id).index_state == "ready"
    assert not list((tmp_path / "results" / result.result_id).glob(".index-*"))


async def test_background_build_and_concurrent_queries_are_exact(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    result = await export(FakeBatchAPI(even_partitions(1000, 6)), store)
    assert result.index_state in ("building", "ready")

    counts: list[int] = []

    def query() -> None:
        counts.append(store.count(result.result_id))

    async with anyio.create_task_group() as tg:  # queries racing the background build all wait
        for _ in range(4):
            tg.start_soon(anyio.to_thread.run_sync, query)
    assert counts == [1000] * 4
    assert levels(store.aggs(result.result_id, LEVELS)) == {"INFO": 800, "ERROR": 200}
    assert store.get(result.result_id).index_state == "ready"


async def test_duplicates_across_partitions_are_exact_before_and_after_indexing(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, background_index=False)
    result = await export(FakeBatchAPI(overlapping_partitions()), store)
    assert result.records_received == 460
    assert result.records == 400  # from the id hashes of the verified downloads
    assert result.duplicates == 60
    assert store.count(result.result_id) == 400  # the index de-duplicates the same way
    info = store.get(result.result_id)
    assert (info.records, info.records_received, info.index_state) == (400, 460, "ready")
    escaped = store.search(result.result_id, [{"term": {"_id": 'quoted "id" \\ with escapes'}}])
    assert escaped.total == 1


async def test_bare_documents_repeated_across_partitions_count_once(tmp_path: Path) -> None:
    hits = make_hits(90)
    parts = [
        FakePartition(T0, T0 + timedelta(hours=1), hits[:60]),
        FakePartition(T0 + timedelta(hours=1), T0 + timedelta(hours=2), hits[30:]),
    ]
    for part in parts:  # no envelope: the ids are hashes of the documents
        part.bodies = [encode(part.hits, "ndjson.gz", bare=True)]
    store = ResultStore(tmp_path, background_index=False)
    result = await export(FakeBatchAPI(parts), store)
    assert (result.records, result.records_received) == (90, 120)
    assert store.count(result.result_id) == 90


async def test_interrupted_build_is_rebuilt_on_next_use(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    result = await export(FakeBatchAPI(overlapping_partitions()), store)
    folder = tmp_path / "results" / result.result_id
    assert store.count(result.result_id) == 400
    # a process that died mid-build: the marker never written, a temporary directory left behind
    (folder / "index" / layout.INDEX_READY).unlink()
    (folder / ".index-deadbeef").mkdir()
    (folder / ".index-deadbeef" / "junk").write_text("half an index")
    restarted = ResultStore(tmp_path, background_index=False)
    assert restarted.get(result.result_id).index_state == "building"
    assert restarted.count(result.result_id) == 400
    assert levels(restarted.aggs(result.result_id, LEVELS)) == levels(store.aggs(result.result_id, LEVELS))
    assert restarted.get(result.result_id).index_state == "ready"
    assert not (folder / ".index-deadbeef").exists()


async def test_build_stopped_by_process_exit_leaves_no_index(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ResultStore(tmp_path, background_index=False)
    result = await export(FakeBatchAPI(even_partitions(1000, 6)), store)
    monkeypatch.setattr(store_module, "INDEX_BUILD_BATCH", 100)
    monkeypatch.setattr(store_module, "_SHUTDOWN", shutdown := store_module.threading.Event())
    shutdown.set()
    with pytest.raises(store_module.IndexBuildInterrupted):
        store.ensure_index(result.result_id)
    folder = tmp_path / "results" / result.result_id
    assert not (folder / "index").exists()
    assert not list(folder.glob(".index-*"))
    assert store.get(result.result_id).index_state == "building"
    shutdown.clear()
    assert store.count(result.result_id) == 1000


async def test_eviction_during_a_build_does_not_resurrect_the_result(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, background_index=False)
    result = await export(FakeBatchAPI(even_partitions(300, 3)), store)
    store.delete(result.result_id)
    with pytest.raises(ResultNotFoundError):
        store.ensure_index(result.result_id)
    assert not (tmp_path / "results" / result.result_id).exists()


async def test_sample_covers_every_file_without_the_index(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, background_index=False)
    api = FakeBatchAPI(even_partitions(1200, 6))
    api.partitions[1].bodies = [encode(api.partitions[1].hits, "ndjson")]
    api.partitions[2].bodies = [encode(api.partitions[2].hits, "json")]
    api.partitions[3].bodies = [encode(api.partitions[3].hits, "json.gz", bare=True)]
    result = await export(api, store)
    hits, total = store.sample(result.result_id, 60)
    assert total == 1200
    assert len(hits) == 60
    by_partition = {int(str(h["_source"]["message"]).split()[1]) // 200 for h in hits}
    assert by_partition == set(range(6))  # every file contributes
    # spread through each file, not its head: the sample reaches the end of the export
    assert max(int(str(h["_source"]["message"]).split()[1]) for h in hits) >= 1150
    stamps = [h["_source"]["@timestamp"] for h in hits]
    assert stamps == sorted(stamps)
    assert store.get(result.result_id).index_state == "building"  # the sample did not need it
    everything, _ = store.sample(result.result_id, 10_000)
    assert len(everything) == 1200
    few, _ = store.sample(result.result_id, 3)
    assert len(few) <= 6


async def test_sample_of_overlapping_partitions_has_no_duplicates(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, background_index=False)
    result = await export(FakeBatchAPI(overlapping_partitions()), store)
    hits, total = store.sample(result.result_id, 10_000)
    assert total == 400
    assert len(hits) == len({h["_id"] for h in hits}) == 400


async def test_export_outcome_is_summarised_from_the_sample_while_building(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, background_index=False)
    result = await export(FakeBatchAPI(even_partitions(1000, 4)), store)
    rendered = await exports._outcome(result, store, 2000, token="tok-1")
    outcome = rendered.structured
    assert isinstance(outcome, exports.ExportOutcome)
    assert outcome.index_state == "building"
    assert outcome.records == 1000
    assert outcome.summary.totals.matched == 1000
    assert "being built in the background" in rendered.text
    assert store.get(result.result_id).index_state == "building"  # the tool did not wait for it


async def test_export_outcome_hints_are_calls_that_run_on_the_stored_records(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    hits = make_hits(1000)
    for hit in hits:  # serverless-shaped records: the level is `logLevel`, not regex.extractions
        source = hit["_source"]
        source["logLevel"] = source.pop("regex")["extractions"]["logLevel"]
    parts = [
        FakePartition(T0 + timedelta(hours=i), T0 + timedelta(hours=i + 1), hits[i * 250 : (i + 1) * 250])
        for i in range(4)
    ]
    store = ResultStore(tmp_path, background_index=False)
    result = await export(FakeBatchAPI(parts), store)
    monkeypatch.setattr(exports, "SUMMARY_SAMPLE", 400)  # summarised from a sample: exact counts hinted
    rendered = await exports._outcome(result, store, 2000, token="tok-1")
    outcome = rendered.structured
    assert isinstance(outcome, exports.ExportOutcome)

    exact = re.search(r"use results_aggs, e\.g\. (\{.*\})\.", rendered.text)
    assert exact is not None, rendered.text
    aggs_call = parse_request(stored.ResultsAggsRequest, json.loads(exact.group(1)))
    buckets = store.aggs(aggs_call.result_id, aggs_call.aggs)["aggregations"]["levels"]["buckets"]
    assert {b["key"]: b["doc_count"] for b in buckets} == {"INFO": 800, "ERROR": 200}

    more = outcome.summary.omitted.how_to_get_more
    assert more is not None and "no quota" in more
    search_call = parse_request(stored.ResultsSearchRequest, json.loads(more.split("results_search ", 1)[1]))
    assert search_call.result_id == result.result_id
    page = store.search(search_call.result_id, search_call.filters, size=search_call.size)
    assert page.total == 200
    assert {hit["_source"]["logLevel"] for hit in page.hits} == {"ERROR"}


HOLD_BUILD_LOCK = """
import sys
from pathlib import Path
from cm_mcp.store import layout
root, result_id = Path(sys.argv[1]), sys.argv[2]
with layout.locked(root, result_id + ".build"):
    (root / result_id / ".index-otherprocess").mkdir()
    (root / result_id / ".index-otherprocess" / "segment").write_text("being built")
    print("held", flush=True)
    sys.stdin.readline()  # held until killed
"""


async def test_a_build_in_another_process_is_waited_for_and_its_files_left_alone(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, background_index=False)
    result = await export(FakeBatchAPI(even_partitions(1000, 6)), store)
    root = tmp_path / "results"
    other = await anyio.open_process(
        [sys.executable, "-c", HOLD_BUILD_LOCK, str(root), result.result_id], stdin=subprocess.PIPE
    )
    try:
        assert other.stdout is not None
        assert (await other.stdout.receive()).strip() == b"held"
        counts: list[int] = []
        async with anyio.create_task_group() as tg:
            tg.start_soon(anyio.to_thread.run_sync, lambda: counts.append(store.count(result.result_id)))
            await anyio.sleep(1.0)
            # Still waiting, and the other process's build is untouched (not taken for debris).
            assert counts == []
            assert (root / result.result_id / ".index-otherprocess" / "segment").exists()
            other.kill()  # dies holding the lock: the OS releases it
        assert counts == [1000]
        assert not (root / result.result_id / ".index-otherprocess").exists()  # debris now: removed
        assert store.get(result.result_id).index_state == "ready"
    finally:
        with contextlib.suppress(ProcessLookupError):
            other.kill()
        await other.wait()


def test_lock_files_of_long_gone_results_are_pruned(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    info = store.create(kind="logs", source="scroll", request={}, hits=make_hits(3))
    store.delete(info.id)  # takes its meta lock: the lock file exists
    locks = tmp_path / "results" / layout.LOCKS_DIR
    gone = locks / f"{info.id}.meta.lock"
    assert gone.exists()
    live = store.create(kind="logs", source="scroll", request={}, hits=make_hits(3))
    kept = locks / f"{live.id}.build.lock"
    kept.touch()
    old = time.time() - STALE_BUILD_SECONDS - 60
    for path in (gone, kept):
        os.utime(path, (old, old))
    ResultStore(tmp_path)  # a new process's store cleans up
    assert not gone.exists()
    assert kept.exists()  # its result still exists: never removed under a possible holder


def test_small_results_are_ready_at_once(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    info = store.create(kind="logs", source="scroll", request={}, hits=make_hits(10))
    assert info.index_state == "ready"
    assert store.get(info.id).index_state == "ready"
    page = store.add_scroll_page({"application": "atr"}, make_hits(5), kind="logs", next_scroll_id="s")
    more = store.add_scroll_page({"scroll_id": "s"}, make_hits(8), kind="logs")
    assert more.id == page.id
    assert (more.records, more.index_state) == (8, "ready")
    assert store.count(page.id) == 8


def test_result_without_marker_from_an_older_version_is_rebuilt(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    info = store.create(kind="logs", source="export", request={}, hits=make_hits(50))
    shutil.rmtree(tmp_path / "results" / info.id / "index")
    assert store.get(info.id).index_state == "building"
    assert store.count(info.id) == 50


async def test_a_follow_up_waiting_for_the_index_reports_progress(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ResultStore(tmp_path, background_index=False)
    result = await export(FakeBatchAPI(even_partitions(1000, 8)), store)
    # A slow build: tantivy's 10 batches or DuckDB's reads of 8 files (two at a time), each held back
    # 0.3 s (as if a sampler had priority), so heartbeats every 0.05 s fall between its steps whatever
    # the load (with 50 ms holds, DuckDB's last step could end before a heartbeat saw the count).
    monkeypatch.setattr(store_module, "INDEX_BUILD_BATCH", 100)
    monkeypatch.setattr(store_module, "_NO_SAMPLERS", store_module.threading.Event())
    monkeypatch.setattr(store_module, "SAMPLER_PRIORITY_SECONDS", 0.3)
    monkeypatch.setattr(stored, "INDEX_WAIT_HEARTBEAT_SECONDS", 0.05)
    events: list[Any] = []

    async def on_progress(event: Any) -> None:
        events.append(event)

    request = parse_request(stored.ResultsAggsRequest, {"result_id": result.result_id, "aggs": LEVELS})
    rendered = await stored.results_aggs(store, request, max_tokens=2000, progress=on_progress)
    assert rendered.structured.summary.total_documents == 1000  # type: ignore[attr-defined]
    assert events, "a waiting follow-up reports progress"
    values = [event.progress for event in events]
    assert values == sorted(set(values))  # strictly increasing, as MCP requires
    assert [(e.total, e.stage) for e in events] == [(1001, "indexing")] * len(events), events
    assert all(0 < value < 1001 for value in values[:-1])  # records indexed (+ heartbeats' fractions)
    assert any("building the search index" in event.message for event in events[:-1]), events
    assert (values[-1], events[-1].message) == (
        1001,
        f"the search index of {result.result_id} is ready (1,000 records)",
    )
    assert store.index_progress(result.result_id) is None  # nothing left running


async def test_waiting_for_a_build_in_another_process_keeps_reporting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = ResultStore(tmp_path, background_index=False)
    result = await export(FakeBatchAPI(even_partitions(1000, 6)), store)
    monkeypatch.setattr(stored, "INDEX_WAIT_HEARTBEAT_SECONDS", 0.05)
    root = tmp_path / "results"
    other = await anyio.open_process(
        [sys.executable, "-c", HOLD_BUILD_LOCK, str(root), result.result_id], stdin=subprocess.PIPE
    )
    events: list[Any] = []

    async def on_progress(event: Any) -> None:
        events.append(event)
        if len(events) == 3:
            other.kill()  # the other process dies holding the lock: ours builds then

    try:
        assert other.stdout is not None
        assert (await other.stdout.receive()).strip() == b"held"
        request = parse_request(stored.ResultsAggsRequest, {"result_id": result.result_id, "aggs": LEVELS})
        with anyio.fail_after(120):
            rendered = await stored.results_aggs(store, request, max_tokens=2000, progress=on_progress)
    finally:
        with contextlib.suppress(ProcessLookupError):
            other.kill()
        await other.wait()
    assert rendered.structured.summary.total_documents == 1000  # type: ignore[attr-defined]
    assert len(events) >= 3
    # heartbeats from the start, saying what is awaited; sub-steps below the first record
    assert all("built by another process" in e.message and e.total == 1001 for e in events[:3])
    values = [e.progress for e in events]
    assert values == sorted(set(values)) and 0 < values[0] < values[2] < 1


def test_index_build_reads_each_stored_line_once_and_refuses_damage(tmp_path: Path) -> None:
    """`iter_file_lines` (what a build from files reads): the line as stored for envelopes, None for
    records it had to wrap or that come from a JSON array; damage is a RecordFileError, never a
    silently shorter index."""
    import gzip as std_gzip

    from cm_mcp.store.errors import RecordFileError
    from cm_mcp.store.files import iter_file_lines

    hits = make_hits(300)
    lines = [json.dumps(h, separators=(",", ":")).encode() for h in hits]
    blob = std_gzip.compress(b"\r\n".join(lines[:-1]) + b"\n" + json.dumps(hits[-1]["_source"]).encode())
    (tmp_path / "ok.ndjson.gz").write_bytes(blob)
    read = list(iter_file_lines(tmp_path / "ok.ndjson.gz"))
    assert [raw.strip() if raw else None for raw, _ in read] == [*lines[:-1], None]  # the bare one: None
    assert [hit["_id"] for _, hit in read][:-1] == [h["_id"] for h in hits[:-1]]
    assert read[-1][1]["_source"] == hits[-1]["_source"]
    (tmp_path / "array.json").write_bytes(b"[" + b",".join(lines) + b"]")
    assert [(raw, hit["_id"]) for raw, hit in iter_file_lines(tmp_path / "array.json")] == [
        (None, h["_id"]) for h in hits
    ]
    (tmp_path / "cut.ndjson.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(RecordFileError):
        list(iter_file_lines(tmp_path / "cut.ndjson.gz"))
    (tmp_path / "bad.ndjson").write_bytes(lines[0] + b"\n{not json\n")
    with pytest.raises(RecordFileError, match="record 2"):
        list(iter_file_lines(tmp_path / "bad.ndjson"))


async def test_records_the_fast_path_cannot_take_are_read_by_the_store(tmp_path: Path) -> None:
    """Empty or missing ids (synthetic ones, as the download counted them), a numeric id, timestamps
    in other ISO shapes and as epoch millis: answered the same whichever engine indexed them."""
    hits = make_hits(60)
    hits[1]["_id"] = ""  # the store gives it a synthetic id, like a bare document
    del hits[2]["_id"]
    hits[3]["_id"] = 12345  # kept as it is in the hit, "12345" for the index
    hits[4]["_source"]["@timestamp"] = "2026-01-19T00:00:04.000123Z"
    hits[5]["_source"]["@timestamp"] = "2026-01-19T01:00:05+01:00"
    hits[6]["_source"]["@timestamp"] = int(T0.timestamp() * 1000) + 6000
    parts = [FakePartition(T0, T0 + timedelta(hours=1), hits)]
    parts[0].bodies = [encode(hits, "ndjson.gz")]
    store = ResultStore(tmp_path, background_index=False)
    result = await export(FakeBatchAPI(parts), store)
    assert store.count(result.result_id) == result.records == 60
    first = store.search(
        result.result_id, [{"range": {"@timestamp": {"lte": "2026-01-19T00:00:06.000Z"}}}], size=10
    )
    assert first.total == 7  # every shape parsed to the same instants
    assert store.count(result.result_id, [{"term": {"_id": "12345"}}]) == 1
    assert [h["_id"] for h in store.search(result.result_id, [{"term": {"_id": "12345"}}]).hits] == [12345]
    synthetic = [h["_id"] for h in store.search(result.result_id, size=3).hits]
    assert synthetic[0] == "id0000000" and all(str(i).startswith("h-") for i in synthetic[1:])


def test_scroll_pages_that_change_the_document_shape(tmp_path: Path) -> None:
    """A later page with a new field, a field that turns from number to text and from scalar to object:
    every page stays searchable and aggregatable, and superseded index files are gone."""
    store = ResultStore(tmp_path)
    first = make_hits(20)
    for i, hit in enumerate(first):
        hit["_source"]["status"] = 200 + i % 2
        hit["_source"]["geo"] = "unknown"
    second = make_hits(20, start=20)
    for i, hit in enumerate(second):
        hit["_source"]["status"] = "500" if i % 2 else 404
        hit["_source"]["geo"] = {"city": "Oslo"}
        hit["_source"]["tags"] = ["x", "y"]
    page = store.add_scroll_page({"application": "atr"}, first, kind="logs", next_scroll_id="s1")
    more = store.add_scroll_page({"scroll_id": "s1"}, second, kind="logs")
    assert more.id == page.id and more.records == 40
    assert store.count(page.id, [{"term": {"status": 500}}]) == 10  # the string "500" too
    assert store.count(page.id, [{"range": {"status": {"gte": 300}}}]) == 10  # numbers only
    assert store.count(page.id, [{"exists": {"field": "geo"}}]) == 40
    assert store.count(page.id, [{"term": {"geo.city": "Oslo"}}, {"term": {"tags": "y"}}]) == 20
    buckets = store.aggs(page.id, {"s": {"terms": {"field": "status"}}})["aggregations"]["s"]["buckets"]
    assert {(b["key"], b["doc_count"]) for b in buckets} == {(200, 10), (201, 10), (404, 10), ("500", 10)}
    index_dir = tmp_path / "results" / page.id / "index"
    if store.engine == "duckdb":
        manifest = json.loads((index_dir / "cm-duck-manifest.json").read_text())
        listed = {s[k] for s in manifest["segments"] for k in ("docs", "hits", "leaves") if s[k]}
        assert {p.name for p in index_dir.glob("*.parquet")} == listed


def test_a_result_indexed_by_the_other_engine_is_rebuilt_by_this_one(tmp_path: Path, engine: str) -> None:
    other = "tantivy" if engine == "duckdb" else "duckdb"
    before = ResultStore(tmp_path, engine=other)  # type: ignore[arg-type]
    info = before.create(kind="logs", source="scroll", request={}, hits=make_hits(30))
    assert before.get(info.id).index_state == "ready"
    expected = levels(before.aggs(info.id, LEVELS))
    now_store = ResultStore(tmp_path)
    assert now_store.get(info.id).index_state == "building"
    assert levels(now_store.aggs(info.id, LEVELS)) == expected == {"INFO": 24, "ERROR": 6}
    assert now_store.get(info.id).index_state == "ready"


async def test_a_damaged_file_fails_the_build_and_leaves_no_index(tmp_path: Path) -> None:
    from cm_mcp.store.errors import RecordFileError

    store = ResultStore(tmp_path, background_index=False)
    result = await export(FakeBatchAPI(even_partitions(600, 3)), store)
    folder = tmp_path / "results" / result.result_id
    victim = sorted((folder / "files").iterdir())[1]
    blob = victim.read_bytes()
    import gzip as std_gzip

    lines = std_gzip.decompress(blob).split(b"\n")
    lines[50] = b'{"_index": "logs", "_id": "broken", "_source": {'  # cut short
    victim.write_bytes(std_gzip.compress(b"\n".join(lines)))
    with pytest.raises(RecordFileError, match="record 51"):
        store.ensure_index(result.result_id)
    assert not (folder / "index").exists()
    assert not list(folder.glob(".index-*"))
    assert store.get(result.result_id).index_state == "building"


async def test_the_first_of_duplicate_records_is_kept_and_ordinary_files_take_the_fast_path(
    tmp_path: Path, engine: str, caplog: pytest.LogCaptureFixture
) -> None:
    """Across partitions read in one DuckDB statement the first copy of a record wins (file order,
    then line order), and plain envelope files never go through the slow reader."""
    hits = make_hits(300)
    later = [dict(h, _source={**h["_source"], "message": "a later copy"}) for h in hits[90:110]]
    parts = [
        FakePartition(T0, T0 + timedelta(hours=1), hits[:100]),
        FakePartition(T0 + timedelta(hours=1), T0 + timedelta(hours=2), later + hits[100:200]),
        FakePartition(T0 + timedelta(hours=2), T0 + timedelta(hours=3), hits[200:]),
    ]
    store = ResultStore(tmp_path, background_index=False)
    result = await export(FakeBatchAPI(parts), store)
    assert (result.records, result.records_received) == (300, 320)
    with caplog.at_level("INFO", logger="cm_mcp.dsl"):
        assert store.count(result.result_id) == 300
    assert store.count(result.result_id, [{"match_phrase": {"message": "a later copy"}}]) == 10  # ids 100-109
    assert not [r for r in caplog.records if "store's reader" in r.getMessage()]
    everything = store.search(result.result_id, size=400).hits
    assert [h["_id"] for h in everything] == [h["_id"] for h in hits]
