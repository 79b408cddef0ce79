"""The JWT, handled locally: read its expiry without verifying it, and keep it out of every message.

We never verify the signature (we do not hold the key; the server does). Reading `exp` only lets an
expired token fail fast with a clear message instead of spending one of the day's ~50 requests on a 401.
A token that is not a JWT (opaque) is allowed: its expiry is simply unknown.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Final

import jwt

REDACTED: Final = "[REDACTED]"

#: A secret shorter than this is not searched for in text: replacing every "ab" would garble messages,
#: and real JWTs are hundreds of characters long.
_MIN_SECRET_LENGTH: Final = 8

#: Anything shaped like a JWT (header.payload[.signature], base64url, header starting `eyJ`), so that a
#: token we do not know about (an old one echoed by the server, say) is hidden too.
_JWT_SHAPE: Final = re.compile(r"eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}(?:\.[A-Za-z0-9_-]*)?")
#: An echoed `Authorization` value. Only after "Bearer": "token"/"JWT" are followed by ordinary words.
_AUTH_HEADER_VALUE: Final = re.compile(r"(?i)\b(bearer)(\s+)(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}")


def redact(text: str, secrets: Iterable[str | None] = ()) -> str:
    """`text` with every given secret, every JWT-shaped string and every `Bearer <value>` replaced."""
    for secret in secrets:
        if secret and len(secret) >= _MIN_SECRET_LENGTH:
            text = text.replace(secret, REDACTED)
    text = _JWT_SHAPE.sub(REDACTED, text)
    return _AUTH_HEADER_VALUE.sub(lambda match: f"{match[1]}{match[2]}{REDACTED}", text)


def jwt_expiry(token: str) -> datetime | None:
    """The token's `exp` claim as an aware UTC datetime; None for an opaque token or one without `exp`."""
    try:
        claims = jwt.decode(token, options={"verify_signature": False, "verify_exp": False})
    except jwt.PyJWTError:
        return None
    exp = claims.get("exp")
    # bool is an int subclass: `"exp": true` is nonsense, not 1970-01-01T00:00:01Z.
    if isinstance(exp, bool) or not isinstance(exp, int | float):
        return None
    try:
        return datetime.fromtimestamp(exp, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def check_token(token: str | None, *, now: datetime | None = None) -> str:
    """Return the usable token, or raise before any request is sent.

    JWTMissingError when no token is configured; JWTExpiredError when its `exp` is not in the future.
    """
    # Imported here: errors.py uses `redact` from this module, so a top-level import would be circular.
    from cm_mcp.api.errors import JWTExpiredError, JWTMissingError

    if token is None or not token.strip():
        raise JWTMissingError(
            "No API token configured: set CM_API_TOKEN, or CM_API_TOKEN_FILE to a file holding the JWT."
        )
    token = token.strip()
    expires_at = jwt_expiry(token)
    current = now or datetime.now(UTC)
    if expires_at is not None and expires_at <= current:
        raise JWTExpiredError(expires_at=expires_at, now=current)
    return token
