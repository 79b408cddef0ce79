"""Secrets never reach the terminal, the transcript, a report or an error message.

Built on the API layer's rule (`cm_mcp.api.auth.redact`: the known secrets, JWT shapes, `Bearer`
values), plus the shapes the agent meets besides: provider keys (`sk-...`), `x-api-key` values and
presigned-URL signatures inside tool results of any server. The exact values we know are secret (the
provider key, the API token) are registered too, so the process-wide log redaction hides them from
every log record (`cm_mcp.api.redaction`).
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

from cm_mcp.api.auth import REDACTED, redact
from cm_mcp.api.redaction import register_secret

#: Environment variables whose values are secrets wherever they show up.
SECRET_VARIABLES = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "OPENAI_API_KEY",
    "CM_API_TOKEN",
)
#: Shorter values would redact ordinary words; real keys and JWTs are long.
_MIN_SECRET_LENGTH = 8

_PATTERNS = (
    # provider keys: sk-..., sk-ant-..., sk-proj-...
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),
    # x-api-key header values (Anthropic's key header)
    re.compile(r"(?i)(x-api-key\"?\s*[:=]\s*\"?)[^\s\",']+"),
    # presigned URL signatures (S3 v4 and v2) and session tokens
    re.compile(r"(?i)((?:x-amz-signature|signature|x-amz-security-token)=)[^&\s\"']+"),
)


class Redactor:
    """Replaces known secret values and secret-shaped strings with `[REDACTED]`."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        self._secrets: list[str] = []
        for secret in secrets:
            self.add(secret)

    @classmethod
    def from_environment(cls, extra: Iterable[str | None] = ()) -> Redactor:
        return cls([*(os.environ.get(name) for name in SECRET_VARIABLES), *extra])

    def add(self, secret: str | None) -> None:
        secret = (secret or "").strip()
        if len(secret) >= _MIN_SECRET_LENGTH and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)
            register_secret(secret)

    def text(self, value: str) -> str:
        value = redact(value, self._secrets)
        for pattern in _PATTERNS:
            value = pattern.sub(_keep_prefix, value)
        return value

    def data(self, value: Any) -> Any:
        """`value` with every string inside it redacted (dicts, lists, tuples walked)."""
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {key: self.data(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [self.data(item) for item in value]
        return value


def _keep_prefix(match: re.Match[str]) -> str:
    return (match.group(1) if match.groups() else "") + REDACTED
