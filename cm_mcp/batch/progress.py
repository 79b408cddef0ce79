"""Progress that strictly increases and never goes quiet, for exports and waits on stored results.

Two rules meet here. MCP progress MUST increase with every notification (the server drops repeats:
cm_mcp/server/endpoint.py), and a client that resets its timeout on progress must hear from a live
export at least every 2 s (issue 12): also while it waits for the API, for a retry's back-off or for
a long download, when nothing countable changes.

So a value is `steps + fraction`. `steps` counts real steps (partitions final, records indexed);
`fraction = t / (t + SUBSTEP_SECONDS)` grows with the time `t` since the last real step and stays
below 1. A heartbeat advances the value without ever reaching the next real step, and a real step
lands above every heartbeat before it. The increments stay far above float resolution for days
(after 2 h of waiting: 5e-7 per second, on values of up to millions).

    reporter = ProgressReporter(callback, heartbeat=1.0)
    async with reporter.beating(lambda: (partitions_done, "waiting for the API: 3 partitions")):
        ...
        await reporter.step("downloading", "2/5 partitions, 3,000 logs", steps=2, total=6)
    await reporter.finish("done", "export finished: ...")  # progress == total
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Final

import anyio

from cm_mcp.batch.limits import HEARTBEAT_SECONDS
from cm_mcp.batch.models import ProgressEvent, Stage

Progress = Callable[[ProgressEvent], Awaitable[None]]
#: What a heartbeat reports: (real steps so far, what is being waited for).
Sample = Callable[[], tuple[int, str]]

#: Time scale of the sub-step fraction: half of the way to the next step after this long.
SUBSTEP_SECONDS: Final = 30.0


class ProgressReporter:
    """Sends ProgressEvents with strictly increasing values; see the module docstring."""

    def __init__(
        self,
        callback: Progress | None,
        *,
        heartbeat: float = HEARTBEAT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._callback = callback
        self.heartbeat = heartbeat
        self._clock = clock
        self._steps = 0
        self._steps_since = clock()
        #: the value that means "finished" (None while unknown); it may grow (partitions, item 27)
        self.total: int | None = None
        self.stage: Stage = "submitted"
        self._last = float("-inf")
        self._last_sent = clock()
        self._lock = anyio.Lock()
        #: events sent, for the caller's accounting (tests, benchmarks)
        self.sent = 0

    def value(self, steps: int) -> float:
        """The value for `steps` real steps now: never below an earlier step, below `steps + 1`."""
        now = self._clock()
        if steps > self._steps:
            self._steps, self._steps_since = steps, now
        waited = max(0.0, now - self._steps_since)
        return self._steps + waited / (waited + SUBSTEP_SECONDS)

    async def step(self, stage: Stage, message: str, *, steps: int, total: int | None = None) -> None:
        """Report a real step (a poll, a partition done...): sent at once."""
        self.stage = stage
        if total is not None:
            self.total = total
        await self._send(lambda: self.value(steps), message)

    async def finish(self, stage: Stage, message: str) -> None:
        """The last event: progress == total (above every earlier value, so it reaches the client)."""
        self.stage = stage
        total = self.total if self.total is not None else self._steps + 1
        self.total = total
        await self._send(lambda: float(total), message)

    async def beat(self, sample: Sample) -> None:
        """One heartbeat: the current steps and what is being waited for."""
        steps, message = sample()
        await self._send(lambda: self.value(steps), message)

    @asynccontextmanager
    async def beating(self, sample: Sample) -> AsyncIterator[None]:
        """Heartbeats from `sample` whenever nothing was sent for `heartbeat` seconds, for the body."""
        if self._callback is None:
            yield
            return
        try:
            async with anyio.create_task_group() as tg:
                tg.start_soon(self._beat_loop, sample)
                try:
                    yield
                finally:
                    tg.cancel_scope.cancel()
        except BaseExceptionGroup as group:
            # The body's own error (or the callback's), as itself: callers catch typed errors.
            if len(group.exceptions) == 1:
                raise group.exceptions[0] from None
            raise

    async def _beat_loop(self, sample: Sample) -> None:
        while True:
            await anyio.sleep(max(0.0, self._last_sent + self.heartbeat - self._clock()))
            if self._clock() - self._last_sent >= self.heartbeat:
                await self.beat(sample)

    async def _send(self, value_now: Callable[[], float], message: str) -> None:
        if self._callback is None:
            return
        async with self._lock:  # values are computed and sent in one order
            value = value_now()
            if value <= self._last:
                return  # the same instant as the previous event: nothing new to say
            self._last, self._last_sent = value, self._clock()
            total = float(self.total) if self.total is not None else None
            self.sent += 1
            await self._callback(ProgressEvent(value, total, message, self.stage))
