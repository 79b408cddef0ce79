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
- the aggs endpoints take no top-level `filters` (15): narrow with a `filter` aggregation instead.
- unknown fields are rejected (43: send only documented fields).
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Literal, Self, TypeVar

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from cm_mcp.api.errors import RequestValidationError, ValidationIssue
from cm_mcp.api.fields import Application, AppType, AppTypeV1
from cm_mcp.api.querydsl import check_aggs, check_filters
from cm_mcp.api.times import TimeFormatError, format_utc, is_date_math, resolve_time

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


class APIRequest(BaseModel):
    """Base of every request: unknown fields rejected, `to_body()` is exactly what is sent."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Endpoint name in `cm_mcp.api.endpoints.ENDPOINTS`.
    ENDPOINT: ClassVar[str]
    #: A valid call, quoted in validation errors so a model can correct itself in one step.
    EXAMPLE: ClassVar[dict[str, Any]]
    #: What to do instead, for fields a caller is likely to send but this endpoint does not take.
    NOT_ACCEPTED: ClassVar[dict[str, str]] = {}

    def to_body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)


Request = TypeVar("Request", bound=APIRequest)


def parse_request(model: type[Request], args: Mapping[str, Any], *, now: datetime | None = None) -> Request:
    """Validate `args` against `model`; raise `RequestValidationError` naming each field and rule."""
    try:
        return model.model_validate(dict(args), context={"now": now} if now else None)
    except ValidationError as exc:
        raise RequestValidationError(_issues(exc, model), model.__name__, example=model.EXAMPLE) from None


def _issues(exc: ValidationError, model: type[APIRequest]) -> list[ValidationIssue]:
    issues = []
    for error in exc.errors(include_url=False):
        ctx = error.get("ctx") or {}
        loc = [*error["loc"], *ctx.get("subpath", ())]
        if ctx.get("field"):
            loc = [ctx["field"], *loc]
        path = _json_path(loc)
        message = str(error["msg"]).removeprefix("Value error, ")
        if error["type"] == "extra_forbidden":
            message = _unknown_field_message(str(error["loc"][-1]), model)
        elif error["type"] == "missing":
            message = "required field is missing"
        elif error["type"] == "list_type":
            message = 'must be a list of strings, e.g. ["*"] or ["pay.example.com"]'
        elif loc[-1:] == ["size"] and error["type"] == "greater_than":
            message = f"must be at least 1 (a page holds 1-{MAX_PAGE_SIZE} records)"
        elif loc[-1:] == ["size"] and error["type"] == "less_than_equal":
            message = (
                f"must be at most {MAX_PAGE_SIZE} per page; for more, continue with the returned "
                "scroll_id, or export with the batch tool (over 100k records)"
            )
        issues.append(ValidationIssue(path=path or "(request)", message=message))
    return issues


def _unknown_field_message(name: str, model: type[APIRequest]) -> str:
    if name in model.NOT_ACCEPTED:
        return f"not accepted: {model.NOT_ACCEPTED[name]}"
    valid = list(model.model_fields)
    if not valid:
        return "unknown field; this tool takes no arguments"
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown field{hint}; valid fields: {', '.join(valid)}"


def _json_path(loc: list[Any]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif (isinstance(part, str) and part.startswith("[")) or (
            isinstance(part, str) and part.startswith(".")
        ):
            path += part
        else:
            path += f".{part}" if path else str(part)
    return path


def _dsl_error(issues: list[tuple[str, str]], field: str) -> PydanticCustomError:
    """Wrap the first DSL issue so its sub-path joins the field's JSON path."""
    subpath, message = issues[0]
    more = f" ({len(issues) - 1} more problem(s) in {field})" if len(issues) > 1 else ""
    return PydanticCustomError(
        "dsl", "{message}", {"message": message + more, "subpath": _split_path(subpath)}
    )


def _split_path(subpath: str) -> tuple[str, ...]:
    """`[0].bool.must[1]` -> ('[0]', '.bool', '.must', '[1]') so _json_path can append it."""
    parts: list[str] = []
    token = ""
    for char in subpath:
        if char in ".[" and token:
            parts.append(token)
            token = ""
        token += char
    if token:
        parts.append(token)
    return tuple(part if part.startswith(("[", ".")) else f".{part}" for part in parts)


def _rule(field: str, message: str) -> PydanticCustomError:
    """A cross-field rule violation attributed to `field`."""
    return PydanticCustomError("rule", "{message}", {"message": message, "field": field})


# --- V2 shared pieces ---------------------------------------------------------------------------

_TIME_DOC = "ISO 8601 (UTC) or date math such as 'now-6h', 'now-1d/d'"


StartTime = Annotated[str | None, Field(description=f"Window start: {_TIME_DOC}")]
EndTime = Annotated[str | None, Field(description="Window end, after start_time; e.g. 'now'")]


