"""`cm-mcp ask` against the failure modes terminal agents are known for, end to end: the real CLI
code path in-process, the real provider SDKs over HTTP to the scripted model, a real `cm-mcp serve`
child over stdio against the session's sandbox over HTTP (its request counters show what was sent)."""

from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from cm_mcp.agent.run import run_ask
from cm_mcp.sandbox.runner import RunningSandbox
from tests import agent_scripts
from tests.agent_scripts import (
    ANTHROPIC_KEY,
    LEVEL,
    OPENAI_KEY,
    QUESTION,
    SCOPE,
    agent_args,
    answered,
    capture_ui,
    events_of,
    overview_call,
    provider_options,
    run_cli,
    sent,
    subprocess_env,
    texts,
)
from tests.scripted_llm import Call, Fail, Reply, ScriptedLLM, Seen

pytestmark = pytest.mark.anyio

# shared fixtures
agent_env = agent_scripts.agent_env
slow_sandbox = agent_scripts.slow_sandbox

PROVIDERS = ["anthropic", "openai"]


async def ask(llm: ScriptedLLM, provider: str, *options: str, stream: bool = True) -> tuple[int, str, str]:
    ui = capture_ui()
    args = agent_args("ask", QUESTION, *provider_options(llm, provider, stream=stream), *options)
    code = await run_ask(args, ui)
    return code, *texts(ui)


def scroll(start: str = "now-6h", end: str = "now") -> Call:
    return Call(
        "logs_scroll",
        {**SCOPE, "start_time": start, "end_time": end, "size": 200, "filters": [{"term": {LEVEL: "ERROR"}}]},
    )


def answer(text: str = "**Summary**: done.") -> Any:
    return lambda seen: Reply(text)


