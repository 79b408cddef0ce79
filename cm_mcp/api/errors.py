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
retries" only when there were some. An answer becomes one of these in `cm_mcp.api.error_responses`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

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
        where = f"HTTP {self.status} from {path_of(self.endpoint)}"
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


def lookup_endpoint(endpoint: Endpoint | str) -> Endpoint | None:
    try:
        return get_endpoint(endpoint)
    except KeyError:
        return None


def path_of(endpoint_name: str) -> str:
    known = lookup_endpoint(endpoint_name)
    return known.path if known else endpoint_name
