"""S3-style presigned URLs for batch partition files, served by the sandbox itself.

The URL looks like a SigV4 presigned URL (``X-Amz-Algorithm``, ``X-Amz-Date``, ``X-Amz-Expires``,
``X-Amz-Signature``) so clients exercise the same parsing and expiry handling as against S3; the
signature is a plain HMAC-SHA256 over key, date and expiry. Failures produce S3's XML 403 bodies.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Final
from urllib.parse import quote, urlencode
from xml.sax.saxutils import escape

DEFAULT_SECRET: Final = "cm-mcp-sandbox-presign-secret"
_DATE_FMT: Final = "%Y%m%dT%H%M%SZ"
#: S3 caps presigned URLs at 7 days.
MAX_EXPIRES: Final = 7 * 24 * 3600


class PresignError(Exception):
    """`code` is the S3 error code (AccessDenied or SignatureDoesNotMatch)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class Presigner:
    def __init__(self, secret: str = DEFAULT_SECRET) -> None:
        self._secret = secret.encode()

    def _signature(self, object_key: str, amz_date: str, expires: str) -> str:
        msg = f"{object_key}\n{amz_date}\n{expires}".encode()
        return hmac.new(self._secret, msg, hashlib.sha256).hexdigest()

    def sign(self, base_url: str, object_key: str, expires_in: int, now: float | None = None) -> str:
        """URL of `object_key` under `base_url` valid for `expires_in` seconds from `now`.

        A `now` in the past yields an already-expired URL (the expired_url fault uses that).
        """
        if not 1 <= expires_in <= MAX_EXPIRES:
            raise ValueError(f"expires_in must be between 1 and {MAX_EXPIRES} seconds")
        key = object_key.lstrip("/")
        amz_date = datetime.fromtimestamp(now if now is not None else time.time(), UTC).strftime(_DATE_FMT)
        params = {
            "X-Amz-Algorithm": "AWS4-HMAC-SHA256",
            "X-Amz-Credential": "SANDBOX/sandbox/s3/aws4_request",
            "X-Amz-Date": amz_date,
            "X-Amz-Expires": str(expires_in),
            "X-Amz-SignedHeaders": "host",
            "X-Amz-Signature": self._signature(key, amz_date, str(expires_in)),
        }
        return f"{base_url.rstrip('/')}/{quote(key)}?{urlencode(params)}"

    def verify(self, object_key: str, query_params: Mapping[str, str], now: float | None = None) -> None:
        """Check a request for `object_key` (path without leading slash); raises PresignError."""
        key = object_key.lstrip("/")
        amz_date = query_params.get("X-Amz-Date")
        expires = query_params.get("X-Amz-Expires")
        signature = query_params.get("X-Amz-Signature")
        if not (amz_date and expires and signature):
            raise PresignError(
                "AccessDenied", "Query-string authentication requires the Signature, Expires parameters"
            )
        expected = self._signature(key, amz_date, expires)
        if not hmac.compare_digest(expected, signature):
            raise PresignError(
                "SignatureDoesNotMatch",
                "The request signature we calculated does not match the signature you provided.",
            )
        try:
            signed_at = datetime.strptime(amz_date, _DATE_FMT).replace(tzinfo=UTC).timestamp()
            ttl = int(expires)
        except ValueError:
            raise PresignError("AccessDenied", "Invalid date or expiry in the presigned URL") from None
        if (now if now is not None else time.time()) > signed_at + ttl:
            raise PresignError("AccessDenied", "Request has expired")


def s3_error_xml(code: str, message: str, resource: str = "", request_id: str = "SANDBOX") -> str:
    """The body S3 returns with a 403 (Content-Type: application/xml)."""
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        f"<Error><Code>{escape(code)}</Code><Message>{escape(message)}</Message>"
        f"<Resource>{escape(resource)}</Resource><RequestId>{escape(request_id)}</RequestId></Error>"
    )
