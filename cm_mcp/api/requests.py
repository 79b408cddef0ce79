"""Request models for the 12 endpoints: the single source of truth for what a valid call is.

The MCP tool input schemas are generated from these models and the sandbox validates the requests it
receives with them, so every documented rule is written once, here. A rule checked here saves the
user a request out of a daily quota of about 50.

Decisions on the reference's open questions (numbers are its inconsistency items):
- serverless if and only if application == "eventops", on every V2 logs endpoint (7);
  serverless takes log_group/tenant/stage and no domain, ec2/kubernetes take domain only.
- arrays are never empty, hold non-empty strings, and "*" stands alone (9, 10).
- `size` is required on the initial V2 logs scroll and defaults to an explicit 100 on workloads scroll
  (6); at most 10,000, OpenSearch's default result window, since no maximum is published.
- V2 times accept ISO 8601 (0-9 fractional digits, Z or offset) or date math, normalised to UTC `Z`
  at validation time; end_time must be after start_time on every endpoint (11, 12).
- a V2 scroll continuation sends exactly {"scroll_id": ...} (8); a V1 continuation re-sends the
  original body plus scroll_id.
- the aggs endpoints take no top-level `filters` (15), but models send them as on scroll: the aggs
  models accept them and send them as one wrapping `filter` aggregation (no extra request).
- date histograms that would pass OpenSearch's 65,535-bucket limit are refused (api/buckets.py).
- billing takes one exact domain: no "*" and no pattern (the API answers 400).
- unknown fields are rejected (43: send only documented fields).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cm_mcp.api.buckets import bucket_limit_issues
from cm_mcp.api.errors import ValidationIssue
from cm_mcp.api.fields import Application, AppType, AppTypeV1
from cm_mcp.api.querydsl import check_aggs, check_filters
from cm_mcp.api.times import TimeFormatError, format_utc, is_date_math, resolve_time
from cm_mcp.api.validation import INVALID, Values, dsl_error, known, parse_request, rules_error

__all__ = ["FILTERED_AGG", "INVALID", "REQUEST_MODELS", "APIRequest", "StringList", "parse_request"]

MAX_PAGE_SIZE = 10_000  # OpenSearch's default max_result_window; the API publishes no maximum
WORKLOADS_DEFAULT_SIZE = 100  # sent explicitly: the reference gives no default (item 6)


# --- reusable field types -------------------------------------------------------------------


def _check_string_list(values: list[str]) -> list[str]:
    if not values:
        raise PydanticCustomError("empty_list", 'must not be empty; use ["*"] for all')
    if any(not value.strip() for value in values):
        raise PydanticCustomError("blank_item", "items must be non-empty strings")
    if "*" in values and len(values) > 1:
        raise PydanticCustomError(
            "wildcard_mixed", '"*" must be the only element: use ["*"] alone or list exact names'
        )
    return values


StringList = Annotated[list[str], AfterValidator(_check_string_list)]
PageSize = Annotated[int, Field(gt=0, le=MAX_PAGE_SIZE)]


def _now(info: ValidationInfo) -> datetime:
    """The instant date math resolves against: the caller's (tests, the sandbox) or the clock."""
    context = info.context if isinstance(info.context, Mapping) else {}
    now = context.get("now")
    return now if isinstance(now, datetime) else datetime.now(UTC)


def _normalise_time(value: str, info: ValidationInfo) -> str:
    rounding: Literal["down", "up"] = "up" if info.field_name == "end_time" else "down"
    try:
        return format_utc(resolve_time(value, _now(info), rounding))
    except TimeFormatError as exc:
        raise PydanticCustomError("time_format", "{reason}", {"reason": str(exc)}) from exc


def _instant(value: Any, now: datetime, rounding: Literal["down", "up"]) -> datetime | None:
    """A time value as an instant, for rules (None when it is not one)."""
    if not isinstance(value, str):
        return None
    try:
        return resolve_time(value, now, rounding)
    except TimeFormatError:
        return None


def _check_date_math(value: str) -> str:
    if not is_date_math(value):
        raise PydanticCustomError(
            "date_math",
            "must be OpenSearch date math such as 'now-15m/m', 'now-1d/d' or 'now-2h' (V1 takes no ISO times)",
        )
    return value.strip()


