"""The tool calls of one model reply, from what the model asked to what it reads back.

Each call: a known tool? arguments a JSON object? asked before in this question (then answered from
that step, not sent)? approved by its cost? -> sent with a progress callback, an idle timeout and a
cap -> the result capped, numbered "#N", recorded with its result_id, and the spend counted by the
server's own quota tracking. A call that is not run gets an error result saying why, so every call
the model made has a result and the history stays valid for both providers.
"""

from __future__ import annotations

import json
from collections.abc import Callable

import anyio

from cm_mcp.agent import approval, quota
from cm_mcp.agent.context import short_form
from cm_mcp.agent.conversation import ToolCall, ToolResult
from cm_mcp.agent.state import UI, Limits, Outcome, Question
from cm_mcp.agent.toolbox import CallHandle, Toolbox, ToolInfo
from cm_mcp.agent.transcript import PROGRESS_EVERY_SECONDS, Transcript

PRINTED_NOTE = "(You wrote this call as text; it was run, but call tools through the tool-calling interface.)"


class ToolRunner:
    def __init__(
        self,
        *,
        toolbox: Toolbox,
        transcript: Transcript,
        ui: UI,
        approver: approval.Approver,
        limits: Callable[[], Limits],
        next_step: int,
    ) -> None:
        self.toolbox = toolbox
        self.transcript = transcript
        self.ui = ui
        self.approver = approver
        self.limits = limits
        self.next_step = next_step
        self.approvals = approval.SessionApprovals()
        #: the server's quota_status as last read (refreshed after every call that may spend quota)
        self.quota: quota.Quota | None = None
        #: the running call, for Ctrl-C
        self.handle = CallHandle()

    async def run(
        self, state: Question, calls: list[ToolCall], *, printed: bool, interrupted: Callable[[], bool]
    ) -> tuple[list[ToolResult], Outcome | None]:
        """A result for every call, and the outcome that stops the question (budget, Ctrl-C), if any."""
        results: list[ToolResult] = []
        stop: Outcome | None = None
        for call in calls:
            if stop is not None:
                results.append(self.not_run(call, f"Not run: the question stopped ({stop.reason})."))
                continue
            try:
                result = await self._one(state, call)
            except approval.BudgetReached as exc:
                resume = f"continue with --resume {self.transcript.session_id} and a larger --budget"
                stop = Outcome("budget", None, f"budget reached: {exc}; {resume}")
                result = self.not_run(call, f"Not run: {exc}; the question stopped.")
            if printed and result.step is not None:
                result.text += "\n" + PRINTED_NOTE
            results.append(result)
            if interrupted() and stop is None:
                stop = Outcome("cancelled", None, f"cancelled by the user (Ctrl-C) during {call.name}")
        return results, stop

    async def _one(self, state: Question, call: ToolCall) -> ToolResult:
        tool = self.toolbox.tools.get(call.name)
        if tool is None:
            names = ", ".join(self.toolbox.tools)
            return self.not_run(call, f"Unknown tool {call.name!r}: nothing was run. The tools are: {names}.")
        if call.arguments is None:
            shown = (call.raw_arguments or "")[:300]
            return self.not_run(
                call,
                f"The arguments of {call.name} are not a JSON object ({shown!r}); nothing was sent. Call it "
                "again with the arguments as one JSON object matching its input schema.",
            )
        key = call.name + json.dumps(call.arguments, sort_keys=True)
        earlier = state.answered.get(key)
        if earlier is not None:
            return self._repeat(call, earlier)
        decision = approval.decide(tool, state.spend, self.approvals)
        approved = "auto"
        if not decision.run:
            answer = await self.approver.confirm(tool, decision)  # BudgetReached stops `ask`
            self.transcript.write(
                "approval",
                tool=tool.name,
                kind=decision.kind,
                reason=decision.reason,
                choice=answer.choice,
                why=answer.reason,
            )
            if answer.choice == "no":
                return self.not_run(call, approval.refusal_text(tool, answer))
            approval.apply(answer, tool, decision, state.spend, self.approvals, self.limits().budget)
            approved = answer.choice
        result = await self._send(state, call, tool, approved)
        state.answered[key] = result
        return result

    async def _send(self, state: Question, call: ToolCall, tool: ToolInfo, approved: str) -> ToolResult:
        step = self.next_step
        self.next_step += 1
        arguments = call.arguments or {}
        self.transcript.write(
            "tool_call",
            question=state.number,
            step=step,
            call_id=call.id,
            tool=tool.name,
            server=tool.server,
            remote_name=tool.remote_name,
            arguments=arguments,
            cost=tool.cost,
            family=tool.family,
            approval=approved,
        )
        self.ui.tool_call(step, tool, arguments, state.spend)
        written = [-PROGRESS_EVERY_SECONDS]
        started = anyio.current_time()

        async def on_progress(value: float, total: float | None, message: str | None) -> None:
            elapsed = anyio.current_time() - started
            await self.ui.progress(step, tool, value, total, message, elapsed)
            if elapsed - written[0] >= PROGRESS_EVERY_SECONDS or (total is not None and value >= total):
                written[0] = elapsed
                rounded = round(elapsed, 2)
                self.transcript.write(
                    "progress", step=step, progress=value, total=total, message=message, elapsed=rounded
                )

        limits = self.limits()
        outcome = await self.toolbox.call(
            tool,
            arguments,
            on_progress=on_progress,
            idle_timeout=limits.tool_idle_timeout,
            cap=limits.tool_timeout,
            handle=self.handle,
            max_tokens=limits.result_max_tokens,
        )
        await self._count(state, tool, failed=outcome.is_error)
        meta = quota.result_meta(outcome.structured)
        self.transcript.write(
            "tool_result",
            question=state.number,
            step=step,
            call_id=call.id,
            name=tool.name,
            is_error=outcome.is_error,
            text=outcome.text,
            elapsed=round(outcome.elapsed, 3),
            cancelled=outcome.cancelled,
            **meta,
        )
        self.ui.tool_result(step, tool, outcome, meta.get("result_id"))
        return ToolResult(
            call_id=call.id,
            name=tool.name,
            text=f"[#{step}] {outcome.text}",
            is_error=outcome.is_error,
            step=step,
            result_id=meta.get("result_id"),
        )

    async def _count(self, state: Question, tool: ToolInfo, *, failed: bool) -> None:
        """Count what the call spent, from the server's quota before and after it."""
        if tool.cost in approval.FREE:
            return
        if not tool.family:  # another server's tool: no quota to consult
            if not failed:
                state.spend.record(tool)
            return
        before, self.quota = self.quota, await self.toolbox.quota()
        ran_out = failed and quota.exhausted(self.quota, tool.family)
        if ran_out:
            state.exhausted.add(tool.family)
        if quota.spent(before, self.quota, tool.family, failed=failed, exhausted=ran_out):
            state.spend.record(tool)

    def _repeat(self, call: ToolCall, earlier: ToolResult) -> ToolResult:
        how = "failed" if earlier.is_error else "was answered"
        text = (
            f"Not sent again (no quota used): this identical call {how} at step #{earlier.step}; use that "
            f"result. Its gist:\n{short_form(earlier)}"
        )
        return self.not_run(call, text, is_error=False, result_id=earlier.result_id)

    def not_run(
        self, call: ToolCall, text: str, *, is_error: bool = True, result_id: str | None = None
    ) -> ToolResult:
        self.transcript.write(
            "tool_result", step=None, call_id=call.id, name=call.name, is_error=is_error, text=text
        )
        self.ui.notice(f"{call.name}: {text.splitlines()[0]}")
        return ToolResult(call_id=call.id, name=call.name, text=text, is_error=is_error, result_id=result_id)
