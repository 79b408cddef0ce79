"""The one retry policy of the API client.

Retried: connection failures, timeouts, resets (no answer at all) and 502/503/504 (a proxy or an
overloaded server: the same request is likely to work a moment later). Never retried: any other 4xx or
5xx, including 500 and 501, which the reference gives no reason to expect to be transient; repeating them
only burns the day's small quota (~50 requests). A 429 is retried only when the server says, with
Retry-After, that a short wait (at most `max_retry_after`, 5 s) is enough; a 429 without it means the
daily quota is gone (item 37), and retrying would just hammer the API.

Delays: exponential backoff with full jitter (uniform in [0, min(max_delay, base * 2**(attempt-1))]),
spreading out clients that failed together. Bounded both by the number of retries and by the total
time since the first attempt; a retry that would start after the time budget is not made.

Read timeouts are retried even on the batch endpoints: if the first request did reach the server, the
retry creates a second (harmless) batch job at the cost of one more request.
"""

from __future__ import annotations

import random as _random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Final

import anyio
import httpx2

from cm_mcp.api.errors import APIError, RateLimitError, TransportError

if TYPE_CHECKING:
    from cm_mcp.api.settings import Settings

Sleep = Callable[[float], Awaitable[None]]

RETRYABLE_STATUSES: Final = frozenset({502, 503, 504})
#: The longest Retry-After we wait for; beyond it the throttle is a quota problem, not a hiccup.
MAX_RETRY_AFTER_SECONDS: Final = 5.0
#: Upper bound of one backoff delay, before jitter.
MAX_BACKOFF_SECONDS: Final = 8.0
#: Keeps 2**n finite whatever `attempt` a caller passes.
_MAX_EXPONENT: Final = 30

#: httpx2 failures where the request may simply be tried again; local mistakes (bad URL, unsupported
#: protocol, LocalProtocolError, decoding errors) would fail the same way every time.
_RETRYABLE_TRANSPORT_ERRORS: Final = (
    httpx2.TimeoutException,
    httpx2.NetworkError,
    httpx2.RemoteProtocolError,
)


@dataclass(frozen=True)
class RetryPolicy:
    """Limits and the injectable randomness, sleep and clock (tests pass fakes)."""

    #: retries after the first attempt
    max_retries: int = 4
    #: seconds since the first attempt after which no retry starts
    max_elapsed: float = 30.0
    base_delay: float = 0.5
    max_delay: float = MAX_BACKOFF_SECONDS
    max_retry_after: float = MAX_RETRY_AFTER_SECONDS
    random: Callable[[], float] = field(default=_random.random, repr=False)
    sleep: Sleep = field(default=anyio.sleep, repr=False)
    clock: Callable[[], float] = field(default=time.monotonic, repr=False)

    @classmethod
    def from_settings(cls, settings: Settings) -> RetryPolicy:
        return cls(
            max_retries=settings.max_retries,
            max_elapsed=settings.retry_max_seconds,
            base_delay=settings.retry_base_delay,
        )


DEFAULT_POLICY: Final = RetryPolicy()


def should_retry(
    attempt: int,
    error_or_status: BaseException | int,
    retry_after: float | None = None,
    *,
    elapsed: float = 0.0,
    policy: RetryPolicy = DEFAULT_POLICY,
) -> float | None:
    """Seconds to wait before retrying, or None for "do not retry".

    `attempt` is the 1-based number of the attempt that just failed; `error_or_status` is the exception
    raised (httpx2 or cm-mcp) or the HTTP status received; `retry_after` is the parsed Retry-After
    header; `elapsed` is the time since the first attempt started.
    """
    if attempt > policy.max_retries:
        return None
    if isinstance(error_or_status, RateLimitError) and retry_after is None:
        retry_after = error_or_status.retry_after
    status = _status_of(error_or_status)
    if status is None and not _is_retryable_error(error_or_status):
        return None
    delay = _delay_for(status, attempt, retry_after, policy)
    if delay is None or elapsed + delay > policy.max_elapsed:
        return None
    return delay


def backoff_delay(attempt: int, policy: RetryPolicy = DEFAULT_POLICY) -> float:
    """Full-jitter exponential backoff for the given 1-based attempt."""
    exponent = min(max(attempt - 1, 0), _MAX_EXPONENT)
    ceiling = min(policy.max_delay, policy.base_delay * 2.0**exponent)
    return policy.random() * ceiling


def _delay_for(
    status: int | None, attempt: int, retry_after: float | None, policy: RetryPolicy
) -> float | None:
    short_wait = retry_after is not None and retry_after <= policy.max_retry_after
    if status == 429:
        return retry_after if short_wait else None
    if status is not None and status not in RETRYABLE_STATUSES:
        return None
    delay = backoff_delay(attempt, policy)
    if retry_after is None:
        return delay
    # A 502-504 with Retry-After: honour it when it is short, give up when the server asks for longer.
    return max(delay, retry_after) if short_wait else None


def _status_of(error_or_status: BaseException | int) -> int | None:
    if isinstance(error_or_status, bool):
        return None
    if isinstance(error_or_status, int):
        return error_or_status
    if isinstance(error_or_status, APIError):
        return error_or_status.status
    return None


def _is_retryable_error(error: BaseException | int) -> bool:
    return isinstance(error, (*_RETRYABLE_TRANSPORT_ERRORS, TransportError))
