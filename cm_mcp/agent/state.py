"""What the loop and the tool runner share: limits, a question's state, its outcome, and the UI they
report to (stderr for `ask`, the terminal for `chat`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from cm_mcp.agent.approval import Spend
from cm_mcp.agent.conversation import ToolResult
from cm_mcp.agent.providers.base import ModelReply, Usage
from cm_mcp.agent.toolbox import CallOutcome, ToolInfo

Status = Literal["answered", "turn_limit", "budget", "quota_exhausted", "provider_error", "cancelled"]


@dataclass(frozen=True)
class Limits:
    max_turns: int
    budget: int
    context_tokens: int
    max_output_tokens: int
    tool_idle_timeout: float
    tool_timeout: float
    result_max_tokens: int


@dataclass
class Outcome:
    status: Status
    answer: str | None
    reason: str = ""
    #: quota families that ran out during the question
    exhausted: list[str] = field(default_factory=list)


@dataclass
class Question:
    number: int
    spend: Spend
    #: identical calls of this question: canonical key -> the result that answered it
    answered: dict[str, ToolResult] = field(default_factory=dict)
    #: quota families found exhausted during the question
    exhausted: set[str] = field(default_factory=set)


class UI(Protocol):
    def text_delta(self, text: str) -> None: ...
    def reply_done(self, reply: ModelReply, *, answer: bool, visible: bool = True) -> None: ...
    def tool_call(self, step: int, tool: ToolInfo, arguments: dict[str, Any], spend: Spend) -> None: ...
    def tool_result(self, step: int, tool: ToolInfo, outcome: CallOutcome, result_id: str | None) -> None: ...
    async def progress(
        self,
        step: int,
        tool: ToolInfo,
        value: float,
        total: float | None,
        message: str | None,
        elapsed: float,
    ) -> None: ...
    def notice(self, text: str) -> None: ...
    def usage(self, usage: Usage, prompt_tokens: int) -> None: ...
