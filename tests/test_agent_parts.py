"""The agent's pure parts, directly: text-printed calls, redaction, context fitting, approval rules,
--mcp-config, credentials, transcripts and their restoration, the report's number checks, and the
tool costs the server publishes (read over a real MCP session)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from cm_mcp.agent.approval import (
    Answer,
    BudgetReached,
    NonInteractive,
    SessionApprovals,
    Spend,
    apply,
    decide,
)
from cm_mcp.agent.context import cap_text, fit, request_tokens, shrink
from cm_mcp.agent.conversation import (
    AssistantMessage,
    Message,
    ToolCall,
    ToolResult,
    ToolResultsMessage,
    UserMessage,
)
from cm_mcp.agent.providers.base import ModelRequest
from cm_mcp.agent.redact import REDACTED, Redactor
from cm_mcp.agent.report import Step, check_answer
from cm_mcp.agent.run import SetupError, _server_specs
from cm_mcp.agent.servers import ServerConfigError, load_mcp_config, own_server
from cm_mcp.agent.settings import AgentSettings, MissingKeyError, choose_provider, credentials
from cm_mcp.agent.textcalls import detect
from cm_mcp.agent.toolbox import Toolbox, ToolInfo
from cm_mcp.agent.transcript import Transcript, find_session, read_events, restore
from cm_mcp.api.endpoints import ENDPOINTS
from cm_mcp.api.settings import Settings
from cm_mcp.cli import build_parser
from cm_mcp.cli import main as cli_main
from cm_mcp.server.app import build_server
from cm_mcp.server.runtime import sandbox_config
from tests.token_ruler import count_tokens

TOOLS = {"logs_aggs", "logs_scroll", "quota_status"}


# --- tool calls printed as text -------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [
        '{"name": "logs_aggs", "arguments": {"application": "atr"}}',
        '```json\n{"name": "logs_aggs", "parameters": {"application": "atr"}}\n```',
        '<tool_call>\n{"name": "logs_aggs", "arguments": {"application": "atr"}}\n</tool_call>',
        '[TOOL_CALLS] [{"name": "logs_aggs", "arguments": {"application": "atr"}}]',
        '<|python_tag|>{"name": "logs_aggs", "parameters": {"application": "atr"}}<|eom_id|>',
        '{"type": "function", "function": {"name": "logs_aggs", "arguments": "{\\"application\\": \\"atr\\"}"}}',
        'I will check.\n{"tool": "logs_aggs", "input": {"application": "atr"}}',
    ],
)
def test_calls_printed_as_text_are_recognised_in_the_usual_shapes(text: str) -> None:
    found = detect(text, TOOLS)
    assert found is not None and found.problem is None
    assert [(c.name, c.arguments) for c in found.calls] == [("logs_aggs", {"application": "atr"})]


def test_several_printed_calls_and_a_broken_one() -> None:
    found = detect(
        '[{"name": "quota_status", "arguments": {}}, {"name": "logs_aggs", "arguments": {}}]', TOOLS
    )
    assert found is not None and [c.name for c in found.calls] == ["quota_status", "logs_aggs"]
    broken = detect('{"name": "logs_aggs", "arguments": {"application": "atr", ', TOOLS)
    assert broken is not None and not broken.calls and "not a complete JSON object" in (broken.problem or "")


@pytest.mark.parametrize(
    "text",
    [
        "**Summary**: 901 errors between 03:00 and 03:20 UTC [#2].",
        'The log said {"level": "ERROR", "msg": "cluster down"} at 03:00, then nothing for an hour; the '
        "incident is over and the on-call engineer should look at the kube-apiserver of pay-prod-eks first.",
        "",
    ],
)
def test_answers_are_not_mistaken_for_calls(text: str) -> None:
    assert detect(text, TOOLS) is None


# --- secrets --------------------------------------------------------------------------------------


def test_secrets_are_redacted_by_value_and_by_shape() -> None:
    redactor = Redactor(["my-own-secret-value", "short"])
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJlLXBhcnQ"
    text = (
        f"key my-own-secret-value jwt {jwt} sk-ant-api03-abcdefghijklmnopqrstuv "
        "Authorization: Bearer abc.def.ghi-123 x-api-key: zzz https://b.s3.amazonaws.com/f?X-Amz-Signature=deadbeef&x=1 short"
    )
    cleaned = redactor.text(text)
    for secret in ("my-own-secret-value", jwt, "sk-ant-api03", "abc.def.ghi", "zzz", "deadbeef"):
        assert secret not in cleaned
    assert "short" in cleaned, "values under 8 characters are not treated as secrets"
    assert redactor.data({"a": [text], "n": 3}) == {"a": [cleaned], "n": 3}
    assert cleaned.count(REDACTED) == 6


def test_the_transcript_never_writes_a_secret(tmp_path: Path) -> None:
    transcript = Transcript(tmp_path / "s20260101-000000-abcdef.jsonl", Redactor(["the-provider-key-123"]))
    transcript.write(
        "error", message="refused key the-provider-key-123", data={"token": "eyJa1b2c3d.eyJx9y8z7w.sig"}
    )
    transcript.close()
    text = (tmp_path / "s20260101-000000-abcdef.jsonl").read_text()
    assert "the-provider-key-123" not in text and "eyJx9y8z7w" not in text and text.count(REDACTED) == 2


# --- context discipline ---------------------------------------------------------------------------


def _results(*sizes: int) -> list[Message]:
    messages: list[Message] = [UserMessage(text="q")]
    for step, size in enumerate(sizes, 1):
        call = ToolCall(id=f"c{step}", name="logs_scroll", arguments={})
        messages.append(AssistantMessage(tool_calls=[call]))
        text = f"logs_scroll | window | {step}\nLOGS matched=901\n" + "x" * size
        result_id = f"r20260101-000000-00000{step}"
        messages.append(
            ToolResultsMessage(
                results=[
                    ToolResult(call_id=call.id, name=call.name, text=text, step=step, result_id=result_id)
                ]
            )
        )
    return messages


def test_a_long_result_is_cut_with_a_note() -> None:
    assert cap_text("short", 100) == "short"
    cut = cap_text("line\n" * 1_000, 100)
    assert len(cut) < 600 and "[cut: " in cut and "more characters of this result not shown" in cut


def test_the_context_estimate_never_counts_a_json_heavy_result_low() -> None:
    """Characters / 4 counted aggregation JSON at about half what a BPE tokenizer does, so a request
    could pass the window before any result was shrunk. Measured with the tests' own ruler."""
    buckets = [
        {"key_as_string": f"2026-03-11T07:{minute:02d}:00.000Z", "key": 1_773_212_400_000 + minute * 60_000,
         "doc_count": minute * 7}
        for minute in range(60)
    ]  # fmt: skip
    text = json.dumps({"aggregations": {"per_minute": {"buckets": buckets}}})
    messages = _results(0)
    result = messages[-1]
    assert isinstance(result, ToolResultsMessage)
    result.results[0].text = text
    request = ModelRequest(system="", context="", messages=messages, tools=[], max_output_tokens=100)
    assert request_tokens(request) >= count_tokens(text)
    capped = cap_text(text, 200)
    assert count_tokens(capped.rsplit("\n[cut: ", 1)[0]) <= 200


