"""The agent's settings: `CM_AGENT_*` variables (and `.env`), overridden by command-line options.

Provider credentials and base URLs follow each SDK's own conventions (`ANTHROPIC_API_KEY`,
`ANTHROPIC_BASE_URL`, `OPENAI_API_KEY`, `OPENAI_BASE_URL`) and are read in `credentials()`, never
stored on the settings object, so a settings dump can never show a key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

ProviderName = Literal["anthropic", "openai"]

#: Defaults when --model / CM_AGENT_MODEL is not given.
DEFAULT_MODELS: dict[str, str] = {"anthropic": "claude-sonnet-4-5", "openai": "gpt-4.1"}

KEY_VARIABLES: dict[str, tuple[str, ...]] = {
    "anthropic": ("ANTHROPIC_API_KEY", "ANTHROPIC_AUTH_TOKEN"),
    "openai": ("OPENAI_API_KEY",),
}
BASE_URL_VARIABLES: dict[str, str] = {"anthropic": "ANTHROPIC_BASE_URL", "openai": "OPENAI_BASE_URL"}


class AgentSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CM_AGENT_", env_file=".env", extra="ignore")

    #: None: the provider whose key is set (Anthropic first)
    provider: ProviderName | None = None
    model: str | None = None
    #: overrides ANTHROPIC_BASE_URL / OPENAI_BASE_URL
    base_url: str | None = None
    #: model requests per question before the loop stops (exit 2)
    max_turns: int = Field(default=12, ge=1, le=200)
    #: scroll/batch API requests per question without asking (aggs and local results are free)
    budget: int = Field(default=5, ge=0, le=1000)
    #: stream model output (some local servers handle tool calls better without)
    stream: bool = True
    #: the model's context window; older tool results shrink when a request nears it
    context_tokens: int = Field(default=128_000, ge=2_000)
    max_output_tokens: int = Field(default=4_096, ge=256)
    #: a tool call with no progress for this long is cancelled (progress resets the clock). Generous:
    #: an export reports progress when a partition completes, and one partition may take minutes
    tool_idle_timeout: float = Field(default=600.0, gt=0)
    #: no tool call runs longer than this (an export's batch token lives 2 h)
    tool_timeout: float = Field(default=7_200.0, gt=0)
    #: cap of one result of another MCP server, in tokens (ours keep to their own budget)
    result_max_tokens: int = Field(default=6_000, ge=200)
    #: retries of 429/5xx/connection errors by the provider SDK (Retry-After honoured)
    max_retries: int = Field(default=3, ge=0, le=10)


@dataclass(frozen=True)
class Credentials:
    provider: ProviderName
    api_key: str
    base_url: str | None


class MissingKeyError(ValueError):
    """No key for the chosen provider: the message names the variable to set."""


def choose_provider(settings: AgentSettings, environ: dict[str, str] | None = None) -> ProviderName:
    if settings.provider is not None:
        return settings.provider
    env = os.environ if environ is None else environ
    names: tuple[ProviderName, ...] = ("anthropic", "openai")
    for name in names:
        if any(env.get(variable) for variable in KEY_VARIABLES[name]):
            return name
    return "anthropic"


def credentials(
    provider: ProviderName, base_url: str | None, environ: dict[str, str] | None = None
) -> Credentials:
    """The key and base URL for `provider`, from the SDK's own variables; raises `MissingKeyError`."""
    env = os.environ if environ is None else environ
    key = next((env[v].strip() for v in KEY_VARIABLES[provider] if env.get(v, "").strip()), None)
    if key is None:
        variable = KEY_VARIABLES[provider][0]
        hint = (
            " (a local server such as Ollama or vLLM accepts any value, e.g. OPENAI_API_KEY=local)"
            if provider == "openai"
            else ""
        )
        raise MissingKeyError(f"{variable} is not set: the {provider} provider needs it{hint}")
    url = base_url or env.get(BASE_URL_VARIABLES[provider]) or None
    return Credentials(provider=provider, api_key=key, base_url=url)
