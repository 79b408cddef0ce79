"""What the store says about a stored result (meta.json is exactly a serialised ResultInfo)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, Field

ResultSource = Literal["export", "scroll"]
ResultKind = Literal["logs", "workloads"]
#: building: the files are stored and counted, the search index is being built (a search waits for
#: it); ready: `index/` is complete. Read from disk (the index's ready marker), not trusted from meta.
IndexState = Literal["building", "ready"]


class StoredFile(BaseModel):
    """One data file of a result, under `results/<id>/files/`."""

    name: str
    bytes: int
    records: int
    #: ndjson, ndjson.gz, json or json.gz: export files are kept exactly as downloaded
    format: str
    start_time: str | None = None
    end_time: str | None = None


class FailedPartition(BaseModel):
    """A partition with no data in the result, and the request that would fetch it again."""

    start_time: str | None = None
    end_time: str | None = None
    status: str
    error: str
    #: why it has no data (cm_mcp.batch.jobs.FailureCause): upstream / not_ready need a new batch for
    #: the range; download / too_large are fetched by a resume while the batch token lives
    cause: str = "upstream"
    #: its records by the API's count, when known
    count: int | None = None
    #: a batch request body covering just this partition's time range (item 24)
    resubmit: dict[str, Any]


class ResultInfo(BaseModel):
    id: str
    source: ResultSource
    kind: ResultKind
    #: the request as sent (for scroll: the first page's request)
    request: dict[str, Any]
    start_time: str | None = None
    end_time: str | None = None
    created: datetime
    updated: datetime
    #: distinct documents (de-duplicated on `_id`), i.e. what search/aggs see; exact as soon as the
    #: result exists (exports hash every `_id` while verifying), confirmed when the index is built
    records: int = 0
    #: records received before de-duplication
    records_received: int = 0
    #: True only when every partition (or the whole scroll) is in; False results say what is missing
    complete: bool = False
    files: list[StoredFile] = Field(default_factory=list)
    failed_partitions: list[FailedPartition] = Field(default_factory=list)
    bytes: int = 0
    index_state: IndexState = "ready"
    # scroll results
    pages: int = 0
    next_scroll_id: str | None = None
    upstream_total: int | None = None

    @property
    def duplicates(self) -> int:
        return self.records_received - self.records


class SearchPage(NamedTuple):
    hits: list[dict[str, Any]]
    total: int
    #: cursor for the next page (`after=`), None at the end
    next: str | None
