"""`cm-mcp chat`: the agent as a REPL (prompt_toolkit: line editing, a history file, slash commands).

While a question runs, the terminal stays in raw mode and its keys are watched: Ctrl-C cancels the
running tool call (or model request) and the question stops; a second Ctrl-C exits. SIGINT does the
same when there is no terminal. Anything else typed meanwhile is kept: finished lines run next, an
unfinished one is waiting in the prompt. At the prompt, Ctrl-C twice (or Ctrl-D, or /quit) exits. Beyond the
question's budget the REPL asks once: yes (another budget's worth for this question), always (for
the session) or no with a reason, which the model reads and re-plans on.
"""

from __future__ import annotations

import argparse
import signal
from dataclasses import replace
from pathlib import Path
from typing import Any

import anyio
from prompt_toolkit import PromptSession
from prompt_toolkit.history import FileHistory, InMemoryHistory
from prompt_toolkit.input import Input
from prompt_toolkit.keys import Keys
from prompt_toolkit.output import Output

from cm_mcp.agent.approval import Answer, Decision
from cm_mcp.agent.loop import Agent
from cm_mcp.agent.providers.base import ProviderError
from cm_mcp.agent.run import EXIT_ANSWERED, SetupError, _fail_with, data_dir, open_agent
from cm_mcp.agent.state import Outcome
from cm_mcp.agent.toolbox import ToolInfo
from cm_mcp.agent.transcript import read_events
from cm_mcp.agent.ui import TerminalUI

HELP = """\
/quota              quota left per endpoint family (no API request)
/tools              the tools and what a call costs
/usage              model requests, tokens, quota spent this session
/budget N           scroll/batch requests per question without asking
/report [FILE]      write the incident report (Markdown, every claim linked to its evidence)
/export md|json FILE  write the session (as `cm-mcp replay` shows it, or its events)
/clear              start a fresh conversation (the transcript keeps everything)
/quit               exit (also Ctrl-D, or Ctrl-C twice)"""


def chat(args: argparse.Namespace) -> int:
    return anyio.run(run_chat, args)


async def run_chat(
    args: argparse.Namespace,
    *,
    input: Input | None = None,
    output: Output | None = None,
    ui: TerminalUI | None = None,
) -> int:
    ui = ui or TerminalUI(stream_answer=True)
    try:
        history = data_dir() / "agent_history"
        history.parent.mkdir(parents=True, exist_ok=True)
        prompts: PromptSession[str] = PromptSession(
            history=FileHistory(str(history)), input=input, output=output
        )
        repl = Repl(prompts, ui, PromptSession(history=InMemoryHistory(), input=input, output=output))
        async with open_agent(args, ui=ui, approver=repl) as agent:
            repl.agent = agent
            return await repl.loop()
    except (ProviderError, SetupError, BaseExceptionGroup) as exc:
        return _fail_with(ui, exc)


