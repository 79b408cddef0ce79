"""The local result store: create, search, aggs, scroll pages, retention and tombstones."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from cm_mcp.dsl import ENGINES
from cm_mcp.dsl.engine import ENGINE_ENV
from cm_mcp.store import ResultEvicted, ResultNotFoundError, ResultStore
from tests.test_batch_fakes import make_hits


@pytest.fixture(autouse=True, params=ENGINES)
def engine(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every test on both engines (subprocesses too: they inherit the environment)."""
    monkeypatch.setenv(ENGINE_ENV, request.param)
    return str(request.param)


def test_create_search_pages_through_everything(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    info = store.create(kind="logs", source="scroll", request={"a": 1}, hits=make_hits(250))
    assert info.records == 250
    assert (tmp_path / "results" / info.id / "meta.json").exists()
    seen, after = [], None
    while True:
        page = store.search(info.id, size=100, after=after)
        assert page.total == 250
        seen += [h["_id"] for h in page.hits]
        after = page.next
        if after is None:
            break
    assert seen == sorted(seen)
    assert len(set(seen)) == 250
    desc = store.search(info.id, size=3, order="desc", fields=["message"])
    assert desc.hits[0]["_id"] == "id0000249"
    assert set(desc.hits[0]["_source"]) == {"message"}
    assert [p.name for p in store.files(info.id)] == ["page-0001.ndjson"]


def test_aggs_are_opensearch_shaped(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    info = store.create(kind="logs", source="export", request={}, hits=make_hits(100))
    out = store.aggs(
        info.id,
        {"lv": {"terms": {"field": "regex.extractions.logLevel"}}},
        filters=[{"range": {"@timestamp": {"gte": "2026-01-19T00:00:50Z"}}}],
    )
    assert out["total_documents"] == 50
    assert sum(b["doc_count"] for b in out["aggregations"]["lv"]["buckets"]) == 50


def test_scroll_pages_group_into_one_result_and_dedupe(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    hits = make_hits(30)
    first = store.add_scroll_page(
        {"application": "atr", "start_time": "x"}, hits[:20], kind="logs", next_scroll_id="s1"
    )
    assert not first.complete
    second = store.add_scroll_page(
        {"scroll_id": "s1"}, hits[15:], kind="logs", next_scroll_id=None, upstream_total=30
    )
    assert second.id == first.id
    assert second.complete
    assert second.pages == 2
    assert second.records == 30
    assert second.records_received == 35
    assert store.search(first.id).total == 30
    other = store.add_scroll_page({"scroll_id": "unknown"}, hits[:1], kind="logs")
    assert other.id != first.id
    assert next(r.id for r in store.list()) == other.id  # newest first


def test_unknown_result(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    with pytest.raises(ResultNotFoundError, match="no stored result"):
        store.get("r-nope")
    with pytest.raises(ResultNotFoundError):
        store.search("../etc")


def test_retention_by_size_evicts_oldest_with_a_tombstone(tmp_path: Path) -> None:
    store = ResultStore(tmp_path)
    a = store.create(kind="logs", source="export", request={}, hits=make_hits(200))
    b = store.create(kind="logs", source="export", request={}, hits=make_hits(200))
    small = ResultStore(tmp_path, max_bytes=a.bytes + b.bytes // 2)
    c = small.create(kind="logs", source="export", request={}, hits=make_hits(200))
    ids = [r.id for r in small.list()]
    assert c.id in ids
    assert a.id not in ids
    with pytest.raises(ResultEvicted) as info:
        small.get(a.id)
    text = str(info.value)
    assert f"result {a.id} was evicted on" in text
    assert "retention:" in text
    assert "re-run the export" in text


def test_retention_by_age(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, max_age=timedelta(days=1))
    old = store.create(kind="logs", source="export", request={}, hits=make_hits(5))
    meta = tmp_path / "results" / old.id / "meta.json"
    aged = old.model_copy(update={"created": datetime.now(UTC) - timedelta(days=2)})
    meta.write_text(aged.model_dump_json())
    new = store.create(kind="logs", source="export", request={}, hits=make_hits(5))
    assert [r.id for r in store.list()] == [new.id]
    with pytest.raises(ResultEvicted, match="older than 1 days"):
        store.search(old.id)


def test_newest_result_survives_even_if_oversized(tmp_path: Path) -> None:
    store = ResultStore(tmp_path, max_bytes=1)
    info = store.create(kind="logs", source="export", request={}, hits=make_hits(5))
    assert store.get(info.id).records == 5


def test_stale_build_directories_are_cleaned(tmp_path: Path) -> None:
    stale = tmp_path / "results" / ".building-r-old"
    stale.mkdir(parents=True)
    os.utime(stale, (0, 0))
    ResultStore(tmp_path)
    assert not stale.exists()


def test_results_list_keeps_to_its_budget_newest_first(tmp_path: Path) -> None:
    import anyio

    from cm_mcp.ops import stored
    from cm_mcp.summarize import estimate_tokens

    store = ResultStore(tmp_path)
    long_filter = [{"term": {"message": "x" * 400}}]  # a long request is cut, never the listing
    ids = [
        store.create(
            kind="logs",
            source="scroll",
            request={"application": "atr", "filters": long_filter},
            hits=make_hits(2),
        ).id
        for _ in range(40)
    ]
    rendered = anyio.run(lambda: stored.results_list(store, max_tokens=1000))
    listing = rendered.structured
    assert isinstance(listing, stored.ResultsList)
    shown = [entry.id for entry in listing.results]
    assert 0 < len(shown) < 40
    assert listing.omitted == 40 - len(shown)
    newest_first = [info.id for info in store.list()]
    assert shown == newest_first[: len(shown)]
    assert set(ids) == set(newest_first)
    assert estimate_tokens(rendered.text) + estimate_tokens(listing.model_dump_json()) <= 1000
    assert f"omitted: {listing.omitted} older result(s)" in rendered.text
    assert all(len(entry.scope) <= stored.SCOPE_CHARS for entry in listing.results)
    everything = anyio.run(lambda: stored.results_list(store, max_tokens=20_000)).structured
    assert isinstance(everything, stored.ResultsList)
    assert (len(everything.results), everything.omitted) == (40, 0)
