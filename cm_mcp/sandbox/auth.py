"""Sandbox JWTs: HS256 tokens signed with a sandbox secret (never a real credential).

The reference only says "JWT in the Authorization header"; the sandbox accepts ``Bearer <jwt>`` and
a bare ``<jwt>`` so clients with either convention work. The app maps every `AuthError` to 401.
"""

from __future__ import annotations

import time
from typing import Any, Final, Literal

import jwt

#: Public on purpose: sandbox tokens grant nothing outside the sandbox.
DEFAULT_SECRET: Final = "cm-mcp-sandbox-secret-not-for-production"
ALGORITHM: Final = "HS256"
ISSUER: Final = "cm-mcp-sandbox"
DEFAULT_TTL_SECONDS: Final = 12 * 3600


class AuthError(Exception):
    """Why a request is not authenticated: `reason` is missing, invalid or expired."""

    def __init__(self, reason: Literal["missing", "invalid", "expired"], detail: str) -> None:
        super().__init__(detail)
        self.reason = reason
        self.detail = detail


def issue_token(
    sub: str = "sandbox-user",
    *,
    ttl_seconds: int = DEFAULT_TTL_SECONDS,
    secret: str = DEFAULT_SECRET,
    now: float | None = None,
    extra: dict[str, Any] | None = None,
) -> str:
    iat = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        **(extra or {}),
        "sub": sub,
        "iat": iat,
        "exp": iat + ttl_seconds,
        "iss": ISSUER,
    }
    return jwt.encode(claims, secret, algorithm=ALGORITHM)


def verify(
    header_value: str | None, *, secret: str = DEFAULT_SECRET, now: float | None = None
) -> dict[str, Any]:
    """Claims of the JWT in an Authorization header value; raises AuthError."""
    if header_value is None or not header_value.strip():
        raise AuthError("missing", "Missing Authorization header (expected 'Bearer <jwt>')")
    parts = header_value.strip().split()
    if len(parts) == 2 and parts[0].lower() == "bearer":
        token = parts[1]
    elif len(parts) == 1:
        token = parts[0]
    else:
        raise AuthError("invalid", "Malformed Authorization header (expected 'Bearer <jwt>')")
    try:
        # Expiry (and not iat) is checked here rather than by PyJWT so that `now` can be injected.
        claims: dict[str, Any] = jwt.decode(
            token,
            secret,
            algorithms=[ALGORITHM],
            options={"verify_exp": False, "verify_iat": False, "require": ["sub", "exp", "iat"]},
        )
    except jwt.InvalidTokenError as err:
        raise AuthError("invalid", f"Invalid token: {err}") from None
    current = now if now is not None else time.time()
    if not isinstance(claims.get("exp"), int | float) or claims["exp"] <= current:
        raise AuthError("expired", "Token has expired")
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise AuthError("invalid", "Invalid token: empty 'sub'")
    return claims