# --- loop discipline ------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_unknown_tools_and_malformed_arguments_go_back_to_the_model(
    provider: str, agent_env: Path, sandbox: RunningSandbox
) -> None:
    def first(seen: Seen) -> Reply:
        return Reply(
            "", [Call("logs_magic", {"x": 1}), Call("logs_aggs", raw='{"application": "atr", "aggs": {')]
        )

    def second(seen: Seen) -> Reply:
        unknown, malformed = answered(seen, 2)
        assert (
            unknown.is_error and "Unknown tool 'logs_magic'" in unknown.text and "logs_aggs" in unknown.text
        )
        assert malformed.is_error and "not a JSON object" in malformed.text and '"aggs": {' in malformed.text
        # valid JSON, but against the schema: the server refuses it without sending anything
        return Reply(
            "",
            [
                Call(
                    "logs_scroll",
                    {**SCOPE, "domain": "pay.example.com", "start_time": "now-1h", "end_time": "now"},
                )
            ],
        )

    def third(seen: Seen) -> Reply:
        (invalid,) = answered(seen)
        assert invalid.is_error and invalid.text.startswith("[#1] Invalid arguments for logs_scroll"), (
            invalid.text
        )
        assert "nothing was sent and no quota was used" in invalid.text and "domain" in invalid.text
        return Reply("**Summary**: I could not query the logs.")

    before = sent(sandbox, "/v2/logs/scroll")
    llm = ScriptedLLM([first, second, third])
    async with llm.serve():
        code, out, err = await ask(llm, provider)
    llm.check()
    assert code == 0, err
    assert out == "**Summary**: I could not query the logs.\n"
    assert sent(sandbox, "/v2/logs/scroll") == before
    events = events_of(agent_env)
    assert next(e for e in events if e["type"] == "end")["spent"] == {"budgeted": 0, "cheap": 0}
    results = [e for e in events if e["type"] == "tool_result"]
    assert [(r["name"], r["step"], r["is_error"]) for r in results] == [
        ("logs_magic", None, True),
        ("logs_aggs", None, True),
        ("logs_scroll", 1, True),
    ]


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_tool_calls_printed_as_text_are_run_or_corrected_never_answered(
    provider: str, agent_env: Path
) -> None:
    call = overview_call()
    printed = (
        "<tool_call>\n" + json.dumps({"name": call.name, "arguments": call.arguments}) + "\n</tool_call>"
    )

    def prints_a_call(seen: Seen) -> Reply:
        return Reply(printed)

    def prints_a_broken_call(seen: Seen) -> Reply:
        (result,) = answered(seen)
        assert not result.is_error and result.text.startswith("[#1] logs_aggs"), result.text[:200]
        assert "You wrote this call as text" in result.text
        turn = next(m for m in reversed(seen.messages) if m.role == "assistant")
        assert [c.name for c in turn.calls] == ["logs_aggs"] and "<tool_call>" not in turn.text
        return Reply('```json\n{"name": "logs_scroll", "arguments": {"application": "atr", "size": \n```')

    def answers(seen: Seen) -> Reply:
        notes = [t for t in seen.user_texts() if "not shown to the engineer" in t]
        assert notes and "tool-calling interface" in notes[-1], seen.user_texts()
        return Reply("**Summary**: errors peaked [#1].")

    llm = ScriptedLLM([prints_a_call, prints_a_broken_call, answers])
    async with llm.serve():
        code, out, err = await ask(llm, provider)
    llm.check()
    assert code == 0, err
    assert out == "**Summary**: errors peaked [#1].\n"
    assert "as text instead of calling" in err and "malformed tool call as text" in err


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_identical_calls_are_answered_from_the_earlier_step(
    provider: str, agent_env: Path, sandbox: RunningSandbox
) -> None:
    def repeat(seen: Seen) -> Reply:
        return Reply("", [overview_call()])

    def repeat_again(seen: Seen) -> Reply:
        (result,) = answered(seen)
        assert not result.is_error and "Not sent again (no quota used)" in result.text
        assert "answered at step #1" in result.text and "[#1 logs_aggs result shrunk" in result.text
        return Reply("", [overview_call(), overview_call()])

    def stop(seen: Seen) -> Reply:
        assert all("step #1" in r.text for r in answered(seen, 2))
        return Reply("**Summary**: see [#1].")

    before = sent(sandbox, "/v2/logs/aggs")
    llm = ScriptedLLM([repeat, repeat, repeat_again, stop])
    async with llm.serve():
        code, _, err = await ask(llm, provider)
    llm.check()
    assert code == 0, err
    assert sent(sandbox, "/v2/logs/aggs") == before + 1
    assert [e["step"] for e in events_of(agent_env) if e["type"] == "tool_call"] == [1]


async def test_a_runaway_loop_ends_at_max_turns(agent_env: Path) -> None:
    def another(seen: Seen) -> Reply:  # never answers: a new window every time
        hours = len(seen.messages) + 1
        call = overview_call()
        assert call.arguments is not None
        return Reply("", [Call(call.name, {**call.arguments, "start_time": f"now-{hours}h"})])

    llm = ScriptedLLM([another] * 10)
    async with llm.serve():
        code, out, err = await ask(llm, "openai", "--max-turns", "3")
    llm.check()
    assert code == 2
    assert out == ""
    assert len(llm.requests) == 3
    assert "turn limit: 3 model requests without an answer (--max-turns)" in err
    end = [e for e in events_of(agent_env) if e["type"] == "end"][-1]
    assert end["status"] == "turn_limit"