def test_older_results_shrink_to_their_head_and_result_id_as_the_window_fills() -> None:
    messages = _results(8_000, 8_000, 8_000)
    request = ModelRequest(system="s", context="", messages=messages, tools=[], max_output_tokens=100)
    before = request_tokens(request)
    assert fit(request, context_tokens=100_000) == []  # far from the window: untouched
    assert fit(request, context_tokens=int(before / 0.7)) == [1]  # past 60 %: all but the two newest
    first = messages[2]
    assert isinstance(first, ToolResultsMessage)
    assert first.results[0].shrunk and "LOGS matched=901" in first.results[0].text
    assert (
        'results_search or results_aggs with {"result_id": "r20260101-000000-000001"}'
        in first.results[0].text
    )
    assert shrink(messages, keep_newest=0) == [2, 3]
    assert request_tokens(request) < before / 5


# --- approval by cost -----------------------------------------------------------------------------


def _tool(cost: str, *, read_only: bool = True) -> ToolInfo:
    return ToolInfo("t", "cm", "t", "", {}, cost, None, read_only, own=cost != "unpriced")


@pytest.mark.anyio
async def test_approval_is_by_cost() -> None:
    approvals = SessionApprovals()
    spend = Spend(allowance=2)
    for cost in ("free", "aggs", "query"):
        assert decide(_tool(cost), spend, approvals).run
    assert decide(_tool("unpriced"), spend, approvals).run  # another server's read-only tool
    assert decide(_tool("unpriced", read_only=False), spend, approvals).kind == "write"
    assert decide(_tool("mystery"), spend, approvals).run  # unknown classes are budgeted: within budget
    spend.budgeted = 2
    over = decide(_tool("scroll"), spend, approvals)
    assert not over.run and over.kind == "budget" and "request 3 of this question" in over.reason
    apply(Answer("yes"), _tool("scroll"), over, spend, approvals, budget=2)
    assert spend.allowance == 4 and decide(_tool("batch"), spend, approvals).run
    spend.budgeted = 4
    apply(Answer("always"), _tool("scroll"), over, spend, approvals, budget=2)
    assert decide(_tool("scroll"), spend, approvals).run
    with pytest.raises(BudgetReached):
        await NonInteractive(approve_writes=True).confirm(_tool("scroll"), over)
    write = decide(_tool("unpriced", read_only=False), spend, approvals)
    assert (await NonInteractive(approve_writes=False).confirm(_tool("unpriced"), write)).choice == "no"
    assert (await NonInteractive(approve_writes=True).confirm(_tool("unpriced"), write)).choice == "yes"


