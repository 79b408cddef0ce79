"""The sandbox's Starlette app: the 12 API endpoints, S3-style downloads and the control endpoints.

    app = create_app(SandboxConfig(volume=3000))          # builds (or reuses) the index
    app.state.sandbox                                      # the SandboxState: stats, quotas, faults...

Where things are: state.py (the per-run state and the gate every API request passes: JWT, validation,
quota), routes_v2.py / routes_v1.py (the endpoints), downloads.py (presigned file downloads and their
transfer faults), control.py (``/_sandbox/...``), middleware.py (statistics and network faults),
responses.py (the documented error shapes).
"""

from __future__ import annotations

import contextlib
import logging
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import datetime

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from cm_mcp.api.endpoints import ENDPOINTS
from cm_mcp.sandbox import control, routes_v1, routes_v2
from cm_mcp.sandbox.config import SandboxConfig
from cm_mcp.sandbox.data import DataSpec
from cm_mcp.sandbox.downloads import s3_object
from cm_mcp.sandbox.engine import SandboxEngine
from cm_mcp.sandbox.incidents import load_scenarios
from cm_mcp.sandbox.middleware import FaultMiddleware, StatsMiddleware, expose_server_send
from cm_mcp.sandbox.responses import json_response
from cm_mcp.sandbox.state import Clock, Handler, SandboxState, state_of, utc_now

__all__ = ["SandboxState", "build_spec", "create_app", "expose_server_send"]

logger = logging.getLogger("cm_mcp.sandbox")

Endpoint_ = Callable[[Request], Awaitable[Response]]


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
    clock: Clock = utc_now,
    now: datetime | None = None,
) -> Starlette:
    """The sandbox app. `engine` lets several apps share one index (tests); `now` pins the data's hour."""
    config = config or SandboxConfig()
    if engine is None:
        engine = SandboxEngine.open_or_build(build_spec(config, now), config.data_dir)
    state = SandboxState(config, engine, clock=clock)
    handlers = {**routes_v2.HANDLERS, **routes_v1.HANDLERS}
    routes = [
        *(_api_route(ENDPOINTS[name].path, name, handler) for name, handler in handlers.items()),
        Route("/_sandbox/health", _guarded(control.health), methods=["GET"]),
        Route("/_sandbox/stats", _guarded(control.stats), methods=["GET"]),
        Route("/_sandbox/scenarios", _guarded(control.scenarios), methods=["GET"]),
        Route("/_sandbox/episodes", _guarded(control.episodes), methods=["GET"]),
        Route("/_sandbox/faults", _guarded(control.faults), methods=["GET", "POST"]),
        Route("/_sandbox/quotas/reset", _guarded(control.reset_quotas), methods=["POST"]),
        Route("/_sandbox/token", _guarded(control.token), methods=["GET"]),
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
