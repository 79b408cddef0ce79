"""Failed partitions: what is missing from an export, why, and the body that fetches it again.

A partition's `cause` (jobs.FailureCause) decides what gets its data: a resume with the live token
for a transfer failure (`download`) or a file above the size limit (`too_large`, after raising the
limit); a new batch for just its range when the API reported it `failed` (`upstream`) or it was not
ready within the token's life (`not_ready`). Messages group the partitions by cause, so advice never
mixes them (a file over CM_MAX_DOWNLOAD_BYTES must not be told to resubmit the same range).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Final

from cm_mcp.store.models import FailedPartition

if TYPE_CHECKING:
    from cm_mcp.batch.jobs import PartitionRecord

#: How each cause reads after a count ("3 failed to download"), in the order messages list them.
CAUSE_LABELS: Final[dict[str, str]] = {
    "download": "failed to download",
    "too_large": "over the download size limit",
    "upstream": "failed upstream (the API reported them failed)",
    "not_ready": "not ready within the batch token's life",
}


def failed_partition(record: PartitionRecord, request: Mapping[str, Any]) -> FailedPartition:
    """The result's entry for a failed partition, with a request body covering just its range."""
    resubmit = dict(request)
    if record.start_time and record.end_time:
        resubmit["start_time"], resubmit["end_time"] = record.start_time, record.end_time
    return FailedPartition(
        start_time=record.start_time,
        end_time=record.end_time,
        status=record.server_status,
        error=record.error or "failed",
        cause=record.cause or "upstream",
        count=record.count,
        resubmit=resubmit,
    )


def by_cause(failed: Sequence[FailedPartition]) -> dict[str, list[FailedPartition]]:
    """`failed` grouped by cause, in CAUSE_LABELS order (unknown causes last)."""
    order = list(CAUSE_LABELS)
    groups: dict[str, list[FailedPartition]] = {}
    for partition in sorted(failed, key=lambda p: order.index(p.cause) if p.cause in order else len(order)):
        groups.setdefault(partition.cause, []).append(partition)
    return groups


def records_of(partitions: Sequence[FailedPartition]) -> str:
    """'1,234 records' by the API's counts, or '' when a count is unknown."""
    counts = [p.count for p in partitions]
    if not counts or any(count is None for count in counts):
        return ""
    return f"{sum(c for c in counts if c is not None):,} records"


def describe_failures(failed: Sequence[FailedPartition], partitions: int) -> str:
    """One sentence: how many partitions failed out of `partitions`, by cause, with an example error."""
    parts = []
    for cause, group in by_cause(failed).items():
        records = records_of(group)
        detail = f"{records}; last error: {group[0].error}" if records else f"last error: {group[0].error}"
        parts.append(f"{len(group)} {CAUSE_LABELS.get(cause, cause)} ({detail})")
    return f"{len(failed)} of {partitions} partitions have no data: " + "; ".join(parts)
