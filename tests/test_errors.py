"""Error bodies, the status-to-class mapping, local errors, JWT helpers and redaction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from email.utils import format_datetime

import jwt
import pytest
from hypothesis import given
from hypothesis import strategies as st

from cm_mcp.api.auth import REDACTED, check_token, jwt_expiry, redact
from cm_mcp.api.error_responses import error_from_response, parse_error_body, parse_retry_after
from cm_mcp.api.errors import (
    APIError,
    AuthError,
    BadRequestError,
    BatchTokenExpiredError,
    CMError,
    JWTExpiredError,
    JWTMissingError,
    NotFoundError,
    RateLimitError,
    RequestValidationError,
    ServerError,
    TransportError,
    ValidationIssue,
)

NOW = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)
SIGNING_KEY = "k" * 48
TOKEN = jwt.encode({"sub": "me", "exp": int((NOW + timedelta(hours=1)).timestamp())}, SIGNING_KEY)


# --- parse_error_body --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "message"),
    [
        # the reference's own examples: no comma after status_code (invalid JSON)
        (
            b'{\n  "status_code" : 400\n  "detail": "Invalid application type. '
            b'Must be one of: atr, klewer, eventops, quasar"\n}',
            "Invalid application type. Must be one of: atr, klewer, eventops, quasar",
        ),
        (b'{\n  "status_code" : 401\n  "detail": "Invalid or missing token"\n}', "Invalid or missing token"),
        (b'{"status_code": 400 "detail": "say \\"hi\\"\\n"}', 'say "hi"'),
        # the same shape, valid
        (b'{"status_code": 400, "detail": "Missing domain"}', "Missing domain"),
        (
            b'{"message": "No record of this token. Note: Tokens expire after 2 hours"}',
            "No record of this token",
        ),
        (
            b'{"error": "Invalid input", "details": "field required: token"}',
            "Invalid input: field required: token",
        ),
        (b'{"error": "Invalid input"}', "Invalid input"),
        (
            b'{"detail": [{"loc": ["body", "domain"], "msg": "field required"}]}',
            "body.domain: field required",
        ),
        (b'{"error": {"message": "nested"}}', "nested"),
        (b'"just a string"', "just a string"),
        (b"upstream connect error or disconnect/reset before headers", "upstream connect error"),
        (b"<html><body><h1>502 Bad Gateway</h1></body></html>", "502 Bad Gateway"),
        (b"", "HTTP 503 Service Unavailable"),
        (b"   \n", "HTTP 503 Service Unavailable"),
        (b"[1, 2]", "[1, 2]"),
        (b"\xff\xfe\x00garbage", "garbage"),
    ],
)
def test_parse_error_body_shapes(body: bytes, message: str) -> None:
    parsed, _fields = parse_error_body(503, body, "application/json")
    assert message in parsed


def test_parse_error_body_recovers_fields_of_broken_json() -> None:
    _message, fields = parse_error_body(400, b'{"status_code" : 400\n"detail": "bad"}', None)
    assert fields == {"status_code": 400, "detail": "bad"}


def test_parse_error_body_shortens_huge_messages() -> None:
    message, _fields = parse_error_body(500, b"x" * 10_000, "text/plain")
    assert len(message) <= 500


@given(st.binary(max_size=2000), st.integers(min_value=100, max_value=999), st.none() | st.text(max_size=40))
def test_parse_error_body_never_raises(body: bytes, code: int, content_type: str | None) -> None:
    message, fields = parse_error_body(code, body, content_type)
    assert isinstance(message, str)
    assert message
    assert isinstance(fields, dict)


@given(st.text(max_size=300))
def test_parse_error_body_never_raises_on_almost_json(text: str) -> None:
    parse_error_body(400, ('{"status_code" : 400\n"detail": "' + text).encode(), None)
    parse_error_body(400, ("[" * 5000 + text).encode(), None)  # deep nesting


@given(st.integers(min_value=100, max_value=999), st.binary(max_size=500))
def test_error_from_response_never_raises(code: int, body: bytes) -> None:
    error = error_from_response(code, body, {"Retry-After": "soon"}, "logs_scroll", secrets=[TOKEN])
    assert isinstance(error, APIError)
    assert error.status == code


# --- the status decides the class --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("code", "endpoint", "error_type"),
    [
        (400, "logs_scroll", BadRequestError),
        (401, "logs_scroll", AuthError),
        (403, "billing_query", AuthError),
        (404, "logs_batch_status", BatchTokenExpiredError),
        (404, "workloads_batch_status", BatchTokenExpiredError),
        (404, "v1_logs_batch_urls", BatchTokenExpiredError),
        (404, "logs_scroll", NotFoundError),
        (404, "/v2/workloads/batch/status", BatchTokenExpiredError),
        (404, "no_such_endpoint", NotFoundError),
        (409, "logs_batch", BadRequestError),
        (429, "logs_aggs", RateLimitError),
        (500, "logs_scroll", ServerError),
        (503, "logs_scroll", ServerError),
        (302, "logs_scroll", APIError),
    ],
)
def test_status_decides_the_class(code: int, endpoint: str, error_type: type[APIError]) -> None:
    # A body that claims another status must not change the class (item 38).
    error = error_from_response(code, b'{"status_code": 400, "detail": "x"}', {}, endpoint)
    assert type(error) is error_type
    assert error.status == code


def test_rate_limit_error_carries_retry_after_and_family() -> None:
    error = error_from_response(429, b"", {"retry-after": "3"}, "logs_aggs")
    assert isinstance(error, RateLimitError)
    assert error.retry_after == 3.0
    assert error.endpoint_family == "logs_aggs"
    assert "Retry after 3 s" in str(error)

    daily = error_from_response(429, b"", {}, "/v2/logs/batch")
    assert isinstance(daily, RateLimitError)
    assert daily.retry_after is None
    assert daily.endpoint_family == "logs_batch"
    assert "quota" in str(daily)

    untracked = error_from_response(429, b"", {}, "logs_batch_status")
    assert isinstance(untracked, RateLimitError)
    assert untracked.endpoint_family is None


def test_error_str_names_status_path_and_request_id() -> None:
    error = error_from_response(500, b'{"message": "boom"}', {"X-Request-ID": "req-7"}, "logs_scroll")
    assert str(error) == "boom (HTTP 500 from /v2/logs/scroll, request_id req-7)"
    assert error.request_id == "req-7"
    assert "ServerError(status=500" in repr(error)


def test_v1_retired_endpoint_404_says_so() -> None:
    error = error_from_response(404, b"Not Found", {}, "v1_logs_scroll")
    assert "retired" in str(error)


@pytest.mark.parametrize(
    ("value", "seconds"),
    [("1", 1.0), (" 2.5 ", 2.5), ("-4", 0.0), ("", None), (None, None), ("soon", None), ("nan", None)],
)
def test_parse_retry_after(value: str | None, seconds: float | None) -> None:
    assert parse_retry_after(value) == seconds


def test_parse_retry_after_http_date() -> None:
    header = format_datetime(NOW + timedelta(seconds=90), usegmt=True)
    assert parse_retry_after(header, now=NOW) == 90.0


# --- redaction ---------------------------------------------------------------------------------------


def test_error_messages_never_contain_the_jwt() -> None:
    body = f'{{"detail": "bad token {TOKEN}"}}'.encode()
    error = error_from_response(401, body, {}, "logs_scroll", secrets=[TOKEN])
    for text in (str(error), repr(error), error.message, str(error.args)):
        assert TOKEN not in text
    assert REDACTED in error.message


def test_jwt_shaped_strings_are_redacted_even_when_unknown() -> None:
    other = jwt.encode({"sub": "someone else"}, SIGNING_KEY)
    assert other not in redact(f"echo: {other}")
    assert redact("Authorization: Bearer opaque-secret-value") == f"Authorization: Bearer {REDACTED}"
    assert redact("the token expired", ["tok"]) == "the token expired"  # too short to be a real secret
    assert redact("abc secret-12345 def", ["secret-12345", None, ""]) == f"abc {REDACTED} def"


# --- local errors ------------------------------------------------------------------------------------


def test_request_validation_error_lists_every_issue() -> None:
    issues = [
        ValidationIssue(path="filters[0].bool.must[1].range", message="range needs gte or lte"),
        ValidationIssue(path="domain", message='"*" must be the only element'),
    ]
    error = RequestValidationError(issues, "LogsScrollRequest")
    text = str(error)
    assert text.startswith("LogsScrollRequest is invalid (2 problems; nothing was sent):")
    assert "  - filters[0].bool.must[1].range: range needs gte or lte" in text
    assert '  - domain: "*" must be the only element' in text
    assert error.issues == issues
    assert isinstance(error, CMError)


def test_request_validation_error_may_quote_an_example() -> None:
    error = RequestValidationError([ValidationIssue("", "empty")], "X", example={"scroll_id": "abc"})
    assert "(request): empty" in str(error)
    assert 'A valid request: {"scroll_id": "abc"}' in str(error)


def test_every_error_is_a_cm_error() -> None:
    for error_type in (JWTMissingError, TransportError, APIError, RequestValidationError, JWTExpiredError):
        assert issubclass(error_type, CMError)
    for error_type in (
        AuthError,
        BatchTokenExpiredError,
        RateLimitError,
        ServerError,
        NotFoundError,
        BadRequestError,
    ):
        assert issubclass(error_type, APIError)


def test_every_domain_error_shares_the_one_root() -> None:
    """The tool wrapper catches CMError alone: the store's, the export pipeline's and an interrupted
    export's errors must all be CMErrors (issue 13: four roots before)."""
    from cm_mcp.batch.errors import BatchError, FileTooLargeError, VerificationError
    from cm_mcp.ops.interrupted import ExportInterrupted
    from cm_mcp.store.errors import RecordFileError, ResultNotFoundError, StoreError

    for error_type in (
        StoreError,
        ResultNotFoundError,
        RecordFileError,
        BatchError,
        FileTooLargeError,
        VerificationError,
        ExportInterrupted,
    ):
        assert issubclass(error_type, CMError), error_type
    assert issubclass(ResultNotFoundError, KeyError)  # still a KeyError for dict-like callers


