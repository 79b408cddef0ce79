"""One running sandbox's state, and the gate every API request passes.

`SandboxState.gate` checks, in this order, and stops at the first failure:
1. JWT (HS256, sandbox secret): 401 when missing, malformed, badly signed or expired.
2. JSON body and validation with the request models of cm_mcp.api.requests (the one source of truth):
   400. Invalid requests do NOT consume quota (a typo should not cost one of ~50 daily requests, and the
   client validates locally anyway); they are counted in /_sandbox/stats.
3. Quota per (token subject, endpoint family), reset at 00:00 UTC: 429 with Retry-After = seconds to
   midnight UTC. Batch status polls and /v1/logs/batch/urls are free.
Then the route's handler runs with a `Call`. Every selection a handler runs goes through `visible`:
nothing stamped after the request's time is ever served (timeline.py says why the index holds it).
"""

from __future__ import annotations

import atexit
import dataclasses
import functools
import json
import logging
import math
import os
import re
import shutil
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Final

from starlette.requests import Request
from starlette.responses import Response

from cm_mcp.api.endpoints import ENDPOINTS, Endpoint
from cm_mcp.api.errors import RequestValidationError
from cm_mcp.api.requests import REQUEST_MODELS, APIRequest, parse_request
from cm_mcp.api.times import format_utc
from cm_mcp.dsl import DocQuery
from cm_mcp.sandbox import auth
from cm_mcp.sandbox.batchjobs import (
    BatchJob,
    BatchRegistry,
    PartitionStatus,
    TokenUnknown,
    write_partition_file,
)
from cm_mcp.sandbox.config import SandboxConfig
from cm_mcp.sandbox.engine import SandboxEngine, Selection, default_data_dir
from cm_mcp.sandbox.faults import FaultInjector
from cm_mcp.sandbox.presign import Presigner
from cm_mcp.sandbox.quotas import QuotaExhausted, Quotas
from cm_mcp.sandbox.responses import error_response, v1_detail
from cm_mcp.sandbox.scrolls import ScrollRegistry
from cm_mcp.sandbox.timeline import visible_filter

logger = logging.getLogger("cm_mcp.sandbox")

Clock = Callable[[], datetime]
#: Partition files of one run live in `<data dir>/sandbox/files-<pid>-<random>/`.
FILES_PREFIX: Final = "files-"
_OBJECT_KEY: Final = re.compile(
    r"^(?P<kind>logs|workloads|v1_logs)/(?P<token>[A-Za-z0-9_-]+)/part-(?P<i>\d{4})\."
)


def utc_now() -> datetime:
    return datetime.now(UTC)


def visible(sel: Selection, now: datetime) -> Selection:
    """`sel` cut at `now`: the records a real API would have written by the time it answers."""
    q = sel.query
    query = DocQuery(
        filters=[*q.filters, visible_filter(now)], start=q.start, end=q.end, routing=q.routing, now=q.now
    )
    return dataclasses.replace(sel, query=query)


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


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's live process
        return True
    return True


def sweep_stale_files(root: Path) -> list[Path]:
    """Remove the partition-file folders of sandboxes whose process is gone (killed before cleaning up)."""
    removed = []
    for folder in root.glob(f"{FILES_PREFIX}*"):
        pid_text = folder.name[len(FILES_PREFIX) :].split("-", 1)[0]
        if (
            folder.is_dir()
            and pid_text.isdigit()
            and int(pid_text) != os.getpid()
            and not _pid_alive(int(pid_text))
        ):
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder)
    return removed


class SandboxState:
    """Everything one running sandbox holds; `clock` is injectable so tests can move time."""

    def __init__(
        self,
        config: SandboxConfig,
        engine: SandboxEngine,
        *,
        clock: Clock = utc_now,
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
        root = (config.data_dir or default_data_dir()) / "sandbox"
        root.mkdir(parents=True, exist_ok=True)
        sweep_stale_files(root)
        # Partition files of this run only: removed on shutdown (and at interpreter exit, should the
        # owner never call close()), never mixed with another run's; the pid lets a later run remove
        # them if this process is killed outright.
        self.files_dir = Path(tempfile.mkdtemp(prefix=f"{FILES_PREFIX}{os.getpid()}-", dir=root))
        self._remove_files = functools.partial(shutil.rmtree, self.files_dir, ignore_errors=True)
        atexit.register(self._remove_files)
        self._file_locks: dict[str, threading.Lock] = {}
        self._file_locks_guard = threading.Lock()
        self._writers: set[str] = set()  # object keys whose file is being (or was) written

    def issue_token(self, sub: str = "sandbox-user", ttl_seconds: int | None = None) -> str:
        ttl = ttl_seconds if ttl_seconds is not None else int(self.config.jwt_ttl_hours * 3600)
        return auth.issue_token(sub, ttl_seconds=ttl, secret=self.secret, now=self.clock().timestamp())

    def close(self) -> None:
        self._remove_files()
        atexit.unregister(self._remove_files)

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
                message = v1_detail(exc)
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
        """The intact file behind `object_key` (written now if need be); KeyError when not downloadable.

        Transfer faults (truncated, corrupt) are applied to each download by the S3 route, never here:
        the stored object stays whole, so a retry can succeed, as on a real network.
        """
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
                written = write_partition_file(tmp, self.engine.iter_hits(part_sel), job.file_format)
                tmp.replace(path)
                if written != partition.count:  # the index is read-only: this would be a sandbox bug
                    logger.error(
                        "partition %s: wrote %d records, expected %d", object_key, written, partition.count
                    )
        return path


def state_of(request: Request) -> SandboxState:
    state: SandboxState = request.app.state.sandbox
    return state
