"""The summaries as pydantic models: what `render.py` prints, also JSON-serialisable as is."""

from __future__ import annotations

from pydantic import BaseModel, Field


class Totals(BaseModel):
    matched: int
    returned: int
    first_timestamp: str | None = None
    last_timestamp: str | None = None


class TemplateSummary(BaseModel):
    """One log template (or, for records without messages, one group of field values)."""

    template: str
    count: int
    share: float
    first_seen: str | None = None
    last_seen: str | None = None
    levels: dict[str, int] = Field(default_factory=dict)
    example: str = ""


class SampleRecord(BaseModel):
    timestamp: str | None = None
    level: str
    message: str
    template: int | None = Field(default=None, description="index into LogSummary.templates")
    fields: dict[str, str] = Field(default_factory=dict)


class Omitted(BaseModel):
    """What the summary left out, and how to get it."""

    records: int = 0
    templates: int = 0
    levels: int = 0
    truncated_messages: int = 0
    continuation: str | None = None
    how_to_get_more: str | None = None


class LogSummary(BaseModel):
    kind: str = "logs"
    group_by: str = "template"
    max_tokens: int
    totals: Totals
    levels: dict[str, int]
    templates: list[TemplateSummary]
    sample: list[SampleRecord]
    omitted: Omitted


class Bucket(BaseModel):
    key: str
    count: int
    key_ms: int | None = None
    metrics: dict[str, float | int | str | None] = Field(default_factory=dict)


class Gap(BaseModel):
    start: str
    end: str
    buckets: int


class Rise(BaseModel):
    at: str
    previous: int
    count: int
    increase: int


class AggSection(BaseModel):
    """One aggregation. Which fields are set depends on `kind`."""

    name: str
    kind: str  # terms | date_histogram | histogram | single_bucket | metric | rows
    buckets: list[Bucket] = Field(default_factory=list)
    other: int = 0
    buckets_omitted: int = 0
    sum_other_doc_count: int = 0
    total: int = 0
    count: int | None = None
    values: dict[str, float | int | str | None] = Field(default_factory=dict)
    interval: str | None = None
    merged: int = 1
    peaks: list[Bucket] = Field(default_factory=list)
    gaps: list[Gap] = Field(default_factory=list)
    rises: list[Rise] = Field(default_factory=list)
    note: str | None = None
    children: list[AggSection] = Field(default_factory=list)


class AggsSummary(BaseModel):
    kind: str = "aggregations"
    max_tokens: int
    total_documents: int | None
    sections: list[AggSection]
    omitted: Omitted