DateMath = Annotated[str, AfterValidator(_check_date_math)]


def _check_token(value: str) -> str:
    token = value.strip()
    if not token:
        raise PydanticCustomError("empty_token", "must be the non-empty token returned by the batch call")
    return token


BatchToken = Annotated[str, AfterValidator(_check_token)]


# --- base ---------------------------------------------------------------------------------------


def _publish_required(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The schema's `required`: the fields every call needs (REQUIRED) plus pydantic's own."""
    always = getattr(model, "REQUIRED", ())
    listed = set(schema.get("required", [])) | set(always)
    if listed:
        schema["required"] = [name for name in model.model_fields if name in listed]


class APIRequest(BaseModel):
    """Base of every request: unknown fields rejected, `to_body()` is exactly what is sent.

    Cross-field rules live in `rule_issues` (each class adds its own through `super()`), so they run
    both on a validated request and, by `parse_request`, on arguments where some field failed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_publish_required)

    #: Endpoint name in `cm_mcp.api.endpoints.ENDPOINTS`.
    ENDPOINT: ClassVar[str]
    #: A valid call, quoted in validation errors so a model can correct itself in one step.
    EXAMPLE: ClassVar[dict[str, Any]]
    #: What to do instead, for fields a caller is likely to send but this endpoint does not take.
    NOT_ACCEPTED: ClassVar[dict[str, str]] = {}
    #: Fields every call needs, whatever the others say (published as the schema's `required`).
    REQUIRED: ClassVar[tuple[str, ...]] = ()

    def to_body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def rule_issues(cls, values: Values, now: datetime) -> list[ValidationIssue]:
        """Every broken cross-field rule of `values` (see cm_mcp.api.validation for what they hold)."""
        return [
            ValidationIssue(name, cls.required_message(name))
            for name in cls.REQUIRED
            if values.get(name) is None
        ]

    @classmethod
    def required_message(cls, name: str) -> str:
        field = cls.model_fields.get(name)
        return (
            f"required: {field.description}" if field and field.description else "required field is missing"
        )

    @classmethod
    def field_message(cls, name: str, error_type: str, default: str) -> str:
        """A field's own error in words that help (pydantic's by default)."""
        if name == "size" and error_type == "greater_than":
            return f"must be at least 1 (a page holds 1-{MAX_PAGE_SIZE} records)"
        if name == "size" and error_type == "less_than_equal":
            return (
                f"must be at most {MAX_PAGE_SIZE} per page; for more, continue with the returned "
                "scroll_id, or export with the batch tool (over 100k records)"
            )
        return default

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Self:
        issues = type(self).rule_issues(
            {name: getattr(self, name) for name in type(self).model_fields}, _now(info)
        )
        if issues:
            raise rules_error(type(self), issues)
        return self


def _check_dsl(issues: list[tuple[str, str]], field: str, value: Any) -> None:
    if issues:
        raise dsl_error(field, issues, value)


# --- V2 shared pieces ---------------------------------------------------------------------------

_TIME_DOC = "ISO 8601 (UTC) or date math such as 'now-6h', 'now-1d/d'"


StartTime = Annotated[str | None, Field(description=f"Window start: {_TIME_DOC}")]
EndTime = Annotated[str | None, Field(description="Window end, after start_time; e.g. 'now'")]


