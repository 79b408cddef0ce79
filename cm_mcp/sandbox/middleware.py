"""ASGI middleware of the sandbox: request statistics, and the network faults in front of the API.

Faults (latency, 5xx, connection resets, 429 bursts) are applied before routing, authentication and
quotas: they model the network and gateway in front of the API, and answer in the endpoint's own error
shape. Download faults (truncated or corrupt transfers, S3 5xx) are the S3 route's (downloads.py).
"""

from __future__ import annotations

import asyncio
import uuid
from typing import Final

import anyio
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cm_mcp.api.endpoints import ENDPOINTS_BY_PATH, Endpoint
from cm_mcp.sandbox.responses import error_response
from cm_mcp.sandbox.state import SandboxState, Stats

#: Scope extension under which the server's own `send` is kept (see `expose_server_send`).
RAW_SEND_EXTENSION: Final = "cm_mcp.sandbox.raw_send"


def _is_api(path: str) -> bool:
    return path.startswith(("/v1/", "/v2/"))


class StatsMiddleware:
    """Counts every response by path and status (a dropped connection counts as "reset")."""

    def __init__(self, app: ASGIApp, stats: Stats) -> None:
        self.app = app
        self.stats = stats

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"] if _is_api(scope["path"]) or scope["path"].startswith("/_sandbox") else "/_s3"
        status = "reset"
        recorded = False

        async def counting_send(message: Message) -> None:
            nonlocal status, recorded
            if message["type"] == "http.response.start":
                status = str(message["status"])
            elif message["type"] == "http.response.body" and not message.get("more_body", False):
                # Counted before the last byte leaves: a client that has its whole answer and then
                # reads /_sandbox/stats always finds this request counted (counting after the send
                # let a loaded test see one triage's request in the next one's count).
                self.stats.record(path, status)
                recorded = True
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
            if not recorded:
                self.stats.record(path, status)


class FaultMiddleware:
    """Injects the configured faults into API requests (never into /_sandbox or /_s3)."""

    def __init__(self, app: ASGIApp, state: SandboxState) -> None:
        self.app = app
        self.state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not _is_api(scope["path"]):
            await self.app(scope, receive, send)
            return
        faults, stats = self.state.faults, self.state.stats
        delay = faults.latency_seconds()
        if delay > 0:
            await anyio.sleep(delay)
        if faults.connection_reset():
            stats.fault("reset")
            await drop_connection(scope)
            return
        endpoint = ENDPOINTS_BY_PATH.get(scope["path"])
        status = faults.api_error_status()
        if status is not None:
            stats.fault(str(status))
            reason = {502: "Bad Gateway", 503: "Service Unavailable", 504: "Gateway Timeout"}[status]
            await _fault_response(endpoint, status, reason)(scope, receive, send)
            return
        if faults.take_429():
            stats.fault("429")
            # A short throttle, unlike the daily quota: Retry-After 1 lets a client retry (item 37).
            throttled = _fault_response(endpoint, 429, "Too Many Requests (throttled)", {"Retry-After": "1"})
            await throttled(scope, receive, send)
            return
        await self.app(scope, receive, send)


def _fault_response(
    endpoint: Endpoint | None, status: int, message: str, headers: dict[str, str] | None = None
) -> Response:
    """An injected failure in the shape the endpoint documents (V1 `{status_code, detail}`)."""
    if endpoint is None:  # an unknown /v1 or /v2 path: routing would 404 it anyway
        return JSONResponse({"message": message}, status_code=status, headers=headers)
    return error_response(endpoint, status, message, request_id=str(uuid.uuid4()), headers=headers)


class ConnectionDropped(Exception):
    """Raised to make the server drop a connection when its transport is not reachable."""


def expose_server_send(app: ASGIApp) -> ASGIApp:
    """Wrap `app` so inner middleware can reach the server's `send` (Starlette wraps it on the way in).

    Used by the runner around the whole app: the connection-reset fault needs the server's transport.
    """

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), RAW_SEND_EXTENSION: send}}
        await app(scope, receive, send)

    return wrapper


async def drop_connection(scope: Scope) -> None:
    """Close the connection at once, as a reset would (mid-response too: a cut transfer).

    Under uvicorn the server's `send` is a bound method of the request cycle, which holds the asyncio
    transport: aborting it closes the socket at once. Without it (an in-process ASGI transport) the
    exception propagates, which is what a reset looks like there.
    """
    send = (scope.get("extensions") or {}).get(RAW_SEND_EXTENSION)
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    abort = getattr(transport, "abort", None)
    if abort is None:
        raise ConnectionDropped("connection reset by fault injection")
    abort()
    # Let connection_lost() run so the server sees the cycle as disconnected and sends nothing.
    for _ in range(3):
        await asyncio.sleep(0)
