"""Approval by cost, not by prompt count.

Each tool's cost class comes from the server (`toolbox.ToolInfo.cost`): free tools (quota_status,
results_*, *_batch_status) and the cheap classes (aggs: 1000/day; query: billing, 500/day) run without
asking; scroll and batch calls run while the question's spend stays within the budget, and beyond it
the REPL asks once (yes = another budget's worth for this question / always this session / no +
reason) while `cm-mcp ask`, which never prompts, stops (exit 2). Tools of other servers: read-only
ones run, anything else asks (`--yes` approves them). A cost class we do not know is budgeted, the
safe side. A refusal goes back to the model as a tool error with the reason, so it re-plans.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

from cm_mcp.agent.toolbox import ToolInfo

FREE = frozenset({"free"})
CHEAP = frozenset({"aggs", "query"})
UNPRICED = "unpriced"

Choice = Literal["yes", "always", "no"]
Kind = Literal["budget", "write"]


@dataclass
class Spend:
    """Quota-costing requests of one question."""

    allowance: int
    budgeted: int = 0  # scroll/batch requests sent (calls that came back without error)
    cheap: int = 0  # aggs/query requests

    def record(self, tool: ToolInfo) -> None:
        if is_budgeted(tool):
            self.budgeted += 1
        elif tool.cost in CHEAP:
            self.cheap += 1


@dataclass
class SessionApprovals:
    """What the user approved for the rest of the session."""

    budget_always: bool = False
    tools: set[str] = field(default_factory=set)


@dataclass(frozen=True)
class Decision:
    run: bool
    kind: Kind | None = None
    reason: str = ""


@dataclass(frozen=True)
class Answer:
    choice: Choice
    reason: str = ""


class Approver(Protocol):
    async def confirm(self, tool: ToolInfo, decision: Decision) -> Answer: ...


class BudgetReached(Exception):
    """`cm-mcp ask` met a call beyond its budget: the question stops (exit 2)."""


def is_budgeted(tool: ToolInfo) -> bool:
    return tool.cost not in FREE | CHEAP and tool.cost != UNPRICED


def decide(tool: ToolInfo, spend: Spend, approvals: SessionApprovals) -> Decision:
    if tool.cost in FREE | CHEAP:
        return Decision(run=True)
    if tool.cost == UNPRICED:
        if tool.read_only or tool.name in approvals.tools:
            return Decision(run=True)
        return Decision(
            run=False,
            kind="write",
            reason=f"{tool.name} (server {tool.server}) is not marked read-only: it may change something",
        )
    if approvals.budget_always or spend.budgeted < spend.allowance:
        return Decision(run=True)
    return Decision(
        run=False,
        kind="budget",
        reason=(
            f"{tool.name} would be quota-costing request {spend.budgeted + 1} of this question "
            f"(a {tool.cost} request; the budget is {spend.allowance})"
        ),
    )


def apply(
    answer: Answer, tool: ToolInfo, decision: Decision, spend: Spend, approvals: SessionApprovals, budget: int
) -> None:
    """Record what a "yes" or "always" allows from now on."""
    if answer.choice == "always":
        if decision.kind == "budget":
            approvals.budget_always = True
        else:
            approvals.tools.add(tool.name)
    elif answer.choice == "yes" and decision.kind == "budget":
        spend.allowance = spend.budgeted + max(1, budget)  # another budget's worth, asked once


class NonInteractive:
    """`cm-mcp ask`: never prompts. Beyond the budget the question stops; tools that may write run
    only with --yes."""

    def __init__(self, *, approve_writes: bool) -> None:
        self.approve_writes = approve_writes

    async def confirm(self, tool: ToolInfo, decision: Decision) -> Answer:
        if decision.kind == "budget":
            raise BudgetReached(decision.reason)
        if self.approve_writes:
            return Answer("yes")
        return Answer("no", "cm-mcp ask runs tools that are not read-only only with --yes")


def refusal_text(tool: ToolInfo, answer: Answer) -> str:
    why = f": {answer.reason}" if answer.reason else ""
    return (
        f"Not run: the user did not approve {tool.name}{why}. Re-plan without it: aggregations and "
        "results_search/results_aggs on stored results cost no scroll quota."
    )
