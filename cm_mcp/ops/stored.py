"""Follow-up questions on stored results at zero API cost: `results_list`, `results_search`,
`results_aggs` (no MCP here).

They answer from the local store with the same DSL and the same summaries as the upstream tools, so a
model can move between them without learning anything new. A result whose index is still being built
is waited for, with progress (`await_index`).
"""

from __future__ import annotations

import json
import time
from typing import Annotated, Any, ClassVar, Literal

import anyio
from pydantic import BaseModel, Field, field_validator

from cm_mcp.api.querydsl import check_aggs, check_filters
from cm_mcp.api.requests import APIRequest, StringList
from cm_mcp.api.times import format_utc
from cm_mcp.api.validation import dsl_error
from cm_mcp.batch import ProgressReporter
from cm_mcp.batch.limits import HEARTBEAT_SECONDS
from cm_mcp.ops.interrupted import UnfinishedExport, unfinished_exports
from cm_mcp.ops.results import Progress, Rendered
from cm_mcp.store import IndexState, ResultInfo, ResultStore
from cm_mcp.summarize import (
    estimate_tokens,
    render_aggs,
    render_logs,
    summarize_aggs,
    summarize_logs,
    summarize_records,
)
from cm_mcp.summarize.budget import MAX_TOKENS, summary_budget
from cm_mcp.summarize.models import AggsSummaryField, LogSummaryField


class NoArguments(APIRequest):
    """The input of tools that take no arguments (results_list, quota_status)."""

    ENDPOINT: ClassVar[str] = "none"
    EXAMPLE: ClassVar[dict[str, Any]] = {}


#: The ids ResultStore.new_id makes (`r<date>-<time>-<6 hex>`); anything else is refused before it
#: can name a path (a 300-character id crashed the store with OSError: File name too long).
RESULT_ID_PATTERN = r"^r\d{8}-\d{6}-[0-9a-f]{6}$"
_RESULT_ID_EXAMPLE = "r20261126-101500-a1b2c3"


class _OnResult(APIRequest):
    result_id: Annotated[
        str,
        Field(pattern=RESULT_ID_PATTERN, description="A result id from results_list or an export"),
    ]
    filters: Annotated[
        list[dict[str, Any]] | None, Field(description="Same filter DSL as logs_scroll (ANDed)")
    ] = None

    @field_validator("filters")
    @classmethod
    def _filters(cls, value: list[dict[str, Any]] | None) -> list[dict[str, Any]] | None:
        if value is not None and (issues := check_filters(value)):
            raise dsl_error("filters", issues, value)
        return value

    @classmethod
    def field_message(cls, name: str, error_type: str, default: str) -> str:
        if name == "result_id" and error_type == "string_pattern_mismatch":
            return (
                f"must be a stored result's id such as {_RESULT_ID_EXAMPLE!r} (results_list shows them; "
                "an export or a scroll page names its own)"
            )
        return super().field_message(name, error_type, default)


class ResultsSearchRequest(_OnResult):
    ENDPOINT: ClassVar[str] = "results_search"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "result_id": "r20261126-101500-a1b2c3",
        "filters": [{"term": {"regex.extractions.logLevel": "ERROR"}}],
        "size": 500,
    }

    fields: Annotated[StringList | None, Field(description="Only these _source fields")] = None
    size: Annotated[int, Field(gt=0, le=100_000, description="Records to summarise (default 1000)")] = 1000
    order: Annotated[Literal["asc", "desc"], Field(description="Time order (desc: newest first)")] = "asc"


class ResultsAggsRequest(_OnResult):
    ENDPOINT: ClassVar[str] = "results_aggs"
    EXAMPLE: ClassVar[dict[str, Any]] = {
        "result_id": "r20261126-101500-a1b2c3",
        "aggs": {"levels": {"terms": {"field": "regex.extractions.logLevel"}}},
    }

    aggs: Annotated[dict[str, Any], Field(description="Same aggregation DSL as logs_aggs")]

    @field_validator("aggs")
    @classmethod
    def _aggs(cls, value: dict[str, Any]) -> dict[str, Any]:
        if issues := check_aggs(value):
            raise dsl_error("aggs", issues, value)
        return value


