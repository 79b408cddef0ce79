"""Request models of the V1 endpoints (logs, deprecated since 2026-03-01) and of billing (/v1/query)."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar

from pydantic import Field, field_validator
from pydantic_core import PydanticCustomError

from cm_mcp.api.fields import Application, AppTypeV1
from cm_mcp.api.request_base import APIRequest, BatchToken, DateMath, PageSize
from cm_mcp.api.validation import MISSING

# --- V1 (deprecated) ----------------------------------------------------------------------------

Scalar = str | int | float | bool


class _V1Request(APIRequest):
    @classmethod
    def required_message(cls, name: str) -> str:
        # Worded exactly so: the sandbox answers it with the documented V1 400 "Missing <field> variable".
        return MISSING


class _V1LogsQuery(_V1Request):
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


class V1BatchUrlsRequest(_V1Request):
    """POST /v1/logs/batch/urls (deprecated: use logs_batch_status)."""

    ENDPOINT: ClassVar[str] = "v1_logs_batch_urls"
    EXAMPLE: ClassVar[dict[str, Any]] = {"token": "1OTk3LCJpc3MiOi"}

    token: Annotated[BatchToken, Field(description="Token returned by the V1 batch call")]


class BillingQueryRequest(_V1Request):
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
