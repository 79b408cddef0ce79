"""The terminal progress bar of `cm-mcp call`: any sequence of notifications draws, nothing raises."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from cm_mcp.server.progress import ProgressBar

pytestmark = pytest.mark.anyio


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


async def test_unknown_then_known_totals_draw_the_messages() -> None:
    screen = io.StringIO()
    with ProgressBar(Console(file=screen, force_terminal=False, width=120)) as bar:
        await bar.update(0, None, "submitted the logs batch")
        await bar.update(1, 8, "1/8 partitions, 100,000 logs")
        await bar.update(8, 8, "8/8 partitions, 1,000,000 logs")
    text = screen.getvalue()
    assert "8/8 partitions, 1,000,000 logs" in text
    assert [event[0] for event in bar.events] == [0, 1, 8]


async def test_a_display_failure_never_fails_the_call() -> None:
    class Broken(io.StringIO):
        def write(self, _: str) -> int:
            raise OSError("terminal gone")

    with ProgressBar(Console(file=Broken(), force_terminal=True)) as bar:
        await bar.update(1, None, "x")
        await bar.update(2, 3, "y")
    assert len(bar.events) == 2