class ResultEntry(BaseModel):
    """One stored result as results_list shows it; everything else is in its cm://results/{id}."""

    id: str
    source: str
    kind: str
    #: what was asked, without the time window: application, scope, filters (cut at SCOPE_CHARS)
    scope: str
    start_time: str | None
    end_time: str | None
    records: int
    complete: bool
    created: str
    index_state: IndexState

    @classmethod
    def of(cls, info: ResultInfo) -> ResultEntry:
        asked = {k: v for k, v in info.request.items() if k not in ("start_time", "end_time", "time_range")}
        scope = json.dumps(asked, separators=(",", ":"))
        if len(scope) > SCOPE_CHARS:
            scope = scope[: SCOPE_CHARS - 1] + "…"
        return cls(
            id=info.id,
            source=info.source,
            kind=info.kind,
            scope=scope,
            start_time=info.start_time,
            end_time=info.end_time,
            records=info.records,
            complete=info.complete,
            created=format_utc(info.created),
            index_state=info.index_state,
        )

    def line(self) -> str:
        state = "complete" if self.complete else "partial"
        return (
            f"- {self.id}  {self.source:<6} {self.kind:<9} {self.records:>9,} records  {state:<8} "
            f"{self.start_time} .. {self.end_time}  {self.scope}"
        )


#: Longest request summary in a results_list entry; the whole request is in the result's resource.
SCOPE_CHARS = 160


class ResultsList(BaseModel):
    results: list[ResultEntry]
    #: stored results left out to keep within the budget (the oldest)
    omitted: int = 0
    retention: str
    #: exports not stored yet whose token still lives: each continues at no quota with its `resume` call
    unfinished_exports: list[UnfinishedExport] = []


class LocalSearch(BaseModel):
    result_id: str
    summary: LogSummaryField  # sent as its digest: the text has the rows


class LocalAggs(BaseModel):
    result_id: str
    summary: AggsSummaryField


#: How often a follow-up waiting for a result's index reports progress (as an export does).
INDEX_WAIT_HEARTBEAT_SECONDS = HEARTBEAT_SECONDS


async def await_index(store: ResultStore, result_id: str, progress: Progress | None) -> None:
    """Wait until the result's search index is complete, with progress at least every
    INDEX_WAIT_HEARTBEAT_SECONDS.

    A fresh export indexes at ~30k records/s in the background, so a follow-up on a few million
    records can wait minutes, beyond the ~60 s after which clients give up on a silent call. Progress
    counts the records indexed when the build runs in this process (`total`: the result's records
    plus one for "ready", the last event);
    when it runs in another process, or is about to start here, the heartbeats' sub-steps advance the
    value (batch/progress.py) and the message says how long it has waited.
    """
    info = await anyio.to_thread.run_sync(store.get, result_id)
    if info.index_state == "ready":
        return
    started = time.monotonic()
    built = anyio.Event()
    failure: list[BaseException] = []
    reporter = ProgressReporter(progress, heartbeat=INDEX_WAIT_HEARTBEAT_SECONDS)
    # One step per record indexed, plus one for the index becoming ready (as an export's last step
    # is storing its result): heartbeats after the last record stay below the total.
    reporter.stage, reporter.total = "indexing", info.records + 1

    def sample() -> tuple[int, str]:
        indexed = store.index_progress(result_id)
        if indexed is not None:
            return (
                indexed,
                f"building the search index of {result_id}: {indexed:,} of {info.records:,} records",
            )
        waited = time.monotonic() - started
        return 0, (
            f"waiting for the search index of {result_id} ({info.records:,} records; built by another "
            f"process, or about to start here): {waited:.0f} s"
        )

    async def build() -> None:
        try:
            await anyio.to_thread.run_sync(store.ensure_index, result_id)  # builds it, or waits for the build
        except Exception as exc:  # re-raised below, as itself rather than inside an ExceptionGroup
            failure.append(exc)
        finally:
            built.set()

    async with anyio.create_task_group() as tg, reporter.beating(sample):
        tg.start_soon(build)
        await built.wait()
    if failure:
        raise failure[0]
    await reporter.finish("indexing", f"the search index of {result_id} is ready ({info.records:,} records)")


