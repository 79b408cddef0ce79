"""ProgressReporter: values strictly increase, heartbeats never reach the next step, the end reaches
the total, and a wait is never silent for longer than the heartbeat."""

from __future__ import annotations

import itertools

import anyio
import pytest

from cm_mcp.batch import ProgressEvent, ProgressReporter

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_heartbeats_advance_below_the_next_step_for_hours_and_steps_land_above_them() -> None:
    clock = Clock()
    events: list[ProgressEvent] = []

    async def record(event: ProgressEvent) -> None:
        events.append(event)

    reporter = ProgressReporter(record, heartbeat=1.0, clock=clock)
    await reporter.step("submitted", "submitted", steps=0)
    for _ in range(3 * 3600):  # three hours of one-second heartbeats on one step: past a token's life
        clock.now += 1.0
        await reporter.beat(lambda: (0, "waiting"))
    await reporter.step("downloading", "1/3", steps=1, total=4)
    clock.now += 0.001
    await reporter.beat(lambda: (1, "waiting"))
    await reporter.finish("done", "export finished")
    values = [event.progress for event in events]
    assert all(a < b for a, b in itertools.pairwise(values)), "strictly increasing"
    assert values[-4] < 1 <= values[-3] < values[-2] < 2  # heartbeats below the step they wait for
    assert (events[-1].progress, events[-1].total, events[-1].stage) == (4.0, 4.0, "done")
    assert events[1].stage == "submitted" and events[-2].stage == "downloading"  # heartbeats keep the stage


async def test_a_repeat_at_the_same_instant_is_not_sent() -> None:
    clock = Clock()
    events: list[ProgressEvent] = []

    async def record(event: ProgressEvent) -> None:
        events.append(event)

    reporter = ProgressReporter(record, clock=clock)
    await reporter.step("polling", "a poll", steps=2, total=5)
    await reporter.step("polling", "the same poll again", steps=2, total=5)
    assert [event.message for event in events] == ["a poll"]


async def test_beating_sends_heartbeats_while_the_body_waits_and_stops_after_it() -> None:
    events: list[ProgressEvent] = []
    three = anyio.Event()

    async def record(event: ProgressEvent) -> None:
        events.append(event)
        if len(events) == 3:
            three.set()

    reporter = ProgressReporter(record, heartbeat=0.02)
    async with reporter.beating(lambda: (0, "waiting for the test")):
        with anyio.fail_after(60):
            await three.wait()
    count = len(events)
    await anyio.sleep(0.1)  # five heartbeats' time: none may come once the wait is over
    assert len(events) == count, "no heartbeat after the wait"
    assert {event.message for event in events} == {"waiting for the test"}


async def test_beating_raises_the_body_error_as_itself() -> None:
    async def record(event: ProgressEvent) -> None:
        return None

    reporter = ProgressReporter(record, heartbeat=0.01)
    with pytest.raises(KeyError):
        async with reporter.beating(lambda: (0, "waiting")):
            raise KeyError("typed")


async def test_without_a_callback_nothing_runs() -> None:
    reporter = ProgressReporter(None, heartbeat=0.001)
    async with reporter.beating(lambda: (0, "never")):
        await anyio.sleep(0.01)
    await reporter.finish("done", "done")
    assert reporter.sent == 0
