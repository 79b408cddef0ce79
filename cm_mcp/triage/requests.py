"""The triage tools' requests: the aggs tools' scope (the same models, so the same rules, checked
before any request), a window that defaults to the last 24 hours, an optional baseline, and options.

These are the tools' input schemas (one source of truth, as for every other tool).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Annotated, Any, ClassVar, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator

from cm_mcp.api.errors import ValidationIssue
from cm_mcp.api.request_base import APIRequest, instant, normalise_time
from cm_mcp.api.requests import LogsScope, WorkloadsScope
from cm_mcp.api.times import format_utc
from cm_mcp.api.validation import Values, known

#: Windows shorter than this hold too few buckets to tell a change from noise.
MIN_WINDOW: Final = timedelta(minutes=10)
#: Windows (and baselines) longer than this are coarsened to hour buckets and beyond: ask for less.
MAX_WINDOW: Final = timedelta(days=31)
DEFAULT_START: Final = "now-24h"
DEFAULT_END: Final = "now"
DEFAULT_FINDINGS: Final = 5
MAX_FINDINGS: Final = 20

_TIME_DOC = "ISO 8601 (UTC) or date math"


class BaselineWindow(BaseModel):
    """What "normal" is: a period before the window (default: as long as the window, just before it)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    start_time: str
    end_time: str

    @field_validator("start_time", "end_time")
    @classmethod
    def _time(cls, value: str, info: ValidationInfo) -> str:
        return normalise_time(value, info)


class _TriageOptions(APIRequest):
    if TYPE_CHECKING:  # declared by the scope half (LogsScope, WorkloadsScope); for the type checker only
        start_time: str | None
        end_time: str | None

    baseline: Annotated[
        BaselineWindow | None,
        Field(description="default: the period just before, as long"),
    ] = None
    max_findings: Annotated[int, Field(ge=1, le=MAX_FINDINGS)] = DEFAULT_FINDINGS

    @classmethod
    def rule_issues(cls, values: Values, now: datetime) -> list[ValidationIssue]:
        # the window's defaults apply to raw arguments too (rules re-run on them when a field failed)
        values = {**values}
        for name, default in (("start_time", DEFAULT_START), ("end_time", DEFAULT_END)):
            if values.get(name) is None:
                values[name] = default
        issues = super().rule_issues(values, now)
        window = LogsScope.window(values, now)
        if window is not None:
            start, end = window
            if end - start < MIN_WINDOW:
                issues.append(
                    ValidationIssue("start_time", f"the window must be at least {_span(MIN_WINDOW)} long")
                )
            if end - start > MAX_WINDOW:
                issues.append(
                    ValidationIssue("start_time", f"the window must be at most {_span(MAX_WINDOW)} long")
                )
        baseline = values.get("baseline")
        if isinstance(baseline, dict):  # raw arguments: read it as the model would (if it can)
            try:
                baseline = BaselineWindow.model_validate(baseline, context={"now": now})
            except ValueError:
                baseline = None
        if known(baseline) and isinstance(baseline, BaselineWindow):
            issues += _baseline_issues(baseline, window, now)
        return issues

    def windows(self, now: datetime) -> tuple[datetime, datetime, datetime, datetime]:
        """(window start, window end, baseline start, baseline end) of a validated request."""
        values: dict[str, Any] = {"start_time": self.start_time, "end_time": self.end_time}
        window = LogsScope.window(values, now)
        assert window is not None  # validated
        start, end = window
        if self.baseline is None:
            return start, end, start - (end - start), start
        b_start = instant(self.baseline.start_time, now, "down")
        b_end = instant(self.baseline.end_time, now, "up")
        assert b_start is not None
        assert b_end is not None
        return start, end, b_start, b_end


def _span(length: timedelta) -> str:
    minutes = int(length.total_seconds() // 60)
    return f"{minutes // 1440} days" if minutes >= 1440 else f"{minutes} minutes"


def _baseline_issues(
    baseline: BaselineWindow, window: tuple[datetime, datetime] | None, now: datetime
) -> list[ValidationIssue]:
    start = instant(baseline.start_time, now, "down")
    end = instant(baseline.end_time, now, "up")
    if start is None or end is None:
        return []
    if end <= start:
        return [
            ValidationIssue("baseline.end_time", f"must be after baseline.start_time ({format_utc(start)})")
        ]
    issues = []
    if end - start < MIN_WINDOW:
        issues.append(ValidationIssue("baseline", f"must be at least {_span(MIN_WINDOW)} long"))
    if end - start > MAX_WINDOW:
        issues.append(ValidationIssue("baseline", f"must be at most {_span(MAX_WINDOW)} long"))
    if window is not None and end > window[0] + timedelta(milliseconds=1):
        issues.append(
            ValidationIssue(
                "baseline.end_time",
                f"must be at or before start_time ({format_utc(window[0])}): the baseline is the normal the "
                "window is compared with, so it cannot overlap it",
            )
        )
    return issues


_DEFAULT_START = Field(default=DEFAULT_START, validate_default=True, description=_TIME_DOC)
_DEFAULT_END = Field(default=DEFAULT_END, validate_default=True)


class LogsTriageRequest(_TriageOptions, LogsScope):
    """What is abnormal in these logs: scope as logs_aggs, window, baseline."""

    ENDPOINT: ClassVar[str] = "logs_triage"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "application": "atr",
        "app_type": "kubernetes",
        "domain": ["*"],
        "start_time": "now-24h",
        "end_time": "now",
    }

    start_time: Annotated[str | None, _DEFAULT_START]
    end_time: Annotated[str | None, _DEFAULT_END]


class WorkloadsTriageRequest(_TriageOptions, WorkloadsScope):
    """What is abnormal in atr workloads: failed/timed-out runs and slow runs per workflow and domain."""

    ENDPOINT: ClassVar[str] = "workloads_triage"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "application": "atr",
        "app_type": "ec2",
        "domain": ["*"],
        "start_time": "now-24h",
        "end_time": "now",
    }

    start_time: Annotated[str | None, _DEFAULT_START]
    end_time: Annotated[str | None, _DEFAULT_END]
