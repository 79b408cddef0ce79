"""The sandbox's Starlette app: the 12 API endpoints, S3-style downloads and the control endpoints.

    app = create_app(SandboxConfig(volume=3000))          # builds (or reuses) the index
    app.state.sandbox                                      # the SandboxState: stats, quotas, faults...

Every API request goes through `SandboxState.gate` in this order, and stops at the first failure:
1. JWT (HS256, sandbox secret): 401 when missing, malformed, badly signed or expired.
2. JSON body and validation with the request models of cm_mcp.api.requests (the one source of truth):
   400. Invalid requests do NOT consume quota (a typo should not cost one of ~50 daily requests, and the
   client validates locally anyway); they are counted in /_sandbox/stats.
3. Quota per (token subject, endpoint family), reset at 00:00 UTC: 429 with Retry-After = seconds to
   midnight UTC. Batch status polls and /v1/logs/batch/urls are free.
Faults (latency, 5xx, resets, 429 bursts) are applied before all of that by `FaultMiddleware`: they
model the network and gateway in front of the API, and answer in the endpoint's own error shape.

Error bodies (the reference documents three shapes, item 38):
- V1: ``{"status_code": N, "detail": "..."}`` for every error.
- V2 invalid input: ``{"error": "Invalid input", "details": "<path>: <message>; ..."}``.
- V2 unknown/expired batch token: 404 ``{"message": "No record of this token. Note: Tokens expire
  after 2 hours"}``; unknown/expired scroll_id: 404 ``{"message": "No search context found ..."}``.
- V2 401/429/5xx: ``{"message": "..."}`` (the API-gateway style the 404 already uses).
- anything unexpected: 500 ``{"message": "Internal server error", "request_id": ...}``, traceback on
  stderr (logger ``cm_mcp.sandbox``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import logging
import math
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

import anyio
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from cm_mcp.api.endpoints import ENDPOINTS, ENDPOINTS_BY_PATH, Endpoint
from cm_mcp.api.errors import RequestValidationError
from cm_mcp.api.requests import REQUEST_MODELS, APIRequest, parse_request
from cm_mcp.api.times import format_utc
from cm_mcp.sandbox import auth
from cm_mcp.sandbox.batchjobs import (
    CONTENT_TYPES,
    BatchJob,
    BatchRegistry,
    PartitionStatus,
    TokenUnknown,
    write_partition_file,
)
from cm_mcp.sandbox.config import SandboxConfig
from cm_mcp.sandbox.data import DataSpec
from cm_mcp.sandbox.engine import SandboxEngine, Selection, default_data_dir
from cm_mcp.sandbox.faults import FaultInjector, FaultParseError, merge_faults
from cm_mcp.sandbox.incidents import load_scenarios
from cm_mcp.sandbox.presign import Presigner, PresignError, s3_error_xml
from cm_mcp.sandbox.quotas import QuotaExhausted, Quotas
from cm_mcp.sandbox.scrolls import ScrollRegistry

logger = logging.getLogger("cm_mcp.sandbox")

SCROLL_UNKNOWN_MESSAGE: Final = (
    "No search context found for this scroll_id (unknown or expired after 5 minutes idle)"
)
V1_APPLICATIONS: Final = "atr, klewer, eventops, quasar"
_LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})
_OBJECT_KEY: Final = re.compile(
    r"^(?P<kind>logs|workloads|v1_logs)/(?P<token>[A-Za-z0-9_-]+)/part-(?P<i>\d{4})\."
)

Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


# --- responses ---------------------------------------------------------------------------------------


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def error_response(
    endpoint: Endpoint,
    status: int,
    message: str,
    *,
    request_id: str,
    headers: dict[str, str] | None = None,
    invalid_input: bool = False,
) -> JSONResponse:
    """The error body in the endpoint's documented shape (see the module docstring)."""
    body: dict[str, Any]
    if endpoint.version == "v1":
        body = {"status_code": status, "detail": message}
    elif invalid_input:
        body = {"error": "Invalid input", "details": message}
    else:
        body = {"message": message}
    return json_response(body, status, {"x-request-id": request_id, **(headers or {})})


