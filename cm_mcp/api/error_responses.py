"""An API answer turned into the right `cm_mcp.api.errors` class: the status picks the class (item 38),
the body (any of three shapes, most undocumented) only supplies the message, and the JWT never
appears in it; plus the Retry-After header."""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Final

from cm_mcp.api.auth import redact
from cm_mcp.api.endpoints import Endpoint
from cm_mcp.api.errors import (
    MAX_MESSAGE_CHARS,
    REQUEST_ID_HEADERS,
    APIError,
    AuthError,
    BadRequestError,
    BatchTokenExpiredError,
    NotFoundError,
    RateLimitError,
    ServerError,
    lookup_endpoint,
)

# --- turning a response into an error ----------------------------------------------------------------


def error_from_response(
    status: int,
    body: bytes,
    headers: Mapping[str, str],
    endpoint: Endpoint | str,
    *,
    secrets: Iterable[str | None] = (),
    attempts: int = 1,
) -> APIError:
    """The typed error for a non-2xx response; the status decides the class, the body only the message.
    `attempts`: how many requests were made before this answer was final."""
    known = lookup_endpoint(endpoint)
    name = known.name if known else str(endpoint)
    message, fields = parse_error_body(status, body, _header(headers, "content-type"))
    secret_list = list(secrets)
    message = redact(message, secret_list)
    request_id = _request_id(headers, fields)
    common: dict[str, Any] = {
        "status": status,
        "endpoint": name,
        "request_id": request_id,
        "attempts": attempts,
    }

    if status in (401, 403):
        return AuthError(message, hint=_auth_hint(known), **common)
    if status == 404 and known is not None and known.is_batch_status:
        hint = "Batch tokens expire 2 hours after the batch call: re-submit the batch for a new token."
        return BatchTokenExpiredError(message, hint=hint, **common)
    if status == 404:
        return NotFoundError(message, hint=_not_found_hint(known), **common)
    if status == 429:
        retry_after = parse_retry_after(_header(headers, "retry-after"))
        family = known.family if known else None
        hint = (
            f"Retry after {retry_after:g} s."
            if retry_after is not None
            else f"The daily request quota{f' of {family}' if family else ''} is used up; "
            "it resets at an undocumented time (assumed 00:00 UTC)."
        )
        return RateLimitError(message, hint=hint, retry_after=retry_after, endpoint_family=family, **common)
    if 400 <= status < 500:
        return BadRequestError(message, **common)
    if 500 <= status < 600:
        return ServerError(message, **common)
    return APIError(message, **common)


def parse_error_body(status: int, content: bytes, content_type: str | None) -> tuple[str, dict[str, Any]]:
    """A human message and whatever fields could be recovered, from any error body. Never raises.

    Tried in order: JSON (`{status_code, detail}`, `{message}`, `{error, details}`), the same keys
    recovered by pattern from broken JSON (the reference's own examples lack a comma), plain text,
    and finally the status's reason phrase.
    """
    text = content.decode("utf-8", errors="replace").strip()
    fields = _json_object(text)
    if fields is None:
        fields = _fields_by_pattern(text)
    message = _message_from_fields(fields) or _plain_text(text, content_type) or _reason(status)
    return _shorten(message), fields


