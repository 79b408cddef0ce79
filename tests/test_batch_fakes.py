"""Shared helpers of the batch/store tests (no tests here): hits, partition files, a fake batch API."""

from __future__ import annotations

import gzip
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx2
import jwt

from cm_mcp.api.client import CMClient
from cm_mcp.api.quota import QuotaTracker
from cm_mcp.api.retry import RetryPolicy
from cm_mcp.api.settings import Settings

API = "https://cm.test"
FILES = "https://bucket.s3.amazonaws.com"
T0 = datetime(2026, 1, 19, tzinfo=UTC)


def jwt_token() -> str:
    exp = int((datetime.now(UTC) + timedelta(hours=12)).timestamp())
    return jwt.encode(
        {"sub": "test", "exp": exp}, "a-test-secret-of-at-least-32-bytes-long", algorithm="HS256"
    )


def make_hits(n: int, *, start: int = 0, base: datetime = T0, level: str = "INFO") -> list[dict[str, Any]]:
    return [
        {
            "_index": "logs-atr-2026.01",
            "_id": f"id{i:07d}",
            "_source": {
                "@timestamp": (base + timedelta(seconds=i)).strftime("%Y-%m-%dT%H:%M:%S.000Z"),
                "message": f"request {i} done",
                "regex": {"extractions": {"logLevel": "ERROR" if i % 5 == 0 else level}},
            },
        }
        for i in range(start, start + n)
    ]


def encode(hits: list[dict[str, Any]], fmt: str = "ndjson.gz", *, bare: bool = False) -> bytes:
    docs: list[Any] = [h["_source"] for h in hits] if bare else hits
    if fmt.startswith("json"):
        body = json.dumps(docs).encode()
    else:
        body = b"".join(json.dumps(d).encode() + b"\n" for d in docs)
    return gzip.compress(body) if fmt.endswith(".gz") else body


def truncate(blob: bytes) -> bytes:
    return blob[: len(blob) * 2 // 3]


def corrupt(blob: bytes) -> bytes:
    mid = len(blob) // 2
    return blob[:mid] + bytes(b ^ 0xFF for b in blob[mid : mid + 8]) + blob[mid + 8 :]


@dataclass
class FakePartition:
    start: datetime
    end: datetime
    hits: list[dict[str, Any]]
    #: the poll (1-based) from which the partition is completed
    ready_at_poll: int = 1
    failed: bool = False
    #: file bodies served on successive downloads (the last repeats); default: the encoded hits
    bodies: list[bytes] = field(default_factory=list)
    #: number of initial downloads answered 403 (expired URL)
    expired_downloads: int = 0
    #: number of downloads (after the expired ones) answered 503 by the file host
    error_downloads: int = 0
    downloads: int = 0
    count: int | None = None


class FakeBatchAPI:
    """/v2/{logs,workloads}/batch + /batch/status and an S3-like file host, for MockTransport."""

    def __init__(self, partitions: list[FakePartition], *, files_base: str = FILES) -> None:
        self.partitions = partitions
        self.files_base = files_base
        self.polls = 0  # status answers with partitions
        self.status_requests = 0  # every status request, answered or not
        self.token = "tok-AbCdEf123456"
        self.submitted: list[dict[str, Any]] = []
        self.status_errors: list[int] = []  # statuses returned by the next polls, first to last
        self.expired = False
        self.url_serial = 0
        self.on_poll: Callable[[int], None] | None = None
        self.auth_headers_on_files: list[str | None] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        path = request.url.path
        if path.endswith("/batch"):
            self.submitted.append(json.loads(request.content))
            return httpx2.Response(200, json={"data": {"token": self.token}, "meta": {}})
        if path.endswith("/batch/status"):
            return self._status(request)
        if path.startswith("/files/"):
            return self._file(request)
        return httpx2.Response(404)

    def _status(self, request: httpx2.Request) -> httpx2.Response:
        self.status_requests += 1
        if self.expired:
            return httpx2.Response(
                404, json={"message": "No record of this token. Note: Tokens expire after 2 hours"}
            )
        if self.status_errors:
            return httpx2.Response(self.status_errors.pop(0))
        self.polls += 1
        if self.on_poll:
            self.on_poll(self.polls)
        entries = []
        for i, p in enumerate(self.partitions):
            done = self.polls >= p.ready_at_poll
            status = ("failed" if p.failed else "completed") if done else "processing"
            self.url_serial += 1
            url = (
                f"{self.files_base}/files/{i}?X-Amz-Signature=s{self.url_serial}"
                if done and not p.failed
                else "null"
            )
            entries.append(
                {
                    "start_time": p.start.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "end_time": p.end.strftime("%Y-%m-%dT%H:%M:%SZ"),
                    "log_count": p.count if p.count is not None else len(p.hits),
                    "presigned_url": url,
                    "completed": done and not p.failed,
                    "status": status,
                }
            )
        return httpx2.Response(200, json={"presigned_urls": entries})

    def _file(self, request: httpx2.Request) -> httpx2.Response:
        self.auth_headers_on_files.append(request.headers.get("authorization"))
        p = self.partitions[int(request.url.path.rsplit("/", 1)[1])]
        p.downloads += 1
        if p.downloads <= p.expired_downloads:
            return httpx2.Response(
                403, content=b"<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>"
            )
        if p.downloads <= p.expired_downloads + p.error_downloads:
            return httpx2.Response(503, content=b"<Error><Code>SlowDown</Code></Error>")
        served = p.downloads - p.expired_downloads - p.error_downloads
        bodies = p.bodies or [encode(p.hits)]
        body = bodies[min(served, len(bodies)) - 1]
        return httpx2.Response(200, content=body, headers={"content-type": "application/octet-stream"})


def even_partitions(total: int, n: int, **kwargs: Any) -> list[FakePartition]:
    hits = make_hits(total)
    per = -(-total // n)
    out = []
    for i in range(n):
        chunk = hits[i * per : (i + 1) * per]
        out.append(
            FakePartition(
                T0 + timedelta(hours=i), T0 + timedelta(hours=i + 1), chunk, ready_at_poll=1 + i % 3, **kwargs
            )
        )
    return out


async def _no_sleep(_: float) -> None:
    return None


def fake_client(api: FakeBatchAPI, *, now: Callable[[], datetime] | None = None) -> CMClient:
    """A client of `api`; `now`: its wall clock (the JWT's expiry is checked against it)."""
    return CMClient(
        Settings(_env_file=None, api_url=API),
        token=jwt_token(),
        transport=httpx2.MockTransport(api),
        retry_policy=RetryPolicy(max_retries=2, base_delay=0.0, sleep=_no_sleep),
        quota=QuotaTracker(),
        now=now or (lambda: datetime.now(UTC)),
    )


LOGS_REQUEST_ARGS: dict[str, Any] = {
    "application": "atr",
    "app_type": "kubernetes",
    "domain": ["*"],
    "start_time": "2026-01-19T00:00:00Z",
    "end_time": "2026-01-19T06:00:00Z",
}


class StreamingMock(httpx2.AsyncBaseTransport):
    """Like httpx2.MockTransport, but the body stays a stream (MockTransport reads it whole first),
    so streaming and mid-stream limits are really exercised."""

    def __init__(self, handler: Callable[[httpx2.Request], httpx2.Response]) -> None:
        self.handler = handler

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self.handler(request)
        content = response.stream
        return httpx2.Response(response.status_code, headers=response.headers, stream=content)
