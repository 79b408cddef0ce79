"""What an export reports: progress events while it runs, an ExportResult at the end."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from cm_mcp.batch.jobs import ExportKind
from cm_mcp.store.models import FailedPartition, IndexState, StoredFile

#: "indexing": a follow-up on a stored export waiting for its search index (cm_mcp.ops.stored)
Stage = Literal["submitted", "polling", "downloading", "done", "indexing"]


@dataclass(frozen=True)
class ProgressEvent:
    """`progress` strictly increases (batch/progress.py). For an export, its whole part counts the
    partitions final (downloaded and verified, or failed) and `total` is the partitions known so far
    plus one for storing the result (it can grow, item 27); between steps, heartbeats add a fraction
    that never reaches the next step. The last event of a finished export has `progress == total`
    and stage "done"."""

    progress: float
    total: float | None
    message: str
    stage: Stage


class ExportResult(BaseModel):
    result_id: str
    kind: ExportKind
    #: True when every partition is in the result; otherwise `failed_partitions` says what is missing
    complete: bool
    partitions: int
    #: distinct documents stored (de-duplicated on `_id`): what search/aggs on the result count
    records: int
    #: records in the downloaded files, before de-duplication
    records_received: int
    failed_partitions: list[FailedPartition] = Field(default_factory=list)
    files: list[StoredFile] = Field(default_factory=list)
    polls: int = 0
    elapsed_seconds: float = 0.0
    #: the job's local name (sha256(token)[:16]); the token itself is not repeated here
    job: str
    #: "building" when the export returns: the store indexes the files in the background and the
    #: first search/aggs on the result waits for it; `records` is exact either way
    index_state: IndexState = "ready"
    #: the sum of the API's partition counts (before de-duplication), when every partition had one
    expected_records: int | None = None
    #: records of the failed partitions, by the API's counts
    missing_records: int = 0
    #: True when a resume (`resume_export`, no quota) can still fetch some missing partitions: they
    #: failed for a transient reason and the batch token lives
    resumable: bool = False
    token_expires_at: datetime
    #: the earlier, partial result of this export that this one replaces (a resume)
    replaced_result: str | None = None

    @property
    def duplicates(self) -> int:
        return self.records_received - self.records