class Repl:
    def __init__(self, prompts: PromptSession[str], ui: TerminalUI, asks: PromptSession[str]) -> None:
        self.prompts = prompts
        self.asks = asks
        self.ui = ui
        self.agent: Agent | None = None
        self._quit = False
        self._question_scope: anyio.CancelScope | None = None
        #: typed while a question ran: finished lines (run next) and the line being typed
        self._typed: list[str] = []
        self._typing = ""

    def say(self, text: str) -> None:
        self.ui.out.write(text + "\n")
        self.ui.out.flush()

    async def loop(self) -> int:
        agent = self._agent()
        tools = len(agent.toolbox.tools)
        self.say(
            f"cm-mcp chat · session {agent.transcript.session_id} · {agent.provider.name} {agent.provider.model} · "
            f"{tools} tools · budget {agent.limits.budget} scroll/batch per question · /help"
        )
        armed = False
        while not self._quit:
            try:
                if self._typed:
                    line = self._typed.pop(0)
                else:
                    line, self._typing = await self.prompts.prompt_async("cm> ", default=self._typing), ""
            except KeyboardInterrupt:
                if armed:
                    break
                armed = True
                self.ui.notice("Ctrl-C again (or /quit) to exit")
                continue
            except EOFError:
                break
            armed = False
            line = line.strip()
            if not line:
                continue
            if line.startswith("/"):
                await self.command(line)
            else:
                await self.question(line)
        return EXIT_ANSWERED

    # --- a question ---------------------------------------------------------------------------------

    async def question(self, text: str) -> Outcome | None:
        agent = self._agent()
        result: list[Outcome] = []
        keys = self.prompts.input
        with keys.raw_mode(), keys.attach(self._keys_pressed):
            async with anyio.create_task_group() as group:
                self._question_scope = group.cancel_scope

                async def run() -> None:
                    result.append(await agent.ask(text))
                    group.cancel_scope.cancel()

                async def sigint() -> None:  # no terminal (e.g. piped input): SIGINT instead of a key
                    with anyio.open_signal_receiver(signal.SIGINT) as signals:
                        async for _ in signals:
                            self._ctrl_c()

                group.start_soon(sigint)
                group.start_soon(run)
        self._question_scope = None
        outcome = result[0] if result else None
        if outcome is not None and outcome.status != "answered":
            self.ui.notice(f"stopped ({outcome.status}): {outcome.reason}")
        return outcome

    def _keys_pressed(self) -> None:
        for press in self.prompts.input.read_keys():
            if press.key == Keys.ControlC:
                self._ctrl_c()
            elif press.key in (Keys.ControlM, Keys.ControlJ):
                self._typed.append(self._typing)
                self._typing = ""
            elif press.key in (Keys.ControlH, Keys.Backspace):
                self._typing = self._typing[:-1]
            elif len(press.data) == 1 and press.data.isprintable():
                self._typing += press.data

    def _ctrl_c(self) -> None:
        agent = self._agent()
        if agent.interrupted:  # the second Ctrl-C of this question: leave
            self._quit = True
            if self._question_scope is not None:
                self._question_scope.cancel()
            return
        self.ui.notice("Ctrl-C: stopping the running call (Ctrl-C again to exit)")
        agent.interrupt()

    # --- approval (the loop calls this beyond the budget, or for tools that may write) ------------------

    async def confirm(self, tool: ToolInfo, decision: Decision) -> Answer:
        agent = self._agent()
        self.ui.notice(f"approval needed: {decision.reason}")
        more = f"another {agent.limits.budget} this question" if decision.kind == "budget" else "this call"
        try:
            reply = await self.asks.prompt_async(
                f"allow? [y]es ({more}) / [a]lways this session / [n]o <reason>: "
            )
        except (KeyboardInterrupt, EOFError):
            return Answer("no", "the engineer cancelled")
        word, _, rest = reply.strip().partition(" ")
        if word.lower() in ("y", "yes"):
            return Answer("yes")
        if word.lower() in ("a", "always"):
            return Answer("always")
        if word.lower() in ("n", "no"):
            return Answer("no", rest.strip())
        return Answer("no", reply.strip())

    # --- slash commands -----------------------------------------------------------------------------

    async def command(self, line: str) -> None:
        agent = self._agent()
        name, _, rest = line.partition(" ")
        rest = rest.strip()
        if name in ("/quit", "/exit", "/q"):
            self._quit = True
        elif name == "/help":
            self.say(HELP)
        elif name == "/quota":
            self.say(_quota_text(await agent.toolbox.quota()))
        elif name == "/tools":
            for tool in agent.toolbox.tools.values():
                price = (
                    tool.cost if tool.cost != "unpriced" else ("read-only" if tool.read_only else "may write")
                )
                self.say(f"{tool.name:28} {tool.server:10} {price}")
        elif name == "/usage":
            self.say(self._usage_text(agent))
        elif name == "/budget":
            self._budget(agent, rest)
        elif name == "/report":
            path = Path(rest) if rest else agent.transcript.path.with_suffix(".report.md")
            from cm_mcp.agent.report import write_report

            write_report(read_events(agent.transcript.path), path)
            self.say(f"report written to {path}")
        elif name == "/export":
            self._export(agent, rest)
        elif name == "/clear":
            agent.clear()
            self.say("conversation cleared (the transcript keeps it)")
        else:
            self.say(f"unknown command {name}; /help lists them")

    def _budget(self, agent: Agent, value: str) -> None:
        try:
            budget = int(value)
            if budget < 0:
                raise ValueError
        except ValueError:
            self.say(f"/budget takes a whole number >= 0 (now {agent.limits.budget})")
            return
        agent.limits = replace(agent.limits, budget=budget)
        self.say(f"budget: {budget} scroll/batch requests per question without asking")

    def _export(self, agent: Agent, value: str) -> None:
        kind, _, target = value.partition(" ")
        if kind not in ("md", "json") or not target.strip():
            self.say("usage: /export md|json FILE")
            return
        from cm_mcp.agent.replay import render_json, render_markdown

        events = read_events(agent.transcript.path)
        path = Path(target.strip()).expanduser()
        path.write_text(render_markdown(events) if kind == "md" else render_json(events), encoding="utf-8")
        self.say(f"session written to {path}")

    def _usage_text(self, agent: Agent) -> str:
        usage = agent.usage
        spent = {"budgeted": 0, "cheap": 0}
        for event in read_events(agent.transcript.path):
            if event.get("type") == "end":
                for key in spent:
                    spent[key] += int((event.get("spent") or {}).get(key) or 0)
        return (
            f"{agent.model_requests} model request(s): {usage.input_tokens:,} tokens in, "
            f"{usage.cache_read_tokens:,} read from cache, {usage.cache_write_tokens:,} written to cache, "
            f"{usage.output_tokens:,} out\nquota spent this session: {spent['budgeted']} scroll/batch, "
            f"{spent['cheap']} aggregation/billing request(s)"
        )

    def _agent(self) -> Agent:
        assert self.agent is not None, "the REPL runs only with an agent"
        return self.agent


def _quota_text(quota: dict[str, Any] | None) -> str:
    if not quota:
        return "quota unknown (cm-mcp's quota_status is not available)"
    lines = [f"quota as last reported by the API (resets {quota.get('resets_at', '?')}):"]
    for family in quota.get("families", []):
        remaining = family.get("remaining")
        state = (
            f"exhausted until {family['exhausted_until']}"
            if family.get("exhausted_until")
            else ("unknown" if remaining is None else f"{remaining} left")
        )
        lines.append(f"  {family.get('family', '?'):20} {state}")
    if quota.get("note"):
        lines.append(str(quota["note"]))
    return "\n".join(lines)
