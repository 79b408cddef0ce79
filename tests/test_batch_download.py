"""Format detection, streaming verification, size limits and URL rules of partition downloads."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import httpx2
import pytest

from cm_mcp.batch.download import Downloader, DownloadPolicy, check_url, host_matches
from cm_mcp.batch.errors import (
    CountMismatchError,
    DownloadError,
    FileTooLargeError,
    HostNotAllowedError,
    InsecureURLError,
    URLExpiredError,
)
from cm_mcp.sandbox.batchjobs import write_partition_file
from cm_mcp.store.errors import RecordFileError
from cm_mcp.store.files import count_file_records, iter_file_records
from cm_mcp.store.formats import RecordParser, normalise, record_key, synthetic_id
from tests.test_batch_fakes import StreamingMock, corrupt, encode, make_hits, truncate

pytestmark = pytest.mark.anyio

POLICY = DownloadPolicy(allowed_hosts=("*.amazonaws.com", "127.0.0.1:*"), chunk_size=1024)
URL = "https://bucket.s3.amazonaws.com/part?X-Amz-Signature=abc"


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def serve(
    body: bytes | list[bytes], status: int = 200, **headers: str
) -> tuple[StreamingMock, list[httpx2.Request]]:
    seen: list[httpx2.Request] = []
    bodies = body if isinstance(body, list) else [body]

    def handler(request: httpx2.Request) -> httpx2.Response:
        seen.append(request)
        return httpx2.Response(status, content=bodies[min(len(seen), len(bodies)) - 1], headers=headers)

    return StreamingMock(handler), seen


# --- format detection ----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["ndjson.gz", "ndjson", "json", "json.gz"])
@pytest.mark.parametrize("bare", [False, True])
def test_every_format_parses_in_tiny_chunks(fmt: str, bare: bool) -> None:
    hits = make_hits(57)
    blob = encode(hits, fmt, bare=bare)
    for collect in (True, False):
        parser = RecordParser(collect=collect)
        out = []
        for i in range(0, len(blob), 7):  # chunk borders fall everywhere, also inside the magic bytes
            out += parser.feed(blob[i : i + 7])
        out += parser.finish()
        assert parser.records == 57
        assert parser.compression == ("gzip" if fmt.endswith(".gz") else "none")
        assert parser.layout == fmt.split(".")[0]
        if collect:
            assert [h["_source"] for h in out] == [h["_source"] for h in hits]
            if bare:
                assert out[0]["_id"] == synthetic_id(hits[0]["_source"])
            else:
                assert [h["_id"] for h in out] == [h["_id"] for h in hits]


@pytest.mark.parametrize("fmt", ["ndjson.gz", "ndjson", "json"])
def test_sandbox_writer_files_read_back(tmp_path: Path, fmt: str) -> None:
    path = tmp_path / f"p.{fmt}"
    write_partition_file(path, make_hits(300), fmt)  # type: ignore[arg-type]
    assert count_file_records(path).records == 300
    assert len(list(iter_file_records(path))) == 300


@pytest.mark.parametrize("fmt", ["ndjson.gz", "ndjson", "json"])
@pytest.mark.parametrize("variant", ["truncated", "corrupt"])
def test_sandbox_fault_files_never_verify(tmp_path: Path, fmt: str, variant: str) -> None:
    path = tmp_path / f"p.{fmt}"
    write_partition_file(path, make_hits(2000), fmt, variant)  # type: ignore[arg-type]
    with pytest.raises(RecordFileError):
        count_file_records(path)
    with pytest.raises(RecordFileError):
        list(iter_file_records(path))


def parse_all(blob: bytes) -> RecordParser:
    parser = RecordParser()
    parser.feed(blob)
    parser.finish()
    return parser


def test_unknown_and_empty_files_are_rejected() -> None:
    for blob in (b"", b"   \n", b"<html>nope</html>", b"PK\x03\x04zip"):
        with pytest.raises(RecordFileError):
            parse_all(blob)


def test_array_of_non_objects_and_trailing_garbage_are_rejected() -> None:
    for blob in (b"[1, 2]", b'[{"a": 1}] x', b'[{"a": 1},]'):
        with pytest.raises(RecordFileError):
            parse_all(blob)


def test_gzip_bomb_guard() -> None:
    parser = RecordParser(max_decompressed=10_000)
    with pytest.raises(RecordFileError, match="inflates"):
        parser.feed(gzip.compress(b"{}\n" * 100_000))


def test_empty_array_is_zero_records() -> None:
    assert parse_all(b"[ ]").records == 0


def entries(path: Path) -> list[str]:
    return sorted(p.name for p in path.iterdir())


def read(path: Path) -> bytes:
    return path.read_bytes()


# --- URL rules -----------------------------------------------------------------------------------


def test_host_matching() -> None:
    assert host_matches("bucket.s3.amazonaws.com", "*.amazonaws.com")
    assert not host_matches("amazonaws.com", "*.amazonaws.com")
    assert not host_matches("evilamazonaws.com", "*.amazonaws.com")
    assert host_matches("127.0.0.1", "127.0.0.1")


def test_disallowed_host_names_host_and_setting() -> None:
    with pytest.raises(HostNotAllowedError) as info:
        check_url("https://evil.example.com/x", POLICY)
    assert "evil.example.com" in str(info.value)
    assert "CM_DOWNLOAD_ALLOWED_HOSTS" in str(info.value)


def test_http_only_for_explicitly_listed_hosts() -> None:
    assert check_url("http://127.0.0.1:9000/f", POLICY) == "127.0.0.1"
    assert check_url(URL, POLICY) == "bucket.s3.amazonaws.com"
    with pytest.raises(InsecureURLError):
        check_url("http://bucket.s3.amazonaws.com/f", POLICY)
    with pytest.raises(DownloadError):
        check_url("ftp://bucket.s3.amazonaws.com/f", POLICY)


# --- downloads -----------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["ndjson.gz", "ndjson", "json"])
async def test_download_stores_verified_file_without_auth_header(tmp_path: Path, fmt: str) -> None:
    blob = encode(make_hits(250), fmt)
    transport, seen = serve(blob)
    async with Downloader(POLICY, transport=transport) as dl:
        got = await dl.fetch(URL, tmp_path, "part-0000", expected_records=250)
    assert got.records == 250
    assert got.path.name == f"part-0000.{fmt}"
    assert read(got.path) == blob  # kept exactly as downloaded
    assert "authorization" not in seen[0].headers
    assert entries(tmp_path) == [got.path.name]  # no temp file left


async def test_content_encoding_gzip_is_read_raw(tmp_path: Path) -> None:
    blob = encode(make_hits(10), "ndjson.gz")
    transport, _ = serve(blob, **{"content-encoding": "gzip", "content-type": "application/x-ndjson"})
    async with Downloader(POLICY, transport=transport) as dl:
        got = await dl.fetch(URL, tmp_path, "p", expected_records=10)
    assert got.compression == "gzip"


async def test_count_mismatch_is_an_error_and_leaves_nothing(tmp_path: Path) -> None:
    transport, _ = serve(encode(make_hits(10), "ndjson"))
    async with Downloader(POLICY, transport=transport) as dl:
        with pytest.raises(CountMismatchError):
            await dl.fetch(URL, tmp_path, "p", expected_records=11)
    assert entries(tmp_path) == []


@pytest.mark.parametrize("damage", [truncate, corrupt])
@pytest.mark.parametrize("fmt", ["ndjson.gz", "ndjson", "json"])
async def test_damaged_downloads_leave_nothing(tmp_path: Path, damage: object, fmt: str) -> None:
    blob = encode(make_hits(3000), fmt)
    transport, _ = serve(damage(blob))  # type: ignore[operator]
    async with Downloader(POLICY, transport=transport) as dl:
        with pytest.raises(RecordFileError):
            await dl.fetch(URL, tmp_path, "p", expected_records=3000)
    assert entries(tmp_path) == []


async def test_size_limit_stops_mid_stream(tmp_path: Path) -> None:
    blob = encode(make_hits(2000), "ndjson")
    seen_chunks = 0

    class Stream(httpx2.AsyncByteStream):
        async def __aiter__(self):  # type: ignore[no-untyped-def]
            nonlocal seen_chunks
            for i in range(0, len(blob), 1024):
                seen_chunks += 1
                yield blob[i : i + 1024]

    transport = StreamingMock(lambda request: httpx2.Response(200, stream=Stream()))
    policy = DownloadPolicy(allowed_hosts=("*.amazonaws.com",), max_bytes=10_000, chunk_size=1024)
    async with Downloader(policy, transport=transport) as dl:
        with pytest.raises(FileTooLargeError, match="10,000"):
            await dl.fetch(URL, tmp_path, "p")
    assert seen_chunks < len(blob) // 1024  # stopped long before the end
    assert entries(tmp_path) == []


async def test_declared_length_over_limit_is_refused(tmp_path: Path) -> None:
    transport, _ = serve(b"x" * 2000, **{"content-length": "2000"})
    policy = DownloadPolicy(allowed_hosts=("*.amazonaws.com",), max_bytes=1000)
    async with Downloader(policy, transport=transport) as dl:
        with pytest.raises(FileTooLargeError):
            await dl.fetch(URL, tmp_path, "p")


async def test_403_is_an_expired_url(tmp_path: Path) -> None:
    transport, _ = serve(b"<Error><Code>AccessDenied</Code></Error>", status=403)
    async with Downloader(POLICY, transport=transport) as dl:
        with pytest.raises(URLExpiredError):
            await dl.fetch(URL, tmp_path, "p")


async def test_redirects_are_not_followed(tmp_path: Path) -> None:
    transport, seen = serve(b"", status=302, location="https://evil.example.com/")
    async with Downloader(POLICY, transport=transport) as dl:
        with pytest.raises(DownloadError, match="redirect"):
            await dl.fetch(URL, tmp_path, "p")
    assert len(seen) == 1


async def test_disallowed_host_is_never_contacted(tmp_path: Path) -> None:
    transport, seen = serve(b"[]")
    async with Downloader(POLICY, transport=transport) as dl:
        with pytest.raises(HostNotAllowedError):
            await dl.fetch("https://files.example.org/x", tmp_path, "p")
    assert seen == []


def test_bare_document_ids_are_stable() -> None:
    doc = {"b": 1, "a": [1, 2]}
    assert synthetic_id(doc) == synthetic_id(json.loads(json.dumps({"a": [1, 2], "b": 1})))


async def test_blank_lines_in_gzip_ndjson_are_not_records(tmp_path: Path) -> None:
    hits = make_hits(3000)
    body = b"".join(json.dumps(h).encode() + (b"\n\n" if i % 500 == 0 else b"\n") for i, h in enumerate(hits))
    transport, _ = serve(gzip.compress(body + b"\n \n"))
    async with Downloader(POLICY, transport=transport) as dl:
        got = await dl.fetch(URL, tmp_path, "p", expected_records=3000)
    assert got.records == 3000


def test_id_keys_match_the_normalised_ids_whatever_the_line_shape() -> None:
    """The regex fast path and the exact per-line path agree with `normalise` on every shape."""
    hits = make_hits(3000)
    lines = [json.dumps(h, separators=(",", ":")).encode() for h in hits]
    lines[10] = json.dumps({"_id": "k-first", "_index": "x", "_source": {"a": 1}}).encode()  # key order
    lines[20] = json.dumps({"_index": "x", "_id": 'a"b\\c', "_source": {"a": 2}}).encode()  # escapes
    lines[30] = json.dumps({"message": "bare", "n": 30}).encode()  # no envelope: synthetic id
    lines[40] = json.dumps({"_index": "x", "_id": 7, "_source": {"a": 3}}).encode()  # numeric id
    lines[50] = json.dumps({"_index": "x", "_id": "", "_source": {"a": 4}}).encode()  # empty id
    lines[60] = json.dumps({"_index": "x", "_id": "no-source", "fields": {}}).encode()  # not an envelope
    lines[2500] = lines[100]  # a duplicate inside the file
    body = b"\n".join(lines[:1500]) + b"\n\n" + b"\n".join(lines[1500:]) + b"\n"  # and a blank line
    blob = gzip.compress(body)
    expected = {record_key(json.loads(line)) for line in lines}
    assert {str(normalise(json.loads(line))["_id"]).encode() for line in lines} == expected
    for size in (7, 4096, 1 << 20):
        parser = RecordParser(ids=True)
        for i in range(0, len(blob), size):
            parser.feed(blob[i : i + size])
        parser.finish()
        assert parser.id_keys == expected
