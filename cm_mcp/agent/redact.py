"""Secrets never reach the terminal, the transcript, a report or an error message.

Two nets: the exact values we know are secret (the provider key, the API JWT) and the shapes secrets
have (JWTs, bearer headers, provider key prefixes, presigned URL signatures), for ones we were never
told about, e.g. a token echoed inside a foreign server's tool result.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable
from typing import Any

REDACTED = "[redacted]"

#: Environment variables whose values are secrets wherever they show up.
SECRET_VARIABLES = (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_AUTH_TOKEN",
    "OPENAI_API_KEY",
    "CM_API_TOKEN",
)

_PATTERNS = (
    # JWT: three base64url parts, the first two JSON objects ('eyJ' = '{"')
    re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]+"),
    # provider keys: sk-..., sk-ant-..., sk-proj-...
    re.compile(r"\bsk-[A-Za-z0-9_-]{16,}"),
    # Authorization / x-api-key header values
    re.compile(r"(?i)(authorization\"?\s*[:=]\s*\"?(?:bearer|basic)?\s*)[^\s\",']+"),
    re.compile(r"(?i)(x-api-key\"?\s*[:=]\s*\"?)[^\s\",']+"),
    # presigned URL signatures (S3 v4 and v2)
    re.compile(r"(?i)((?:x-amz-signature|signature|x-amz-security-token)=)[^&\s\"']+"),
)


class Redactor:
    """Replaces known secret values and secret-shaped strings with `[redacted]`."""

    def __init__(self, secrets: Iterable[str | None] = ()) -> None:
        # Short values would redact ordinary words; real keys and JWTs are long.
        self._secrets = sorted({s for s in secrets if s and len(s) >= 8}, key=len, reverse=True)

    @classmethod
    def from_environment(cls, extra: Iterable[str | None] = ()) -> Redactor:
        return cls([*(os.environ.get(name) for name in SECRET_VARIABLES), *extra])

    def add(self, secret: str | None) -> None:
        if secret and len(secret) >= 8 and secret not in self._secrets:
            self._secrets = sorted([*self._secrets, secret], key=len, reverse=True)

    def text(self, value: str) -> str:
        for secret in self._secrets:
            value = value.replace(secret, REDACTED)
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
