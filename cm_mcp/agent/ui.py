"""What the engineer sees while the agent works: tool calls, results, progress, usage, notices.

All of it goes to stderr; stdout carries only the answer (`ask`) or the conversation (`chat`).
Progress is a live rich line (message, percentage, elapsed) on a terminal, and a plain line at most
every 10 s otherwise (logs, CI), so a long export never looks frozen and never floods a log. A display
problem never fails a call.
"""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import Any, TextIO

from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn, TimeElapsedColumn
from rich.text import Text

from cm_mcp.agent.approval import Spend, is_budgeted
from cm_mcp.agent.providers.base import ModelReply, Usage
from cm_mcp.agent.toolbox import CallOutcome, ToolInfo

logger = logging.getLogger("cm_mcp.agent")

#: Without a terminal, one progress line per call at most this often.
PLAIN_PROGRESS_EVERY_SECONDS = 10.0
_ARGUMENTS_SHOWN = 180
#: A streamed reply starting like this may be a tool call printed as text: held back until complete.
_CALL_PREFIXES = ("{", "[", "<tool_call", "```", "<|python_tag|>")


class TerminalUI:
    def __init__(
        self, *, err: TextIO | None = None, out: TextIO | None = None, stream_answer: bool = False
    ) -> None:
        self.err = err or sys.stderr
        self.out = out or sys.stdout
        self.console = Console(file=self.err, highlight=False, soft_wrap=True)
        self.live = self.console.is_terminal
        #: chat: the model's text streams to stdout as it arrives
        self.stream_answer = stream_answer
        self._held: list[str] = []
        self._streaming = False
        self._progress: Progress | None = None
        self._task: TaskID | None = None
        self._last_plain = 0.0

    # --- model text ---------------------------------------------------------------------------------

    def text_delta(self, text: str) -> None:
        if not self.stream_answer:
            return
        if not self._streaming:
            self._held.append(text)
            held = "".join(self._held).lstrip()
            if len(held) < 16 and not held.startswith(_CALL_PREFIXES) and "\n" not in held:
                return  # too early to tell
            if held.startswith(_CALL_PREFIXES):
                return  # maybe a call printed as text: shown (or not) when the reply is complete
            self._streaming = True
            text, self._held = "".join(self._held), []
        self._write_out(text)

    def reply_done(self, reply: ModelReply, *, answer: bool, visible: bool = True) -> None:
        """The reply is complete. `visible` is False for text that was a tool call printed as text (or a
        broken one): held back while streaming, it is never shown."""
        held, self._held = "".join(self._held), []
        if self.stream_answer:
            if visible and held:
                self._write_out(held)
            if self._streaming or (visible and held):
                self._write_out("\n")
        elif not answer and visible and reply.text.strip():
            self._line(("model: " + _one_line(reply.text, 300), "dim"))
        self._streaming = False

    def _write_out(self, text: str) -> None:
        self.out.write(text)
        self.out.flush()

    # --- tools --------------------------------------------------------------------------------------

    def tool_call(self, step: int, tool: ToolInfo, arguments: dict[str, Any], spend: Spend) -> None:
        shown = json.dumps(arguments, ensure_ascii=False)
        if len(shown) > _ARGUMENTS_SHOWN:
            shown = shown[:_ARGUMENTS_SHOWN] + "…"
        price = tool.cost if tool.cost != "unpriced" else ("read-only" if tool.read_only else "may write")
        if is_budgeted(tool):
            price += f" {spend.budgeted + 1}/{spend.allowance}"
        self._line((f"→ #{step} {tool.name}", "cyan"), f" {shown} ", (f"({price})", "dim"))

    def tool_result(self, step: int, tool: ToolInfo, outcome: CallOutcome, result_id: str | None) -> None:
        self._stop_progress()
        first = _one_line(outcome.text, 140)
        stored = f" · result {result_id}" if result_id else ""
        if outcome.is_error:
            self._line((f"← #{step} {tool.name} failed", "red"), f" in {outcome.elapsed:.1f} s: {first}")
        else:
            self._line((f"← #{step}", "green"), f" {outcome.elapsed:.1f} s · {first}{stored}")

    async def progress(
        self,
        step: int,
        tool: ToolInfo,
        value: float,
        total: float | None,
        message: str | None,
        elapsed: float,
    ) -> None:
        try:
            if self.live:
                self._live_progress(step, tool, value, total, message)
            else:
                self._plain_progress(step, tool, value, total, message, elapsed)
        except Exception:  # the display must never fail the call
            logger.debug("progress display failed", exc_info=True)

    def _live_progress(
        self, step: int, tool: ToolInfo, value: float, total: float | None, message: str | None
    ) -> None:
        if self._progress is None:
            self._progress = Progress(
                TextColumn("[cyan]#{task.fields[step]} {task.fields[tool]}[/cyan]"),
                BarColumn(),
                TaskProgressColumn(),
                TextColumn("{task.description}", markup=False),
                TimeElapsedColumn(),
                console=self.console,
                transient=True,
            )
            self._progress.start()
            self._task = self._progress.add_task("", total=total, step=step, tool=tool.name)
        assert self._task is not None
        self._progress.update(self._task, completed=value, total=total, description=message or "working")

    def _plain_progress(
        self,
        step: int,
        tool: ToolInfo,
        value: float,
        total: float | None,
        message: str | None,
        elapsed: float,
    ) -> None:
        now = time.monotonic()
        if self._last_plain and now - self._last_plain < PLAIN_PROGRESS_EVERY_SECONDS:
            return
        self._last_plain = now
        share = f" {value / total:.0%}" if total else ""
        self._line(f"  #{step} {tool.name}{share} {message or ''} ({elapsed:.0f} s)")

    def _stop_progress(self) -> None:
        self._last_plain = 0.0
        if self._progress is not None:
            try:
                self._progress.stop()
            finally:
                self._progress = None
                self._task = None

    # --- the rest -----------------------------------------------------------------------------------

    def notice(self, text: str) -> None:
        self._line(("! " + text, "yellow"))

    def usage(self, usage: Usage, prompt_tokens: int) -> None:
        cached = f", {usage.cache_read_tokens:,} from cache" if usage.cache_read_tokens else ""
        cached += f", {usage.cache_write_tokens:,} to cache" if usage.cache_write_tokens else ""
        tokens = f"· model: ~{prompt_tokens:,} tokens sent; {usage.input_tokens:,} in{cached} / {usage.output_tokens:,} out"
        self._line((tokens, "dim"))

    def line(self, text: str) -> None:
        """A plain line (summaries, one-line reasons)."""
        self._line(text)

    def _line(self, *parts: str | tuple[str, str]) -> None:
        # Text, never markup: tool results and model text are full of brackets and backslashes.
        try:
            self.console.print(Text.assemble(*parts), soft_wrap=True)
        except Exception:
            logger.debug("display failed", exc_info=True)


def _one_line(text: str, limit: int) -> str:
    line = " ".join(text.strip().split())
    return line if len(line) <= limit else line[:limit] + "…"
