"""The S3 side of batch exports: ``GET /_s3/<object key>?X-Amz-...`` serves a partition file.

The presigned URL is checked like S3 does (403 with S3's XML body when expired or tampered), the file
is written on first use and served with the Content-Type S3 would send. Transfer faults are decided
per download, as on a real network, and never touch the stored file, so a retry can succeed:
- ``truncated_file_rate``: the response announces the full Content-Length, sends part of the body, and
  the connection drops (the client sees an incomplete body);
- ``corrupt_file_rate``: a complete response whose bytes in `corruption_window` arrive flipped;
- ``download_error_rate``: S3's 500 InternalError or 503 SlowDown, with its XML body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Final

import anyio
from starlette.requests import Request
from starlette.responses import FileResponse, Response, StreamingResponse
from starlette.types import Receive, Scope, Send

from cm_mcp.sandbox.batchjobs import CONTENT_TYPES, corruption_window
from cm_mcp.sandbox.middleware import drop_connection
from cm_mcp.sandbox.presign import PresignError, s3_error_xml
from cm_mcp.sandbox.state import state_of

CHUNK_BYTES: Final = 64 * 1024
_S3_ERRORS: Final = {
    500: ("InternalError", "We encountered an internal error. Please try again."),
    503: ("SlowDown", "Please reduce your request rate."),
}


def _xml(status: int, code: str, message: str, resource: str) -> Response:
    return Response(s3_error_xml(code, message, resource), status, media_type="application/xml")


async def _chunks(path: Path, limit: int, flip: tuple[int, int] = (0, 0)) -> AsyncIterator[bytes]:
    """The first `limit` bytes of `path`, with the bytes of the `flip` window (offset, length) inverted."""
    start, length = flip
    position = 0
    async with await anyio.open_file(path, "rb") as file:
        while position < limit:
            chunk = await file.read(min(CHUNK_BYTES, limit - position))
            if not chunk:
                return
            lo, hi = max(start - position, 0), min(start + length - position, len(chunk))
            if lo < hi:
                chunk = chunk[:lo] + bytes(byte ^ 0xFF for byte in chunk[lo:hi]) + chunk[hi:]
            position += len(chunk)
            yield chunk


class CutTransfer(Response):
    """A download whose connection drops after `cut` of the file's `size` bytes (headers promise all)."""

    def __init__(self, path: Path, size: int, cut: int, media_type: str) -> None:
        super().__init__(media_type=media_type, headers={"content-length": str(size)})
        self.path, self.cut = path, cut

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": self.raw_headers})
        async for chunk in _chunks(self.path, self.cut):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await drop_connection(scope)


async def s3_object(request: Request) -> Response:
    state = state_of(request)
    key = request.path_params["key"]
    now = state.clock()
    resource = f"/{key}"
    try:
        state.presigner.verify(key, dict(request.query_params), now=now.timestamp())
    except PresignError as exc:
        return _xml(403, exc.code, exc.message, resource)
    status = state.faults.download_error_status()
    if status is not None:
        state.stats.fault(f"download_{status}")
        return _xml(status, *_S3_ERRORS[status], resource)
    try:
        path = await anyio.to_thread.run_sync(state.partition_file, key, now)
    except KeyError:
        return _xml(404, "NoSuchKey", "The specified key does not exist.", resource)
    media_type = CONTENT_TYPES.get(key.rsplit("/", 1)[-1].split(".", 1)[1], "application/octet-stream")
    variant = state.faults.file_variant()
    size = path.stat().st_size
    if variant == "truncated" and size > 0:
        state.stats.fault("download_truncated")
        return CutTransfer(path, size, size * 2 // 3, media_type)
    if variant == "corrupt" and size > 0:
        state.stats.fault("download_corrupt")
        headers = {"content-length": str(size)}
        return StreamingResponse(
            _chunks(path, size, corruption_window(size)), media_type=media_type, headers=headers
        )
    return FileResponse(path, media_type=media_type)
