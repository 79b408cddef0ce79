"""One de-duplication key for exports and the store (issue 13): `formats.record_key`.

An export counts its distinct records while the files arrive; the store de-duplicates when it indexes
them (and when it stores scroll pages). Both use the one function, so the count an export reports is
the count its result's searches see, for every shape of `_id`, in every file format.
"""

from __future__ import annotations

import gzip
import json
import logging
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cm_mcp.batch import ExportOptions, run_export
from cm_mcp.store import ResultStore
from cm_mcp.store.formats import record_key
from tests.test_batch_export import FAST, POLICY, request
from tests.test_batch_fakes import T0, FakeBatchAPI, FakePartition, StreamingMock, fake_client, make_hits

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def _tricky() -> list[dict[str, Any]]:
    """Records whose `_id` takes every shape a file can hold."""
    base = make_hits(12)
    shapes: list[Any] = ["plain-1", 7, "7", 'with "quotes" \\ and escapes', "ünïcödé-ид", 12.5]
    records: list[dict[str, Any]] = []
    for hit, doc_id in zip(base, shapes, strict=False):
        records.append({**hit, "_id": doc_id})
    records.append({"_index": "i", "_source": base[6]["_source"]})  # no _id: keyed by content
    records.append({"_id": "", "_index": "i", "_source": base[7]["_source"]})  # empty _id: likewise
    records.append(base[8]["_source"])  # a bare document (no envelope)
    records.append({"_source": base[9]["_source"], "_id": "key-order", "_index": "i"})  # other key order
    return records


def _ndjson(records: list[dict[str, Any]], *, compress: bool, blank_lines: bool = False) -> bytes:
    sep = b"\n\n" if blank_lines else b"\n"
    body = (
        sep.join(json.dumps(r, ensure_ascii=False, separators=(",", ":")).encode() for r in records) + b"\n"
    )
    return gzip.compress(body) if compress else body


async def test_an_export_counts_what_its_result_holds_for_every_id_shape_and_format(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    records = _tricky()
    # The same records in four partitions and four formats: each record is a duplicate 3 times over.
    bodies = [
        _ndjson(records, compress=True),  # the fast gzip path: ids by regex where the shape allows
        _ndjson(records, compress=False, blank_lines=True),  # parsed line by line
        json.dumps(records).encode(),  # one JSON array
        gzip.compress(json.dumps(records, indent=1).encode()),
    ]
    parts = []
    for i, body in enumerate(bodies):
        part = FakePartition(T0 + timedelta(hours=i), T0 + timedelta(hours=i + 1), records)
        part.bodies = [body]
        parts.append(part)
    api = FakeBatchAPI(parts)
    store = ResultStore(tmp_path, background_index=False)
    caplog.set_level(logging.WARNING, logger="cm_mcp")
    async with fake_client(api) as client:
        options = ExportOptions(store, limits=FAST, policy=POLICY, download_transport=StreamingMock(api))
        result = await run_export(client, request(), options)
    distinct = len({record_key(r) for r in records})
    assert (len(records), distinct) == (10, 9)  # 7 and "7" are one `_id` (OpenSearch ids are strings)
    assert (result.records, result.records_received) == (distinct, 4 * len(records))
    assert store.count(result.result_id) == distinct  # the index, built from the files
    assert store.get(result.result_id).records == distinct
    assert "meta corrected" not in caplog.text


def test_a_scroll_page_is_de_duplicated_with_the_same_key(tmp_path: Path) -> None:
    """Hits without an `_id` are distinct documents (keyed by content), not one."""
    hits = make_hits(5)
    without_ids = [{"_index": h["_index"], "_source": h["_source"]} for h in hits]
    store = ResultStore(tmp_path)
    info = store.add_scroll_page({"application": "atr"}, without_ids + without_ids[:2], kind="logs")
    assert (info.records, info.records_received) == (5, 7)
    assert store.count(info.id) == 5