class _TimeWindow(APIRequest):
    """Normalises `start_time`/`end_time` (declared by subclasses after their scope fields, so the
    schema reads scope -> window -> filters); `_window_issues` checks the window."""

    if TYPE_CHECKING:  # declared by subclasses; annotated here for the type checker only
        start_time: str | None
        end_time: str | None

    @field_validator("start_time", "end_time", check_fields=False)
    @classmethod
    def _time(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _normalise_time(value, info)

    @staticmethod
    def _window_issues(values: Values, now: datetime) -> list[ValidationIssue]:
        issues = [
            ValidationIssue(name, f"required: {_TIME_DOC}")
            for name in ("start_time", "end_time")
            if values.get(name) is None
        ]
        start = _instant(values.get("start_time"), now, "down")
        end = _instant(values.get("end_time"), now, "up")
        if start is not None and end is not None and end <= start:
            issues.append(
                ValidationIssue(
                    "end_time", f"must be after start_time ({format_utc(start)}); got {format_utc(end)}"
                )
            )
        return issues

    @classmethod
    def window(cls, values: Values, now: datetime) -> tuple[datetime, datetime] | None:
        """The query's window when both ends are known and in order."""
        start = _instant(values.get("start_time"), now, "down")
        end = _instant(values.get("end_time"), now, "up")
        return (start, end) if start is not None and end is not None and end > start else None


class _FilterList(APIRequest):
    filters: Annotated[
        list[dict[str, Any]] | None,
        Field(description="OpenSearch filters, ANDed: term, terms, range, exists, bool, match, match_phrase"),
    ] = None

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value is not None:
            if not value:
                raise PydanticCustomError("empty_list", "must not be empty; omit filters to match everything")
            _check_dsl(check_filters(value), "filters", value)
        return value


class _Filtered(_FilterList):
    fields: Annotated[StringList | None, Field(description="Only these _source fields (dotted paths)")] = None


#: The aggregation that wraps an aggs request's own aggregations when it has `filters`.
FILTERED_AGG = "filtered"


class _Aggregating(_FilterList):
    """An aggs request. The API takes no top-level `filters` here (reference item 15); given some, the
    body wraps `aggs` in one `filter` aggregation named FILTERED_AGG (free: still one request), whose
    doc_count is the filtered set's total (cm_mcp.ops.calls unwraps it)."""

    aggs: Annotated[
        dict[str, Any],
        Field(description='Named OpenSearch aggregations, e.g. {"by_level": {"terms": {"field": ...}}}'),
    ]

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        filters = body.pop("filters", None)
        if filters:
            body["aggs"] = {FILTERED_AGG: {"filter": {"bool": {"filter": filters}}, "aggs": body["aggs"]}}
        return body

    @field_validator("aggs")
    @classmethod
    def _aggs(cls, value: dict[str, Any]) -> dict[str, Any]:
        _check_dsl(check_aggs(value), "aggs", value)
        return value

    @classmethod
    def rule_issues(cls, values: Values, now: datetime) -> list[ValidationIssue]:
        issues = super().rule_issues(values, now)
        aggs = values.get("aggs")
        window = _TimeWindow.window(values, now)
        if known(aggs) and isinstance(aggs, Mapping) and window is not None:
            issues += [
                ValidationIssue(f"aggs.{path}", message)
                for path, message in bucket_limit_issues(aggs, *window)
            ]
        return issues


class _Scrollable(APIRequest):
    """A scroll request: the first page carries the query, a continuation only `scroll_id` (item 8)."""

    scroll_id: Annotated[
        str | None, Field(description="Continue a scroll: pass the previous page's scroll_id alone")
    ] = None

    @property
    def is_continuation(self) -> bool:
        return self.scroll_id is not None

    @classmethod
    def rule_issues(cls, values: Values, now: datetime) -> list[ValidationIssue]:
        scroll_id = values.get("scroll_id")
        if scroll_id is None:
            return super().rule_issues(values, now)
        # A continuation: the query's rules do not apply, its other fields are neither checked nor sent.
        if isinstance(scroll_id, str) and not scroll_id.strip():
            return [ValidationIssue("scroll_id", "must be the non-empty scroll_id of the previous page")]
        return []

    def to_body(self) -> dict[str, Any]:
        if self.scroll_id is not None:
            return {"scroll_id": self.scroll_id.strip()}
        return super().to_body()


class _LogsScope(_TimeWindow):
    """Which logs: application + app_type, then domain (ec2/kubernetes) or log_group/tenant/stage."""

    application: Annotated[
        Application | None, Field(description="atr, klewer, quasar (ec2/kubernetes) or eventops (serverless)")
    ] = None
    app_type: Annotated[
        AppType | None, Field(description="ec2, kubernetes, or serverless (eventops only)")
    ] = None
    domain: Annotated[StringList | None, Field(description='ec2/kubernetes only: domains or ["*"]')] = None
    log_group: Annotated[StringList | None, Field(description='serverless only: log groups or ["*"]')] = None
    tenant: Annotated[StringList | None, Field(description='serverless only: tenants or ["*"]')] = None
    stage: Annotated[StringList | None, Field(description='serverless only: stages or ["*"]')] = None
    start_time: StartTime = None
    end_time: EndTime = None

    @classmethod
    def rule_issues(cls, values: Values, now: datetime) -> list[ValidationIssue]:
        issues = super().rule_issues(values, now)
        application, app_type = values.get("application"), values.get("app_type")
        if application is None:
            issues.append(
                ValidationIssue("application", f"required: one of {', '.join(a.value for a in Application)}")
            )
        eventops = application == Application.EVENTOPS if known(application) else None
        if app_type is None:
            wanted = {
                True: "'serverless' (eventops)",
                False: "ec2 or kubernetes",
                None: "ec2, kubernetes or serverless",
            }
            issues.append(ValidationIssue("app_type", f"required: {wanted[eventops]}"))
        serverless = app_type == AppType.SERVERLESS if known(app_type) else eventops
        if known(app_type) and eventops is not None and serverless != eventops:
            message = (
                "serverless requires application 'eventops'"
                if serverless
                else f"application 'eventops' requires app_type 'serverless' (got {AppType(str(app_type)).value!r})"
            )
            issues.append(ValidationIssue("app_type", message))
            serverless = None  # which scope fields apply is anyone's guess until this is fixed
        if serverless is True:
            issues += [
                ValidationIssue(name, 'required for serverless: a list of names or ["*"]')
                for name in ("log_group", "tenant", "stage")
                if values.get(name) is None
            ]
            if values.get("domain") is not None:
                issues.append(
                    ValidationIssue(
                        "domain", "not used for serverless; select with log_group, tenant and stage"
                    )
                )
        elif serverless is False:
            kind = AppType(str(app_type)).value if known(app_type) else "ec2/kubernetes"
            if values.get("domain") is None:
                issues.append(ValidationIssue("domain", f'required for {kind}: a list of domains or ["*"]'))
            issues += [
                ValidationIssue(name, f"only for serverless (eventops); not used with {kind}")
                for name in ("log_group", "tenant", "stage")
                if values.get(name) is not None
            ]
        return issues + cls._window_issues(values, now)


_LOGS_EXAMPLE: dict[str, Any] = {
    "application": "atr",
    "app_type": "kubernetes",
    "domain": ["pay.example.com"],
    "start_time": "now-6h",
    "end_time": "now",
}


# --- V2 logs ------------------------------------------------------------------------------------


class LogsScrollRequest(_Scrollable, _Filtered, _LogsScope):
    """POST /v2/logs/scroll: a page of logs, or the next page given `scroll_id`."""

    ENDPOINT: ClassVar[str] = "logs_scroll"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        **_LOGS_EXAMPLE,
        "size": 100,
        "filters": [{"term": {"regex.extractions.logLevel": "ERROR"}}],
    }

    size: Annotated[PageSize | None, Field(description="Page size, 1-10000; required unless scroll_id")] = (
        None
    )

    @classmethod
    def rule_issues(cls, values: Values, now: datetime) -> list[ValidationIssue]:
        issues = super().rule_issues(values, now)
        if values.get("scroll_id") is None and values.get("size") is None:
            issues.append(
                ValidationIssue("size", "required on the first request: an integer 1-10000, e.g. 100")
            )
        return issues


