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
#: Downloads of one partition after a corrupt/truncated/short file: the first plus one re-fetch.
DOWNLOAD_ATTEMPTS: Final = 2
#: Fresh URLs requested for one partition after HTTP 403s before it is reported failed.
URL_REFRESHES: Final = 3
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
    url_refreshes: int = URL_REFRESHES