def _v1_detail(exc: RequestValidationError) -> str:
    """V1 400 text: the documented sentences where the reference has one, else 'path: message'."""
    for issue in exc.issues:
        if issue.path == "application" and issue.message != "required field is missing":
            return f"Invalid application type. Must be one of: {V1_APPLICATIONS}"
        if issue.message == "required field is missing":
            return f"Invalid input. Missing {issue.path} variable in payload"
    return "Invalid input. " + "; ".join(str(issue) for issue in exc.issues)


# --- per-request context -----------------------------------------------------------------------------


@dataclass
class Call:
    """An authenticated, validated, quota-counted API call, handed to the route's handler."""

    endpoint: Endpoint
    request: APIRequest
    sub: str
    now: datetime
    request_id: str
    #: remaining daily requests after this one; None for free endpoints
    remaining: int | None
    base_url: str


Handler = Callable[["SandboxState", Call], Awaitable[Response]]


@dataclass
class Stats:
    """Counters for GET /_sandbox/stats; guarded by a lock (handlers run in threads too)."""

    started: float = field(default_factory=time.time)
    by_endpoint: dict[str, Counter[str]] = field(default_factory=dict)
    invalid_requests: Counter[str] = field(default_factory=Counter)
    faults: Counter[str] = field(default_factory=Counter)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def record(self, path: str, status: str) -> None:
        with self._lock:
            self.by_endpoint.setdefault(path, Counter())[status] += 1

    def invalid(self, endpoint: str) -> None:
        with self._lock:
            self.invalid_requests[endpoint] += 1

    def fault(self, kind: str) -> None:
        with self._lock:
            self.faults[kind] += 1

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {
                "uptime_seconds": round(time.time() - self.started, 3),
                "requests": {
                    path: {"total": sum(c.values()), "by_status": dict(sorted(c.items()))}
                    for path, c in sorted(self.by_endpoint.items())
                },
                "invalid_requests": dict(self.invalid_requests),
                "faults": dict(self.faults),
            }


