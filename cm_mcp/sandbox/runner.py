"""Run the sandbox over real HTTP: in the current event loop, or in a background thread.

    async with serve_sandbox(SandboxConfig(port=0)) as running:     # ephemeral port
        client = CMClient(api_url=running.url, token=running.token)
        running.state.stats.snapshot()

    handle = start_sandbox_thread(config)    # for the (synchronous) stdio MCP server
    ... handle.url, handle.token ...
    handle.stop()

The index is built (or reopened) before the socket accepts connections, in a worker thread so the
event loop stays responsive; "ready" means uvicorn is accepting connections. The socket is bound by us
(port 0 = ephemeral) so the URL is known before uvicorn starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import threading
import time
from collections.abc import AsyncIterator, Generator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import anyio
import uvicorn
from starlette.applications import Starlette
from starlette.responses import JSONResponse

from cm_mcp.sandbox import auth
from cm_mcp.sandbox.app import SandboxState, build_spec, create_app, expose_server_send
from cm_mcp.sandbox.config import SandboxConfig
from cm_mcp.sandbox.engine import SandboxEngine

logger = logging.getLogger("cm_mcp.sandbox")

#: What a first start's index build does on two idle cores (bench/sandbox.py: 33-35k docs/s), for
#: the "about N s" of the start-up log line.
EXPECTED_BUILD_DOCS_PER_SECOND = 30_000
#: How long `start_sandbox_thread` waits for the index and the server before giving up.
START_TIMEOUT_SECONDS = 300.0


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host (pytest, the MCP server)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class RunningSandbox:
    url: str
    #: a fresh JWT for the sandbox (a secret: print it only where the user asked for it)
    token: str
    #: None while a sandbox started with `build_in_background` is still building its data
    app: Starlette | None
    server: uvicorn.Server
    task: asyncio.Task[None]

    @property
    def state(self) -> SandboxState:
        if self.app is None:
            raise RuntimeError("the sandbox is still building its data")
        state: SandboxState = self.app.state.sandbox
        return state

    def stop(self) -> None:
        self.server.should_exit = True


def _bind(host: str, port: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    sock.listen(128)
    sock.setblocking(False)
    return sock


class _WhenBuilt:
    """The ASGI app of a sandbox whose data is still being built: requests wait for the real app
    (at most `START_TIMEOUT_SECONDS`), then go to it; a build that failed answers 503 saying why.
    `GET /_sandbox/health` answers at once meanwhile: status "building", for how long so far."""

    def __init__(self) -> None:
        self.app: Starlette | None = None
        self.error: BaseException | None = None
        self.ready = anyio.Event()
        self.started = time.monotonic()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if self.app is None and self.error is None and scope.get("path") == "/_sandbox/health":
            building = {"status": "building", "seconds": round(time.monotonic() - self.started, 1)}
            await JSONResponse(building)(scope, receive, send)
            return
        if self.app is None:
            with anyio.move_on_after(START_TIMEOUT_SECONDS):
                await self.ready.wait()
        if self.app is None:
            reason = f"the sandbox could not build its data: {self.error}" if self.error else "still building"
            response = JSONResponse({"message": reason}, status_code=503)
            await response(scope, receive, send)
            return
        await expose_server_send(self.app)(scope, receive, send)

    async def build(self, create: Any) -> None:
        try:
            self.app = await anyio.to_thread.run_sync(create)
            logger.warning(
                "sandbox data ready (%.1f s): requests are answered", time.monotonic() - self.started
            )
        except Exception as exc:
            self.error = exc
            logger.exception("the sandbox could not build its data")
        finally:
            self.ready.set()


@contextlib.asynccontextmanager
async def serve_sandbox(
    config: SandboxConfig | None = None,
    *,
    app: Starlette | None = None,
    now: datetime | None = None,
    handle_signals: bool = False,
    build_in_background: bool = False,
    **app_kwargs: Any,
) -> AsyncIterator[RunningSandbox]:
    """Serve the sandbox on `config.host:config.port` (0 = ephemeral) until the block exits.

    `app` serves an already created app (e.g. sharing an index); `app_kwargs` go to `create_app`.
    `handle_signals` lets uvicorn handle SIGINT/SIGTERM (the CLI); embedded servers leave them alone.
    `build_in_background` (a first start on a fresh machine builds the data's index): accept
    connections at once and build meanwhile; requests made before the data is ready wait for it.
    Then `running.app` is None until it is built (`running.state` needs it).
    """
    config = config or SandboxConfig()
    deferred: _WhenBuilt | None = None
    if app is None and build_in_background:
        # What can be wrong with the request (a bad scenarios file) fails here, at start, as it would
        # without the background build; only the index build itself runs behind the server.
        spec = await anyio.to_thread.run_sync(lambda: build_spec(config, now))
        deferred = _WhenBuilt()
    elif app is None:
        app = await anyio.to_thread.run_sync(lambda: create_app(config, now=now, **app_kwargs))
    sock = _bind(config.host, config.port)
    host, port = sock.getsockname()[:2]
    served: Any = deferred if deferred is not None else expose_server_send(app)  # type: ignore[arg-type]
    uv_config = uvicorn.Config(
        served,
        log_level="warning",
        access_log=False,
        lifespan="off",
        timeout_graceful_shutdown=2,
    )
    server = (uvicorn.Server if handle_signals else _EmbeddedServer)(uv_config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    building: asyncio.Task[None] | None = None
    try:
        while not server.started:
            if task.done():  # failed to start: surface its exception
                task.result()
                raise RuntimeError("sandbox server exited before it started")
            await asyncio.sleep(0.01)
        url_host = f"[{host}]" if ":" in host else host
        url = f"http://{url_host}:{port}"
        if deferred is not None:
            building = asyncio.create_task(
                deferred.build(
                    lambda: create_app(
                        config,
                        engine=app_kwargs.pop("engine", None)
                        or SandboxEngine.open_or_build(spec, config.data_dir),
                        now=now,
                        **app_kwargs,
                    )
                )
            )
            # The token SandboxState would issue: same secret (the default), same lifetime.
            ttl = int(config.jwt_ttl_hours * 3600)
            token = auth.issue_token(ttl_seconds=ttl, secret=auth.DEFAULT_SECRET)
            logger.warning(
                "sandbox API at %s: building its data (%s logs) in the background, about %.0f s on idle cores; requests "
                "wait for it (GET /_sandbox/health says when it is ready)",
                url,
                f"{config.volume * config.window_days:,}",
                config.volume * config.window_days / EXPECTED_BUILD_DOCS_PER_SECOND,
            )
            yield RunningSandbox(url, token, None, server, task)
        else:
            assert app is not None
            state: SandboxState = app.state.sandbox
            yield RunningSandbox(url, state.issue_token(), app, server, task)
    finally:
        server.should_exit = True
        with contextlib.suppress(Exception):
            await task
        sock.close()
        if deferred is not None:
            if building is not None:
                with contextlib.suppress(BaseException):
                    await building
            app = deferred.app
        if app is not None:
            app.state.sandbox.close()


async def serve_until_stopped(running: RunningSandbox) -> None:
    """Wait until the server exits (a signal, or `running.stop()`)."""
    await asyncio.shield(running.task)


@dataclass
class SandboxThread:
    """A sandbox served from a daemon thread with its own event loop."""

    url: str
    token: str
    running: RunningSandbox
    thread: threading.Thread
    _stopped: threading.Event

    def stop(self, timeout: float = 10.0) -> None:
        self.running.stop()
        self._stopped.wait(timeout)
        self.thread.join(timeout)


def start_sandbox_thread(config: SandboxConfig | None = None, **kwargs: Any) -> SandboxThread:
    """Start the sandbox in a background thread; returns once it accepts connections."""
    ready = threading.Event()
    stopped = threading.Event()
    box: dict[str, Any] = {}

    async def main() -> None:
        try:
            async with serve_sandbox(config, **kwargs) as running:
                box["running"] = running
                ready.set()
                await serve_until_stopped(running)
        except BaseException as exc:
            box["error"] = exc
            raise
        finally:
            ready.set()
            stopped.set()

    def run() -> None:
        with contextlib.suppress(BaseException):
            asyncio.run(main())

    thread = threading.Thread(target=run, name="cm-mcp-sandbox", daemon=True)
    thread.start()
    if not ready.wait(START_TIMEOUT_SECONDS):
        raise TimeoutError("the sandbox did not start in time")
    if "error" in box:
        raise RuntimeError(f"the sandbox failed to start: {box['error']}") from box["error"]
    running: RunningSandbox = box["running"]
    return SandboxThread(running.url, running.token, running, thread, stopped)
