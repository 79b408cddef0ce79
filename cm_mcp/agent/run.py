"""`cm-mcp ask`: one investigation, and the session set-up `ask` and `chat` share.

Start-up order is chosen for fast, cheap failures: the provider key is checked first (no process is
started and no request made without it), then cm-mcp's server is started and listed while the
provider SDK is imported, then the first model request goes out.

Exit codes of `ask` (one-line reason on stderr): 0 answered, 1 set-up failed (server, config,
session), 2 turn or budget limit, 3 API quota exhausted during the question (the answer, if any, is
still printed), 4 provider error (missing key included), 130 interrupted.
"""

from __future__ import annotations

import argparse
import signal
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import anyio
from pydantic import ValidationError

from cm_mcp.agent.approval import Approver, NonInteractive
from cm_mcp.agent.loop import Agent
from cm_mcp.agent.providers import make_provider, preload_sdk
from cm_mcp.agent.providers.base import ProviderConfigError, ProviderError
from cm_mcp.agent.redact import Redactor
from cm_mcp.agent.servers import ServerConfigError, ServerSpec, load_mcp_config, own_server
from cm_mcp.agent.settings import DEFAULT_MODELS, AgentSettings, MissingKeyError, choose_provider, credentials
from cm_mcp.agent.state import Limits, Outcome
from cm_mcp.agent.toolbox import Toolbox
from cm_mcp.agent.transcript import (
    SessionNotFound,
    Transcript,
    find_session,
    new_session_id,
    read_events,
    restore,
    sessions_dir,
)
from cm_mcp.agent.ui import TerminalUI

EXIT_ANSWERED = 0
EXIT_SETUP = 1
EXIT_LIMIT = 2
EXIT_QUOTA = 3
EXIT_PROVIDER = 4
EXIT_INTERRUPTED = 130

EXIT_CODES = {
    "answered": EXIT_ANSWERED,
    "turn_limit": EXIT_LIMIT,
    "budget": EXIT_LIMIT,
    "quota_exhausted": EXIT_QUOTA,
    "provider_error": EXIT_PROVIDER,
    "cancelled": EXIT_INTERRUPTED,
}

#: Command-line options that override AgentSettings fields of the same name.
_OVERRIDES = ("provider", "model", "base_url", "max_turns", "budget", "context_tokens")


class SetupError(Exception):
    """The session could not start (server, --mcp-config, --resume): exit 1 with this message."""


def agent_settings(args: argparse.Namespace) -> AgentSettings:
    overrides: dict[str, Any] = {
        name: getattr(args, name) for name in _OVERRIDES if getattr(args, name, None) is not None
    }
    if getattr(args, "no_stream", False):
        overrides["stream"] = False
    try:
        return AgentSettings(**overrides)
    except ValidationError as exc:
        raise SetupError(
            f"invalid agent settings (options or CM_AGENT_* variables): {_problems(exc)}"
        ) from None


def data_dir() -> Path:
    """CM_DATA_DIR, as cm-mcp's settings resolve it (an invalid CM_* setting is a SetupError)."""
    from cm_mcp.api.settings import Settings

    try:
        return Path(Settings().data_dir)
    except ValidationError as exc:
        raise SetupError(f"invalid cm-mcp settings (CM_* variables or .env): {_problems(exc)}") from None


def _problems(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'settings'}: {e['msg']}" for e in exc.errors())


@asynccontextmanager
async def open_agent(args: argparse.Namespace, *, ui: TerminalUI, approver: Approver) -> AsyncIterator[Agent]:
    """A ready agent: key checked, servers connected and listed, transcript open (appended on --resume)."""
    started = time.perf_counter()
    settings = agent_settings(args)
    provider_name = choose_provider(settings)
    try:
        creds = credentials(provider_name, settings.base_url)
    except MissingKeyError as exc:
        raise ProviderConfigError(str(exc)) from None
    redactor = Redactor.from_environment([creds.api_key])
    specs = _server_specs(args)
    folder = sessions_dir(data_dir())
    restored = None
    if getattr(args, "resume", None):
        try:
            path = find_session(data_dir(), args.resume)
        except SessionNotFound as exc:
            raise SetupError(str(exc)) from None
        restored = restore(read_events(path))
    else:
        path = folder / f"{new_session_id()}.jsonl"
    model = settings.model or DEFAULT_MODELS[provider_name]
    async with Toolbox(redactor) as toolbox:
        if args.sandbox:
            ui.notice("starting cm-mcp's server with the embedded sandbox (the first start builds its index)")
        # importing the SDK takes about a second (anthropic): do it while the server starts
        preloading = preload_sdk(provider_name)
        await _connect_all(toolbox, specs, ui)
        await anyio.to_thread.run_sync(preloading.join)
        provider = make_provider(
            creds,
            model=model,
            stream=settings.stream,
            max_retries=settings.max_retries,
            redactor=redactor,
            notice=ui.notice,
        )
        transcript = Transcript(path, redactor)
        try:
            transcript.write(
                "session",
                id=transcript.session_id,
                resumed=restored is not None,
                provider=provider_name,
                model=model,
                base_url=creds.base_url,
                servers=[spec.name for spec in specs],
                tools=[{"name": t.name, "server": t.server, "cost": t.cost} for t in toolbox.tools.values()],
                limits=settings.model_dump(exclude={"provider", "model", "base_url"}),
                ready_seconds=round(time.perf_counter() - started, 3),
            )
            agent = Agent(
                provider=provider,
                toolbox=toolbox,
                transcript=transcript,
                limits=limits_of(settings),
                approver=approver,
                ui=ui,
                messages=restored.messages if restored else None,
                next_step=restored.next_step if restored else 1,
                questions=restored.questions if restored else 0,
            )
            yield agent
        finally:
            transcript.close()
            await provider.aclose()