def test_the_jwt_and_a_batch_token_have_names_that_cannot_be_confused() -> None:
    import cm_mcp.api.errors as errors

    assert not hasattr(errors, "TokenExpiredError"), "one letter-swap from JWTExpiredError"
    assert BatchTokenExpiredError.__name__.startswith("Batch")
    assert JWTExpiredError.__name__.startswith("JWT")


# --- JWT helpers -------------------------------------------------------------------------------------


def test_jwt_expiry() -> None:
    assert jwt_expiry(TOKEN) == NOW + timedelta(hours=1)
    assert jwt_expiry("not-a-jwt") is None
    assert jwt_expiry(jwt.encode({"sub": "no exp"}, SIGNING_KEY)) is None
    assert jwt_expiry(jwt.encode({"exp": "tomorrow"}, SIGNING_KEY)) is None
    assert jwt_expiry(jwt.encode({"exp": True}, SIGNING_KEY)) is None


def test_check_token() -> None:
    assert check_token(f"  {TOKEN}\n", now=NOW) == TOKEN
    assert check_token("opaque", now=NOW) == "opaque"
    with pytest.raises(JWTMissingError):
        check_token(None)
    with pytest.raises(JWTMissingError):
        check_token("   ")
    with pytest.raises(JWTExpiredError) as caught:
        check_token(TOKEN, now=NOW + timedelta(hours=1, minutes=5))
    assert caught.value.expires_at == NOW + timedelta(hours=1)
    assert "5 min ago" in str(caught.value)
    assert TOKEN not in str(caught.value)