class _TimeWindow(APIRequest):
    """Normalises `start_time`/`end_time` (declared by subclasses after their scope fields, so the
    schema reads scope -> window -> filters) and checks the window."""

    if TYPE_CHECKING:  # declared by subclasses; annotated here for the type checker only
        start_time: str | None
        end_time: str | None

    @field_validator("start_time", "end_time", check_fields=False)
    @classmethod
    def _time(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else _normalise_time(value, info)

    @model_validator(mode="after")
    def _query_rules(self) -> Self:
        """The cross-field rules of a request that carries a query (a scroll continuation does not)."""
        if not self._continues_a_scroll():
            self._check_query()
        return self

    def _continues_a_scroll(self) -> bool:
        return False

    def _check_query(self) -> None:
        raise NotImplementedError  # each scope (logs, workloads) states its rules

    def _check_window(self) -> None:
        if self.start_time is None:
            raise _rule("start_time", f"required: {_TIME_DOC}")
        if self.end_time is None:
            raise _rule("end_time", f"required: {_TIME_DOC}")
        if (
            self.end_time <= self.start_time
        ):  # both normalised to the same UTC format: string order is time order
            raise _rule("end_time", f"must be after start_time ({self.start_time}); got {self.end_time}")


class _Filtered(APIRequest):
    filters: Annotated[
        list[dict[str, Any]] | None,
        Field(description="OpenSearch filters, ANDed: term, terms, range, exists, bool, match, match_phrase"),
    ] = None
    fields: Annotated[StringList | None, Field(description="Only these _source fields (dotted paths)")] = None

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value is not None:
            if not value:
                raise PydanticCustomError("empty_list", "must not be empty; omit filters to match everything")
            issues = check_filters(value)
            if issues:
                raise _dsl_error(issues, "filters")
        return value


class _Aggregating(APIRequest):
    NOT_ACCEPTED: ClassVar[dict[str, str]] = {
        "filters": (
            "the aggs endpoints take no top-level filters (reference item 15); filter inside a `filter` "
            'aggregation: {"errors": {"filter": {"term": {"regex.extractions.logLevel": "ERROR"}}, '
            '"aggs": {"by_domain": {"terms": {"field": "atr.domain_name"}}}}}'
        ),
    }

    aggs: Annotated[
        dict[str, Any],
        Field(description='Named OpenSearch aggregations, e.g. {"by_level": {"terms": {"field": ...}}}'),
    ]

    @field_validator("aggs")
    @classmethod
    def _aggs(cls, value: dict[str, Any]) -> dict[str, Any]:
        issues = check_aggs(value)
        if issues:
            raise _dsl_error(issues, "aggs")
        return value


class _Scrollable(APIRequest):
    """A scroll request: the first page carries the query, a continuation only `scroll_id` (item 8)."""

    scroll_id: Annotated[
        str | None, Field(description="Continue a scroll: pass the previous page's scroll_id alone")
    ] = None

    @property
    def is_continuation(self) -> bool:
        return self.scroll_id is not None

    def _continues_a_scroll(self) -> bool:
        """True (and valid) for a continuation, whose other fields are neither checked nor sent."""
        if self.scroll_id is None:
            return False
        if not self.scroll_id.strip():
            raise _rule("scroll_id", "must be the non-empty scroll_id of the previous page")
        return True

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

    def _check_scope(self) -> None:
        if self.application is None:
            raise _rule("application", f"required: one of {', '.join(a.value for a in Application)}")
        if self.app_type is None:
            raise _rule("app_type", "required: ec2, kubernetes or serverless")
        serverless = self.app_type is AppType.SERVERLESS
        if serverless != (self.application is Application.EVENTOPS):
            if serverless:
                raise _rule("app_type", "serverless requires application 'eventops'")
            raise _rule(
                "app_type",
                f"application 'eventops' requires app_type 'serverless' (got {self.app_type.value!r})",
            )
        if serverless:
            for name in ("log_group", "tenant", "stage"):
                if getattr(self, name) is None:
                    raise _rule(name, 'required for serverless: a list of names or ["*"]')
            if self.domain is not None:
                raise _rule("domain", "not used for serverless; select with log_group, tenant and stage")
        else:
            if self.domain is None:
                raise _rule("domain", f'required for {self.app_type.value}: a list of domains or ["*"]')
            for name in ("log_group", "tenant", "stage"):
                if getattr(self, name) is not None:
                    raise _rule(name, f"only for serverless (eventops); not used with {self.app_type.value}")

    def _check_query(self) -> None:
        self._check_scope()
        self._check_window()


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

    @model_validator(mode="after")
    def _size_required(self) -> LogsScrollRequest:
        if not self.is_continuation and self.size is None:
            raise _rule("size", "required on the first request: an integer 1-10000, e.g. 100")
        return self


class LogsBatchRequest(_Filtered, _LogsScope):
    """POST /v2/logs/batch: start an export (for > 100,000 logs)."""

    ENDPOINT: ClassVar[str] = "logs_batch"
    EXAMPLE: ClassVar[dict[str, Any]] = {**_LOGS_EXAMPLE, "start_time": "now-1d"}


class LogsAggsRequest(_Aggregating, _LogsScope):
    """POST /v2/logs/aggs: aggregations over logs (no top-level filters: use a `filter` aggregation)."""

    ENDPOINT: ClassVar[str] = "logs_aggs"
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

    def _check_query(self) -> None:
        if self.application is None:
            raise _rule("application", "required: 'atr'")
        if self.app_type is None:
            raise _rule("app_type", "required: ec2 or kubernetes")
        if self.domain is None:
            raise _rule("domain", 'required: a list of domains or ["*"]')
        self._check_window()


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


class WorkloadsAggsRequest(_Aggregating, _WorkloadsScope):
    """POST /v2/workloads/aggs."""

    ENDPOINT: ClassVar[str] = "workloads_aggs"
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

    domain: Annotated[str, Field(min_length=1, description="One domain name, e.g. pay.example.com")]
    time_range: Annotated[DateMath, Field(description="OpenSearch date math, e.g. 'now-30d/d'")]

    @field_validator("domain")
    @classmethod
    def _domain(cls, value: str) -> str:
        if not value.strip():
            raise PydanticCustomError("blank", "must be a non-empty domain name")
        return value.strip()


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
