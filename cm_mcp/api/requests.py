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

from datetime import datetime
from typing import Annotated, Any, ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from cm_mcp.api.errors import ValidationIssue
from cm_mcp.api.fields import Application, AppType
from cm_mcp.api.request_base import (
    MAX_PAGE_SIZE,
    WORKLOADS_DEFAULT_SIZE,
    APIRequest,
    BatchToken,
    PageSize,
    StringList,
)
from cm_mcp.api.request_parts import (
    FILTERED_AGG,
    Aggregating,
    EndTime,
    Filtered,
    Scrollable,
    StartTime,
    TimeWindow,
)
from cm_mcp.api.requests_v1 import (
    BillingQueryRequest,
    V1BatchUrlsRequest,
    V1LogsBatchRequest,
    V1LogsScrollRequest,
)
from cm_mcp.api.validation import INVALID, Values, known, parse_request

__all__ = [
    "FILTERED_AGG",
    "INVALID",
    "MAX_PAGE_SIZE",
    "REQUEST_MODELS",
    "APIRequest",
    "BillingQueryRequest",
    "StringList",
    "V1BatchUrlsRequest",
    "V1LogsBatchRequest",
    "V1LogsScrollRequest",
    "parse_request",
]


class _LogsScope(TimeWindow):
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
        # the scope's own messages first: they say more than the generic "required" (first one wins)
        issues: list[ValidationIssue] = []
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
        return issues + cls._window_issues(values, now) + super().rule_issues(values, now)


_LOGS_EXAMPLE: dict[str, Any] = {
    "application": "atr",
    "app_type": "kubernetes",
    "domain": ["pay.example.com"],
    "start_time": "now-6h",
    "end_time": "now",
}


# --- V2 logs ------------------------------------------------------------------------------------


class LogsScrollRequest(Scrollable, Filtered, _LogsScope):
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


class LogsBatchRequest(Filtered, _LogsScope):
    """POST /v2/logs/batch: start an export (for > 100,000 logs)."""

    ENDPOINT: ClassVar[str] = "logs_batch"
    EXAMPLE: ClassVar[dict[str, Any]] = {**_LOGS_EXAMPLE, "start_time": "now-1d"}
    REQUIRED: ClassVar[tuple[str, ...]] = ("application", "app_type", "start_time", "end_time")


class LogsAggsRequest(Aggregating, _LogsScope):
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


class _WorkloadsScope(TimeWindow):
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
        issues: list[ValidationIssue] = []
        for name, wanted in (
            ("application", "'atr'"),
            ("app_type", "ec2 or kubernetes"),
            ("domain", 'a list of domains or ["*"]'),
        ):
            if values.get(name) is None:
                issues.append(ValidationIssue(name, f"required: {wanted}"))
        return issues + cls._window_issues(values, now) + super().rule_issues(values, now)


_WORKLOADS_EXAMPLE: dict[str, Any] = {
    "application": "atr",
    "app_type": "ec2",
    "domain": ["*"],
    "start_time": "now-1d",
    "end_time": "now",
}


class WorkloadsScrollRequest(Scrollable, Filtered, _WorkloadsScope):
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


class WorkloadsBatchRequest(Filtered, _WorkloadsScope):
    """POST /v2/workloads/batch."""

    ENDPOINT: ClassVar[str] = "workloads_batch"
    EXAMPLE: ClassVar[dict[str, Any]] = dict(_WORKLOADS_EXAMPLE)
    REQUIRED: ClassVar[tuple[str, ...]] = ("application", "app_type", "domain", "start_time", "end_time")


class WorkloadsAggsRequest(Aggregating, _WorkloadsScope):
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


#: The scope + window halves of the logs and workloads requests, for requests built on them elsewhere
#: (the triage tools take exactly the aggs tools' scope, checked by the same rules).
LogsScope = _LogsScope
WorkloadsScope = _WorkloadsScope

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
