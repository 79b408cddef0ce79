"""`cm-mcp chat` through prompt_toolkit's pipe input: typed lines, slash commands, approval prompts and
Ctrl-C keys, with the real providers, scripted model, `cm-mcp serve` child and sandbox behind it."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import pytest
from prompt_toolkit.input import PipeInput, create_pipe_input
from prompt_toolkit.output import DummyOutput

from cm_mcp.agent.repl import run_chat
from cm_mcp.agent.ui import TerminalUI
from cm_mcp.sandbox.runner import RunningSandbox
from tests import agent_scripts
from tests.agent_scripts import (
    QUESTION,
    agent_args,
    answered,
    capture_ui,
    events_of,
    overview_call,
    provider_options,
    sent,
    texts,
)
from tests.scripted_llm import Call, Reply, ScriptedLLM, Seen
from tests.test_agent_ask import scroll

pytestmark = pytest.mark.anyio

# shared fixtures
agent_env = agent_scripts.agent_env
slow_sandbox = agent_scripts.slow_sandbox


@dataclass
class Chat:
    keys: PipeInput
    ui: TerminalUI
    exit_code: list[int]
    ended: anyio.Event

    @property
    def out(self) -> str:
        return texts(self.ui)[0]

    @property
    def err(self) -> str:
        return texts(self.ui)[1]

    def type(self, text: str) -> None:
        self.keys.send_text(text)

    async def until(self, condition: Callable[[], bool], what: str) -> None:
        """Wait (up to two minutes) until `condition` holds."""
        with anyio.move_on_after(120):
            while not condition():
                if self.exit_code:
                    raise AssertionError(f"the chat ended before {what}:\n{self.out}\n{self.err}")
                await anyio.sleep(0.05)
            return
        raise AssertionError(f"no {what} within 2 minutes:\n--- stdout\n{self.out}\n--- stderr\n{self.err}")

    async def sees(self, text: str, *, stream: str = "out") -> None:
        await self.until(lambda: text in (self.out if stream == "out" else self.err), repr(text))


@asynccontextmanager
async def chat(llm: ScriptedLLM, provider: str, *options: str) -> AsyncIterator[Chat]:
    with create_pipe_input() as keys:
        session = Chat(keys, capture_ui(stream_answer=True), [], anyio.Event())
        args = agent_args("chat", *provider_options(llm, provider), *options)

        async def run() -> None:
            session.exit_code.append(await run_chat(args, input=keys, output=DummyOutput(), ui=session.ui))
            session.ended.set()

        async with anyio.create_task_group() as group:
            group.start_soon(run)
            await session.sees("cm-mcp chat · session")
            yield session
            with anyio.fail_after(120):
                await session.ended.wait()


async def test_a_conversation_with_slash_commands(agent_env: Path) -> None:
    def second_question(seen: Seen) -> Reply:
        assert seen.user_texts()[0].startswith("and klewer?"), "/clear did not clear the conversation"
        assert not seen.calls() and [m.role for m in seen.messages] == ["user"]
        return Reply("**Summary**: klewer looks fine.")

    llm = ScriptedLLM(
        [
            lambda seen: Reply("", [overview_call()]),
            lambda seen: Reply("**Summary**: errors [#1]."),
            second_question,
        ]
    )
    report, markdown, events = agent_env / "r.md", agent_env / "s.md", agent_env / "s.json"
    async with llm.serve(), chat(llm, "anthropic") as session:
        session.type(f"{QUESTION}\n/tools\n/quota\n")  # typed ahead while the question runs
        await session.sees("quota as last reported by the API")
        assert "**Summary**: errors [#1].\n" in session.out  # streamed as it arrived
        assert "tool_call" not in session.out  # the call printed as text was run, never shown
        assert "logs_scroll" in session.out and "results_search" in session.out
        assert re.search(r"logs_aggs +\d+ left", session.out) and re.search(
            r"logs_batch +unknown", session.out
        )
        session.type("/usage\n")
        await session.sees("model request(s)")
        assert "2 model request(s)" in session.out and "0 scroll/batch, 1 aggregation/billing" in session.out
        session.type("/budget 1\n/budget x\n")
        await session.sees("/budget takes a whole number")
        assert "budget: 1 scroll/batch requests per question" in session.out
        session.type(f"/report {report}\n/export md {markdown}\n/export json {events}\n/export csv x\n")
        await session.sees("usage: /export md|json FILE")
        assert "[#1](#evidence-1)" in report.read_text() and "## Evidence" in report.read_text()
        assert "## Question 1" in markdown.read_text()
        assert json.loads(events.read_text())[0]["type"] == "session"
        session.type("/clear\nand klewer?\n")
        await session.sees("klewer looks fine")
        session.type("/nope\n/help\n/quit\n")
    llm.check()
    assert session.exit_code == [0]
    assert "unknown command /nope" in session.out and "/export md|json FILE" in session.out
    assert "and klewer?" in (agent_env / "agent_history").read_text()


async def test_beyond_the_budget_the_repl_asks_once_and_the_model_reads_a_refusal(
    agent_env: Path, sandbox: RunningSandbox
) -> None:
    windows = [
        ("now-6h", "now-5h"),
        ("now-5h", "now-4h"),
        ("now-4h", "now-3h"),
        ("now-3h", "now-2h"),
        ("now-2h", "now-1h"),
    ]

    def refused(seen: Seen) -> Reply:
        (result,) = answered(seen)
        assert result.is_error and "did not approve logs_scroll: use aggregations instead" in result.text, (
            result.text
        )
        return Reply("", [scroll(*windows[2])])

    steps = [
        lambda seen: Reply("", [scroll(*windows[0])]),
        lambda seen: Reply("", [scroll(*windows[1])]),  # beyond budget 1: asked, refused with a reason
        refused,  # asked again: yes (another budget's worth: 1 more)
        lambda seen: Reply("", [scroll(*windows[3])]),  # asked again: always
        lambda seen: Reply("", [scroll(*windows[4])]),  # not asked any more
        lambda seen: Reply("**Summary**: done."),
    ]
    llm = ScriptedLLM(steps)
    before = sent(sandbox, "/v2/logs/scroll")
    async with llm.serve(), chat(llm, "openai", "--budget", "1") as session:
        session.type(f"{QUESTION}\n")
        for reply, seen in (("n use aggregations instead", 1), ("y", 2), ("a", 3)):
            await session.until(lambda n=seen: session.err.count("approval needed") == n, f"approval {seen}")
            session.type(reply + "\n")
        await session.sees("**Summary**: done.")
        session.type("/quit\n")
    llm.check()
    assert sent(sandbox, "/v2/logs/scroll") == before + 4
    approvals = [(e["choice"], e["why"]) for e in events_of(agent_env) if e["type"] == "approval"]
    assert approvals == [("no", "use aggregations instead"), ("yes", ""), ("always", "")]
    assert "would be quota-costing request 2 of this question" in session.err


async def test_ctrl_c_cancels_the_running_export_and_the_conversation_goes_on(
    slow_sandbox: RunningSandbox, agent_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CM_API_URL", slow_sandbox.url)
    monkeypatch.setenv("CM_API_TOKEN", slow_sandbox.token)
    export = {
        "application": "atr",
        "app_type": "kubernetes",
        "domain": ["*"],
        "start_time": "now-2d",
        "end_time": "now",
    }

    def after_the_cancel(seen: Seen) -> Reply:
        batch = next(c for c in seen.calls() if c.name == "logs_batch")
        result = seen.result_for(batch.id)
        assert result.is_error and "cancelled by the user (Ctrl-C)" in result.text
        assert "is the export resumable?" in seen.user_texts()[-1]
        return Reply("Yes: results_list shows the call that continues it.")

    llm = ScriptedLLM(
        [lambda seen: Reply("Exporting the last two days.", [Call("logs_batch", export)]), after_the_cancel]
    )
    async with llm.serve(), chat(llm, "anthropic") as session:
        session.type(f"{QUESTION}\n")
        await session.sees("  #1 logs_batch", stream="err")  # its progress: the export is under way
        session.type("\x03")
        await session.sees("stopped (cancelled)", stream="err")
        assert "Exporting the last two days.\n" in session.out  # the model's words before its call
        session.type("/usage\n")
        await session.sees("quota spent this session")
        assert "1 scroll/batch" in session.out, "the submitted batch was not counted"
        session.type("is the export resumable?\n")
        await session.sees("results_list shows the call that continues it")
        session.type("\x03\x03")  # twice at the prompt: exit
    llm.check()
    assert session.exit_code == [0]
    result = next(e for e in events_of(agent_env) if e["type"] == "tool_result")
    assert result["cancelled"] == "user"
