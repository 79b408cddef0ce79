"""The V1 endpoints (/v1/logs/scroll, /v1/logs/batch, /v1/logs/batch/urls) and billing (/v1/query).

Documented choices (reference items in brackets):
- every error is ``{"status_code": N, "detail": "..."}`` (38); an unknown or expired batch token on
  /v1/logs/batch/urls is the documented 401 "Invalid or missing token" (39); an unknown or expired
  scroll_id is a 404.
- `logs` entries of /v1/logs/scroll are the same ``_index/_id/_source/_score`` hits as V2 (22); the
  last page has ``has_more: false`` and ``scroll_id: null``; a continuation re-sends the original body
  plus scroll_id (8) and only the scroll_id is used.
- /v1/logs/batch returns the documented echo ``logs: [{domain, time_range}]`` plus the token.
- /v1/logs/batch/urls entries: ``time_range`` is ``"<start>/<end>"`` in ISO 8601, ``ready`` is
  true once completed, ``presigned_url`` is "null" until then.
- /v1/query: `ticket_count` covers [time_range, now]; every domain of the data has a summary (those
  only a scenario introduces too); any other domain is a 400.
- page size defaults to 1000 (the reference's example).
"""

from __future__ import annotations

from typing import Final

from starlette.responses import Response

from cm_mcp.api.requests import (
    BillingQueryRequest,
    V1BatchUrlsRequest,
    V1LogsBatchRequest,
    V1LogsScrollRequest,
)
from cm_mcp.api.times import format_utc, resolve_date_math
from cm_mcp.sandbox.batchjobs import PartitionStatus, TokenUnknown
from cm_mcp.sandbox.billing import billing_profile, billing_summary
from cm_mcp.sandbox.data import billed_domains
from cm_mcp.sandbox.engine import v1_selection
from cm_mcp.sandbox.responses import error_response, json_response
from cm_mcp.sandbox.routes_v2 import in_thread, job_statuses, read_page, submit_batch, url_of
from cm_mcp.sandbox.state import Call, Handler, SandboxState

DEFAULT_V1_PAGE: Final = 1000
V1_JOB: Final = "v1_logs"


async def v1_logs_scroll(state: SandboxState, call: Call) -> Response:
    req = call.request
    assert isinstance(req, V1LogsScrollRequest)
    page = await read_page(
        state, call, "logs", req.scroll_id, lambda: v1_selection(req, call.now), req.size or DEFAULT_V1_PAGE
    )
    if isinstance(page, Response):  # 404 in the V1 error shape (error_response picks it by endpoint)
        return page
    body = {
        "logs": page.hits,
        "scroll_id": page.scroll_id,
        "has_more": page.scroll_id is not None,
        "daily_requests_remaining": call.remaining,
    }
    return json_response(body)


async def v1_logs_batch(state: SandboxState, call: Call) -> Response:
    req = call.request
    assert isinstance(req, V1LogsBatchRequest)
    sel = v1_selection(req, call.now)
    token = await in_thread(lambda: submit_batch(state, call, V1_JOB, sel))
    body = {
        "logs": [{"domain": req.domain, "time_range": req.time_range}],
        "token": token,
        "daily_requests_remaining": call.remaining,
    }
    return json_response(body)


async def v1_logs_batch_urls(state: SandboxState, call: Call) -> Response:
    req = call.request
    assert isinstance(req, V1BatchUrlsRequest)
    try:
        statuses: list[PartitionStatus] = await in_thread(
            lambda: job_statuses(state, call, V1_JOB, req.token)
        )
    except TokenUnknown:
        return error_response(call.endpoint, 401, "Invalid or missing token", request_id=call.request_id)
    entries = [
        {
            "presigned_url": url_of(state, call, status),
            "time_range": f"{format_utc(status.partition.start)}/{format_utc(status.partition.end)}",
            "ready": status.completed,
            "status": status.state,
        }
        for status in statuses
    ]
    return json_response({"presigned_urls": entries})


async def billing_query(state: SandboxState, call: Call) -> Response:
    req = call.request
    assert isinstance(req, BillingQueryRequest)
    start = resolve_date_math(req.time_range, call.now, "down")
    known = billed_domains(state.engine.spec).get(req.domain)
    if known is None:
        detail = f"Invalid input. Unknown domain {req.domain!r}"
        return error_response(call.endpoint, 400, detail, request_id=call.request_id)
    profile = billing_profile(req.domain, *known, seed=state.config.seed)
    summary = billing_summary(profile, req.time_range, start, call.now)
    return json_response({"summary": summary, "daily_requests_remaining": call.remaining})


HANDLERS: Final[dict[str, Handler]] = {
    "v1_logs_scroll": v1_logs_scroll,
    "v1_logs_batch": v1_logs_batch,
    "v1_logs_batch_urls": v1_logs_batch_urls,
    "billing_query": billing_query,
}
