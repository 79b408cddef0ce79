"""Daily request quotas per token subject and endpoint family, reset at 00:00 UTC.

The reference hints at separate budgets (V2 scroll/batch ~50, V2 aggs ~1000, V1 ~500; item 36);
the sandbox keeps one counter per (sub, family). Status polls are free (item 30 leaves it open;
free polling keeps well-behaved clients from starving): they are the endpoints cm_mcp/api/endpoints.py
leaves untracked, and the families are its endpoint names.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Final

from cm_mcp.api.endpoints import ENDPOINTS
from cm_mcp.api.quota import next_utc_midnight

_DAILY_LIMITS: Final[dict[str, int]] = {
    "logs_scroll": 50,
    "logs_batch": 50,
    "workloads_scroll": 50,
    "workloads_batch": 50,
    "logs_aggs": 1000,
    "workloads_aggs": 1000,
    "v1_logs_scroll": 500,
    "v1_logs_batch": 500,
    "billing_query": 500,
}
#: Every endpoint's daily limit; None = free (not counted, no remaining value to report).
DEFAULT_LIMITS: Final[dict[str, int | None]] = {
    name: None if endpoint.family is None else _DAILY_LIMITS[endpoint.family]
    for name, endpoint in ENDPOINTS.items()
}


class QuotaExhausted(Exception):
    def __init__(self, family: str, limit: int, reset_at: datetime) -> None:
        super().__init__(
            f"Daily request limit of {limit} reached for {family}; resets at {reset_at:%Y-%m-%dT%H:%M:%SZ}"
        )
        self.family = family
        self.limit = limit
        self.reset_at = reset_at


@dataclass
class _Counter:
    day: str
    used: int


class Quotas:
    """Thread-safe counters; `now` is injectable everywhere for tests."""

    def __init__(self, limits: dict[str, int | None] | None = None) -> None:
        unknown = set(limits or {}) - set(DEFAULT_LIMITS)
        if unknown:
            raise ValueError(f"unknown quota families: {', '.join(sorted(unknown))}")
        self.limits: dict[str, int | None] = {**DEFAULT_LIMITS, **(limits or {})}
        self._counters: dict[tuple[str, str], _Counter] = {}
        self._lock = threading.Lock()

    def _limit(self, family: str) -> int | None:
        if family not in self.limits:
            raise KeyError(f"unknown endpoint family {family!r}")
        return self.limits[family]

    @staticmethod
    def _day(now: datetime) -> str:
        return now.astimezone(UTC).strftime("%Y-%m-%d")

    def _counter(self, sub: str, family: str, now: datetime) -> _Counter:
        c = self._counters.get((sub, family))
        day = self._day(now)
        if c is None or c.day != day:  # a new UTC day starts from zero
            c = _Counter(day, 0)
            self._counters[(sub, family)] = c
        return c

    def consume(self, token_sub: str, family: str, now: datetime | None = None) -> int | None:
        """Count one request; returns the remaining count (None for free families) or raises QuotaExhausted."""
        limit = self._limit(family)
        if limit is None:
            return None
        t = now or datetime.now(UTC)
        with self._lock:
            c = self._counter(token_sub, family, t)
            if c.used >= limit:
                raise QuotaExhausted(family, limit, next_utc_midnight(t))
            c.used += 1
            return limit - c.used

    def remaining(self, token_sub: str, family: str, now: datetime | None = None) -> int | None:
        limit = self._limit(family)
        if limit is None:
            return None
        with self._lock:
            return max(0, limit - self._counter(token_sub, family, now or datetime.now(UTC)).used)

    def exhaust(self, token_sub: str, family: str, now: datetime | None = None) -> None:
        """Use up a family's budget (for demos of the 429 path via the admin endpoint)."""
        limit = self._limit(family)
        if limit is not None:
            with self._lock:
                self._counter(token_sub, family, now or datetime.now(UTC)).used = limit

    def reset(self) -> None:
        with self._lock:
            self._counters.clear()

    def stats(self, now: datetime | None = None) -> dict[str, object]:
        """Snapshot: limits, next reset, and today's usage per subject and family."""
        t = now or datetime.now(UTC)
        day = self._day(t)
        usage: dict[str, dict[str, dict[str, int | None]]] = {}
        with self._lock:
            for (sub, family), c in sorted(self._counters.items()):
                if c.day != day:
                    continue
                limit = self.limits[family]
                usage.setdefault(sub, {})[family] = {
                    "used": c.used,
                    "limit": limit,
                    "remaining": None if limit is None else max(0, limit - c.used),
                }
        return {
            "limits": dict(self.limits),
            "reset_at": next_utc_midnight(t).strftime("%Y-%m-%dT%H:%M:%SZ"),
            "usage": usage,
        }