# --- provider failures ----------------------------------------------------------------------------


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_provider_429_is_retried_after_its_retry_after(provider: str, agent_env: Path) -> None:
    llm = ScriptedLLM([lambda seen: Fail("rate_limit", retry_after="1"), answer()])
    async with llm.serve():
        code, out, err = await ask(llm, provider)
    llm.check()
    assert code == 0, err
    assert out == "**Summary**: done.\n"
    first, second = llm.requests
    assert second.at - first.at >= 0.9, "the SDK did not wait for Retry-After"
    assert second.headers.get("x-stainless-retry-count") == "1"
    assert "provider answered 429, Retry-After 1; retrying" in err


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_provider_429_that_persists_is_exit_4_in_one_line(
    provider: str, agent_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CM_AGENT_MAX_RETRIES", "0")
    llm = ScriptedLLM([lambda seen: Fail("rate_limit", retry_after="1")])
    async with llm.serve():
        code, out, err = await ask(llm, provider)
    assert code == 4 and out == ""
    last = err.strip().splitlines()[-1]
    assert last.startswith("cm-mcp: stopped: provider_error: ") and "rate limit (429)" in last
    assert "giving up" in err


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_a_context_length_error_shrinks_older_results_and_retries(
    provider: str, agent_env: Path
) -> None:
    stored: list[str] = []

    def read(seen: Seen) -> Reply:
        return Reply("", [scroll()])

    def too_long(seen: Seen) -> Reply:
        (result,) = answered(seen)
        stored.append(result.text)
        return Fail("context")

    def retried(seen: Seen) -> Reply:
        (result,) = answered(seen)
        assert "[#2 logs_scroll result shrunk to save context]" in result.text
        assert "results_search or results_aggs" in result.text and len(result.text) < len(stored[0])
        assert seen.tokens < llm.requests[-2].tokens
        return Reply("**Summary**: done.")

    llm = ScriptedLLM([lambda seen: Reply("", [overview_call()]), read, too_long, retried])
    async with llm.serve():
        code, _, err = await ask(llm, provider)
    llm.check()
    assert code == 0, err
    assert "the model said the context is full" in err
    shrinks = [e for e in events_of(agent_env) if e["type"] == "shrink"]
    assert shrinks and shrinks[0]["steps"] == [1, 2]


async def test_older_results_shrink_as_a_request_nears_the_context_window(agent_env: Path) -> None:
    def third(seen: Seen) -> Reply:
        first, second = (r for m in seen.messages for r in m.results)
        assert "[#1 logs_aggs result shrunk to save context]" in first.text
        assert not second.text.startswith("[#2 logs_scroll result shrunk") and "LOGS matched=" in second.text
        return Reply("**Summary**: done.")

    llm = ScriptedLLM([lambda seen: Reply("", [overview_call()]), lambda seen: Reply("", [scroll()]), third])
    async with llm.serve():
        code, _, err = await ask(llm, "anthropic", "--context-tokens", "7000")
    llm.check()
    assert code == 0, err
    assert "near the context window" in err


# --- quota and budget -----------------------------------------------------------------------------


async def test_quota_exhausted_mid_investigation_is_exit_3_with_the_answer(
    agent_env: Path, sandbox: RunningSandbox, monkeypatch: pytest.MonkeyPatch
) -> None:
    subject = "agent-quota-test"
    monkeypatch.setenv("CM_API_TOKEN", sandbox.state.issue_token(subject, 3600))
    sandbox.state.quotas.exhaust(subject, "logs_scroll")

    def spent(seen: Seen) -> Reply:
        (result,) = answered(seen)
        assert result.is_error and "daily quota for logs_scroll is spent" in result.text, result.text
        note = seen.user_texts()[-1]
        assert "logs_scroll EXHAUSTED until" in note, note
        return Reply("**Summary**: errors on pay.example.com [#1]; the scroll quota is spent.")

    llm = ScriptedLLM([lambda seen: Reply("", [overview_call()]), lambda seen: Reply("", [scroll()]), spent])
    async with llm.serve():
        code, out, err = await ask(llm, "openai")
    llm.check()
    assert code == 3, err
    assert out.startswith("**Summary**: errors on pay.example.com [#1]")
    assert "stopped: quota_exhausted (logs_scroll)" in err
    end = [e for e in events_of(agent_env) if e["type"] == "end"][-1]
    assert end["status"] == "quota_exhausted"


async def test_beyond_the_budget_ask_stops_with_exit_2_and_the_session_resumes_on_the_other_provider(
    agent_env: Path, sandbox: RunningSandbox
) -> None:
    before = sent(sandbox, "/v2/logs/scroll")
    llm = ScriptedLLM(
        [
            lambda seen: Reply("", [scroll("now-6h", "now-3h")]),
            lambda seen: Reply("", [scroll("now-3h", "now")]),
        ]
    )
    async with llm.serve():
        code, out, err = await ask(llm, "anthropic", "--budget", "1")
    llm.check()
    assert code == 2 and out == ""
    assert "budget reached: logs_scroll would be quota-costing request 2 of this question" in err
    assert sent(sandbox, "/v2/logs/scroll") == before + 1
    session = events_of(agent_env)[0]["id"]

    def resumed(seen: Seen) -> Reply:
        assert seen.provider == "openai"
        first_call, second_call = seen.calls()
        assert seen.result_for(first_call.id).text.startswith("[#1] logs_scroll")
        assert "Not run: " in seen.result_for(second_call.id).text
        assert QUESTION in seen.user_texts()[0] and "go on" in seen.user_texts()[-2]
        return Reply("", [scroll("now-3h", "now")])

    def done(seen: Seen) -> Reply:
        (result,) = answered(seen)
        assert result.text.startswith("[#2] logs_scroll"), "numbering does not continue after a resume"
        return Reply("**Summary**: done [#1] [#2].")

    llm = ScriptedLLM([resumed, done])
    async with llm.serve():
        ui = capture_ui()
        args = agent_args(
            "ask", "go on", *provider_options(llm, "openai"), "--resume", session, "--budget", "3"
        )
        code = await run_ask(args, ui)
    llm.check()
    out, err = texts(ui)
    assert code == 0, err
    assert out == "**Summary**: done [#1] [#2].\n"
    assert sent(sandbox, "/v2/logs/scroll") == before + 2
    assert len(list((agent_env / "sessions").glob("*.jsonl"))) == 1, "a resume appends to its session"


# --- keys -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("provider", "variable"), [("anthropic", "ANTHROPIC_API_KEY"), ("openai", "OPENAI_API_KEY")]
)
async def test_a_missing_key_names_its_variable_before_any_request(
    provider: str, variable: str, agent_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(variable)
    llm = ScriptedLLM([answer()])
    async with llm.serve():
        code, out, err = await ask(llm, provider)
    assert code == 4 and out == ""
    assert err.strip() == f"cm-mcp: {variable} is not set: the {provider} provider needs it" + (
        " (a local server such as Ollama or vLLM accepts any value, e.g. OPENAI_API_KEY=local)"
        if provider == "openai"
        else ""
    )
    assert llm.requests == []
    assert not (agent_env / "sessions").exists()


@pytest.mark.parametrize("provider", PROVIDERS)
async def test_keys_never_reach_logs_transcripts_or_errors(
    provider: str, agent_env: Path, caplog: pytest.LogCaptureFixture
) -> None:
    key = ANTHROPIC_KEY if provider == "anthropic" else OPENAI_KEY

    def rejects_echoing_the_key(seen: Seen) -> Fail:
        # some servers echo the key they refuse; the agent must not repeat it
        header = seen.headers.get("x-api-key") or seen.headers.get("authorization", "").removeprefix(
            "Bearer "
        )
        assert header == key, "the key did not travel in its header"
        return Fail("auth", echo=header)

    llm = ScriptedLLM([lambda seen: Reply("", [overview_call()]), rejects_echoing_the_key])
    caplog.set_level(logging.DEBUG)
    async with llm.serve():
        code, out, err = await ask(llm, provider)
    assert code == 4
    assert "rejected the API key" in err and "[REDACTED]" in err
    transcript = "".join(p.read_text() for p in (agent_env / "sessions").glob("*.jsonl"))
    assert "[REDACTED]" in transcript
    for where in (out, err, transcript, caplog.text):
        assert key not in where


# --- Ctrl-C during an export ----------------------------------------------------------------------


async def test_ctrl_c_during_an_export_cancels_it_and_leaves_it_resumable(
    slow_sandbox: RunningSandbox, tmp_path: Path
) -> None:
    export = {
        "application": "atr",
        "app_type": "kubernetes",
        "domain": ["*"],
        "start_time": "now-2d",
        "end_time": "now",
    }
    llm = ScriptedLLM([lambda seen: Reply("", [Call("logs_batch", export)])])
    env = subprocess_env(
        tmp_path,
        CM_API_URL=slow_sandbox.url,
        CM_API_TOKEN=slow_sandbox.token,
        CM_DOWNLOAD_ALLOWED_HOSTS="127.0.0.1",
    )
    async with llm.serve():
        command = [sys.executable, "-m", "cm_mcp.cli", "ask", QUESTION, *provider_options(llm, "anthropic")]
        code, seen = await _interrupt_once_exporting(command, env)
    err = seen.decode()
    assert code == 130, err
    assert "Ctrl-C: stopping the running call" in err
    assert "stopped: cancelled" in err
    events = events_of(tmp_path)
    result = next(e for e in events if e["type"] == "tool_result")
    assert result["cancelled"] == "user" and "resumable" in result["text"]
    end = next(e for e in events if e["type"] == "end")
    assert end["status"] == "cancelled" and end["spent"]["budgeted"] == 1, (
        "the submitted batch was not counted"
    )
    # the export is listed as unfinished, with the free call that continues it
    listed, out, _ = await run_cli("call", "results_list", "{}", "--json", env=env)
    unfinished = json.loads(out)["unfinished_exports"]
    assert listed == 0 and len(unfinished) == 1 and unfinished[0]["kind"] == "logs", out


#: An aggregation on an API that takes 20 s to answer: a call with no progress at all.
_QUIET = Call(
    "logs_aggs",
    {
        **SCOPE,
        "start_time": "now-1d",
        "end_time": "now",
        "aggs": {"n": {"value_count": {"field": "@timestamp"}}},
    },
)
#: An export of the slow sandbox (10 minutes): heartbeats at least every second while it waits.
_EXPORT = Call("logs_batch", {**SCOPE, "start_time": "now-2d", "end_time": "now"})


@pytest.mark.parametrize(
    ("limits", "call", "reason"),
    [
        ({"CM_AGENT_TOOL_IDLE_TIMEOUT": "2"}, _QUIET, "cancelled after 2 s without progress"),
        ({"CM_AGENT_TOOL_TIMEOUT": "3"}, _EXPORT, "cancelled: it ran for the maximum of 3 s"),
        # a live export is never idle, however long the API takes (issue 12: heartbeats)
        (
            {"CM_AGENT_TOOL_IDLE_TIMEOUT": "2", "CM_AGENT_TOOL_TIMEOUT": "8"},
            _EXPORT,
            "cancelled: it ran for the maximum of 8 s",
        ),
    ],
    ids=["quiet-call-idle", "export-cap", "export-never-idle"],
)
async def test_a_call_that_goes_quiet_or_runs_too_long_is_cancelled_and_the_model_told(
    limits: dict[str, str],
    call: Call,
    reason: str,
    slow_sandbox: RunningSandbox,
    agent_env: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A call that reports no progress is cancelled once idle; an export, which reports progress at
    least every second while it waits for the slow sandbox, only by the overall cap."""
    from cm_mcp.sandbox.faults import FaultConfig

    monkeypatch.setenv("CM_API_URL", slow_sandbox.url)
    monkeypatch.setenv("CM_API_TOKEN", slow_sandbox.token)
    for name, value in limits.items():
        monkeypatch.setenv(name, value)
    if call is _QUIET:
        slow_sandbox.state.faults.configure(FaultConfig(latency_ms=20_000))

    def told(seen: Seen) -> Reply:
        (result,) = answered(seen)
        assert result.is_error and reason in result.text and "resumable" in result.text, result.text
        return Reply("**Summary**: the call did not finish; an export can be resumed.")

    llm = ScriptedLLM([lambda seen: Reply("", [call]), told])
    async with llm.serve():
        code, out, err = await ask(llm, "openai")
    llm.check()
    assert code == 0 and out.startswith("**Summary**: the call did not finish"), err
    result = next(e for e in events_of(agent_env) if e["type"] == "tool_result")
    assert result["cancelled"] == ("idle" if call is _QUIET else "cap")


async def test_an_empty_reply_is_not_an_answer(agent_env: Path) -> None:
    def nudged(seen: Seen) -> Reply:
        assert (
            "Your reply was empty" in seen.user_texts()[-1] or "Your reply was empty" in seen.user_texts()[-2]
        )
        return Reply("**Summary**: nothing broke.")

    llm = ScriptedLLM([lambda seen: Reply(""), nudged])
    async with llm.serve():
        code, out, err = await ask(llm, "anthropic")
    llm.check()
    assert code == 0 and out == "**Summary**: nothing broke.\n", err


async def test_invalid_settings_are_a_one_line_setup_error(
    agent_env: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    llm = ScriptedLLM([])
    async with llm.serve():
        code, _, err = await ask(llm, "openai", "--budget", "-1")
        assert code == 1 and err.strip() == (
            "cm-mcp: invalid agent settings (options or CM_AGENT_* variables): budget: Input should be greater "
            "than or equal to 0"
        )
        monkeypatch.setenv("CM_API_URL", "pay.example.com")
        code, _, err = await ask(llm, "openai")
        assert code == 1 and "invalid cm-mcp settings (CM_* variables or .env): api_url:" in err
    assert llm.requests == []


async def _interrupt_once_exporting(command: list[str], env: dict[str, str]) -> tuple[int, bytes]:
    """Run `command`, send it SIGINT once its export reports progress; its exit code and stderr."""
    async with await anyio.open_process(command, env=env, stderr=subprocess.PIPE) as process:
        assert process.stderr is not None
        seen = b""
        with anyio.fail_after(120):
            while b"  #1 logs_batch" not in seen:  # a progress line: the export is under way
                try:
                    seen += await process.stderr.receive()
                except anyio.EndOfStream:
                    raise AssertionError(
                        f"cm-mcp ask ended before the export started:\n{seen.decode()}"
                    ) from None
        process.send_signal(signal.SIGINT)
        with anyio.fail_after(120):
            async for chunk in process.stderr:
                seen += chunk
            code = await process.wait()
    return code, seen


# --- other MCP servers ----------------------------------------------------------------------------


@pytest.mark.parametrize("approve", [False, True])
async def test_servers_of_mcp_config_are_namespaced_capped_and_approved_by_read_only_hint(
    approve: bool, agent_env: Path
) -> None:
    config = agent_env / "mcp.json"
    server = Path(__file__).with_name("agent_foreign_server.py")
    config.write_text(json.dumps({"mcpServers": {"ops": {"command": sys.executable, "args": [str(server)]}}}))

    def first(seen: Seen) -> Reply:
        names = {tool["name"] for tool in seen.tools}
        assert {"quota_status", "ops__quota_status", "dump", "restart_pod", "logs_aggs"} <= names, names
        assert 'Server "ops"' in seen.system and "Ops tools of the platform team." in seen.system
        return Reply(
            "", [Call("ops__quota_status", {}), Call("dump", {}), Call("restart_pod", {"pod": "p-1"})]
        )

    def second(seen: Seen) -> Reply:
        quota, dump, restart = answered(seen, 3)
        assert "ops quota: plenty" in quota.text and not quota.is_error
        assert "[cut: " in dump.text and len(dump.text) < 6_000 * 4 + 1_000, len(dump.text)
        if approve:
            assert not restart.is_error and "restarted p-1" in restart.text
        else:
            assert restart.is_error and "only with --yes" in restart.text and "restarted" not in restart.text
        return Reply("**Summary**: done.")

    llm = ScriptedLLM([first, second])
    async with llm.serve():
        code, _, err = await ask(llm, "openai", "--mcp-config", str(config), *(["--yes"] if approve else []))
    llm.check()
    assert code == 0, err
    assert ("may write" in err) is approve
    transcript = "".join(p.read_text() for p in (agent_env / "sessions").glob("*.jsonl"))
    assert "eyJzdWIiOiJvcHMifQ" not in transcript and "0123abcdef" not in transcript


async def test_a_bad_mcp_config_is_a_one_line_setup_error(agent_env: Path) -> None:
    config = agent_env / "mcp.json"
    config.write_text(json.dumps({"mcpServers": {"ops": {"args": ["x"]}}}))
    llm = ScriptedLLM([])
    async with llm.serve():
        code, out, err = await ask(llm, "openai", "--mcp-config", str(config))
    assert code == 1 and out == "" and llm.requests == []
    assert (
        err.strip()
        == f"cm-mcp: --mcp-config {config}: server 'ops': 'command' (the program to run) is required"
    )


async def test_a_streamable_http_server_of_mcp_config_is_used_with_its_headers(agent_env: Path) -> None:
    """An `mcpServers` entry with a `url` (and `headers`) is reached over streamable HTTP."""
    import socket

    import uvicorn

    from tests.agent_foreign_server import server as ops

    seen_headers: list[str] = []
    app = ops.streamable_http_app()

    async def recording(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen_headers.append(dict(scope["headers"]).get(b"authorization", b"").decode())
        await app(scope, receive, send)

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(16)
    port = sock.getsockname()[1]
    web = uvicorn.Server(uvicorn.Config(recording, log_level="warning", lifespan="on"))
    config = agent_env / "mcp.json"
    entry = {"url": f"http://127.0.0.1:{port}/mcp", "headers": {"Authorization": "Bearer ops-team-token-123"}}
    config.write_text(json.dumps({"mcpServers": {"ops": entry}}))

    def second(seen: Seen) -> Reply:
        (result,) = answered(seen)
        assert result.text.startswith("[#1] restarted p-9"), result.text
        return Reply("**Summary**: restarted.")

    llm = ScriptedLLM([lambda seen: Reply("", [Call("restart_pod", {"pod": "p-9"})]), second])
    async with anyio.create_task_group() as group:
        group.start_soon(lambda: web.serve(sockets=[sock]))
        for _ in range(6000):  # up to a minute for uvicorn to accept connections
            if web.started:
                break
            await anyio.sleep(0.01)
        async with llm.serve():
            code, _, err = await ask(llm, "openai", "--mcp-config", str(config), "--yes")
        web.should_exit = True
    sock.close()
    llm.check()
    assert code == 0, err
    assert seen_headers and set(seen_headers) == {"Bearer ops-team-token-123"}
    transcript = "".join(p.read_text() for p in (agent_env / "sessions").glob("*.jsonl"))
    assert "ops-team-token-123" not in transcript


async def test_another_server_that_does_not_start_is_left_out(agent_env: Path) -> None:
    config = agent_env / "mcp.json"
    broken = {"command": sys.executable, "args": ["-c", "import sys; sys.exit(3)"]}
    config.write_text(json.dumps({"mcpServers": {"broken": broken}}))

    def only_ours(seen: Seen) -> Reply:
        assert "logs_aggs" in {tool["name"] for tool in seen.tools}
        return Reply("**Summary**: fine.")

    llm = ScriptedLLM([only_ours])
    async with llm.serve():
        code, out, err = await ask(llm, "anthropic", "--mcp-config", str(config))
    llm.check()
    assert code == 0 and out == "**Summary**: fine.\n", err
    assert "MCP server 'broken'" in err and "going on without it" in err