class LogsBatchRequest(_Filtered, _LogsScope):
    """POST /v2/logs/batch: start an export (for > 100,000 logs)."""

    ENDPOINT: ClassVar[str] = "logs_batch"
    EXAMPLE: ClassVar[dict[str, Any]] = {**_LOGS_EXAMPLE, "start_time": "now-1d"}
    REQUIRED: ClassVar[tuple[str, ...]] = ("application", "app_type", "start_time", "end_time")


class LogsAggsRequest(_Aggregating, _LogsScope):
    """POST /v2/logs/aggs: aggregations over logs (no top-level filters: use a `filter` aggregation)."""

    ENDPOINT: ClassVar[str] = "logs_aggs"
    REQUIRED: ClassVar[tuple[str, ...]] = ("application", "app_type", "start_time", "end_time", "aggs")
    EXAMPLE: ClassVar[dict[str, Any]] = {
        **_LOGS_EXAMPLE,
        "aggs": {
            "levels": {"terms": {"field": "regex.extractions.logLevel", "size": 10}},
            "over_time": {"date_histogram": {"field": "@timestamp", "fixed_interval": "15m"}},
        },
    }


class BatchStatusRequest(APIRequest):
    """POST /v2/{logs,workloads}/batch/status: partitions and download URLs of a batch token."""

    ENDPOINT: ClassVar[str] = "logs_batch_status"
    EXAMPLE: ClassVar[dict[str, Any]] = {"token": "a6EBWDj2yr5v1UUG"}

    token: Annotated[BatchToken, Field(description="Token returned by the batch call (valid 2 h)")]