@pytest.mark.anyio
async def test_each_tool_publishes_its_cost_from_the_endpoint_table(tmp_path: Path) -> None:
    """Over a real MCP session: the cost the agent reads is the server's, derived from ENDPOINTS."""
    toolbox = Toolbox(Redactor())
    async with toolbox:
        server = build_server(Settings(data_dir=tmp_path, enable_v1=True))
        await toolbox.connect(own_server(sandbox=False), target=server)
    costs = {t.remote_name: (t.cost, t.family) for t in toolbox.tools.values()}
    assert costs["logs_scroll"] == ("scroll", "logs_scroll") and costs["workloads_batch"] == (
        "batch",
        "workloads_batch",
    )
    assert costs["logs_aggs"] == ("aggs", "logs_aggs") and costs["billing_query"] == (
        "query",
        "billing_query",
    )
    assert costs["logs_scroll_v1"] == ("scroll", "v1_logs_scroll")
    for free in ("logs_batch_status", "logs_batch_urls_v1", "quota_status", "results_list", "results_search"):
        assert costs[free] == ("free", None), free
    tracked = {family for _, family in costs.values() if family}
    assert tracked == {e.family for e in ENDPOINTS.values() if e.family}


# --- configuration --------------------------------------------------------------------------------


def test_mcp_config_errors_name_the_server_and_the_field(tmp_path: Path) -> None:
    def load(document: Any) -> Any:
        path = tmp_path / "c.json"
        path.write_text(document if isinstance(document, str) else json.dumps(document))
        return load_mcp_config(path)

    specs = load(
        {
            "mcpServers": {
                "a": {"command": "x", "args": ["-v"], "env": {"K": "v"}},
                "b": {"url": "http://h/mcp"},
                "c": {"command": "y", "disabled": True},
            }
        }
    )
    assert [(s.name, s.command, s.url) for s in specs] == [("a", "x", None), ("b", None, "http://h/mcp")]
    for document, message in [
        ("{not json", "not valid JSON"),
        ({"servers": {}}, 'expected an object {"mcpServers"'),
        (
            {"mcpServers": {"a": {"command": "x", "args": "-v"}}},
            "server 'a': 'args' must be a list of strings",
        ),
        ({"mcpServers": {"a": {"type": "sse", "url": "http://h"}}}, "type 'sse' is not supported"),
        ({"mcpServers": {"a": {"url": "ftp://h"}}}, "'url' must be an http(s) URL"),
        ({"mcpServers": {"cm": {"command": "x"}}}, "the name 'cm' is cm-mcp's own server"),
        ({"mcpServers": {"a": {"command": "x", "env": {"K": 1}}}}, "'env' must be an object of strings"),
    ]:
        with pytest.raises(ServerConfigError, match=message.replace("(", r"\(").replace(")", r"\)")):
            load(document)
    with pytest.raises(ServerConfigError, match="cannot read it"):
        load_mcp_config(tmp_path / "missing.json")


