"""Every limit of the export pipeline, with the reason beside it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Final

from cm_mcp.api.settings import DEFAULT_MAX_DOWNLOAD_BYTES

#: First status poll delay; a small batch is often ready within seconds.
POLL_INITIAL_SECONDS: Final = 1.0
#: Each poll waits this much longer than the previous one (item 30: polling may cost quota).
POLL_GROWTH: Final = 1.5
#: Polls never wait longer than this, so a finished partition is noticed within half a minute.
POLL_MAX_SECONDS: Final = 30.0
#: Item 29: tokens are assumed to expire 2 h after the batch call (the only documented lifetime).
TOKEN_LIFETIME: Final = timedelta(hours=2)
#: Stop polling this long before the token expires: a poll racing the expiry only earns a 404.
TOKEN_SAFETY_MARGIN: Final = timedelta(minutes=2)
#: Partitions downloaded at once: enough to hide latency, few enough not to look like abuse to S3.
DOWNLOAD_CONCURRENCY: Final = 4
#: Downloads of one partition per run after a transfer failure (a 5xx from the file host, a dropped
#: connection, a corrupt, truncated or short file): S3 asks clients to retry those. A partition still
#: failing after them is left for the next resume, which polls for fresh URLs (never resubmits).
DOWNLOAD_ATTEMPTS: Final = 3
#: Wait before the 2nd download of a partition; doubled before each further one (S3's 503 SlowDown
#: asks for back-off, and a network blip needs a moment to pass).
RETRY_BACKOFF_SECONDS: Final = 1.0
#: Fresh URLs requested for one partition after HTTP 403s before it is reported failed.
URL_REFRESHES: Final = 3
#: A progress notification at least this often during any wait (polling, back-off, a long download):
#: clients that reset their timeout on progress must never see a silent export (issue 12 asks for
#: 2 s at most; half that leaves room for a loaded event loop).
HEARTBEAT_SECONDS: Final = 1.0
#: Largest partition file accepted by default (bytes on the wire); a bigger one is stopped mid-stream.
#: The setting CM_MAX_DOWNLOAD_BYTES (Settings.max_download_bytes) changes it; defined there.
MAX_FILE_BYTES: Final = DEFAULT_MAX_DOWNLOAD_BYTES


@dataclass(frozen=True)
class ExportLimits:
    """The knobs of one export; tests shrink the times, the bench raises the concurrency."""

    poll_initial: float = POLL_INITIAL_SECONDS
    poll_growth: float = POLL_GROWTH
    poll_max: float = POLL_MAX_SECONDS
    token_lifetime: timedelta = TOKEN_LIFETIME
    token_margin: timedelta = TOKEN_SAFETY_MARGIN
    concurrency: int = DOWNLOAD_CONCURRENCY
    attempts: int = DOWNLOAD_ATTEMPTS
    retry_backoff: float = RETRY_BACKOFF_SECONDS
    url_refreshes: int = URL_REFRESHES
    heartbeat: float = HEARTBEAT_SECONDS
