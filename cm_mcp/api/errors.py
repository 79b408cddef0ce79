"""Every failure cm-mcp reports, as one exception tree: catch `CMError` to catch them all.

    CMError                           root of every domain error (the tool wrapper catches only this)
    ├── RequestValidationError        local: the request breaks a documented rule, nothing was sent
    ├── JWTMissingError               local: no JWT configured, nothing was sent
    ├── JWTExpiredError               local: the JWT's `exp` is past, nothing was sent
    ├── TransportError                no HTTP answer: connect/read timeout, reset, DNS (`attempts`)
    ├── APIError                      the server answered with a non-2xx status, or an unusable 2xx
    │   ├── AuthError                 401, 403: the JWT was rejected (on /v1/logs/batch/urls: ambiguous)
    │   ├── BatchTokenExpiredError    404 on a batch status/urls endpoint: batch token unknown or expired
    │   ├── NotFoundError             any other 404
    │   ├── RateLimitError            429: daily quota exhausted (or throttled, with Retry-After)
    │   ├── BadRequestError           any other 4xx: the server rejected the arguments
    │   ├── ServerError               5xx
    │   ├── UnexpectedResponseError   2xx whose body is not the documented JSON object
    │   └── ResponseTooLargeError     a body above CM_MAX_RESPONSE_BYTES (reading stopped there)
    ├── StoreError                    cm_mcp.store: ResultNotFoundError (-> ResultEvictedError),
    │                                 RecordFileError
    ├── BatchError                    cm_mcp.batch: DownloadError (HostNotAllowedError, InsecureURLError,
    │                                 URLExpiredError, FileTooLargeError), VerificationError
    │                                 (CountMismatchError), JobNotFoundError, TokenLifetimeError
    ├── DSLError                      cm_mcp.dsl: a filter or aggregation the local engine cannot run
    └── ExportInterrupted             cm_mcp.ops: an export stopped after submission (carries `cause`)

Names say whose token it is: `JWT*` for the API credential, `BatchToken*` for a batch token.
The HTTP status alone picks the APIError class (reference item 38): error bodies come in three
shapes, most are undocumented, and the documented `{status_code, detail}` examples are not even
valid JSON, so the body only supplies the message. No message ever contains the JWT (`auth.redact`).
TransportError and every APIError record how many `attempts` were made, so a message can say "after
retries" only when there were some.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from http import HTTPStatus
from typing import Any, Final

from cm_mcp.api.auth import redact
from cm_mcp.api.endpoints import Endpoint, get_endpoint

#: Longest server message we keep: enough for any real error text, short enough for a chat answer.
MAX_MESSAGE_CHARS: Final = 500

#: Response headers that may carry a request id (the documented one is `meta.request_id` in 200 bodies).
REQUEST_ID_HEADERS: Final = ("x-request-id", "x-amzn-requestid", "x-correlation-id", "request-id")


class CMError(Exception):
    """Root of every cm-mcp domain error (api, store, batch, ops): see the tree above."""


# --- local errors: no request was sent ---------------------------------------------------------------


@dataclass(frozen=True)
class ValidationIssue:
    """One broken rule: `path` is a JSON path into the request (`filters[0].bool.must[1].range`)."""

    path: str
    message: str

    def __str__(self) -> str:
        return f"{self.path or '(request)'}: {self.message}"


class RequestValidationError(CMError):
    """The request breaks a documented rule; it was not sent (no quota spent)."""

    def __init__(
        self, issues: list[ValidationIssue], model: str, *, example: dict[str, Any] | None = None
    ) -> None:
        self.issues = list(issues)
        self.model = model
        #: a valid call of the same endpoint, so a model can correct itself in one step
        self.example = example
        super().__init__(str(self))

    def __str__(self) -> str:
        count = len(self.issues)
        lines = [f"{self.model} is invalid ({count} problem{'s' if count != 1 else ''}; nothing was sent):"]
        lines.extend(f"  - {issue}" for issue in self.issues)
        if self.example is not None:
            lines.append(f"A valid request: {json.dumps(self.example, ensure_ascii=False, default=str)}")
        return "\n".join(lines)


class JWTMissingError(CMError):
    """No JWT is configured; no request was sent."""


class JWTExpiredError(CMError):
    """The JWT's `exp` claim is in the past; no request was sent."""

    def __init__(self, *, expires_at: datetime, now: datetime) -> None:
        self.expires_at = expires_at
        minutes = int((now - expires_at).total_seconds() // 60)
        ago = f"{minutes // 60} h {minutes % 60} min" if minutes >= 60 else f"{minutes} min"
        super().__init__(
            f"The API token (JWT) expired at {expires_at:%Y-%m-%d %H:%M:%S} UTC ({ago} ago); nothing was sent. "
            "Get a fresh token and set CM_API_TOKEN (or update the file named by CM_API_TOKEN_FILE)."
        )


# --- transport errors: no HTTP status ----------------------------------------------------------------


class TransportError(CMError):
    """The request did not get an HTTP answer: connection refused or reset, DNS failure, timeout."""

    def __init__(self, message: str, *, endpoint: str | None = None, attempts: int = 1) -> None:
        self.endpoint = endpoint
        #: requests made before giving up (1: it was not retried)
        self.attempts = attempts
        super().__init__(message)


# --- API errors: the server answered -----------------------------------------------------------------


class APIError(CMError):
    """The server answered with an error status. `endpoint` is the endpoint's name (`logs_scroll`)."""

    def __init__(
        self,
        message: str,
        *,
        status: int,
        endpoint: str,
        request_id: str | None = None,
        hint: str | None = None,
        attempts: int = 1,
    ) -> None:
        self.message = message
        self.status = status
        self.endpoint = endpoint
        self.request_id = request_id
        #: what the caller (or the on-call engineer) can do about it
        self.hint = hint
        #: requests made before this answer was final (1: it was not retried)
        self.attempts = attempts
        super().__init__(message)

    def __str__(self) -> str:
        where = f"HTTP {self.status} from {_path_of(self.endpoint)}"
        if self.request_id:
            where += f", request_id {self.request_id}"
        text = f"{self.message} ({where})"
        return f"{text}. {self.hint}" if self.hint else text

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(status={self.status}, endpoint={self.endpoint!r}, "
            f"request_id={self.request_id!r}, message={self.message!r})"
        )


class AuthError(APIError):
    """401/403: the JWT (or, on /v1/logs/batch/urls, possibly the batch token: item 39) was rejected."""


class BatchTokenExpiredError(APIError):
    """404 on a batch status endpoint: the batch token is unknown or expired (2 hours); re-submit."""


class NotFoundError(APIError):
    """404 anywhere else (a wrong base URL, or a retired V1 endpoint)."""


class RateLimitError(APIError):
    """429: the daily quota of `endpoint_family` is used up (or a short throttle, with `retry_after`)."""

    def __init__(
        self,
        message: str,
        *,
        status: int = 429,
        endpoint: str,
        request_id: str | None = None,
        hint: str | None = None,
        retry_after: float | None = None,
        endpoint_family: str | None = None,
        attempts: int = 1,
    ) -> None:
        super().__init__(
            message, status=status, endpoint=endpoint, request_id=request_id, hint=hint, attempts=attempts
        )
        #: seconds from the Retry-After header, None when absent (the reference documents no header)
        self.retry_after = retry_after
        self.endpoint_family = endpoint_family


class BadRequestError(APIError):
    """Any other 4xx: the server rejected the request itself."""


class ServerError(APIError):
    """5xx: the server failed."""


class UnexpectedResponseError(APIError):
    """A 2xx whose body is not the JSON object the reference documents (a proxy page, say)."""


class ResponseTooLargeError(APIError):
    """A response body above CM_MAX_RESPONSE_BYTES: reading stopped there, nothing was kept."""

    def __init__(self, *, endpoint: str, status: int, limit: int, size: int, declared: bool) -> None:
        self.limit = limit
        how = f"declares {size:,} bytes" if declared else f"passed {size:,} bytes before reading stopped"
        super().__init__(
            f"The response body {how}, above the limit of {limit:,} bytes (CM_MAX_RESPONSE_BYTES)",
            status=status,
            endpoint=endpoint,
            hint=(
                "Ask for less in one call (narrow the time window, a smaller size, fewer buckets), "
                "or raise CM_MAX_RESPONSE_BYTES if this machine can hold it."
            ),
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
    known = _lookup(endpoint)
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


def _lookup(endpoint: Endpoint | str) -> Endpoint | None:
    try:
        return get_endpoint(endpoint)
    except KeyError:
        return None


def _path_of(endpoint_name: str) -> str:
    known = _lookup(endpoint_name)
    return known.path if known else endpoint_name


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
