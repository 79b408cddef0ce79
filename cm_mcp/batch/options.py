"""What an export run needs besides the client and the batch: one object for `run_export` and
`resume_export`, so the two never pass the same long list of arguments twice."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx2

from cm_mcp.api.settings import Settings
from cm_mcp.batch.download import DownloadPolicy
from cm_mcp.batch.limits import ExportLimits
from cm_mcp.batch.models import ProgressEvent
from cm_mcp.store import ResultStore

Progress = Callable[[ProgressEvent], Awaitable[None]]
Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class ExportOptions:
    """`store`: where results and job files live; `progress`: gets every ProgressEvent (steps and
    heartbeats); `settings`: the download allow-list and size limit when `policy` is not given;
    `limits`: poll intervals, concurrency, retries; `download_transport`: an httpx2 transport for the
    file downloads (tests); `now`: the wall clock that the token's lifetime is measured with."""

    store: ResultStore
    progress: Progress | None = None
    settings: Settings | None = None
    limits: ExportLimits = field(default_factory=ExportLimits)
    policy: DownloadPolicy | None = None
    download_transport: httpx2.AsyncBaseTransport | None = None
    now: Clock = utc_now

    @property
    def download_policy(self) -> DownloadPolicy:
        """`policy`, else the allow-list and size limit of `settings` (CM_DOWNLOAD_ALLOWED_HOSTS...)."""
        return self.policy or DownloadPolicy.from_settings(self.settings or Settings())