def test_provider_and_key_follow_each_sdks_variables() -> None:
    settings = AgentSettings()
    assert choose_provider(settings, {"OPENAI_API_KEY": "k"}) == "openai"
    assert choose_provider(settings, {"OPENAI_API_KEY": "k", "ANTHROPIC_API_KEY": "k"}) == "anthropic"
    assert choose_provider(AgentSettings(provider="openai"), {"ANTHROPIC_API_KEY": "k"}) == "openai"
    env = {"ANTHROPIC_AUTH_TOKEN": " t0k3n ", "ANTHROPIC_BASE_URL": "http://proxy"}
    assert credentials("anthropic", None, env).api_key == "t0k3n"
    assert credentials("anthropic", None, env).base_url == "http://proxy"
    assert credentials("anthropic", "http://flag", env).base_url == "http://flag"
    with pytest.raises(MissingKeyError, match=r"^OPENAI_API_KEY is not set"):
        credentials("openai", None, {"OPENAI_API_KEY": "  "})


def test_the_server_child_gets_the_api_settings_but_no_provider_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CM_API_URL", "http://api")
    monkeypatch.setenv("CM_AGENT_BUDGET", "3")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-should-not-travel-000000")
    spec = own_server(sandbox=True, sandbox_args=["--seed", "3", "--volume", "100"])
    assert spec.args == ["-m", "cm_mcp.cli", "serve", "--sandbox", "--seed", "3", "--volume", "100"]
    assert spec.env["CM_API_URL"] == "http://api"
    assert "CM_AGENT_BUDGET" not in spec.env and "OPENAI_API_KEY" not in spec.env


def test_every_sandbox_option_of_ask_reaches_the_server_child() -> None:
    """`ask --sandbox` takes the options of `serve --sandbox` and hands them on as given (before,
    --quota and --faults did not exist for the agent, so its sandbox had the default quota)."""
    argv = [
        "ask", "--sandbox", "--seed", "3", "--volume", "100", "--quota", "logs_scroll=2", "--quota", "all=50",
        "--faults", "error_rate=0.1,expired_url", "what broke?",
    ]  # fmt: skip
    args = build_parser().parse_args(argv)
    (spec,) = _server_specs(args)
    forwarded = spec.args[spec.args.index("--sandbox") + 1 :]
    assert forwarded == [
        "--seed", "3", "--volume", "100", "--faults", "error_rate=0.1,expired_url",
        "--quota", "logs_scroll=2", "--quota", "all=50",
    ]  # fmt: skip
    # the child parses them into the same sandbox the user would get from `serve --sandbox` directly
    child = build_parser().parse_args(["serve", "--sandbox", *forwarded])
    config = sandbox_config(child, Settings())
    assert (config.seed, config.volume) == (3, 100)
    assert config.faults.error_rate == 0.1 and config.faults.expired_url
    assert config.quota_limits["logs_scroll"] == 50  # `all` given last wins, in order


def test_sandbox_options_without_sandbox_are_refused_not_ignored(capsys: pytest.CaptureFixture[str]) -> None:
    args = build_parser().parse_args(["ask", "--quota", "logs_scroll=2", "--seed", "7", "what broke?"])
    with pytest.raises(SetupError, match=r"^--seed, --quota: sandbox options only apply with --sandbox"):
        _server_specs(args)
    assert cli_main(["serve", "--faults", "error_rate=0.5"]) == 2
    assert cli_main(["call", "quota_status", "--volume", "10"]) == 2
    err = capsys.readouterr().err
    assert "cm-mcp serve: --faults: sandbox options only apply with --sandbox" in err
    assert "cm-mcp call: --volume: sandbox options only apply with --sandbox" in err


# --- transcripts ----------------------------------------------------------------------------------


def test_a_session_cut_off_mid_call_restores_to_a_valid_history(tmp_path: Path) -> None:
    path = tmp_path / "sessions" / "s20260101-000000-abcdef.jsonl"
    transcript = Transcript(path, Redactor())
    transcript.write("user", question=1, text="what broke?")
    calls = [
        {"id": "a", "name": "logs_aggs", "arguments": {}},
        {"id": "b", "name": "logs_scroll", "arguments": {}},
    ]
    transcript.write("assistant", text="", tool_calls=calls)
    transcript.write(
        "tool_result", step=4, call_id="a", name="logs_aggs", is_error=False, text="levels", result_id=None
    )
    transcript.close()
    with path.open("a") as file:
        file.write('{"type": "tool_res')  # the line a crash tore
    restored = restore(read_events(path))
    results = restored.messages[-1]
    assert isinstance(results, ToolResultsMessage)
    assert [(r.call_id, r.is_error) for r in results.results] == [("a", False), ("b", True)]
    assert results.results[0].text == "[#4] levels" and restored.next_step == 5 and restored.questions == 1
    assert find_session(tmp_path, "s2026") == path and find_session(tmp_path, str(path)) == path


