"""What each operation returns: a structured result (the tool's output schema) and its text.

The structured part is for programs (and clients that show structured content); the text is what
the model reads. Both come from the same model, so they never disagree. Some clients forward both to
the model, so the structured content is compact: summaries are sent as their digests (see
`cm_mcp.summarize.models`), None fields are left out (`compact_json`), and what the text already
spells out in words (notes, resubmission requests) is not repeated.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Awaitable, Callable
from typing import Any

from pydantic import BaseModel, Field

from cm_mcp.api.responses import V2Meta
from cm_mcp.batch.models import ProgressEvent
from cm_mcp.store import IndexState
from cm_mcp.summarize.models import AggsSummaryField, LogSummaryField

#: How an operation reports progress (the server turns it into MCP progress notifications).
Progress = Callable[[ProgressEvent], Awaitable[None]]


class CallInfo(BaseModel):
    """Facts about the upstream call a model may need to mention or act on."""

    endpoint: str
    request_id: str | None = None
    quota_remaining: int | None = Field(default=None, description="daily requests left for this endpoint")
    time_range: dict[str, str | None] | None = Field(default=None, description="window the API reports")
    cached: str | None = Field(
        default=None,
        description="answered from the local cache, no request sent: when the API gave this answer "
        "(request_id and time_range are that answer's)",
    )

    @classmethod
    def of(cls, endpoint: str, meta: V2Meta | None, remaining: int | None) -> CallInfo:
        window = None
        if meta is not None and meta.time_range is not None:
            window = {"start": meta.time_range.start, "end": meta.time_range.end}
        return cls(
            endpoint=endpoint,
            request_id=meta.request_id if meta else None,
            quota_remaining=remaining,
            time_range=window,
        )


def header_line(call: CallInfo, cached: str | None = None) -> str:
    """The first line of an upstream tool's text: endpoint, cached or not, window, quota, request_id."""
    parts = [call.endpoint]
    if cached:
        parts.append(cached)
    if call.time_range:
        parts.append(f"window {call.time_range.get('start')} .. {call.time_range.get('end')}")
    if call.quota_remaining is not None:
        parts.append(f"{call.quota_remaining} requests left today")
    if call.request_id:
        parts.append(f"request_id {call.request_id}")
    return " | ".join(parts)


class ScrollResult(BaseModel):
    call: CallInfo
    scroll_id: str | None = Field(default=None, description="pass alone to get the next page")
    result_id: str | None = Field(default=None, description="the page kept locally (results_search)")
    summary: LogSummaryField
    note: str | None = Field(default=None, description="why nothing matched, when the filters may say")


class AggsResult(BaseModel):
    call: CallInfo
    summary: AggsSummaryField
    filters: list[dict[str, Any]] | None = Field(
        default=None,
        description="applied as one wrapping filter aggregation: the totals are the filtered set's",
    )
    unfiltered_documents: int | None = Field(
        default=None, description="documents in the window before filters"
    )


class BatchSubmitResult(BaseModel):
    call: CallInfo
    token: str
    next_step: str


class PartitionInfo(BaseModel):
    start: str | None = None
    end: str | None = None
    time_range: str | None = None
    status: str
    count: int | None = None
    ready: bool


class ExportOutcome(BaseModel):
    """A finished export (`*_batch`, or `*_batch_status` with download=true)."""

    result_id: str
    resource_uri: str
    complete: bool
    partitions: int
    records: int
    duplicates: int
    #: each with its cause and resubmission request (programs resubmit from here; the export pays for
    #: this list out of its budget, as for its text)
    failed_partitions: list[dict[str, Any]]
    elapsed_seconds: float
    summary: LogSummaryField
    #: "building" until the store has indexed the files (results_* wait for it), then "ready"
    index_state: IndexState = "ready"
    #: when partitions are missing that the batch token can still fetch: the call that does, at no
    #: quota ({"tool": ..., "arguments": ...}); partitions that need a new batch carry `resubmit`
    resume: dict[str, Any] | None = None
    cached: str | None = Field(
        default=None,
        description="an identical export already stored answered this call (no request): its time",
    )


class BatchStatusResult(BaseModel):
    call: CallInfo
    token: str
    partitions: list[PartitionInfo]
    counts: dict[str, int] = Field(description="partitions per status")
    records_ready: int
    done: bool
    local: dict[str, Any] | None = Field(default=None, description="this server's download of the token")
    export: ExportOutcome | None = Field(
        default=None, description="with download=true: the finished export, as *_batch returns it"
    )

    @classmethod
    def of(
        cls,
        endpoint: str,
        token: str,
        partitions: list[PartitionInfo],
        *,
        done: bool,
        local: dict[str, Any] | None = None,
        export: ExportOutcome | None = None,
    ) -> BatchStatusResult:
        """The result for `partitions`, with their counts per status and the records ready derived."""
        return cls(
            call=CallInfo(endpoint=endpoint),
            token=token,
            partitions=partitions,
            counts=dict(Counter(p.status for p in partitions)),
            records_ready=sum(p.count or 0 for p in partitions if p.ready),
            done=done,
            local=local,
            export=export,
        )


class BillingResult(BaseModel):
    call: CallInfo
    summary: dict[str, Any]


class QuotaFamily(BaseModel):
    family: str
    remaining: int | None = None
    seen_at: str | None = None
    exhausted_until: str | None = None


class QuotaResult(BaseModel):
    families: list[QuotaFamily]
    resets_at: str
    #: said in the text
    note: str = Field(exclude=True)
    saved_today: dict[str, int] | None = Field(
        default=None, description="requests the response cache saved today (UTC), per family"
    )


class Rendered(BaseModel):
    """An operation's outcome: the structured result and the text the model reads."""

    model_config = {"arbitrary_types_allowed": True}

    structured: BaseModel
    text: str