async def results_list(store: ResultStore, *, max_tokens: int) -> Rendered:
    """Unfinished exports, then stored results newest first, as many as fit in `max_tokens`."""
    infos = await anyio.to_thread.run_sync(store.list)
    unfinished = await anyio.to_thread.run_sync(unfinished_exports, store.data_dir)
    lines = [f"{len(infos)} stored result(s), newest first; retention: {store.retention_text}"]
    if unfinished:
        lines.append(
            f"{len(unfinished)} unfinished export(s), running or interrupted; continue one at no quota "
            "with its call (submitting the batch again would cost quota):"
        )
    for job in unfinished:
        state = "running now (its call waits for it)" if job.running else job.state
        if job.state == "partial" and not job.running:
            state = "stored incomplete, its missing partitions still fetchable"
        lines.append(
            f"- {job.kind} export submitted {job.submitted_at}, {state}: {job.partitions_done}/{job.partitions} "
            f"partitions, {job.downloaded_records:,} records downloaded; token expires "
            f"{job.token_expires_at}; {job.resume['tool']} {json.dumps(job.resume['arguments'])}"
        )
    # An entry costs its text line and its structured JSON: a client may show the model either.
    header = ResultsList(results=[], retention=store.retention_text, unfinished_exports=unfinished)

    def omitted_line(count: int) -> str:
        return (
            f"omitted: {count} older result(s) (budget {max_tokens} tokens); "
            f"pass a larger max_tokens (up to {MAX_TOKENS}) to list more"
        )

    paid = [*lines, omitted_line(len(infos)), header.model_dump_json()]  # the omitted line at its longest
    room = max_tokens - sum(estimate_tokens(text) for text in paid)
    entries: list[ResultEntry] = []
    for info in infos:
        entry = ResultEntry.of(info)
        cost = estimate_tokens(entry.line()) + estimate_tokens(entry.model_dump_json()) + 1
        if cost > room:
            break
        entries.append(entry)
        room -= cost
    lines[1:1] = [entry.line() for entry in entries]
    omitted = len(infos) - len(entries)
    if omitted:
        lines.insert(1 + len(entries), omitted_line(omitted))
    listing = ResultsList(
        results=entries, omitted=omitted, retention=store.retention_text, unfinished_exports=unfinished
    )
    return Rendered(structured=listing, text="\n".join(lines))


async def results_search(
    store: ResultStore, request: ResultsSearchRequest, *, max_tokens: int, progress: Progress | None = None
) -> Rendered:
    await await_index(store, request.result_id, progress)
    info = await anyio.to_thread.run_sync(store.get, request.result_id)
    page = await anyio.to_thread.run_sync(
        lambda: store.search(request.result_id, request.filters, request.fields, request.size, request.order)
    )
    summarize = summarize_logs if info.kind == "logs" else summarize_records
    header = f"results_search on {request.result_id} (local, no API request): {page.total:,} match"
    summary = summarize(
        page.hits,
        total_matched=page.total,
        max_tokens=summary_budget(max_tokens, header),
        fields=request.fields,
        local_result_id=request.result_id,
    )
    return Rendered(
        structured=LocalSearch(result_id=request.result_id, summary=summary),
        text=f"{header}\n{render_logs(summary)}",
    )


async def results_aggs(
    store: ResultStore, request: ResultsAggsRequest, *, max_tokens: int, progress: Progress | None = None
) -> Rendered:
    await await_index(store, request.result_id, progress)
    data = await anyio.to_thread.run_sync(
        lambda: store.aggs(request.result_id, request.aggs, request.filters)
    )
    header = f"results_aggs on {request.result_id} (local, no API request)"
    summary = summarize_aggs(
        data["aggregations"],
        total_documents=data["total_documents"],
        max_tokens=summary_budget(max_tokens, header),
        request_aggs=request.aggs,
    )
    return Rendered(
        structured=LocalAggs(result_id=request.result_id, summary=summary),
        text=f"{header}\n{render_aggs(summary)}",
    )