# --- the report's checks --------------------------------------------------------------------------


def test_numbers_of_an_answer_are_checked_against_the_evidence_they_cite() -> None:
    steps = {
        1: Step(
            1,
            "logs_aggs",
            "cm",
            "logs_aggs",
            {},
            "aggs",
            text="peaks: 2026-12-06T03:00:00.000Z 676",
            numbers={"2026", "676"},
        ),
        2: Step(
            2,
            "logs_scroll",
            "cm",
            "logs_scroll",
            {},
            "scroll",
            text="LOGS matched=1,025 share 21.0%",
            numbers={"1025", "21.0"},
        ),
    }
    answer = (
        "**Summary**: 1,025 errors (21.0%) [#2]. They peaked at 676 [#2]. It began at 03:00 [#1].\n"
        "- 4,242 users were affected [#1].\n"
        "1. About 676 on the ip-78148 node."
    )
    verdicts = {(c.value, c.verdict) for c in check_answer(answer, steps)}
    assert ("1,025", "found in #2") in verdicts and ("21.0%", "found in #2") in verdicts
    assert ("676", "cited #2 but found only in #1") in verdicts
    assert ("03:00", "found in #1") in verdicts
    assert ("4,242", "in no tool result") in verdicts
    assert ("676", "uncited (found in #1)") in verdicts
    assert not any(value in ("78148", "1") for value, _ in verdicts), "list markers and names are not numbers"


# --- the display ----------------------------------------------------------------------------------


@pytest.mark.anyio
async def test_progress_is_a_live_line_on_a_terminal_and_a_line_per_10_s_otherwise() -> None:
    from io import StringIO

    from rich.console import Console

    from cm_mcp.agent.toolbox import CallOutcome
    from cm_mcp.agent.ui import TerminalUI

    tool = _tool("batch")
    live = TerminalUI(err=StringIO(), out=StringIO())
    assert not live.live  # a StringIO is no terminal...
    live.console = Console(file=live.err, force_terminal=True, width=120)  # ...this one is
    live.live = True
    await live.progress(4, tool, 3, 12, "3/12 partitions, 4,500 logs", 41.0)
    live.tool_result(4, tool, CallOutcome("export complete", False, None, 42.0), "r1")
    drawn = live.err.getvalue()  # type: ignore[attr-defined]
    assert "#4 t" in drawn and "25%" in drawn and "3/12 partitions, 4,500 logs" in drawn and "0:00:" in drawn
    plain = TerminalUI(err=StringIO(), out=StringIO())
    for done in range(1, 6):  # five notifications within a second: one line
        await plain.progress(4, tool, done, 12, f"{done}/12 partitions", float(done))
    lines = plain.err.getvalue().splitlines()  # type: ignore[attr-defined]
    assert lines == ["  #4 t 8% 1/12 partitions (1 s)"]
    plain.tool_result(4, tool, CallOutcome("[x] not markup \\", False, None, 5.0), None)
    assert "[x] not markup \\" in plain.err.getvalue()  # type: ignore[attr-defined]


def test_the_cli_pays_nothing_for_the_agent_until_it_runs() -> None:
    """`cm-mcp serve` (and every other command) builds its parser without importing the agent's stack."""
    import subprocess
    import sys

    probe = (
        "import sys; from cm_mcp.cli import build_parser; build_parser(); "
        "print(sorted(m for m in sys.modules if m.split('.')[0] in ('anthropic', 'openai', 'prompt_toolkit', 'mcp')"
        " or m.startswith('cm_mcp.agent.')))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "['cm_mcp.agent.cli']"


def test_the_agent_never_imports_the_server() -> None:
    """It is an MCP client: the server is a process it talks to (the layering rule, checked at runtime)."""
    import subprocess
    import sys

    probe = (
        "import sys, cm_mcp.agent.run, cm_mcp.agent.repl, cm_mcp.agent.replay, cm_mcp.agent.report, "
        "cm_mcp.agent.providers.anthropic, cm_mcp.agent.providers.openai; "
        "print(sorted(m for m in sys.modules if m.startswith(('cm_mcp.server', 'cm_mcp.sandbox', 'cm_mcp.ops'))))"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=120
    )
    assert done.stdout.strip() == "[]"