def limits_of(settings: AgentSettings) -> Limits:
    return Limits(
        max_turns=settings.max_turns,
        budget=settings.budget,
        context_tokens=settings.context_tokens,
        max_output_tokens=settings.max_output_tokens,
        tool_idle_timeout=settings.tool_idle_timeout,
        tool_timeout=settings.tool_timeout,
        result_max_tokens=settings.result_max_tokens,
    )


def _server_specs(args: argparse.Namespace) -> list[ServerSpec]:
    from cm_mcp.sandbox.cli import misplaced_sandbox_options, sandbox_argv

    problem = misplaced_sandbox_options(args)
    if problem:
        raise SetupError(problem)
    specs = [own_server(sandbox=args.sandbox, sandbox_args=sandbox_argv(args))]
    if getattr(args, "mcp_config", None):
        try:
            specs += load_mcp_config(args.mcp_config)
        except ServerConfigError as exc:
            raise SetupError(str(exc)) from None
    return specs


async def _connect_all(toolbox: Toolbox, specs: list[ServerSpec], ui: TerminalUI) -> None:
    """Connect every server. Without cm-mcp's own there is nothing to investigate with (SetupError);
    another server that fails is left out with a notice, the investigation goes on without it."""
    # No timeout scope around a connect: a session's own task group outlives it (Ctrl-C still works).
    for spec in specs:
        try:
            await toolbox.connect(spec)
        except Exception as exc:
            what = f"{spec.command} {' '.join(spec.args)}" if spec.command else spec.url
            message = f"MCP server {spec.name!r} ({what}) did not start: {_first_error(exc)}"
            if spec.own:
                raise SetupError(message) from None
            ui.notice(f"{message}; going on without it")


def _first_error(exc: BaseException) -> str:
    while isinstance(exc, BaseExceptionGroup) and exc.exceptions:
        exc = exc.exceptions[0]
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


# --- ask ------------------------------------------------------------------------------------------


def ask(args: argparse.Namespace) -> int:
    return anyio.run(run_ask, args)


async def run_ask(args: argparse.Namespace, ui: TerminalUI | None = None) -> int:
    ui = ui or TerminalUI()
    try:
        async with open_agent(args, ui=ui, approver=NonInteractive(approve_writes=args.yes)) as agent:
            outcome = await _with_interrupts(agent, args.question)
            if outcome.answer:
                ui.out.write(outcome.answer.rstrip() + "\n")
                ui.out.flush()
            if args.report:
                from cm_mcp.agent.report import write_report

                write_report(read_events(agent.transcript.path), Path(args.report))
                ui.notice(f"report written to {args.report}")
            _summary(ui, agent, outcome)
            return EXIT_CODES[outcome.status]
    except (ProviderError, SetupError, BaseExceptionGroup) as exc:
        return _fail_with(ui, exc)


async def _with_interrupts(agent: Agent, question: str) -> Outcome:
    """Run the question; Ctrl-C cancels the running call (the question then stops), a second one
    abandons everything at once."""
    result: list[Outcome] = []
    async with anyio.create_task_group() as group:

        async def watch() -> None:
            with anyio.open_signal_receiver(signal.SIGINT) as signals:
                async for _ in signals:
                    if agent.interrupted:
                        group.cancel_scope.cancel()
                        return
                    agent.ui.notice("Ctrl-C: stopping the running call (Ctrl-C again to quit at once)")
                    agent.interrupt()

        async def run() -> None:
            result.append(await agent.ask(question))
            group.cancel_scope.cancel()

        group.start_soon(watch)
        group.start_soon(run)
    return result[0] if result else Outcome("cancelled", None, "interrupted (Ctrl-C twice)")


def _summary(ui: TerminalUI, agent: Agent, outcome: Outcome) -> None:
    usage = agent.usage
    line = (
        f"session {agent.transcript.session_id}: {agent.model_requests} model request(s), "
        f"{usage.input_tokens + usage.cache_read_tokens + usage.cache_write_tokens:,} tokens in "
        f"({usage.cache_read_tokens:,} from cache) / {usage.output_tokens:,} out; "
        f"transcript {agent.transcript.path} (cm-mcp replay {agent.transcript.session_id})"
    )
    ui.line(line)
    if outcome.status != "answered":
        extra = f" ({', '.join(outcome.exhausted)})" if outcome.exhausted else ""
        ui.line(f"cm-mcp: stopped: {outcome.status}{extra}: {outcome.reason}")


def _fail_with(ui: TerminalUI, exc: BaseException) -> int:
    """The one-line reason and exit code of a provider or set-up failure (task groups wrap them)."""
    error = unwrap(exc)
    if isinstance(error, ProviderError):
        return _fail(ui, str(error), EXIT_PROVIDER)
    if isinstance(error, SetupError):
        return _fail(ui, str(error), EXIT_SETUP)
    raise exc


def unwrap(exc: BaseException) -> BaseException:
    """The first ProviderError or SetupError inside (nested) exception groups, else `exc`."""
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            found = unwrap(inner)
            if isinstance(found, ProviderError | SetupError):
                return found
    return exc


def _fail(ui: TerminalUI, message: str, code: int) -> int:
    ui.line(f"cm-mcp: {message}")
    return code
