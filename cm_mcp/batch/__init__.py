"""Batch exports: submit -> poll -> download -> verify -> store, progress through a callback.
No MCP imports; cm_mcp.server turns the callback into MCP progress notifications."""

from cm_mcp.batch.download import DownloadedFile, Downloader, DownloadPolicy, check_url, host_matches
from cm_mcp.batch.errors import (
    BatchError,
    CountMismatchError,
    DownloadError,
    FileTooLargeError,
    HostNotAllowedError,
    InsecureURLError,
    JobNotFoundError,
    NothingRecoveredError,
    TokenLifetimeError,
    URLExpiredError,
    VerificationError,
)
from cm_mcp.batch.export import resume_export, run_export
from cm_mcp.batch.jobs import (
    JobState,
    PartitionRecord,
    job_status,
    job_summary,
    token_hash,
    unfinished_jobs,
)
from cm_mcp.batch.limits import ExportLimits
from cm_mcp.batch.models import ExportResult, ProgressEvent
from cm_mcp.batch.options import ExportOptions
from cm_mcp.batch.progress import ProgressReporter

__all__ = [
    "BatchError",
    "CountMismatchError",
    "DownloadError",
    "DownloadPolicy",
    "DownloadedFile",
    "Downloader",
    "ExportLimits",
    "ExportOptions",
    "ExportResult",
    "FileTooLargeError",
    "HostNotAllowedError",
    "InsecureURLError",
    "JobNotFoundError",
    "JobState",
    "NothingRecoveredError",
    "PartitionRecord",
    "ProgressEvent",
    "ProgressReporter",
    "TokenLifetimeError",
    "URLExpiredError",
    "VerificationError",
    "check_url",
    "host_matches",
    "job_status",
    "job_summary",
    "resume_export",
    "run_export",
    "token_hash",
    "unfinished_jobs",
]
