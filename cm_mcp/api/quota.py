"""What we know about the daily request quota, per endpoint family.

Each successful response may say how many requests remain today (item 35); we keep the latest value
per family (endpoints.py explains the families). A missing value means unknown, never 0 and never
unlimited. A 429 marks the family exhausted until the next 00:00 UTC, or for Retry-After seconds when
the server gives them; the reset time is undocumented (item 36), so midnight UTC is an assumption, and
the client refuses to send to an exhausted family until then, rather than spend more 429s (item 37).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from datetime import UTC, datetime, time, timedelta
from typing import Any

from cm_mcp.api.endpoints import QUOTA_FAMILIES
from cm_mcp.api.responses import daily_remaining

Clock = Callable[[], datetime]


def utc_now() -> datetime:
    return datetime.now(UTC)


def next_utc_midnight(now: datetime) -> datetime:
    tomorrow = now.astimezone(UTC).date() + timedelta(days=1)
    return datetime.combine(tomorrow, time(0, 0), tzinfo=UTC)


@dataclass(frozen=True)
class QuotaState:
    """One family's quota as last seen. All None: nothing known yet."""

    #: requests left today per the last response that said so
    remaining: int | None = None
    #: when `remaining` was reported
    seen_at: datetime | None = None
    #: set by a 429: no request should be sent to this family before then
    exhausted_until: datetime | None = None

    def is_exhausted(self, now: datetime) -> bool:
        return self.exhausted_until is not None and now < self.exhausted_until


class QuotaTracker:
    """Remaining daily requests per family, fed by the client from every response."""

    def __init__(self, *, clock: Clock = utc_now, families: tuple[str, ...] = QUOTA_FAMILIES) -> None:
        self._clock = clock
        self._states: dict[str, QuotaState] = {family: QuotaState() for family in families}

    def record_response(self, family: str | None, body: Mapping[str, Any]) -> int | None:
        """Note the remaining count in a 200 body; returns it (None when the body has none)."""
        remaining = daily_remaining(body)
        self.record(family, remaining)
        return remaining

    def record(self, family: str | None, remaining: int | None) -> None:
        """A successful response: the family works again; store `remaining` when known."""
        if family is None:  # batch status endpoints: untracked (items 30, 35)
            return
        state = self.state(family)
        # A success proves the quota is not (or no longer) exhausted.
        state = replace(state, exhausted_until=None)
        if remaining is not None:
            state = replace(state, remaining=remaining, seen_at=self._clock())
        self._states[family] = state

    def mark_exhausted(self, family: str | None, retry_after: float | None = None) -> datetime | None:
        """After a 429 we gave up on: block the family until Retry-After or next 00:00 UTC."""
        if family is None:
            return None
        now = self._clock()
        state = replace(self.state(family), seen_at=now)
        if retry_after is not None:  # a throttle with a known end says nothing about the daily count
            until = now + timedelta(seconds=retry_after)
        else:  # the daily quota is gone: the server has told us the count is 0
            until = next_utc_midnight(now)
            state = replace(state, remaining=0)
        self._states[family] = replace(state, exhausted_until=until)
        return until

    def state(self, family: str) -> QuotaState:
        return self._states.get(family, QuotaState())

    def exhausted_until(self, family: str | None) -> datetime | None:
        """When an exhausted family may be tried again; None when it is not known to be exhausted."""
        if family is None:
            return None
        state = self.state(family)
        return state.exhausted_until if state.is_exhausted(self._clock()) else None

    def snapshot(self) -> dict[str, QuotaState]:
        """Every known family's state (unknown ones included, all None)."""
        return dict(self._states)
