"""Lenient models of every documented 200 response, and one internal model of a batch partition.

Lenient means: unknown keys are kept (`extra="allow"`), every field the reference describes only by
example is optional, and only the payload a caller cannot do without is required (`data` of V2 scroll,
batch and aggs; the batch `token`; the status list; the billing `summary`). A body that lacks those is
a `pydantic.ValidationError`, never a silently empty result.

The batch status endpoints disagree on shape (reference items 23-26); `Partition` is the one shape the
rest of cm-mcp sees, built by `partitions_from_status`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal
from urllib.parse import urlsplit

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


# --- the one partition model -------------------------------------------------------------------------

StatusKind = Literal["logs", "workloads", "v1"]

#: Status values that end a partition's life (item 24); anything else, known or not, is "not yet".
COMPLETED_STATUS: Final = "completed"
FAILED_STATUS: Final = "failed"
UNKNOWN_STATUS: Final = "unknown"


class Partition(BaseModel):
    """One partition of a batch, whatever endpoint reported it.

    `ready` means "download now": completed with a usable URL, or completed and empty (count 0, no URL,
    item 26). `completed` alone is the server's word, which may come before a usable URL.
    """

    model_config = ConfigDict(frozen=True)

    #: identity across polls (item 27): (start, end) for V2, normalized when parsable; V1's time_range text
    key: tuple[str, str] | str
    start_time: datetime | None = None
    end_time: datetime | None = None
    #: V1's opaque time range, or "start/end" as sent for V2
    time_range_text: str | None = None
    #: log_count or workload_count; None when absent (V1 never has one); provisional until completed
    count: int | None = None
    #: only an http(s) URL; None for null, "null", "" or a missing key
    url: str | None = None
    completed: bool = False
    ready: bool = False
    #: as sent (any value accepted), "unknown" when missing
    status: str = UNKNOWN_STATUS

    @property
    def is_failed(self) -> bool:
        return self.status.strip().lower() == FAILED_STATUS

    @property
    def is_final(self) -> bool:
        """Completed or failed; unknown statuses are not final until the token expires (item 24)."""
        return self.completed or self.is_failed

    @property
    def is_empty(self) -> bool:
        """Completed with nothing to download (count 0 and no URL)."""
        return self.completed and self.count == 0 and self.url is None


def partitions_from_status(body: Mapping[str, Any], kind: StatusKind) -> list[Partition]:
    """Map a batch status body onto partitions; pydantic.ValidationError when its shape is wrong."""
    if kind == "v1":
        v1 = V1BatchUrlsResponse.model_validate(body)
        return [_from_v1(entry, index) for index, entry in enumerate(v1.presigned_urls)]
    v2 = BatchStatusResponse.model_validate(body)
    return [_from_v2(entry, index, kind) for index, entry in enumerate(v2.presigned_urls)]


def usable_url(value: object) -> str | None:
    """`value` when it is an http(s) URL with a host; None for null, "null", "" and anything else."""
    if not isinstance(value, str):
        return None
    candidate = value.strip()
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return candidate


def _from_v2(entry: V2StatusEntry, index: int, kind: StatusKind) -> Partition:
    status = _status_text(entry.status)
    completed = entry.completed is True or status.lower() == COMPLETED_STATUS
    count = entry.log_count if kind == "logs" else entry.workload_count
    if count is None:  # tolerate the other family's field name rather than lose the count
        count = entry.workload_count if kind == "logs" else entry.log_count
    start, end = parse_time_or_none(entry.start_time), parse_time_or_none(entry.end_time)
    key = (_key_part(entry.start_time, start, index), _key_part(entry.end_time, end, index))
    text = f"{entry.start_time}/{entry.end_time}" if entry.start_time or entry.end_time else None
    return _partition(key, start, end, text, count, entry.presigned_url, completed, status)


def _from_v1(entry: V1UrlEntry, index: int) -> Partition:
    status = _status_text(entry.status)
    completed = entry.ready is True or status.lower() == COMPLETED_STATUS
    key = entry.time_range if entry.time_range else f"#{index}"
    return _partition(key, None, None, entry.time_range, None, entry.presigned_url, completed, status)


def _partition(
    key: tuple[str, str] | str,
    start: datetime | None,
    end: datetime | None,
    text: str | None,
    count: int | None,
    raw_url: str | None,
    completed: bool,
    status: str,
) -> Partition:
    url = usable_url(raw_url)
    empty = completed and count == 0 and url is None
    ready = completed and (url is not None or empty)
    return Partition(
        key=key,
        start_time=start,
        end_time=end,
        time_range_text=text,
        count=count,
        url=url,
        completed=completed,
        ready=ready,
        status=status,
    )


def _status_text(status: str | None) -> str:
    return status.strip() if status and status.strip() else UNKNOWN_STATUS


def _key_part(raw: str | None, parsed: datetime | None, index: int) -> str:
    # Normalized so that `...00Z` and `...00.000Z` on two polls name the same partition.
    if parsed is not None:
        return parsed.isoformat()
    return raw if raw else f"#{index}"


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