class SandboxState:
    """Everything one running sandbox holds; `clock` is injectable so tests can move time."""

    def __init__(
        self,
        config: SandboxConfig,
        engine: SandboxEngine,
        *,
        clock: Clock = _utc_now,
        secret: str = auth.DEFAULT_SECRET,
    ) -> None:
        self.config = config
        self.engine = engine
        self.clock = clock
        self.secret = secret
        self.faults = FaultInjector(config.faults)
        self.quotas = Quotas(config.quota_limits)
        self.presigner = Presigner()
        self.scrolls = ScrollRegistry(idle_seconds=config.scroll_idle_seconds)
        self.batches = BatchRegistry(
            batch_seconds=config.batch_seconds,
            token_ttl_seconds=config.token_ttl_hours * 3600,
            file_format=config.file_format,
            faults=self.faults,
        )
        self.stats = Stats()
        data_dir = config.data_dir or default_data_dir()
        (data_dir / "sandbox").mkdir(parents=True, exist_ok=True)
        # Partition files of this run only: removed on shutdown, never mixed with another run's.
        self.files_dir = Path(tempfile.mkdtemp(prefix="files-", dir=data_dir / "sandbox"))
        self._file_locks: dict[str, threading.Lock] = {}
        self._file_locks_guard = threading.Lock()
        self._writers: set[str] = set()  # object keys whose file is being (or was) written

    def issue_token(self, sub: str = "sandbox-user", ttl_seconds: int | None = None) -> str:
        ttl = ttl_seconds if ttl_seconds is not None else int(self.config.jwt_ttl_hours * 3600)
        return auth.issue_token(sub, ttl_seconds=ttl, secret=self.secret, now=self.clock().timestamp())

    def close(self) -> None:
        shutil.rmtree(self.files_dir, ignore_errors=True)

    # --- the API gate ------------------------------------------------------------------------------

    async def gate(self, request: Request, endpoint_name: str, handler: Handler) -> Response:
        endpoint = ENDPOINTS[endpoint_name]
        request_id = str(uuid.uuid4())
        now = self.clock()
        try:
            claims = auth.verify(
                request.headers.get("authorization"), secret=self.secret, now=now.timestamp()
            )
        except auth.AuthError as exc:
            if endpoint.version == "v1":
                detail = f"Invalid or missing token ({exc.detail})"
            else:
                detail = f"Unauthorized: {exc.detail}"
            return error_response(endpoint, 401, detail, request_id=request_id)
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            body = None
        if not isinstance(body, dict):
            self.stats.invalid(endpoint_name)
            return error_response(
                endpoint,
                400,
                "(request): body must be a JSON object",
                request_id=request_id,
                invalid_input=True,
            )
        try:
            parsed = parse_request(REQUEST_MODELS[endpoint_name], body, now=now)
        except RequestValidationError as exc:
            self.stats.invalid(endpoint_name)
            if endpoint.version == "v1":
                message = _v1_detail(exc)
            else:
                message = "; ".join(str(issue) for issue in exc.issues)
            return error_response(endpoint, 400, message, request_id=request_id, invalid_input=True)
        sub = str(claims["sub"])
        try:
            remaining = self.quotas.consume(sub, endpoint_name, now)
        except QuotaExhausted as exc:
            retry_after = max(1, math.ceil((exc.reset_at - now).total_seconds()))
            return error_response(
                endpoint, 429, str(exc), request_id=request_id, headers={"Retry-After": str(retry_after)}
            )
        call = Call(endpoint, parsed, sub, now, request_id, remaining, str(request.base_url).rstrip("/"))
        response = await handler(self, call)
        response.headers.setdefault("x-request-id", request_id)
        return response

    def meta(self, call: Call, sel: Selection | None, **extra: Any) -> dict[str, Any]:
        """The V2 `meta` object: fixed keys, then the endpoint's echoes (`extra`, None values dropped)."""
        meta: dict[str, Any] = {"api_version": "v2"}
        if sel is not None:
            meta["time_range"] = {"start": format_utc(sel.start), "end": format_utc(sel.end)}
        meta["rate_limit"] = {"daily_remaining": call.remaining}
        meta["request_id"] = call.request_id
        meta.update({k: v for k, v in extra.items() if v is not None})
        return meta

    # --- batch files -------------------------------------------------------------------------------

    def presigned_url(self, base_url: str, object_key: str, now: datetime) -> str:
        expires = self.config.presign_expires_seconds
        signed_at = now.timestamp()
        if self.faults.expired_url():  # signed long enough ago to be expired already
            signed_at -= expires + 60
        return self.presigner.sign(f"{base_url}/_s3", object_key, expires, now=signed_at)

    def published(self, job: BatchJob, now: datetime) -> list[PartitionStatus]:
        """The job's partition states as the API reports them: like S3, a partition is `completed`
        only once its file exists. When the clock says a partition is done, its file is written in a
        background thread and the partition reads `processing` until then, so a download never waits
        on the sandbox writing a large file (a client's read timeout would fire first)."""
        statuses = job.status(now.timestamp())
        shown = []
        for index, status in enumerate(statuses):
            if status.completed and not self._file_path(status.object_key).exists():
                self._start_writing(job, index, status)
                status = dataclasses.replace(status, state="processing")
            shown.append(status)
        return shown

    def partition_file(self, object_key: str, now: datetime) -> Path:
        """The file behind `object_key` (written now if need be); raises KeyError when not downloadable."""
        match = _OBJECT_KEY.match(object_key)
        if match is None:
            raise KeyError(object_key)
        try:
            job = self.batches.get(match["token"], now.timestamp())
        except TokenUnknown:
            raise KeyError(object_key) from None
        index = int(match["i"])
        statuses = job.status(now.timestamp())
        if index >= len(statuses) or not statuses[index].completed or job.object_key(index) != object_key:
            raise KeyError(object_key)
        return self._write_file(job, index, statuses[index])

    def _file_path(self, object_key: str) -> Path:
        return self.files_dir / object_key

    def _start_writing(self, job: BatchJob, index: int, status: PartitionStatus) -> None:
        with self._file_locks_guard:
            if status.object_key in self._writers:
                return
            self._writers.add(status.object_key)
        threading.Thread(
            target=self._write_file, args=(job, index, status), name=f"sandbox-file-{index}", daemon=True
        ).start()

    def _write_file(self, job: BatchJob, index: int, status: PartitionStatus) -> Path:
        """Write the partition's file once (atomically: a `.part` file renamed when complete)."""
        object_key = status.object_key
        path = self._file_path(object_key)
        with self._file_locks_guard:
            lock = self._file_locks.setdefault(object_key, threading.Lock())
        with lock:
            if not path.exists():
                partition = status.partition
                part_sel: Selection = job.query[index]
                tmp = path.with_name(path.name + ".part")
                written = write_partition_file(
                    tmp, self.engine.iter_hits(part_sel), job.file_format, partition.variant
                )
                tmp.replace(path)
                if written != partition.count:  # the index is read-only: this would be a sandbox bug
                    logger.error(
                        "partition %s: wrote %d records, expected %d", object_key, written, partition.count
                    )
        return path


