"""Provider adapters behind one interface (`base.Provider`); `make_provider` imports only the SDK in use
(the anthropic SDK alone takes about a second to import)."""

from __future__ import annotations

import importlib
import threading
from typing import TYPE_CHECKING

from cm_mcp.agent.providers.base import Provider, ProviderConfigError
from cm_mcp.agent.providers.http import Notice, provider_http_client
from cm_mcp.agent.redact import Redactor
from cm_mcp.agent.settings import Credentials

if TYPE_CHECKING:
    from cm_mcp.agent.providers.anthropic import AnthropicProvider
    from cm_mcp.agent.providers.openai import OpenAIProvider


def make_provider(
    creds: Credentials,
    *,
    model: str,
    stream: bool,
    max_retries: int,
    redactor: Redactor,
    notice: Notice | None = None,
) -> Provider:
    adapter: type[AnthropicProvider | OpenAIProvider]
    if creds.provider == "anthropic":
        from cm_mcp.agent.providers.anthropic import AnthropicProvider as adapter
    elif creds.provider == "openai":
        from cm_mcp.agent.providers.openai import OpenAIProvider as adapter
    else:
        raise ProviderConfigError(f"unknown provider {creds.provider!r}: use anthropic or openai")
    return adapter(
        model=model,
        api_key=creds.api_key,
        base_url=creds.base_url,
        http_client=provider_http_client(notice, max_retries=max_retries),
        stream=stream,
        max_retries=max_retries,
        redactor=redactor,
    )


def preload_sdk(provider: str) -> threading.Thread:
    """Import the provider's adapter (and its SDK) in a thread, so it overlaps other start-up work."""
    module = {"anthropic": "cm_mcp.agent.providers.anthropic", "openai": "cm_mcp.agent.providers.openai"}.get(
        provider
    )
    thread = threading.Thread(
        target=importlib.import_module, args=(module,) if module else ("cm_mcp.agent",), daemon=True
    )
    thread.start()
    return thread
