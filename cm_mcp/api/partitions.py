"""One internal model of a batch partition, whatever status endpoint reported it: the endpoints
disagree on shape (reference items 23-26), `partitions_from_status` reads them all."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict

from cm_mcp.api.responses import (
    BatchStatusResponse,
    V1BatchUrlsResponse,
    V1UrlEntry,
    V2StatusEntry,
    parse_time_or_none,
)

StatusKind = Literal["logs", "workloads", "v1"]

#: Status values that end a partition's life (item 24); anything else, known or not, is "not yet".
COMPLETED_STATUS: Final = "completed"
FAILED_STATUS: Final = "failed"
UNKNOWN_STATUS: Final = "unknown"


class Partition(BaseModel):
    """One partition of a batch, whatever endpoint reported it.

    `ready` means "download now": completed with a usable URL, or completed and empty (count 0, no URL,
    item 26). `completed` alone is the server's word, which may come before a usable URL.
    """

    model_config = ConfigDict(frozen=True)

    #: identity across polls (item 27): (start, end) for V2, normalized when parsable; V1's time_range text
    key: tuple[str, str] | str
    start_time: datetime | None = None
    end_time: datetime | None = None
    #: V1's opaque time range, or "start/end" as sent for V2
    time_range_text: str | None = None
    #: log_count or workload_count; None when absent (V1 never has one); provisional until completed
    count: int | None = None
    #: only an http(s) URL; None for null, "null", "" or a missing key
    url: str | None = None
    completed: bool = False
    ready: bool = False
    #: as sent (any value accepted), "unknown" when missing
    status: str = UNKNOWN_STATUS

    @property
    def is_failed(self) -> bool:
        return self.status.strip().lower() == FAILED_STATUS

    @property
    def is_final(self) -> bool:
        """Completed or failed; unknown statuses are not final until the token expires (item 24)."""
        return self.completed or self.is_failed

    @property
    def is_empty(self) -> bool:
        """Completed with nothing to download (count 0 and no URL)."""
        return self.completed and self.count == 0 and self.url is None


def partitions_from_status(body: Mapping[str, Any], kind: StatusKind) -> list[Partition]:
    """Map a batch status body onto partitions; pydantic.ValidationError when its shape is wrong."""
    if kind == "v1":
        v1 = V1BatchUrlsResponse.model_validate(body)
        return [_from_v1(entry, index) for index, entry in enumerate(v1.presigned_urls)]
    v2 = BatchStatusResponse.model_validate(body)
    return [_from_v2(entry, index, kind) for index, entry in enumerate(v2.presigned_urls)]


def usable_url(value: object) -> str | None:
    """`value` when it is an http(s) URL with a host; None for null, "null", "" and anything else."""
    if not isinstance(value, str):
        return None
    candidate = value.strip()
    try:
        parts = urlsplit(candidate)
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https") or not parts.hostname:
        return None
    return candidate


def _from_v2(entry: V2StatusEntry, index: int, kind: StatusKind) -> Partition:
    status = _status_text(entry.status)
    completed = entry.completed is True or status.lower() == COMPLETED_STATUS
    count = entry.log_count if kind == "logs" else entry.workload_count
    if count is None:  # tolerate the other family's field name rather than lose the count
        count = entry.workload_count if kind == "logs" else entry.log_count
    start, end = parse_time_or_none(entry.start_time), parse_time_or_none(entry.end_time)
    key = (_key_part(entry.start_time, start, index), _key_part(entry.end_time, end, index))
    text = f"{entry.start_time}/{entry.end_time}" if entry.start_time or entry.end_time else None
    return _partition(key, start, end, text, count, entry.presigned_url, completed, status)


def _from_v1(entry: V1UrlEntry, index: int) -> Partition:
    status = _status_text(entry.status)
    completed = entry.ready is True or status.lower() == COMPLETED_STATUS
    key = entry.time_range if entry.time_range else f"#{index}"
    return _partition(key, None, None, entry.time_range, None, entry.presigned_url, completed, status)


def _partition(
    key: tuple[str, str] | str,
    start: datetime | None,
    end: datetime | None,
    text: str | None,
    count: int | None,
    raw_url: str | None,
    completed: bool,
    status: str,
) -> Partition:
    url = usable_url(raw_url)
    empty = completed and count == 0 and url is None
    ready = completed and (url is not None or empty)
    return Partition(
        key=key,
        start_time=start,
        end_time=end,
        time_range_text=text,
        count=count,
        url=url,
        completed=completed,
        ready=ready,
        status=status,
    )


def _status_text(status: str | None) -> str:
    return status.strip() if status and status.strip() else UNKNOWN_STATUS


def _key_part(raw: str | None, parsed: datetime | None, index: int) -> str:
    # Normalized so that `...00Z` and `...00.000Z` on two polls name the same partition.
    if parsed is not None:
        return parsed.isoformat()
    return raw if raw else f"#{index}"