class LogsBatchStatusRequest(BatchStatusRequest):
    ENDPOINT: ClassVar[str] = "logs_batch_status"


class WorkloadsBatchStatusRequest(BatchStatusRequest):
    ENDPOINT: ClassVar[str] = "workloads_batch_status"


# --- V2 workloads -------------------------------------------------------------------------------


class _WorkloadsScope(_TimeWindow):
    application: Annotated[Literal["atr"] | None, Field(description="Only 'atr' has workloads")] = None
    app_type: Annotated[Literal["ec2", "kubernetes"] | None, Field(description="ec2 or kubernetes")] = None
    domain: Annotated[StringList | None, Field(description='Domains or ["*"] for all')] = None
    start_time: StartTime = None
    end_time: EndTime = None

    @field_validator("application", mode="before")
    @classmethod
    def _only_atr(cls, value: Any) -> Any:
        if isinstance(value, str) and value in {a.value for a in Application} and value != "atr":
            raise PydanticCustomError("workloads_app", "workloads exist only for application 'atr'")
        return value

    @field_validator("app_type", mode="before")
    @classmethod
    def _no_serverless(cls, value: Any) -> Any:
        if value == "serverless":
            raise PydanticCustomError(
                "workloads_app_type", "workloads have no serverless: use ec2 or kubernetes"
            )
        return value

    @classmethod
    def rule_issues(cls, values: Values, now: datetime) -> list[ValidationIssue]:
        issues = super().rule_issues(values, now)
        for name, wanted in (
            ("application", "'atr'"),
            ("app_type", "ec2 or kubernetes"),
            ("domain", 'a list of domains or ["*"]'),
        ):
            if values.get(name) is None:
                issues.append(ValidationIssue(name, f"required: {wanted}"))
        return issues + cls._window_issues(values, now)


_WORKLOADS_EXAMPLE: dict[str, Any] = {
    "application": "atr",
    "app_type": "ec2",
    "domain": ["*"],
    "start_time": "now-1d",
    "end_time": "now",
}


class WorkloadsScrollRequest(_Scrollable, _Filtered, _WorkloadsScope):
    """POST /v2/workloads/scroll."""

    ENDPOINT: ClassVar[str] = "workloads_scroll"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        **_WORKLOADS_EXAMPLE,
        "size": 100,
        "filters": [{"term": {"workload.state": "FAILED"}}],
    }

    size: Annotated[PageSize | None, Field(description="Page size 1-10000 (default 100)")] = None

    def to_body(self) -> dict[str, Any]:
        body = super().to_body()
        if not self.is_continuation:
            body.setdefault("size", WORKLOADS_DEFAULT_SIZE)
        return body


class WorkloadsBatchRequest(_Filtered, _WorkloadsScope):
    """POST /v2/workloads/batch."""

    ENDPOINT: ClassVar[str] = "workloads_batch"
    EXAMPLE: ClassVar[dict[str, Any]] = dict(_WORKLOADS_EXAMPLE)
    REQUIRED: ClassVar[tuple[str, ...]] = ("application", "app_type", "domain", "start_time", "end_time")


class WorkloadsAggsRequest(_Aggregating, _WorkloadsScope):
    """POST /v2/workloads/aggs."""

    ENDPOINT: ClassVar[str] = "workloads_aggs"
    REQUIRED: ClassVar[tuple[str, ...]] = (
        "application",
        "app_type",
        "domain",
        "start_time",
        "end_time",
        "aggs",
    )
    EXAMPLE: ClassVar[dict[str, Any]] = {
        **_WORKLOADS_EXAMPLE,
        "aggs": {"by_state": {"terms": {"field": "workload.state", "size": 10}}},
    }


