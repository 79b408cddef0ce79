"""The pieces the V2 request models are built from (cm_mcp.api.requests): a time window, a filter
list, `fields`, aggregations (wrapped in one `filter` aggregation when filters are given) and a
scroll's first page or continuation."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, ValidationInfo, field_validator
from pydantic_core import PydanticCustomError

from cm_mcp.api.buckets import bucket_limit_issues
from cm_mcp.api.errors import ValidationIssue
from cm_mcp.api.querydsl import check_aggs, check_filters
from cm_mcp.api.request_base import APIRequest, StringList, check_dsl, instant, normalise_time
from cm_mcp.api.times import format_utc
from cm_mcp.api.validation import Values, known

TIME_DOC = "ISO 8601 (UTC) or date math such as 'now-6h', 'now-1d/d'"


StartTime = Annotated[str | None, Field(description=f"Window start: {TIME_DOC}")]
EndTime = Annotated[str | None, Field(description="Window end, after start_time; e.g. 'now'")]


class TimeWindow(APIRequest):
    """Normalises `start_time`/`end_time` (declared by subclasses after their scope fields, so the
    schema reads scope -> window -> filters); `_window_issues` checks the window."""

    if TYPE_CHECKING:  # declared by subclasses; annotated here for the type checker only
        start_time: str | None
        end_time: str | None

    @field_validator("start_time", "end_time", check_fields=False)
    @classmethod
    def _time(cls, value: str | None, info: ValidationInfo) -> str | None:
        return None if value is None else normalise_time(value, info)

    @staticmethod
    def _window_issues(values: Values, now: datetime) -> list[ValidationIssue]:
        issues = [
            ValidationIssue(name, f"required: {TIME_DOC}")
            for name in ("start_time", "end_time")
            if values.get(name) is None
        ]
        start = instant(values.get("start_time"), now, "down")
        end = instant(values.get("end_time"), now, "up")
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
        start = instant(values.get("start_time"), now, "down")
        end = instant(values.get("end_time"), now, "up")
        return (start, end) if start is not None and end is not None and end > start else None


class FilterList(APIRequest):
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
            check_dsl(check_filters(value), "filters", value)
        return value


class Filtered(FilterList):
    fields: Annotated[StringList | None, Field(description="Only these _source fields (dotted paths)")] = None


#: The aggregation that wraps an aggs request's own aggregations when it has `filters`.
FILTERED_AGG = "filtered"


class Aggregating(FilterList):
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
        check_dsl(check_aggs(value), "aggs", value)
        return value

    @classmethod
    def rule_issues(cls, values: Values, now: datetime) -> list[ValidationIssue]:
        issues = super().rule_issues(values, now)
        aggs = values.get("aggs")
        window = TimeWindow.window(values, now)
        if known(aggs) and isinstance(aggs, Mapping) and window is not None:
            issues += [
                ValidationIssue(f"aggs.{path}", message)
                for path, message in bucket_limit_issues(aggs, *window)
            ]
        return issues


class Scrollable(APIRequest):
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
