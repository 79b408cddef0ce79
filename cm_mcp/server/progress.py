"""A terminal progress bar fed by MCP progress notifications (for `cm-mcp call`).

It draws on stderr and only once the first notification arrives, so calls without progress print
nothing extra and stdout stays clean for the result. A display problem never fails the call: the bar
switches itself off and the call goes on.
"""

from __future__ import annotations

import logging
import sys
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

logger = logging.getLogger("cm_mcp.cli")


class ProgressBar:
    def __init__(self, console: Console | None = None) -> None:
        self._console = console or Console(file=sys.stderr)
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._broken = False
        self.events: list[tuple[float, float | None, str | None]] = []

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            try:
                self._progress.stop()
            except Exception:  # the display must never hide the call's own result or error
                logger.debug("progress bar failed to stop", exc_info=True)

    async def update(self, progress: float, total: float | None, message: str | None) -> None:
        self.events.append((progress, total, message))
        if self._broken:
            return
        try:
            self._draw(progress, total, message or "working")
        except Exception:
            self._broken = True
            logger.debug("progress bar disabled", exc_info=True)

    def _draw(self, progress: float, total: float | None, message: str) -> None:
        # `total` may be unknown (None) at first: the step text carries the numbers, never a format of None
        step = f"{progress:,.0f}/{total:,.0f}" if total is not None else f"{progress:,.0f}"
        if self._progress is None:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.fields[step]}"),
                TimeElapsedColumn(),
                console=self._console,
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(message, total=total, step=step)
        assert self._task is not None
        self._progress.update(self._task, completed=progress, total=total, description=message, step=step)
