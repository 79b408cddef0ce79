"""What a triage returns: the structured result (the tools' output schema) the text is rendered from."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, Field


class TemplateLine(BaseModel):
    template: str = Field(description="the message's mask ('' when a tight budget kept only the example)")
    count: int = Field(description="records of this template in the finding's window")
    exact: bool = Field(description="counted by an aggregation (else: in the scroll's sample)")
    baseline: int | None = Field(default=None, description="records in the baseline (None: not checked)")
    new: bool | None = Field(default=None, description="absent from the baseline (None: not checked)")
    example: str = ""


class FollowUp(BaseModel):
    tool: str
    arguments: dict[str, Any]
    why: str


class Finding(BaseModel):
    rank: int
    score: float = Field(description="how abnormal: the evidence over the bar it had to pass (above 1)")
    kind: Literal["count", "new_template", "slow_runs"]
    scope: dict[str, str] = Field(
        description="field -> value, sharpened by service/function when one carries it"
    )
    level: str | None = Field(default=None, description="log level or workload state")
    start: str
    end: str
    resolution: str = Field(description="onset/end precision (histogram interval)")
    count: int = Field(description="records in the window")
    expected: float = Field(description="records the baseline predicts for the same window")
    ratio: float | None = None
    baseline_records: int = Field(description="records of this series in the whole baseline")
    templates: list[TemplateLine] = Field(default_factory=list)
    series: list[int] = Field(default_factory=list, description="records per bucket across the window")
    series_interval: str = ""
    evidence: str = ""
    scores: dict[str, float] = Field(
        default_factory=dict,
        description="each kind of evidence over its bar: rise (count vs the series' own bars), new (messages "
        "new to the application), familiar (count vs the largest ordinary burst, margin applied)",
    )
    follow_up: list[FollowUp] = Field(default_factory=list)


class Spent(BaseModel):
    requests: dict[str, int] = Field(description="API requests sent, per endpoint")
    scroll: str = Field(description="whether the scroll was spent, and why")


class Figures(BaseModel):
    """What the triage looked at: the figures that show a quiet window is quiet."""

    scopes: int
    series_scanned: int
    window_records: dict[str, int] = Field(description="severe records in the window per level/state")
    baseline_records: dict[str, int]
    significance_bar: float = Field(description="LLR any interval reaches by chance with probability 1%")
    best_score: float = Field(description="highest score of any series (findings need > 1)")
    best: str | None = Field(
        default=None, description="where that highest score was (absent with findings: it is finding #1)"
    )
    not_analysed: int = Field(description="records in scopes beyond the terms sizes")


class TriageResult(BaseModel):
    kind: Literal["logs", "workloads"]
    application: str
    app_type: str
    scope: dict[str, list[str]]
    window: dict[str, str]
    baseline: dict[str, str]
    interval: str
    seasonal: bool = Field(description="expectations follow the baseline's time of day")
    quiet: bool
    summary: str
    findings: list[Finding]
    figures: Figures
    spent: Spent
    result_id: str | None = Field(default=None, description="the scroll's page, kept locally")
    notes: list[str] = Field(default_factory=list)
    omitted: str | None = Field(default=None, description="what the token budget left out")
