"""The summaries as pydantic models: what `render.py` prints, and their structured forms.

A summary is sent twice: rendered as text (what the model reads) and as structured content (for
programs; some clients forward it to the model as well, and the token budget pays for both). The
structured form (`LogSummary.digest`, `AggsSummary.digest`) is therefore compact and does not repeat
the text's rows: a log summary's template rows, examples and sampled messages are in the text only
(the digest gives each template row's count, in the text's order, and how many records were
sampled); aggregation buckets are the data itself, so they are kept, as `[key, count]` pairs and
evenly spaced histograms as one list of counts. Zero and empty values are left out.
"""

from __future__ import annotations

from typing import Annotated, Any

from pydantic import BaseModel, Field, PlainSerializer


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

    def digest(self) -> LogDigest:
        totals = self.totals
        return LogDigest(
            kind=self.kind,
            by=None if self.group_by == "template" else self.group_by,
            matched=totals.matched,
            returned=totals.returned,
            first=totals.first_timestamp,
            last=totals.last_timestamp,
            levels=self.levels,
            templates=[template.count for template in self.templates],
            sample=len(self.sample),
            omitted=_omitted_counts(self.omitted),
        )

    def structured_json(self) -> str:
        return self.digest().model_dump_json(exclude_none=True)


class LogDigest(BaseModel):
    """A log (or workload) summary as structured content; the text content has its rows."""

    kind: str
    by: str | None = Field(default=None, description="the fields records are grouped by (no messages)")
    matched: int
    returned: int
    first: str | None = Field(default=None, description="earliest @timestamp returned")
    last: str | None = Field(default=None, description="latest @timestamp returned")
    levels: dict[str, int] = Field(description="records per level (logs) or state (workloads)")
    templates: list[int] = Field(description="records per template row of the text, in its order (#1, #2...)")
    sample: int = Field(description="records in the text's sample")
    omitted: dict[str, int] | None = Field(
        default=None, description="what was left out: records, templates, levels, truncated (absent: 0)"
    )


def _omitted_counts(omitted: Omitted) -> dict[str, int] | None:
    counts = {
        "records": omitted.records,
        "templates": omitted.templates,
        "levels": omitted.levels,
        "truncated": omitted.truncated_messages,
    }
    return {name: count for name, count in counts.items() if count} or None


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

    def digest(self) -> AggsDigest:
        omitted = {"buckets": self.omitted.records, "sections": self.omitted.templates}
        return AggsDigest(
            total_documents=self.total_documents,
            sections=[_section_digest(section) for section in self.sections],
            omitted={name: count for name, count in omitted.items() if count} or None,
        )

    def structured_json(self) -> str:
        return self.digest().model_dump_json(exclude_none=True)


class SectionDigest(BaseModel):
    """One aggregation as structured content. terms/rows: `buckets` as [key, count] (plus a metrics
    object when the bucket has sub-metrics) and `other` (count not in the buckets shown); histograms:
    `first` key (epoch ms for dates), `step` and one count per bucket (`counts`), or `buckets` when the
    keys are not evenly spaced; single_bucket: `count`; metric: `values`."""

    name: str
    kind: str
    total: int | None = None
    buckets: list[list[Any]] | None = None
    other: int | None = None
    first: int | float | None = None
    step: int | float | None = None
    interval: str | None = None
    counts: list[int] | None = None
    count: int | None = None
    values: dict[str, float | int | str | None] | None = None
    children: list[SectionDigest] | None = None


class AggsDigest(BaseModel):
    """An aggregations summary as structured content (exact totals; zero fields left out)."""

    total_documents: int | None = None
    sections: list[SectionDigest]
    omitted: dict[str, int] | None = Field(
        default=None, description="buckets folded into other or merged; sections not shown (absent: 0)"
    )


def _pair(bucket: Bucket) -> list[Any]:
    return [bucket.key, bucket.count, bucket.metrics] if bucket.metrics else [bucket.key, bucket.count]


def _section_digest(section: AggSection) -> SectionDigest:
    digest = SectionDigest(name=section.name, kind=section.kind)
    if section.kind in ("terms", "rows"):
        digest.total = section.total
        digest.buckets = [_pair(bucket) for bucket in section.buckets]
        digest.other = section.other or None
    elif section.kind in ("date_histogram", "histogram"):
        digest.total = section.total
        digest.interval = section.interval
        keys = [bucket.key_ms for bucket in section.buckets]
        known = [key for key in keys if key is not None]
        step = known[1] - known[0] if len(known) > 1 else None
        even = len(known) == len(keys) and all(
            key == known[0] + index * (step or 0) for index, key in enumerate(known)
        )
        if even and (step or len(known) < 2) and not any(bucket.metrics for bucket in section.buckets):
            digest.first = known[0] if known else None
            digest.step = step
            digest.counts = [bucket.count for bucket in section.buckets]
        else:
            digest.buckets = [_pair(bucket) for bucket in section.buckets]
    elif section.kind == "single_bucket":
        digest.count = section.count
    else:
        digest.values = section.values
    digest.children = [_section_digest(child) for child in section.children] or None
    return digest


#: A LogSummary field of a tool result: the whole summary in Python, its digest as structured content.
LogSummaryField = Annotated[LogSummary, PlainSerializer(LogSummary.digest, return_type=LogDigest)]
#: An AggsSummary field of a tool result, likewise.
AggsSummaryField = Annotated[AggsSummary, PlainSerializer(AggsSummary.digest, return_type=AggsDigest)]