def parse_retry_after(value: str | None, *, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header (delta-seconds or HTTP-date); None when absent/invalid."""
    if value is None or not value.strip():
        return None
    value = value.strip()
    seconds: float | None
    try:
        seconds = float(value)
    except ValueError:
        seconds = _seconds_until_http_date(value, now or datetime.now(UTC))
    if seconds is None or not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


# --- helpers -----------------------------------------------------------------------------------------

_MESSAGE_KEYS: Final = ("detail", "message", "error", "details", "msg", "title")
_STRING_FIELD: Final = r'"{key}"\s*:\s*"((?:[^"\\]|\\.)*)"'
_STATUS_CODE_FIELD: Final = re.compile(r'"status_code"\s*:\s*(\d{3})')
_HTML_TAG: Final = re.compile(r"<[^>]*>")
_WHITESPACE: Final = re.compile(r"\s+")


def _json_object(text: str) -> dict[str, Any] | None:
    if not text.startswith(("{", "[", '"')):
        return None
    try:
        value = json.loads(text)
    except (ValueError, RecursionError):
        return None
    if isinstance(value, dict):
        return value
    if isinstance(value, str):
        return {"message": value}
    return {"body": value}


def _fields_by_pattern(text: str) -> dict[str, Any]:
    """Recover string fields from almost-JSON such as `{"status_code" : 400\\n"detail": "..."}`."""
    fields: dict[str, Any] = {}
    if "{" not in text:
        return fields
    for key in _MESSAGE_KEYS:
        match = re.search(_STRING_FIELD.format(key=key), text)
        if match:
            fields[key] = _unescape(match[1])
    status_code = _STATUS_CODE_FIELD.search(text)
    if status_code:
        fields["status_code"] = int(status_code[1])
    return fields


def _unescape(raw: str) -> str:
    try:
        value = json.loads(f'"{raw}"')
    except ValueError:
        return raw
    return value if isinstance(value, str) else raw


def _message_from_fields(fields: Mapping[str, Any]) -> str:
    error, details = _text_of(fields.get("error")), _text_of(fields.get("details"))
    if error and details:
        return f"{error}: {details}"
    for key in _MESSAGE_KEYS:
        text = _text_of(fields.get(key))
        if text:
            return text
    return ""


def _text_of(value: Any) -> str:
    """Readable text from a message-like value: a string, a list of FastAPI-style issues, an object."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, list):
        return "; ".join(text for text in (_issue_text(item) for item in value) if text)
    if isinstance(value, dict):
        for key in ("message", "msg", "detail"):
            if isinstance(value.get(key), str):
                return str(value[key]).strip()
    try:
        return json.dumps(value, ensure_ascii=False, default=str)
    except (ValueError, RecursionError):
        return repr(value)


def _issue_text(item: Any) -> str:
    if isinstance(item, dict) and isinstance(item.get("msg"), str):
        location = item.get("loc")
        if isinstance(location, list) and location:
            return f"{'.'.join(str(part) for part in location)}: {item['msg']}"
        return str(item["msg"])
    return _text_of(item)


def _plain_text(text: str, content_type: str | None) -> str:
    if "html" in (content_type or "").lower() or text.startswith("<"):
        text = _HTML_TAG.sub(" ", text)
    return _WHITESPACE.sub(" ", text).strip()


def _reason(status: int) -> str:
    try:
        return f"HTTP {status} {HTTPStatus(status).phrase}"
    except ValueError:
        return f"HTTP {status}"


def _shorten(message: str) -> str:
    if len(message) <= MAX_MESSAGE_CHARS:
        return message
    return message[: MAX_MESSAGE_CHARS - 1] + "…"


def _seconds_until_http_date(value: str, now: datetime) -> float | None:
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return (moment - now).total_seconds()


def _header(headers: Mapping[str, str], name: str) -> str | None:
    value = headers.get(name)
    if value is not None:
        return value
    # A plain dict is case-sensitive; httpx2.Headers is not.
    for key, candidate in headers.items():
        if key.lower() == name:
            return candidate
    return None


def _request_id(headers: Mapping[str, str], fields: Mapping[str, Any]) -> str | None:
    for name in REQUEST_ID_HEADERS:
        value = _header(headers, name)
        if value:
            return value
    meta = fields.get("meta")
    candidate = meta.get("request_id") if isinstance(meta, dict) else fields.get("request_id")
    return candidate if isinstance(candidate, str) and candidate else None


def _auth_hint(endpoint: Endpoint | None) -> str:
    if endpoint is not None and endpoint.name == "v1_logs_batch_urls":
        # Item 39: "Invalid or missing token" may mean the JWT or the batch token.
        return (
            "Either the JWT or the batch token was rejected: check the JWT first, "
            "then re-submit /v1/logs/batch for a new batch token."
        )
    return "The API token (JWT) was rejected: check CM_API_TOKEN / CM_API_TOKEN_FILE and CM_AUTH_SCHEME."


def _not_found_hint(endpoint: Endpoint | None) -> str | None:
    if endpoint is not None and endpoint.is_deprecated:
        return "The V1 logs endpoints were retired on 2026-03-01; use the V2 endpoints."
    if endpoint is not None:
        return "Check CM_API_URL: the endpoint path was not found on that server."
    return None
