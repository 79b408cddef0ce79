"""One question, end to end: model requests and tool calls until an answer or a limit.

    question -> [request (system prompt with current quota, tools, messages fitted to the window)
                 -> reply: tool calls -> each: known? arguments an object? asked before? approved by
                    cost? -> call with progress -> result (capped, numbered "#N") -> back to the model
                 | reply: calls printed as text -> run them, or correct the model
                 | reply: text -> the answer]
    until an answer, --max-turns model requests, the budget (ask), a provider error or Ctrl-C.

Every call the model asks for gets a result (an error saying why when it was not run), so the history
stays valid for both providers and a resumed session continues where it stopped.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Literal, Protocol

import anyio

from cm_mcp.agent import approval
from cm_mcp.agent.context import fit, request_tokens, short_form, shrink
from cm_mcp.agent.conversation import (
    AssistantMessage,
    Message,
    NoteMessage,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
)
from cm_mcp.agent.prompt import context_prompt, static_prompt
from cm_mcp.agent.providers.base import (
    ContextTooLong,
    ModelReply,
    ModelRequest,
    Provider,
    ProviderError,
    Usage,
)
from cm_mcp.agent.textcalls import detect
from cm_mcp.agent.toolbox import CallHandle, CallOutcome, Toolbox, ToolInfo
from cm_mcp.agent.transcript import PROGRESS_EVERY_SECONDS, Transcript

#: A family blocked for longer than this is out of quota for the day, not throttled.
THROTTLE = timedelta(minutes=5)

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


class UI(Protocol):
    """Where the loop shows what it does (stderr for `ask`, the terminal for `chat`)."""

    def text_delta(self, text: str) -> None: ...
    def reply_done(self, reply: ModelReply, *, answer: bool, visible: bool = True) -> None: ...
    def tool_call(
        self, step: int, tool: ToolInfo, arguments: dict[str, Any], spend: approval.Spend
    ) -> None: ...
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


@dataclass
class _Question:
    number: int
    spend: approval.Spend
    #: identical calls of this question: canonical key -> the result that answered it
    answered: dict[str, ToolResult] = field(default_factory=dict)
    exhausted: set[str] = field(default_factory=set)


class Agent:
    def __init__(
        self,
        *,
        provider: Provider,
        toolbox: Toolbox,
        transcript: Transcript,
        limits: Limits,
        approver: approval.Approver,
        ui: UI,
        messages: list[Message] | None = None,
        next_step: int = 1,
        questions: int = 0,
    ) -> None:
        self.provider = provider
        self.toolbox = toolbox
        self.transcript = transcript
        self.limits = limits
        self.approver = approver
        self.ui = ui
        self.messages: list[Message] = messages if messages is not None else []
        self.next_step = next_step
        self.questions = questions
        self.approvals = approval.SessionApprovals()
        self.usage = Usage()
        self.model_requests = 0
        self.quota: dict[str, Any] | None = None
        self.handle = CallHandle()
        self.interrupted = False
        self._request_scope: anyio.CancelScope | None = None
        self._static = static_prompt(toolbox.instructions)

    # --- control ------------------------------------------------------------------------------------

    def interrupt(self) -> bool:
        """Ctrl-C: cancel the running tool call or model request; the question then stops."""
        self.interrupted = True
        if self.handle.cancel("user"):
            return True
        if self._request_scope is not None and not self._request_scope.cancel_called:
            self._request_scope.cancel()
            return True
        return False

    def clear(self) -> None:
        self.messages = []
        self.transcript.write("clear")

    # --- a question ---------------------------------------------------------------------------------

    async def ask(self, question: str) -> Outcome:
        self.interrupted = False
        self.questions += 1
        state = _Question(self.questions, approval.Spend(allowance=self.limits.budget))
        self.transcript.write("user", question=state.number, text=question)
        self.messages.append(UserMessage(text=question))
        self.quota = await self.toolbox.quota()
        self.transcript.write("quota", question=state.number, when="before", quota=self.quota)
        try:
            outcome = await self._investigate(state)
        except ProviderError as exc:
            self.transcript.write("error", question=state.number, kind=exc.kind, message=str(exc))
            outcome = Outcome("provider_error", None, str(exc))
        if outcome.status == "answered" and state.exhausted:
            outcome.status = "quota_exhausted"
            outcome.reason = (
                f"the API's daily quota ran out for {', '.join(sorted(state.exhausted))}: the answer may be "
                "incomplete"
            )
        outcome.exhausted = sorted(state.exhausted)
        self.quota = await self.toolbox.quota()
        self.transcript.write("quota", question=state.number, when="after", quota=self.quota)
        self.transcript.write(
            "end",
            question=state.number,
            status=outcome.status,
            reason=outcome.reason,
            spent={"budgeted": state.spend.budgeted, "cheap": state.spend.cheap},
        )
        return outcome

    async def _investigate(self, state: _Question) -> Outcome:
        for turn in range(1, self.limits.max_turns + 1):
            if self.interrupted:
                return Outcome("cancelled", None, "cancelled by the user (Ctrl-C)")
            reply = await self._request(state, turn)
            if reply is None:
                return Outcome(
                    "cancelled", None, "cancelled by the user (Ctrl-C) while the model was answering"
                )
            calls = reply.tool_calls
            text = reply.text
            if not calls:
                detection = detect(text, set(self.toolbox.tools))
                if detection is not None and detection.calls:
                    calls = [
                        ToolCall(
                            id=f"text_{state.number}_{turn}_{index}",
                            name=c.name,
                            arguments=c.arguments,
                            raw_arguments=c.raw_arguments,
                        )
                        for index, c in enumerate(detection.calls, 1)
                    ]
                    self.ui.notice(
                        f"the model wrote {len(calls)} tool call(s) as text instead of calling; running them"
                    )
                    self.transcript.write("note", text="tool calls written as text were run", printed=text)
                    text = ""
                elif detection is not None:
                    self.ui.reply_done(reply, answer=False, visible=False)
                    self._add_assistant(text, [])
                    self._add_note(
                        f"Your last reply was not shown to the engineer: {detection.problem}. Call tools through "
                        "the tool-calling interface with the arguments as one JSON object, or answer in prose."
                    )
                    self.ui.notice("the model wrote a malformed tool call as text; asked it to call properly")
                    continue
                elif not text.strip():  # an empty reply is no answer: ask for one
                    self.ui.reply_done(reply, answer=False)
                    self._add_assistant(text, [])
                    self._add_note(
                        "Your reply was empty. Answer the question, or call a tool if you need more data."
                    )
                    self.ui.notice("the model replied with nothing; asked it to answer")
                    continue
                else:
                    self.ui.reply_done(reply, answer=True)
                    if reply.stop == "max_tokens":
                        self.ui.notice("the answer was cut at the output limit (CM_AGENT_MAX_OUTPUT_TOKENS)")
                    self._add_assistant(text, [])
                    self.transcript.write("answer", question=state.number, text=text, stop=reply.stop)
                    return Outcome("answered", text)
            self.ui.reply_done(reply, answer=False, visible=bool(reply.tool_calls))
            self._add_assistant(text, calls)
            stop = await self._run_calls(state, calls, printed=not reply.tool_calls)
            if stop is not None:
                return stop
        return Outcome(
            "turn_limit",
            None,
            f"turn limit: {self.limits.max_turns} model requests without an answer (--max-turns)",
        )

    async def _request(self, state: _Question, turn: int) -> ModelReply | None:
        request = ModelRequest(
            system=self._static,
            context=context_prompt(
                quota=self.quota, allowance=state.spend.allowance, spent=state.spend.budgeted
            ),
            messages=self.messages,
            tools=self.toolbox.specs(),
            max_output_tokens=self.limits.max_output_tokens,
        )
        self._note_shrunk(fit(request, self.limits.context_tokens), "near the context window")
        for attempt in (1, 2):
            tokens = request_tokens(request)
            self.transcript.write(
                "request", question=state.number, turn=turn, tokens=tokens, messages=len(self.messages)
            )
            reply: ModelReply | None = None
            try:
                with anyio.CancelScope() as scope:
                    self._request_scope = scope
                    reply = await self.provider.complete(request, on_text=self.ui.text_delta)
            except ContextTooLong:
                shrunk = shrink(self.messages, keep_newest=0)
                if attempt == 2 or not shrunk:
                    raise
                self._note_shrunk(shrunk, "the model said the context is full")
                continue
            finally:
                self._request_scope = None
            if reply is None:
                return None
            self.model_requests += 1
            self.usage.add(reply.usage)
            self.transcript.write(
                "usage", question=state.number, turn=turn, prompt_tokens=tokens, **vars(reply.usage)
            )
            self.ui.usage(reply.usage, tokens)
            return reply
        return None  # not reached: the second attempt returns or raises

    def _note_shrunk(self, steps: list[int | None], why: str) -> None:
        if steps:
            self.transcript.write("shrink", steps=[s for s in steps if s is not None], reason=why)
            self.ui.notice(f"{why}: {len(steps)} older tool result(s) shrunk to their summary and result_id")

    # --- tool calls ---------------------------------------------------------------------------------

    async def _run_calls(self, state: _Question, calls: list[ToolCall], *, printed: bool) -> Outcome | None:
        results: list[ToolResult] = []
        stop: Outcome | None = None
        for call in calls:
            if stop is not None:
                results.append(self._not_run(call, f"Not run: the question stopped ({stop.reason})."))
                continue
            try:
                result = await self._run_call(state, call)
            except approval.BudgetReached as exc:
                stop = Outcome(
                    "budget",
                    None,
                    f"budget reached: {exc}; continue with --resume {self.transcript.session_id} and a larger --budget",
                )
                result = self._not_run(call, f"Not run: {exc}; the question stopped.")
            if printed and result.step is not None:
                result.text += "\n(You wrote this call as text; it was run, but call tools through the tool-calling interface.)"
            results.append(result)
            if self.interrupted and stop is None:
                stop = Outcome("cancelled", None, f"cancelled by the user (Ctrl-C) during {call.name}")
        self.messages.append(ToolResultsMessage(results=results))
        return stop

    async def _run_call(self, state: _Question, call: ToolCall) -> ToolResult:
        tool = self.toolbox.tools.get(call.name)
        if tool is None:
            names = ", ".join(self.toolbox.tools)
            return self._not_run(
                call, f"Unknown tool {call.name!r}: nothing was run. The tools are: {names}."
            )
        if call.arguments is None:
            shown = (call.raw_arguments or "")[:300]
            return self._not_run(
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
                return self._not_run(call, approval.refusal_text(tool, answer))
            approval.apply(answer, tool, decision, state.spend, self.approvals, self.limits.budget)
            approved = answer.choice
        result = await self._execute(state, call, tool, approved)
        state.answered[key] = result
        return result

    async def _execute(self, state: _Question, call: ToolCall, tool: ToolInfo, approved: str) -> ToolResult:
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
                self.transcript.write(
                    "progress",
                    step=step,
                    progress=value,
                    total=total,
                    message=message,
                    elapsed=round(elapsed, 2),
                )

        outcome = await self.toolbox.call(
            tool,
            arguments,
            on_progress=on_progress,
            idle_timeout=self.limits.tool_idle_timeout,
            cap=self.limits.tool_timeout,
            handle=self.handle,
            max_tokens=self.limits.result_max_tokens,
        )
        meta = result_meta(outcome.structured)
        if tool.cost in approval.FREE:
            pass
        elif tool.family:
            before, self.quota = self.quota, await self.toolbox.quota()
            exhausted = outcome.is_error and _exhausted(self.quota, tool.family)
            if exhausted:
                state.exhausted.add(tool.family)
            if _spent(before, self.quota, tool.family, failed=outcome.is_error, exhausted=exhausted):
                state.spend.record(tool)
        elif not outcome.is_error:  # another server's tool: no quota to consult
            state.spend.record(tool)
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

    def _repeat(self, call: ToolCall, earlier: ToolResult) -> ToolResult:
        how = "failed" if earlier.is_error else "was answered"
        text = (
            f"Not sent again (no quota used): this identical call {how} at step #{earlier.step}; use that "
            f"result. Its gist:\n{short_form(earlier)}"
        )
        return self._not_run(call, text, is_error=False, result_id=earlier.result_id)

    def _not_run(
        self, call: ToolCall, text: str, *, is_error: bool = True, result_id: str | None = None
    ) -> ToolResult:
        self.transcript.write(
            "tool_result", step=None, call_id=call.id, name=call.name, is_error=is_error, text=text
        )
        self.ui.notice(f"{call.name}: {text.splitlines()[0]}")
        return ToolResult(call_id=call.id, name=call.name, text=text, is_error=is_error, result_id=result_id)

    def _add_assistant(self, text: str, calls: list[ToolCall]) -> None:
        self.messages.append(AssistantMessage(text=text, tool_calls=calls))
        self.transcript.write("assistant", text=text, tool_calls=[c.model_dump() for c in calls])

    def _add_note(self, text: str) -> None:
        self.messages.append(NoteMessage(text=text))
        self.transcript.write("note", text=text)


def result_meta(structured: dict[str, Any] | None) -> dict[str, Any]:
    """What a cm-mcp result says about itself: result_id, request_id, quota left, the window."""
    if not structured:
        return {}
    call = _object(structured.get("call"))
    export = _object(structured.get("export"))
    found = {
        "result_id": structured.get("result_id") or export.get("result_id"),
        "request_id": call.get("request_id"),
        "quota_remaining": call.get("quota_remaining"),
        "time_range": call.get("time_range"),
    }
    return {key: value for key, value in found.items() if value is not None}


def _spent(
    before: dict[str, Any] | None, after: dict[str, Any] | None, family: str, *, failed: bool, exhausted: bool
) -> bool:
    """Whether a call of `family` spent a request, by the server's own quota tracking: a success did;
    a failure did when the API answered it (the remaining count appeared or went down), e.g. an export
    cancelled after its batch was submitted; a refusal before sending (bad arguments, a spent quota)
    did not."""
    if not failed:
        return True
    if exhausted:
        return False
    was, now = _remaining(before, family), _remaining(after, family)
    return now is not None and (was is None or now < was)


def _remaining(quota: dict[str, Any] | None, family: str) -> int | None:
    for entry in (quota or {}).get("families", []):
        if isinstance(entry, dict) and entry.get("family") == family:
            value = entry.get("remaining")
            return int(value) if isinstance(value, int) else None
    return None


def _exhausted(quota: dict[str, Any] | None, family: str) -> bool:
    """The family's daily quota is spent: blocked with 0 left, or blocked for longer than a throttle
    (a short Retry-After) lasts."""
    for entry in (quota or {}).get("families", []):
        if not isinstance(entry, dict) or entry.get("family") != family or not entry.get("exhausted_until"):
            continue
        if entry.get("remaining") == 0:
            return True
        try:
            until = datetime.fromisoformat(str(entry["exhausted_until"]).replace("Z", "+00:00"))
        except ValueError:
            return True
        return until - datetime.now(UTC) > THROTTLE
    return False


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
