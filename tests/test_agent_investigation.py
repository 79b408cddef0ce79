"""`cm-mcp ask --sandbox` as a user runs it: a real process, the real provider SDKs talking to the
scripted model over HTTP (both wire formats, streamed and not), a real `cm-mcp serve --sandbox` child
over stdio, the evidence-linked report checked against the result store on disk."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.agent_scripts import (
    ANTHROPIC_KEY,
    OPENAI_KEY,
    QUESTION,
    RESULT_ID,
    Investigation,
    events_of,
    provider_options,
    run_cli,
    subprocess_env,
)
from tests.scripted_llm import ScriptedLLM

pytestmark = pytest.mark.anyio

SANDBOX = ["--sandbox", "--volume", "3000", "--seed", "11"]


@pytest.fixture(scope="module")
def shared_sandbox_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One sandbox index for the module's runs (each run has its own data dir otherwise)."""
    return tmp_path_factory.mktemp("sandbox-cache")


@pytest.fixture
def data_dir(tmp_path: Path, shared_sandbox_cache: Path) -> Iterator[Path]:
    (tmp_path / "sandbox").symlink_to(shared_sandbox_cache, target_is_directory=True)
    return tmp_path


@pytest.mark.parametrize(
    ("provider", "stream"), [("anthropic", True), ("openai", True), ("anthropic", False), ("openai", False)]
)
async def test_ask_investigates_a_sandbox_incident_end_to_end(
    provider: str, stream: bool, data_dir: Path
) -> None:
    script = Investigation()
    llm = ScriptedLLM(script.steps())
    report = data_dir / "report.md"
    async with llm.serve():
        code, out, err = await run_cli(
            "ask",
            QUESTION,
            *SANDBOX,
            *provider_options(llm, provider, stream=stream),
            "--report",
            str(report),
            env=subprocess_env(data_dir),
        )
    llm.check()
    assert code == 0, err
    assert [seen.provider for seen in llm.requests] == [provider] * 4
    assert all(seen.stream is stream for seen in llm.requests)
    # stdout carries the answer and nothing else; the work is on stderr
    assert out == script.answer + "\n"
    for line in ("→ #1 logs_aggs", "→ #2 logs_scroll", "(scroll 1/5)", "→ #3 results_aggs", "tokens sent"):
        assert line in err, line
    assert script.result_id in err

    # the report: every citation resolves to evidence with the real stored result behind it
    text = report.read_text()
    assert "[#2](#evidence-2)" in text and '<a id="evidence-2"></a>' in text
    assert f"stored as result `{script.result_id}`" in text
    assert (data_dir / "results" / script.result_id).is_dir(), "the cited result id is not in the store"
    assert f'results_search \'{{"result_id": "{script.result_id}"' in text
    reproduce = [line for line in text.splitlines() if line.startswith("- reproduce it")]
    assert len(reproduce) == 3 and "cm-mcp call logs_aggs" in reproduce[0]
    assert "now-24h" not in reproduce[0] and '"start_time": "20' in reproduce[0]  # the window the API used
    assert "nothing flagged" in text, text
    assert f"LOGS matched={script.matched}" in text  # the excerpt of the cited result

    # the transcript: every step with its result id, quota before/after, no secret
    events = events_of(data_dir)
    results = [e for e in events if e["type"] == "tool_result"]
    assert [(e["step"], e["name"]) for e in results] == [
        (1, "logs_aggs"),
        (2, "logs_scroll"),
        (3, "results_aggs"),
    ]
    assert results[1]["result_id"] == script.result_id and results[1]["quota_remaining"] == 49
    quotas = [e for e in events if e["type"] == "quota"]
    assert [q["when"] for q in quotas] == ["before", "after"]
    after = {f["family"]: f.get("remaining") for f in quotas[1]["quota"]["families"]}
    assert after["logs_scroll"] == 49 and after["logs_aggs"] == 999
    raw = "\n".join(p.read_text() for p in (data_dir / "sessions").glob("*.jsonl"))
    assert ANTHROPIC_KEY not in raw and OPENAI_KEY not in raw and ANTHROPIC_KEY not in err + out

    # context discipline: each turn adds one budgeted result, never a raw dump
    growth = [later - earlier for earlier, later in zip(script.tokens, script.tokens[1:], strict=False)]
    assert all(0 < step < 4_500 for step in growth), (script.tokens, growth)


async def test_the_report_flags_numbers_no_tool_result_backs(data_dir: Path) -> None:
    script = Investigation()
    steps = script.steps()

    def invent(seen):  # the careful answer, plus a claim no tool result backs
        reply = steps[3](seen)
        reply.text += "\n\nAbout 4,242 customers could not pay [#2]."
        return reply

    llm = ScriptedLLM([*steps[:3], invent])
    report = data_dir / "report.md"
    async with llm.serve():
        code, _, err = await run_cli(
            "ask",
            QUESTION,
            *SANDBOX,
            *provider_options(llm, "openai"),
            "--report",
            str(report),
            env=subprocess_env(data_dir),
        )
    llm.check()
    assert code == 0, err
    text = report.read_text()
    assert re.search(r"⚠ `4,242` in no tool result", text), text
    assert "nothing flagged" not in text
    # the genuine numbers still verify against the evidence they cite
    assert f"- ⚠ `{script.matched}`" not in text and f"`{script.matched}` #" in text


async def test_replay_renders_a_session_without_model_or_api(data_dir: Path) -> None:
    script = Investigation()
    llm = ScriptedLLM(script.steps())
    async with llm.serve():
        code, _, err = await run_cli(
            "ask", QUESTION, *SANDBOX, *provider_options(llm, "anthropic"), env=subprocess_env(data_dir)
        )
        assert code == 0, err
        requests = len(llm.requests)
        session = json.loads((next((data_dir / "sessions").glob("*.jsonl"))).read_text().splitlines()[0])[
            "id"
        ]
        code, out, err = await run_cli(
            "replay", session[:12], env=subprocess_env(data_dir, CM_API_URL="http://127.0.0.1:9")
        )
        assert code == 0, err
        assert len(llm.requests) == requests, "replay talked to the model"
        assert "→ **#2 logs_scroll**" in out and script.answer in out and script.result_id in out
        listed = await run_cli("replay", "--list", env=subprocess_env(data_dir))
        assert listed[0] == 0 and session in listed[1] and QUESTION in listed[1]
        code, out, _ = await run_cli("replay", session, "--format", "json", env=subprocess_env(data_dir))
        assert code == 0 and next(e["type"] for e in json.loads(out)) == "session"
        report = data_dir / "again.md"
        code, _, err = await run_cli("replay", session, "--report", str(report), env=subprocess_env(data_dir))
        assert code == 0, err
        assert RESULT_ID.search(report.read_text())
