"""Lenient models of every documented 200 response.

Lenient means: unknown keys are kept (`extra="allow"`), every field the reference describes only by
example is optional, and only the payload a caller cannot do without is required (`data` of V2 scroll,
batch and aggs; the batch `token`; the status list; the billing `summary`). A body that lacks those is
a `pydantic.ValidationError`, never a silently empty result.

The batch status endpoints disagree on shape (reference items 23-26); `cm_mcp.api.partitions` turns
them into the one shape the rest of cm-mcp sees.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from pydantic import AliasChoices, BaseModel, ConfigDict, Field

from cm_mcp.api.times import parse_iso8601


class Lenient(BaseModel):
    """Base of the response models: unknown keys are kept, fields may be given by name or alias."""

    model_config = ConfigDict(extra="allow", validate_by_name=True, validate_by_alias=True)


# --- pieces shared by the V2 responses ---------------------------------------------------------------


class RateLimit(Lenient):
    daily_remaining: int | None = None


class TimeRange(Lenient):
    """`meta.time_range`: kept as text, since it may differ from the request (item 13)."""

    start: str | None = None
    end: str | None = None

    @property
    def start_time(self) -> datetime | None:
        return parse_time_or_none(self.start)

    @property
    def end_time(self) -> datetime | None:
        return parse_time_or_none(self.end)


class V2Meta(Lenient):
    """`meta` of every V2 response; all of it is optional and informational (item 32)."""

    api_version: str | None = None
    time_range: TimeRange | None = None
    rate_limit: RateLimit | None = None
    request_id: str | None = None
    #: next page token; missing, null or empty means the scroll is over (item 20)
    scroll_id: str | None = None
    # request echoes
    application: str | None = None
    app_type: str | None = None
    domain: list[str] | None = None
    log_group: list[str] | None = None
    tenant: list[str] | None = None
    stage: list[str] | None = None
    #: workloads scroll only: total available (optional, a progress estimate: item 19)
    workloads_available: int | None = None


class Hit(Lenient):
    """One OpenSearch document: the `_`-prefixed keys are exposed without the underscore."""

    index: str | None = Field(default=None, alias="_index")
    id: str | None = Field(default=None, alias="_id")
    score: float | None = Field(default=None, alias="_score")
    source: dict[str, Any] = Field(default_factory=dict, alias="_source")


# --- V2 logs and workloads ---------------------------------------------------------------------------


class LogsScrollData(Lenient):
    logs: list[Hit] = Field(default_factory=list)
    #: total number of matching logs (a progress estimate, never the loop condition: item 19)
    count: int | None = None


class LogsScrollResponse(Lenient):
    """POST /v2/logs/scroll."""

    data: LogsScrollData
    meta: V2Meta = Field(default_factory=V2Meta)


class WorkloadsScrollData(Lenient):
    workloads: list[Hit] = Field(default_factory=list)
    #: number of workloads in this page (unlike logs, where it is the total: item 19)
    count: int | None = None


class WorkloadsScrollResponse(Lenient):
    """POST /v2/workloads/scroll."""

    data: WorkloadsScrollData
    meta: V2Meta = Field(default_factory=V2Meta)


class BatchData(Lenient):
    token: str


class BatchResponse(Lenient):
    """POST /v2/logs/batch and /v2/workloads/batch."""

    data: BatchData
    meta: V2Meta = Field(default_factory=V2Meta)


class V2StatusEntry(Lenient):
    """One partition of /v2/{logs,workloads}/batch/status, as sent."""

    start_time: str | None = None
    end_time: str | None = None
    log_count: int | None = None
    workload_count: int | None = None
    #: a URL, JSON null, or the string "null" when not ready (item 25)
    presigned_url: str | None = None
    completed: bool | None = None
    status: str | None = None


class BatchStatusResponse(Lenient):
    """POST /v2/logs/batch/status and /v2/workloads/batch/status."""

    presigned_urls: list[V2StatusEntry]


class AggsData(Lenient):
    #: structure follows the request's `aggs`; kept as the server sent it
    aggregations: dict[str, Any] = Field(default_factory=dict)
    total_documents: int | None = None


class AggsResponse(Lenient):
    """POST /v2/logs/aggs and /v2/workloads/aggs."""

    data: AggsData
    meta: V2Meta = Field(default_factory=V2Meta)


# --- V1 and billing ----------------------------------------------------------------------------------


class V1ScrollResponse(Lenient):
    """POST /v1/logs/scroll. `logs` entries are opaque (item 22)."""

    logs: list[Any] = Field(default_factory=list)
    #: the description says `scrollId`, the example `scroll_id` (item 21): both are read
    scroll_id: str | None = Field(default=None, validation_alias=AliasChoices("scroll_id", "scrollId"))
    has_more: bool | None = None
    daily_requests_remaining: int | None = None


class V1BatchResponse(Lenient):
    """POST /v1/logs/batch."""

    logs: list[Any] = Field(default_factory=list)
    token: str
    daily_requests_remaining: int | None = None


class V1UrlEntry(Lenient):
    """One entry of /v1/logs/batch/urls; `time_range` is an opaque string (item 22)."""

    presigned_url: str | None = None
    time_range: str | None = None
    ready: bool | None = None
    status: str | None = None


class V1BatchUrlsResponse(Lenient):
    """POST /v1/logs/batch/urls."""

    presigned_urls: list[V1UrlEntry]


class BillingSummary(Lenient):
    """`summary` of /v1/query: every key optional, unknown keys kept (item 41)."""

    ticket_count: int | None = None
    domain: str | None = None
    time_range: str | None = None
    client: str | None = None
    live_status: str | None = None
    wbs: str | None = Field(default=None, alias="WBS")
    created: str | None = None
    #: "EC2" in the sample: compare case-insensitively
    infra_type: str | None = None
    billing_type: str | None = None
    point_of_contact: str | None = None


class BillingResponse(Lenient):
    """POST /v1/query."""

    summary: BillingSummary
    daily_requests_remaining: int | None = None


ResponseModel = (
    LogsScrollResponse
    | WorkloadsScrollResponse
    | BatchResponse
    | BatchStatusResponse
    | AggsResponse
    | V1ScrollResponse
    | V1BatchResponse
    | V1BatchUrlsResponse
    | BillingResponse
)

#: The model of each endpoint's 200 body, by endpoint name (see endpoints.ENDPOINTS).
RESPONSE_MODELS: Final[Mapping[str, type[ResponseModel]]] = {
    "logs_scroll": LogsScrollResponse,
    "logs_batch": BatchResponse,
    "logs_batch_status": BatchStatusResponse,
    "logs_aggs": AggsResponse,
    "workloads_scroll": WorkloadsScrollResponse,
    "workloads_batch": BatchResponse,
    "workloads_batch_status": BatchStatusResponse,
    "workloads_aggs": AggsResponse,
    "v1_logs_scroll": V1ScrollResponse,
    "v1_logs_batch": V1BatchResponse,
    "v1_logs_batch_urls": V1BatchUrlsResponse,
    "billing_query": BillingResponse,
}


def parse_response(endpoint_name: str, body: Mapping[str, Any]) -> ResponseModel:
    """Validate `body` with the model of `endpoint_name`; pydantic.ValidationError when it does not fit."""
    return RESPONSE_MODELS[endpoint_name].model_validate(body)


def parse_time_or_none(value: object) -> datetime | None:
    """A response timestamp (0-9 fractional digits, `Z` or offset) as aware UTC; None when unparsable.

    Lenient on purpose: a malformed partition time must not hide the partition.
    """
    if not isinstance(value, str):
        return None
    try:
        return parse_iso8601(value)
    except (ValueError, OverflowError):
        return None


# --- quota and request id, read from any 200 body ----------------------------------------------------


def daily_remaining(body: Mapping[str, Any]) -> int | None:
    """Remaining daily requests from a 200 body: V1 top-level or V2 `meta.rate_limit`; None = unknown."""
    value = _int_or_none(body.get("daily_requests_remaining"))
    if value is not None:
        return value
    meta = body.get("meta")
    rate_limit = meta.get("rate_limit") if isinstance(meta, Mapping) else None
    if isinstance(rate_limit, Mapping):
        return _int_or_none(rate_limit.get("daily_remaining"))
    return None


def request_id_of(body: Mapping[str, Any]) -> str | None:
    """`meta.request_id` (V2) or a top-level `request_id`; None when absent."""
    meta = body.get("meta")
    candidate = meta.get("request_id") if isinstance(meta, Mapping) else None
    if candidate is None:
        candidate = body.get("request_id")
    return candidate if isinstance(candidate, str) and candidate else None


def _int_or_none(value: object) -> int | None:
    """A non-negative whole number, from an int, an integral float or a digit string; else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and value.strip().isdecimal():
        try:
            number = int(value.strip())
        except ValueError:  # beyond int's digit limit
            return None
    else:
        return None
    return number if number >= 0 else None
