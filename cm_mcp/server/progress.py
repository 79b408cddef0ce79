"""A terminal progress bar fed by MCP progress notifications (for `cm-mcp call`).

It draws on stderr and only once the first notification arrives, so calls without progress print
nothing extra and stdout stays clean for the result.
"""

from __future__ import annotations

import sys
from types import TracebackType

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn


class ProgressBar:
    def __init__(self) -> None:
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self.events: list[tuple[float, float | None, str | None]] = []

    def __enter__(self) -> ProgressBar:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self._progress is not None:
            self._progress.stop()

    async def update(self, progress: float, total: float | None, message: str | None) -> None:
        self.events.append((progress, total, message))
        if self._progress is None:
            self._progress = Progress(
                TextColumn("{task.description}"),
                BarColumn(),
                TextColumn("{task.completed:.0f}/{task.total:.0f}"),
                TimeElapsedColumn(),
                console=Console(file=sys.stderr),
                transient=False,
            )
            self._progress.start()
            self._task = self._progress.add_task(message or "working", total=total)
        assert self._task is not None
        self._progress.update(self._task, completed=progress, total=total, description=message or "working")
