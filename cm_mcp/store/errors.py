"""Errors of the local result store (a branch of the one tree drawn in cm_mcp/api/errors.py)."""

from __future__ import annotations

from datetime import datetime

from cm_mcp.api.errors import CMError


class StoreError(CMError):
    """Base of every error raised by cm_mcp.store."""


class ResultNotFoundError(StoreError, KeyError):
    def __init__(self, result_id: str) -> None:
        self.result_id = result_id
        super().__init__(result_id)

    def __str__(self) -> str:
        return f"no stored result {self.result_id!r} (it may never have existed here, or was deleted)"


class ResultEvictedError(ResultNotFoundError):
    """The result existed but the retention policy removed it; a tombstone remembers when and why."""

    def __init__(self, result_id: str, evicted_at: datetime, reason: str, retention: str) -> None:
        self.evicted_at = evicted_at
        self.reason = reason
        self.retention = retention
        super().__init__(result_id)

    def __str__(self) -> str:
        return (
            f"result {self.result_id} was evicted on {self.evicted_at:%Y-%m-%d %H:%M} UTC ({self.reason}; "
            f"retention: {self.retention}); re-run the export (or scroll) to get the data again"
        )


#: The name the issue uses.
ResultEvicted = ResultEvictedError


class RecordFileError(StoreError):
    """A record file is corrupt, truncated, of an unknown format, or holds the wrong number of records."""
