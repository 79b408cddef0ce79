"""The sandbox's control endpoints (``/_sandbox/...``): health, statistics, ground truth, faults, quotas.

Every one but health answers localhost only. Ground truth is always "as of" the sandbox's clock: the
counts are what a query sent at that instant returns (nothing stamped later is served).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any, Final

import anyio
from starlette.requests import Request
from starlette.responses import Response

from cm_mcp.api.times import format_utc
from cm_mcp.dsl import DocQuery
from cm_mcp.sandbox.engine import KINDS
from cm_mcp.sandbox.faults import FaultParseError, merge_faults
from cm_mcp.sandbox.responses import json_response
from cm_mcp.sandbox.state import SandboxState, state_of
from cm_mcp.sandbox.timeline import visible_filter
from cm_mcp.sandbox.truth import episode_truth, expected_counts
from cm_mcp.sandbox.truth import scenarios as incident_scenarios

_LOCAL_HOSTS: Final = frozenset({"127.0.0.1", "::1", "localhost", "testclient"})


def _local_only(request: Request) -> Response | None:
    host = request.client.host if request.client else ""
    if host not in _LOCAL_HOSTS:
        return json_response({"message": "control endpoints answer localhost only"}, 403)
    return None


def _visible_documents(state: SandboxState, now: datetime) -> dict[str, int]:
    query = DocQuery(filters=[visible_filter(now)], now=now)
    return {str(kind): state.engine.index(kind).count(query) for kind in KINDS}


async def health(request: Request) -> Response:
    state = state_of(request)
    documents = await anyio.to_thread.run_sync(_visible_documents, state, state.clock())
    return json_response({"status": "ok", "documents": documents, "index_reused": state.engine.info.reused})


async def stats(request: Request) -> Response:
    if (denied := _local_only(request)) is not None:
        return denied
    state = state_of(request)
    info = state.engine.info
    now = state.clock()
    body = {
        **state.stats.snapshot(),
        "quotas": state.quotas.stats(now),
        "scroll_contexts": len(state.scrolls),
        "batch_jobs": len(state.batches),
        "index": {
            # `documents`: what a query sees now; `indexed`: also the rest of the hour, not yet served
            "documents": await anyio.to_thread.run_sync(_visible_documents, state, now),
            "indexed": info.counts,
            "cache_dir": str(info.cache_dir),
            "reused": info.reused,
            "open_seconds": round(info.seconds, 3),
        },
        "faults_config": state.faults.config.model_dump(),
    }
    return json_response(body)


def _window(state: SandboxState, now: datetime) -> dict[str, Any]:
    spec = state.engine.spec
    return {
        "as_of": format_utc(now),
        "data_window": {"start": format_utc(spec.start), "end": format_utc(min(spec.end, now))},
    }


async def scenarios(request: Request) -> Response:
    """Every incident's ground truth, and `documents`: expected_counts at the same instant."""
    if (denied := _local_only(request)) is not None:
        return denied
    state = state_of(request)
    spec, now = state.engine.spec, state.clock()

    def truth() -> dict[str, Any]:
        return {
            **_window(state, now),
            "incidents": incident_scenarios(spec, now),
            "documents": expected_counts(spec, now),
        }

    return json_response(await anyio.to_thread.run_sync(truth))


async def episodes(request: Request) -> Response:
    """The benign episodes (deploys, cron jobs, retry blips, error flaps...): not incidents."""
    if (denied := _local_only(request)) is not None:
        return denied
    state = state_of(request)
    now = state.clock()
    listed = await anyio.to_thread.run_sync(episode_truth, state.engine.spec, now)
    return json_response({**_window(state, now), "episodes": listed})


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