# --- V1 (deprecated) ----------------------------------------------------------------------------

Scalar = str | int | float | bool


class _V1LogsQuery(APIRequest):
    application: Annotated[Application, Field(description="atr, klewer, eventops or quasar")]
    time_range: Annotated[DateMath, Field(description="OpenSearch date math, e.g. 'now-15m/m'")]
    app_type: Annotated[AppTypeV1 | None, Field(description="ec2 or caas")] = None
    domain: Annotated[str | None, Field(min_length=1, description="One domain name")] = None
    size: Annotated[PageSize | None, Field(description="Results per request")] = None
    filters: Annotated[
        dict[str, Scalar] | None, Field(description='Key-value filters, e.g. {"message": "cluster down"}')
    ] = None
    log_group: Annotated[str | None, Field(min_length=1, description="EventOps log group")] = None
    tenant: Annotated[str | None, Field(min_length=1, description="EventOps tenant")] = None
    stage: Annotated[str | None, Field(min_length=1, description="EventOps stage")] = None


_V1_EXAMPLE: dict[str, Any] = {
    "application": "atr",
    "app_type": "caas",
    "domain": "pay.example.com",
    "time_range": "now-15m/m",
    "size": 1000,
}


class V1LogsScrollRequest(_V1LogsQuery):
    """POST /v1/logs/scroll (deprecated: use logs_scroll). A continuation re-sends the body + scroll_id."""

    ENDPOINT: ClassVar[str] = "v1_logs_scroll"
    EXAMPLE: ClassVar[dict[str, Any]] = dict(_V1_EXAMPLE)

    scroll_id: Annotated[str | None, Field(min_length=1, description="scroll_id of the previous page")] = None


class V1LogsBatchRequest(_V1LogsQuery):
    """POST /v1/logs/batch (deprecated: use logs_batch)."""

    ENDPOINT: ClassVar[str] = "v1_logs_batch"
    EXAMPLE: ClassVar[dict[str, Any]] = dict(_V1_EXAMPLE)


class V1BatchUrlsRequest(APIRequest):
    """POST /v1/logs/batch/urls (deprecated: use logs_batch_status)."""

    ENDPOINT: ClassVar[str] = "v1_logs_batch_urls"
    EXAMPLE: ClassVar[dict[str, Any]] = {"token": "1OTk3LCJpc3MiOi"}

    token: Annotated[BatchToken, Field(description="Token returned by the V1 batch call")]


class BillingQueryRequest(APIRequest):
    """POST /v1/query: billing summary of one domain."""

    ENDPOINT: ClassVar[str] = "billing_query"
    EXAMPLE: ClassVar[dict[str, Any]] = {"domain": "pay.example.com", "time_range": "now-30d/d"}

    domain: Annotated[str, Field(description="One exact domain name (no wildcard), e.g. pay.example.com")]
    time_range: Annotated[DateMath, Field(description="OpenSearch date math, e.g. 'now-30d/d'")]

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        """Billing is per domain: "*" or a pattern is refused upstream with a 400 (issue 9)."""
        domain = value.strip()
        if not domain:
            raise PydanticCustomError("blank", "must be a non-empty domain name")
        if domain == "*":
            raise PydanticCustomError(
                "wildcard", 'billing takes one domain per call, not "*": call it once for each domain'
            )
        if "*" in domain or "?" in domain:
            raise PydanticCustomError("wildcard", "wildcards are not accepted: give one exact domain name")
        return domain


REQUEST_MODELS: dict[str, type[APIRequest]] = {
    model.ENDPOINT: model
    for model in (
        LogsScrollRequest,
        LogsBatchRequest,
        LogsBatchStatusRequest,
        LogsAggsRequest,
        WorkloadsScrollRequest,
        WorkloadsBatchRequest,
        WorkloadsBatchStatusRequest,
        WorkloadsAggsRequest,
        V1LogsScrollRequest,
        V1LogsBatchRequest,
        V1BatchUrlsRequest,
        BillingQueryRequest,
    )
}