def state_of(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state


# --- middleware: stats and faults --------------------------------------------------------------------


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

        async def counting_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = str(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, counting_send)
        finally:
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
            await _drop_connection(scope)
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


#: Scope extension under which the server's own `send` is kept (see `expose_server_send`).
RAW_SEND_EXTENSION: Final = "cm_mcp.sandbox.raw_send"


def expose_server_send(app: ASGIApp) -> ASGIApp:
    """Wrap `app` so inner middleware can reach the server's `send` (Starlette wraps it on the way in).

    Used by the runner around the whole app: the connection-reset fault needs the server's transport.
    """

    async def wrapper(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "extensions": {**(scope.get("extensions") or {}), RAW_SEND_EXTENSION: send}}
        await app(scope, receive, send)

    return wrapper


async def _drop_connection(scope: Scope) -> None:
    """Close the connection without any response bytes, as a reset would.

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


# --- control endpoints -------------------------------------------------------------------------------


def _local_only(request: Request) -> Response | None:
    host = request.client.host if request.client else ""
    if host not in _LOCAL_HOSTS:
        return json_response({"message": "control endpoints answer localhost only"}, 403)
    return None


async def health(request: Request) -> Response:
    state = state_of(request)
    info = state.engine.info
    return json_response({"status": "ok", "documents": info.counts, "index_reused": info.reused})


async def stats(request: Request) -> Response:
    if (denied := _local_only(request)) is not None:
        return denied
    state = state_of(request)
    info = state.engine.info
    body = {
        **state.stats.snapshot(),
        "quotas": state.quotas.stats(state.clock()),
        "scroll_contexts": len(state.scrolls),
        "batch_jobs": len(state.batches),
        "index": {
            "documents": info.counts,
            "cache_dir": str(info.cache_dir),
            "reused": info.reused,
            "open_seconds": round(info.seconds, 3),
        },
        "faults_config": state.faults.config.model_dump(),
    }
    return json_response(body)


async def scenarios(request: Request) -> Response:
    if (denied := _local_only(request)) is not None:
        return denied
    spec = state_of(request).engine.spec
    return json_response(
        {
            "data_window": {"start": format_utc(spec.start), "end": format_utc(spec.now)},
            "incidents": spec.scenarios(),
        }
    )


async def faults(request: Request) -> Response:
    if (denied := _local_only(request)) is not None:
        return denied
    state = state_of(request)
    if request.method == "POST":
        try:
            body = json.loads(await request.body() or b"{}")
            state.faults.configure(merge_faults(state.faults.config, body))
        except (ValueError, FaultParseError) as exc:
            return json_response({"error": "Invalid input", "details": str(exc)}, 400)
    return json_response(state.faults.config.model_dump())


async def reset_quotas(request: Request) -> Response:
    if (denied := _local_only(request)) is not None:
        return denied
    state_of(request).quotas.reset()
    return json_response({"status": "ok"})


async def token(request: Request) -> Response:
    if (denied := _local_only(request)) is not None:
        return denied
    state = state_of(request)
    sub = request.query_params.get("sub", "sandbox-user")
    try:
        ttl = int(request.query_params.get("ttl", state.config.jwt_ttl_hours * 3600))
    except ValueError:
        return json_response({"error": "Invalid input", "details": "ttl: must be an integer (seconds)"}, 400)
    jwt = state.issue_token(sub, ttl)
    expires = datetime.fromtimestamp(state.clock().timestamp() + ttl, UTC)
    return json_response({"token": jwt, "sub": sub, "expires_at": format_utc(expires)})


# --- S3-style downloads ------------------------------------------------------------------------------


async def s3_object(request: Request) -> Response:
    state = state_of(request)
    key = request.path_params["key"]
    now = state.clock()
    resource = f"/{key}"
    try:
        state.presigner.verify(key, dict(request.query_params), now=now.timestamp())
    except PresignError as exc:
        return Response(s3_error_xml(exc.code, exc.message, resource), 403, media_type="application/xml")
    try:
        path = await anyio.to_thread.run_sync(state.partition_file, key, now)
    except KeyError:
        xml = s3_error_xml("NoSuchKey", "The specified key does not exist.", resource)
        return Response(xml, 404, media_type="application/xml")
    fmt = key.rsplit("/", 1)[-1].split(".", 1)[1]
    return FileResponse(path, media_type=CONTENT_TYPES.get(fmt, "application/octet-stream"))


# --- the app -----------------------------------------------------------------------------------------


def build_spec(config: SandboxConfig, now: datetime | None = None) -> DataSpec:
    extra = load_scenarios(config.scenarios_file) if config.scenarios_file else []
    return DataSpec.create(
        now,
        seed=config.seed,
        volume=config.volume,
        window_days=config.window_days,
        workloads_per_day=config.workloads_per_day,
        builtin_incidents=config.builtin_incidents,
        extra_incidents=extra,
    )


Endpoint_ = Callable[[Request], Awaitable[Response]]


def _guarded(fn: Endpoint_) -> Endpoint_:
    """`fn`, with any unexpected exception turned into a 500 JSON body and a traceback on stderr.

    Done here rather than with a Starlette exception handler, which would re-raise after answering
    and make the server log the same failure twice.
    """

    async def endpoint(request: Request) -> Response:
        try:
            return await fn(request)
        except Exception:
            request_id = str(uuid.uuid4())
            logger.exception("unexpected error on %s (request_id %s)", request.url.path, request_id)
            return json_response({"message": "Internal server error", "request_id": request_id}, 500)

    endpoint.__name__ = getattr(fn, "__name__", "endpoint")
    return endpoint


def _api_route(path: str, endpoint_name: str, handler: Handler) -> Route:
    async def endpoint(request: Request) -> Response:
        return await state_of(request).gate(request, endpoint_name, handler)

    endpoint.__name__ = endpoint_name
    return Route(path, _guarded(endpoint), methods=["POST"])


def create_app(
    config: SandboxConfig | None = None,
    *,
    engine: SandboxEngine | None = None,
    clock: Clock = _utc_now,
    now: datetime | None = None,
) -> Starlette:
    """The sandbox app. `engine` lets several apps share one index (tests); `now` pins the data's hour."""
    # Imported here: the route modules import this one (state, Call, error shapes) at their top.
    from cm_mcp.sandbox import routes_v1, routes_v2

    config = config or SandboxConfig()
    if engine is None:
        engine = SandboxEngine.open_or_build(build_spec(config, now), config.data_dir)
    state = SandboxState(config, engine, clock=clock)
    handlers = {**routes_v2.HANDLERS, **routes_v1.HANDLERS}
    routes = [
        *(_api_route(ENDPOINTS[name].path, name, handler) for name, handler in handlers.items()),
        Route("/_sandbox/health", _guarded(health), methods=["GET"]),
        Route("/_sandbox/stats", _guarded(stats), methods=["GET"]),
        Route("/_sandbox/scenarios", _guarded(scenarios), methods=["GET"]),
        Route("/_sandbox/faults", _guarded(faults), methods=["GET", "POST"]),
        Route("/_sandbox/quotas/reset", _guarded(reset_quotas), methods=["POST"]),
        Route("/_sandbox/token", _guarded(token), methods=["GET"]),
        Route("/_s3/{key:path}", _guarded(s3_object), methods=["GET"]),
    ]

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        try:
            yield
        finally:
            state.close()

    app = Starlette(routes=routes, lifespan=lifespan)
    app.state.sandbox = state
    # Outermost first: stats see faults too; faults act before routing, auth and quotas.
    app.add_middleware(FaultMiddleware, state=state)
    app.add_middleware(StatsMiddleware, stats=state.stats)
    return app
