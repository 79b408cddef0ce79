"""Errors of the export pipeline (a branch of the one tree drawn in cm_mcp/api/errors.py). Each message
says what happened and what to do about it."""

from __future__ import annotations

from cm_mcp.api.errors import CMError
from cm_mcp.batch.failures import describe_failures
from cm_mcp.store.errors import RecordFileError
from cm_mcp.store.models import FailedPartition


class BatchError(CMError):
    """Base of every error raised by cm_mcp.batch."""


class DownloadError(BatchError):
    """A partition file could not be fetched (HTTP error, no answer, refused URL)."""


class HostNotAllowedError(DownloadError):
    """The presigned URL points to a host outside CM_DOWNLOAD_ALLOWED_HOSTS: never fetched."""

    def __init__(self, host: str, allowed: tuple[str, ...]) -> None:
        self.host = host
        self.allowed = allowed
        listed = ", ".join(allowed) if allowed else "(empty)"
        super().__init__(
            f"Refusing to download from host {host!r}: it is not in CM_DOWNLOAD_ALLOWED_HOSTS ({listed}). "
            f"If this host is trusted, add it to CM_DOWNLOAD_ALLOWED_HOSTS."
        )


class InsecureURLError(DownloadError):
    """A plain-http URL for a host that is not explicitly allow-listed."""


class URLExpiredError(DownloadError):
    """HTTP 403 from the file host: the presigned URL expired (item 28); poll for a fresh one."""


class FileTooLargeError(DownloadError):
    """The file is larger than CM_MAX_DOWNLOAD_BYTES; the download was stopped. Resubmitting the same
    range would make the same file, so the message says what does help."""

    ADVICE = (
        "Export a narrower time range (or several narrower ones): the partitions get smaller; or raise "
        "CM_MAX_DOWNLOAD_BYTES if this disk can hold the file. Resubmitting the same range would make "
        "the same file."
    )

    def __init__(self, message: str) -> None:
        #: what happened, without the advice (listings of missing partitions give their own)
        self.detail = f"{message} (CM_MAX_DOWNLOAD_BYTES)"
        super().__init__(f"{self.detail}. {self.ADVICE}")


class VerificationError(BatchError, RecordFileError):
    """The downloaded file is corrupt, truncated, of an unknown format, or has the wrong record count.

    A `RecordFileError` too: the file readers (store/formats.py) raise that, so handlers catch
    `RecordFileError` to cover both."""


class CountMismatchError(VerificationError):
    def __init__(self, expected: int, found: int) -> None:
        self.expected = expected
        self.found = found
        super().__init__(f"the file holds {found:,} records but the status reported {expected:,}")


class JobNotFoundError(BatchError):
    """No local state for a batch token (never started here, or already cleaned up)."""


class TokenLifetimeError(BatchError):
    """The batch token is past (or too close to) its 2-hour lifetime; polling it would only get a 404."""


class NothingRecoveredError(BatchError):
    """An export ended with failed partitions and not one record downloaded, so nothing is stored.

    `resumable`: some of them failed for a transient reason and the batch token lives, so a resume
    (no quota) can still fetch them; `failed`: every failed partition with its cause and the body
    that resubmits just its range (store.FailedPartition)."""

    def __init__(self, kind: str, partitions: int, failed: list[FailedPartition], *, resumable: bool) -> None:
        self.kind = kind
        self.partitions = partitions
        self.failed = failed
        self.resumable = resumable
        super().__init__(f"no {kind} could be downloaded: {describe_failures(failed, partitions)}")
