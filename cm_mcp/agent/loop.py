"""One question, end to end: model requests and tool calls until an answer or a limit.

question -> [request (system prompt, tools, the messages fitted to the window, a status note with
             the time, quota and budget) -> reply: tool calls -> calls.py runs each -> back to the
             model | reply: calls printed as text -> run them, or correct the model | reply:
             text -> the answer]
until an answer, --max-turns model requests, the budget (ask), a provider error or Ctrl-C.
"""

from __future__ import annotations

import anyio

from cm_mcp.agent import approval
from cm_mcp.agent.calls import ToolRunner
from cm_mcp.agent.context import fit, request_tokens, shrink
from cm_mcp.agent.conversation import (
    AssistantMessage,
    Message,
    NoteMessage,
    ToolCall,
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
from cm_mcp.agent.state import UI, Limits, Outcome, Question
from cm_mcp.agent.textcalls import detect
from cm_mcp.agent.toolbox import Toolbox
from cm_mcp.agent.transcript import Transcript


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
        self.questions = questions
        self.tools = ToolRunner(
            toolbox=toolbox,
            transcript=transcript,
            ui=ui,
            approver=approver,
            limits=lambda: self.limits,  # /budget changes them between questions
            next_step=next_step,
        )
        self.usage = Usage()
        self.model_requests = 0
        self.interrupted = False
        self._request_scope: anyio.CancelScope | None = None
        self._static = static_prompt(toolbox.instructions)

    # --- control ------------------------------------------------------------------------------------

    def interrupt(self) -> bool:
        """Ctrl-C: cancel the running tool call or model request; the question then stops."""
        self.interrupted = True
        if self.tools.handle.cancel("user"):
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
        state = Question(self.questions, approval.Spend(allowance=self.limits.budget))
        self.transcript.write("user", question=state.number, text=question)
        self.messages.append(UserMessage(text=question))
        self.tools.quota = await self.toolbox.quota()
        self.transcript.write("quota", question=state.number, when="before", quota=self.tools.quota)
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
        self.tools.quota = await self.toolbox.quota()
        self.transcript.write("quota", question=state.number, when="after", quota=self.tools.quota)
        self.transcript.write(
            "end",
            question=state.number,
            status=outcome.status,
            reason=outcome.reason,
            spent={"budgeted": state.spend.budgeted, "cheap": state.spend.cheap},
        )
        return outcome

    async def _investigate(self, state: Question) -> Outcome:
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
            results, stop = await self.tools.run(
                state, calls, printed=not reply.tool_calls, interrupted=lambda: self.interrupted
            )
            self.messages.append(ToolResultsMessage(results=results))
            if stop is not None:
                return stop
        return Outcome(
            "turn_limit",
            None,
            f"turn limit: {self.limits.max_turns} model requests without an answer (--max-turns)",
        )

    async def _request(self, state: Question, turn: int) -> ModelReply | None:
        request = ModelRequest(
            system=self._static,
            context=context_prompt(
                quota=self.tools.quota, allowance=state.spend.allowance, spent=state.spend.budgeted
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

    def _add_assistant(self, text: str, calls: list[ToolCall]) -> None:
        self.messages.append(AssistantMessage(text=text, tool_calls=calls))
        self.transcript.write("assistant", text=text, tool_calls=[c.model_dump() for c in calls])

    def _add_note(self, text: str) -> None:
        self.messages.append(NoteMessage(text=text))
        self.transcript.write("note", text=text)
