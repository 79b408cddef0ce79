"""CMClient on httpx2.MockTransport: retries, typed errors, quota, local checks, redaction."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx2
import jwt
import pytest

from cm_mcp.api.client import CMClient, encode_body
from cm_mcp.api.endpoints import ENDPOINTS, QUOTA_FAMILIES, get_endpoint
from cm_mcp.api.errors import (
    APIError,
    AuthError,
    BadRequestError,
    BatchTokenExpiredError,
    JWTExpiredError,
    JWTMissingError,
    NotFoundError,
    RateLimitError,
    ResponseTooLargeError,
    ServerError,
    TransportError,
    UnexpectedResponseError,
)
from cm_mcp.api.quota import QuotaTracker, next_utc_midnight
from cm_mcp.api.responses import BatchStatusResponse, BillingResponse, LogsScrollResponse
from cm_mcp.api.retry import RetryPolicy, backoff_delay, should_retry
from cm_mcp.api.settings import Settings

pytestmark = pytest.mark.anyio

NOW = datetime(2026, 1, 20, 15, 30, tzinfo=UTC)
#: HS256 needs a key of at least 32 bytes, or PyJWT warns (and warnings are errors here).
SIGNING_KEY = "k" * 48


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


def make_jwt(expires_in: timedelta = timedelta(hours=1), **claims: Any) -> str:
    payload = {"sub": "oncall@example.com", "exp": int((NOW + expires_in).timestamp()), **claims}
    return jwt.encode(payload, SIGNING_KEY, algorithm="HS256")


TOKEN = make_jwt()

LOGS_SCROLL_BODY: dict[str, Any] = {
    "data": {
        "logs": [{"_index": "logs-atr-2026-01", "_id": "a1", "_score": 1.0, "_source": {"message": "boom"}}],
        "count": 3595,
    },
    "meta": {
        "api_version": "v2",
        "rate_limit": {"daily_remaining": 47},
        "request_id": "10615c94-d835-413e-ad3f-57c5a4c2276b",
        "scroll_id": "FGluY2x1ZGVf",
    },
}
BILLING_BODY: dict[str, Any] = {
    "summary": {"ticket_count": 125, "domain": "example.domain.com", "WBS": "1234ABCD"},
    "daily_requests_remaining": 480,
}
STATUS_BODY: dict[str, Any] = {
    "presigned_urls": [
        {
            "start_time": "2026-01-20T03:52:06.960046Z",
            "end_time": "2026-01-20T07:12:06.960046Z",
            "log_count": 1234,
            "presigned_url": "https://s3.amazonaws.com/bucket/part-1",
            "completed": True,
            "status": "completed",
        }
    ]
}
SCROLL_REQUEST = {"scroll_id": "FGluY2x1ZGVf"}


class FakeTime:
    """A monotonic clock that only moves when the client sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


class Recorder:
    """A MockTransport handler answering from a script of responses (the last one repeats)."""

    def __init__(self, *answers: httpx2.Response | Exception | Callable[[httpx2.Request], httpx2.Response]):
        self.answers = list(answers)
        self.requests: list[httpx2.Request] = []

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests.append(request)
        answer = self.answers[min(len(self.requests), len(self.answers)) - 1]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx2.Response):
            return answer
        return answer(request)


def ok(body: dict[str, Any], **headers: str) -> httpx2.Response:
    return httpx2.Response(200, json=body, headers=headers)


def status(code: int, body: bytes = b"", **headers: str) -> httpx2.Response:
    return httpx2.Response(code, content=body, headers={k.replace("_", "-"): v for k, v in headers.items()})


def make_client(
    recorder: Recorder,
    fake_time: FakeTime | None = None,
    *,
    token: str | None = TOKEN,
    settings: Settings | None = None,
    max_retries: int = 4,
    max_elapsed: float = 30.0,
    random: Callable[[], float] = lambda: 0.5,
) -> CMClient:
    fake_time = fake_time or FakeTime()
    policy = RetryPolicy(
        max_retries=max_retries,
        max_elapsed=max_elapsed,
        base_delay=0.5,
        random=random,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
    )
    return CMClient(
        settings or Settings(_env_file=None, api_url="https://cm.test"),
        token=token,
        transport=httpx2.MockTransport(recorder),
        retry_policy=policy,
        quota=QuotaTracker(clock=lambda: NOW),
        now=lambda: NOW,
    )


# --- retry policy through the client -----------------------------------------------------------------


async def test_503_then_200_is_retried_once() -> None:
    recorder = Recorder(status(503), ok(LOGS_SCROLL_BODY))
    fake_time = FakeTime()
    async with make_client(recorder, fake_time) as client:
        body = await client.post("logs_scroll", SCROLL_REQUEST)
    assert body == LOGS_SCROLL_BODY
    assert len(recorder.requests) == 2
    assert fake_time.sleeps == [0.25]  # random 0.5 x base 0.5 x 2**0


@pytest.mark.parametrize("code", [502, 503, 504])
async def test_gateway_errors_are_retried(code: int) -> None:
    recorder = Recorder(status(code), ok(LOGS_SCROLL_BODY))
    async with make_client(recorder) as client:
        await client.post("logs_scroll", SCROLL_REQUEST)
    assert len(recorder.requests) == 2


@pytest.mark.parametrize(
    ("code", "error_type"),
    [
        (400, BadRequestError),
        (401, AuthError),
        (403, AuthError),
        (404, NotFoundError),
        (422, BadRequestError),
        (500, ServerError),
        (501, ServerError),
    ],
)
async def test_other_errors_are_not_retried(code: int, error_type: type[APIError]) -> None:
    recorder = Recorder(status(code, b'{"detail": "nope"}'))
    async with make_client(recorder) as client:
        with pytest.raises(error_type) as caught:
            await client.post("logs_scroll", SCROLL_REQUEST)
    assert len(recorder.requests) == 1
    assert caught.value.status == code
    assert caught.value.endpoint == "logs_scroll"
    assert "nope" in str(caught.value)


async def test_429_with_short_retry_after_is_retried_after_that_delay() -> None:
    recorder = Recorder(status(429, retry_after="1"), ok(LOGS_SCROLL_BODY))
    fake_time = FakeTime()
    async with make_client(recorder, fake_time) as client:
        await client.post("logs_scroll", SCROLL_REQUEST)
    assert len(recorder.requests) == 2
    assert fake_time.sleeps == [1.0]
    assert client.quota.state("logs_scroll").exhausted_until is None


async def test_429_without_retry_after_is_not_retried_and_exhausts_the_family() -> None:
    recorder = Recorder(status(429), ok(LOGS_SCROLL_BODY))
    async with make_client(recorder) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.post("logs_scroll", SCROLL_REQUEST)
        assert caught.value.retry_after is None
        assert caught.value.endpoint_family == "logs_scroll"
        state = client.quota.state("logs_scroll")
        assert state.exhausted_until == datetime(2026, 1, 21, tzinfo=UTC)
        assert state.remaining == 0

        # Refused locally until the reset: no request is spent.
        with pytest.raises(RateLimitError, match="not sent"):
            await client.post("logs_scroll", SCROLL_REQUEST)
        assert len(recorder.requests) == 1

        # Other families are not affected (item 36).
        await client.post("logs_aggs", {"aggs": {}})
    assert len(recorder.requests) == 2


async def test_429_with_long_retry_after_is_not_retried() -> None:
    recorder = Recorder(status(429, retry_after="60"), ok(LOGS_SCROLL_BODY))
    async with make_client(recorder) as client:
        with pytest.raises(RateLimitError) as caught:
            await client.post("logs_scroll", SCROLL_REQUEST)
    assert caught.value.retry_after == 60
    assert len(recorder.requests) == 1
    assert client.quota.state("logs_scroll").exhausted_until == NOW + timedelta(seconds=60)


async def test_attempts_are_bounded() -> None:
    recorder = Recorder(status(503))
    async with make_client(recorder, max_retries=3) as client:
        with pytest.raises(ServerError):
            await client.post("logs_scroll", SCROLL_REQUEST)
    assert len(recorder.requests) == 4  # the first try and 3 retries


async def test_total_time_is_bounded() -> None:
    recorder = Recorder(status(503))
    fake_time = FakeTime()
    # random() == 1: delays are the full ceilings 0.5, 1, 2, 4, 8, 8... and the budget is 3 s.
    client = make_client(recorder, fake_time, max_retries=100, max_elapsed=3.0, random=lambda: 1.0)
    async with client:
        with pytest.raises(ServerError):
            await client.post("logs_scroll", SCROLL_REQUEST)
    assert fake_time.sleeps == [0.5, 1.0]  # 0.5 + 1 + 2 would pass 3 s
    assert len(recorder.requests) == 3


async def test_connection_errors_and_timeouts_are_retried() -> None:
    request = httpx2.Request("POST", "http://cm.test/v2/logs/scroll")
    recorder = Recorder(
        httpx2.ConnectError("connection refused", request=request),
        httpx2.ReadTimeout("timed out", request=request),
        ok(LOGS_SCROLL_BODY),
    )
    async with make_client(recorder) as client:
        body = await client.post("logs_scroll", SCROLL_REQUEST)
    assert body["meta"]["scroll_id"] == "FGluY2x1ZGVf"
    assert len(recorder.requests) == 3


async def test_persistent_timeout_becomes_a_transport_error() -> None:
    request = httpx2.Request("POST", "http://cm.test/v2/logs/scroll")
    recorder = Recorder(httpx2.ReadTimeout("timed out", request=request))
    async with make_client(recorder, max_retries=2) as client:
        with pytest.raises(TransportError) as caught:
            await client.post("logs_scroll", SCROLL_REQUEST)
    assert len(recorder.requests) == 3
    assert "after 3 attempts" in str(caught.value)
    assert "read timeout" in str(caught.value)
    assert caught.value.endpoint == "logs_scroll"


async def test_local_protocol_errors_are_not_retried() -> None:
    request = httpx2.Request("POST", "http://cm.test/v2/logs/scroll")
    recorder = Recorder(httpx2.LocalProtocolError("bad header", request=request))
    async with make_client(recorder) as client:
        with pytest.raises(TransportError):
            await client.post("logs_scroll", SCROLL_REQUEST)
    assert len(recorder.requests) == 1


# --- should_retry directly ---------------------------------------------------------------------------


def policy(**overrides: Any) -> RetryPolicy:
    return RetryPolicy(**{"random": lambda: 1.0, **overrides})


@pytest.mark.parametrize("code", [400, 401, 403, 404, 409, 422, 500, 501, 505])
def test_should_retry_refuses_non_transient_statuses(code: int) -> None:
    assert should_retry(1, code, policy=policy()) is None


def test_should_retry_backs_off_exponentially_with_full_jitter() -> None:
    assert [should_retry(n, 503, policy=policy()) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert should_retry(5, 503, policy=policy()) is None  # max_retries = 4
    assert should_retry(3, 503, policy=policy(random=lambda: 0.0)) == 0.0
    assert backoff_delay(40, policy()) == 8.0  # capped, and no overflow for a huge attempt


def test_should_retry_respects_the_time_budget() -> None:
    assert should_retry(1, 503, elapsed=29.6, policy=policy()) is None
    assert should_retry(1, 503, elapsed=29.4, policy=policy()) == 0.5


def test_should_retry_429_only_with_short_retry_after() -> None:
    assert should_retry(1, 429, policy=policy()) is None
    assert should_retry(1, 429, 5.0, policy=policy()) == 5.0
    assert should_retry(1, 429, 5.1, policy=policy()) is None
    limited = RateLimitError("slow down", endpoint="logs_scroll", retry_after=2.0)
    assert should_retry(1, limited, policy=policy()) == 2.0


def test_should_retry_honours_a_short_retry_after_on_503() -> None:
    assert should_retry(1, 503, 3.0, policy=policy()) == 3.0
    assert should_retry(1, 503, 120.0, policy=policy()) is None


def test_should_retry_classifies_exceptions() -> None:
    request = httpx2.Request("POST", "http://cm.test/")
    assert should_retry(1, httpx2.ConnectTimeout("t", request=request), policy=policy()) == 0.5
    assert should_retry(1, httpx2.RemoteProtocolError("reset", request=request), policy=policy()) == 0.5
    assert should_retry(1, TransportError("reset"), policy=policy()) == 0.5
    assert should_retry(1, ServerError("x", status=500, endpoint="logs_scroll"), policy=policy()) is None
    assert should_retry(1, ValueError("bug"), policy=policy()) is None
    assert should_retry(1, httpx2.UnsupportedProtocol("ftp", request=request), policy=policy()) is None


def test_retry_policy_from_settings() -> None:
    settings = Settings(_env_file=None, max_retries=2, retry_max_seconds=10, retry_base_delay=0.1)
    built = RetryPolicy.from_settings(settings)
    assert (built.max_retries, built.max_elapsed, built.base_delay) == (2, 10, 0.1)


# --- what is sent ------------------------------------------------------------------------------------


class ScrollRequest:
    def to_body(self) -> dict[str, Any]:
        return {"scroll_id": "abc", "note": "Ünïcode"}


async def test_request_headers_and_body() -> None:
    recorder = Recorder(ok(LOGS_SCROLL_BODY))
    async with make_client(recorder) as client:
        await client.post("/v2/logs/scroll", ScrollRequest())
    sent = recorder.requests[0]
    assert sent.method == "POST"
    assert str(sent.url) == "https://cm.test/v2/logs/scroll"
    assert sent.headers["authorization"] == f"Bearer {TOKEN}"
    assert sent.headers["content-type"] == "application/json"
    assert json.loads(sent.content) == {"scroll_id": "abc", "note": "Ünïcode"}


@pytest.mark.parametrize(("scheme", "expected"), [("JWT", f"JWT {TOKEN}"), ("", TOKEN)])
async def test_auth_scheme_is_configurable(scheme: str, expected: str) -> None:
    recorder = Recorder(ok(BILLING_BODY))
    settings = Settings(_env_file=None, api_url="https://cm.test", auth_scheme=scheme)
    async with make_client(recorder, settings=settings) as client:
        await client.post("billing_query", {"domain": "d", "time_range": "now-15m/m"})
    assert recorder.requests[0].headers["authorization"] == expected


def test_encode_body_rejects_what_is_not_json() -> None:
    with pytest.raises(TypeError):
        encode_body(["not", "a", "mapping"])  # type: ignore[arg-type]
    with pytest.raises(ValueError):
        encode_body({"size": float("nan")})


async def test_unknown_endpoint_is_a_key_error() -> None:
    async with make_client(Recorder(ok({}))) as client:
        with pytest.raises(KeyError, match="unknown endpoint"):
            await client.post("/v1/logs/batch/status", {})


# --- local checks: nothing is sent -------------------------------------------------------------------


async def test_expired_jwt_fails_without_sending() -> None:
    recorder = Recorder(ok(LOGS_SCROLL_BODY))
    expired = make_jwt(expires_in=timedelta(minutes=-90))
    async with make_client(recorder, token=expired) as client:
        with pytest.raises(JWTExpiredError) as caught:
            await client.post("logs_scroll", SCROLL_REQUEST)
    assert recorder.requests == []
    assert "1 h 30 min ago" in str(caught.value)
    assert expired not in str(caught.value)


async def test_missing_token_fails_without_sending(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CM_API_TOKEN", raising=False)
    monkeypatch.delenv("CM_API_TOKEN_FILE", raising=False)
    recorder = Recorder(ok(LOGS_SCROLL_BODY))
    async with make_client(recorder, token=None) as client:
        with pytest.raises(JWTMissingError, match="CM_API_TOKEN"):
            await client.post("logs_scroll", SCROLL_REQUEST)
    assert recorder.requests == []


async def test_opaque_token_is_allowed() -> None:
    recorder = Recorder(ok(LOGS_SCROLL_BODY))
    async with make_client(recorder, token="opaque-token-without-claims") as client:
        await client.post("logs_scroll", SCROLL_REQUEST)
    assert recorder.requests[0].headers["authorization"] == "Bearer opaque-token-without-claims"


async def test_refreshed_token_file_is_retried_once_after_401(tmp_path: Path) -> None:
    token_file = tmp_path / "jwt"
    old, new = make_jwt(jti="old"), make_jwt(jti="new")
    token_file.write_text(old)
    settings = Settings(_env_file=None, api_url="https://cm.test", api_token_file=token_file)

    def answer(request: httpx2.Request) -> httpx2.Response:
        if request.headers["authorization"] == f"Bearer {new}":
            return ok(LOGS_SCROLL_BODY)
        token_file.write_text(new + "\n")  # the engineer drops in a fresh JWT meanwhile
        return status(401)

    recorder = Recorder(answer)
    async with make_client(recorder, settings=settings, token=None) as client:
        await client.post("logs_scroll", SCROLL_REQUEST)
    assert [r.headers["authorization"] for r in recorder.requests] == [f"Bearer {old}", f"Bearer {new}"]


async def test_401_with_unchanged_token_is_not_retried() -> None:
    recorder = Recorder(status(401, b'{"status_code" : 401\n"detail": "Invalid or missing token"}'))
    async with make_client(recorder) as client:
        with pytest.raises(AuthError) as caught:
            await client.post("v1_logs_batch_urls", {"token": "batch-token"})
    assert len(recorder.requests) == 1
    assert "Invalid or missing token" in str(caught.value)
    assert "batch token" in str(caught.value)  # item 39: the hint names both possibilities


# --- typed errors from real-looking bodies -----------------------------------------------------------


async def test_404_on_a_status_endpoint_is_an_expired_batch_token() -> None:
    body = b'{"message": "No record of this token. Note: Tokens expire after 2 hours"}'
    recorder = Recorder(status(404, body, x_request_id="req-42"))
    async with make_client(recorder) as client:
        with pytest.raises(BatchTokenExpiredError) as caught:
            await client.post("workloads_batch_status", {"token": "Paw21VHC3VxAs7F4"})
    assert caught.value.request_id == "req-42"
    assert "No record of this token" in str(caught.value)
    assert "re-submit" in str(caught.value)


async def test_broken_json_error_body_keeps_its_detail() -> None:
    body = b'{\n  "status_code" : 400\n  "detail": "Invalid input. Missing domain variable in payload"\n}'
    recorder = Recorder(status(400, body))
    async with make_client(recorder) as client:
        with pytest.raises(BadRequestError) as caught:
            await client.post("billing_query", {"time_range": "now-15m/m"})
    assert caught.value.message == "Invalid input. Missing domain variable in payload"


async def test_non_json_200_is_an_unexpected_response() -> None:
    recorder = Recorder(httpx2.Response(200, text="<html>proxy login</html>"))
    async with make_client(recorder) as client:
        with pytest.raises(UnexpectedResponseError, match="not a JSON object"):
            await client.post("logs_scroll", SCROLL_REQUEST)


# --- typed responses ---------------------------------------------------------------------------------


async def test_call_returns_the_endpoint_model() -> None:
    recorder = Recorder(ok(LOGS_SCROLL_BODY), ok(BILLING_BODY), ok(STATUS_BODY))
    async with make_client(recorder) as client:
        page = await client.call("logs_scroll", SCROLL_REQUEST)
        billing = await client.call("billing_query", {"domain": "d", "time_range": "now-1d"})
        batch_status = await client.call("logs_batch_status", {"token": "t"})
    assert isinstance(page, LogsScrollResponse)
    assert page.data.logs[0].source == {"message": "boom"}
    assert page.meta.scroll_id == "FGluY2x1ZGVf"
    assert isinstance(billing, BillingResponse)
    assert billing.summary.wbs == "1234ABCD"
    assert isinstance(batch_status, BatchStatusResponse)
    assert batch_status.presigned_urls[0].log_count == 1234


async def test_call_with_the_wrong_shape_is_an_unexpected_response() -> None:
    recorder = Recorder(ok({"meta": {"request_id": "r-1"}}))
    async with make_client(recorder) as client:
        with pytest.raises(UnexpectedResponseError, match="documented shape") as caught:
            await client.call("logs_batch", {"application": "atr"})
    assert caught.value.request_id == "r-1"
    assert "data" in str(caught.value)


# --- quota tracking ----------------------------------------------------------------------------------


async def test_quota_is_tracked_per_family_from_v1_and_v2_bodies() -> None:
    recorder = Recorder(ok(LOGS_SCROLL_BODY), ok(BILLING_BODY), ok(STATUS_BODY))
    async with make_client(recorder) as client:
        await client.post("logs_scroll", SCROLL_REQUEST)
        await client.post("billing_query", {"domain": "d", "time_range": "now-1d"})
        await client.post("logs_batch_status", {"token": "t"})
        snapshot = client.quota.snapshot()
    assert set(snapshot) == set(QUOTA_FAMILIES)
    assert snapshot["logs_scroll"].remaining == 47
    assert snapshot["logs_scroll"].seen_at == NOW
    assert snapshot["billing_query"].remaining == 480
    # never seen, or reported nothing: unknown, not 0 and not unlimited
    assert snapshot["logs_aggs"].remaining is None
    assert snapshot["logs_aggs"].seen_at is None


async def test_quota_stays_unknown_when_a_response_omits_it() -> None:
    body = {"data": {"logs": [], "count": 0}, "meta": {"api_version": "v2"}}
    recorder = Recorder(ok(LOGS_SCROLL_BODY), ok(body))
    async with make_client(recorder) as client:
        await client.post("logs_scroll", SCROLL_REQUEST)
        await client.post("logs_scroll", SCROLL_REQUEST)
    # the last known value is kept, with the time it was seen
    assert client.quota.state("logs_scroll").remaining == 47


def test_quota_tracker_exhaustion_and_recovery() -> None:
    moments = [NOW]
    tracker = QuotaTracker(clock=lambda: moments[0])
    assert tracker.mark_exhausted("logs_batch") == datetime(2026, 1, 21, tzinfo=UTC)
    assert tracker.exhausted_until("logs_batch") == datetime(2026, 1, 21, tzinfo=UTC)
    moments[0] = datetime(2026, 1, 21, 0, 0, 1, tzinfo=UTC)
    assert tracker.exhausted_until("logs_batch") is None  # the assumed reset has passed
    tracker.mark_exhausted("logs_batch", retry_after=30)
    tracker.record_response("logs_batch", {"meta": {"rate_limit": {"daily_remaining": 12}}})
    assert tracker.state("logs_batch").exhausted_until is None
    assert tracker.state("logs_batch").remaining == 12
    assert tracker.mark_exhausted(None) is None  # status endpoints are untracked


def test_next_utc_midnight_handles_offsets() -> None:
    late_evening_new_york = datetime(2026, 1, 20, 22, 0, tzinfo=UTC) - timedelta(hours=5)
    assert next_utc_midnight(late_evening_new_york) == datetime(2026, 1, 21, tzinfo=UTC)


# --- redaction ---------------------------------------------------------------------------------------


async def test_the_jwt_never_appears_in_errors_logs_or_repr(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="cm_mcp.api")
    echo = json.dumps({"detail": f"token {TOKEN} is not valid for Authorization: Bearer {TOKEN}"})
    request = httpx2.Request("POST", "http://cm.test/v2/logs/scroll")
    recorder = Recorder(
        status(401, echo.encode()),
        httpx2.ConnectError(f"proxy refused Bearer {TOKEN}", request=request),
        ok(LOGS_SCROLL_BODY),
    )
    async with make_client(recorder, max_retries=0) as client:
        assert TOKEN not in repr(client)
        assert "token=set" in repr(client)
        with pytest.raises(AuthError) as auth_error:
            await client.post("logs_scroll", SCROLL_REQUEST)
        with pytest.raises(TransportError) as transport_error:
            await client.post("logs_scroll", SCROLL_REQUEST)
        await client.post("logs_scroll", SCROLL_REQUEST)
    for error in (auth_error.value, transport_error.value):
        assert TOKEN not in str(error)
        assert TOKEN not in repr(error)
    assert "[REDACTED]" in str(auth_error.value)
    assert caplog.records, "the client logs its calls"
    assert TOKEN not in caplog.text
    assert "10615c94-d835-413e-ad3f-57c5a4c2276b" in caplog.text  # the request_id is logged


# --- the endpoint table ------------------------------------------------------------------------------


def test_endpoint_table() -> None:
    assert len(ENDPOINTS) == 12
    assert get_endpoint("/v1/logs/batch/urls") is ENDPOINTS["v1_logs_batch_urls"]
    untracked = {name for name, endpoint in ENDPOINTS.items() if endpoint.family is None}
    assert untracked == {"logs_batch_status", "workloads_batch_status", "v1_logs_batch_urls"}
    assert all(endpoint.is_batch_status for name, endpoint in ENDPOINTS.items() if name in untracked)
    for name, endpoint in ENDPOINTS.items():
        assert endpoint.path.startswith(f"/{endpoint.version}/")
        if endpoint.family is not None:
            assert endpoint.family == name
            assert endpoint.quota_field is not None
    assert ENDPOINTS["v1_logs_scroll"].is_deprecated
    assert not ENDPOINTS["billing_query"].is_deprecated


# --- what an error knows about the attempts behind it ------------------------------------------------


async def test_errors_record_how_many_attempts_were_made() -> None:
    """A message may say "after retries" only when there were some: the error carries the count."""
    async with make_client(Recorder(status(500, b'{"detail": "boom"}'))) as client:
        with pytest.raises(ServerError) as single:
            await client.post("logs_scroll", SCROLL_REQUEST)
    assert single.value.attempts == 1
    recorder = Recorder(status(503))
    async with make_client(recorder, max_retries=2) as client:
        with pytest.raises(ServerError) as retried:
            await client.post("logs_scroll", SCROLL_REQUEST)
    assert retried.value.attempts == 3 == len(recorder.requests)
    async with make_client(Recorder(httpx2.ConnectError("refused")), max_retries=1) as client:
        with pytest.raises(TransportError) as unreachable:
            await client.post("logs_scroll", SCROLL_REQUEST)
    assert unreachable.value.attempts == 2
    assert "after 2 attempts" in str(unreachable.value)


# --- the response size cap ---------------------------------------------------------------------------


class Stream:
    """An endless body served in 64 KiB chunks, counting what the client pulled."""

    def __init__(self, chunk: bytes = b"x" * 65536) -> None:
        self.chunk = chunk
        self.sent = 0

    async def __aiter__(self) -> Any:
        while True:
            self.sent += len(self.chunk)
            yield self.chunk


async def test_a_body_above_the_cap_is_refused_while_streaming_never_read_whole() -> None:
    body = Stream()
    settings = Settings(_env_file=None, api_url="https://cm.test", max_response_bytes=1_000_000)
    recorder = Recorder(lambda _: httpx2.Response(200, content=body))
    async with make_client(recorder, settings=settings) as client:
        with pytest.raises(ResponseTooLargeError) as caught:
            await client.post("logs_scroll", SCROLL_REQUEST)
    assert body.sent <= 1_000_000 + 65536  # stopped at the cap, not at the end of the body
    assert len(recorder.requests) == 1  # not retried: the same query would be as large again
    text = str(caught.value)
    assert "CM_MAX_RESPONSE_BYTES" in text and "1,000,000" in text
    assert "narrow" in text


async def test_a_declared_length_above_the_cap_is_refused_before_reading() -> None:
    body = Stream()
    settings = Settings(_env_file=None, api_url="https://cm.test", max_response_bytes=1000)
    recorder = Recorder(lambda _: httpx2.Response(200, content=body, headers={"content-length": "50000000"}))
    async with make_client(recorder, settings=settings) as client:
        with pytest.raises(ResponseTooLargeError, match="50,000,000"):
            await client.post("logs_scroll", SCROLL_REQUEST)
    assert body.sent <= 65536


async def test_an_error_body_is_read_only_as_far_as_its_message_needs() -> None:
    body = Stream(b"<html>" + b"x" * 65530)
    recorder = Recorder(lambda _: httpx2.Response(500, content=body))
    async with make_client(recorder) as client:
        with pytest.raises(ServerError):
            await client.post("logs_scroll", SCROLL_REQUEST)
    assert body.sent <= 2 * 65536


def test_the_default_response_cap_is_tens_of_megabytes() -> None:
    cap = Settings(_env_file=None).max_response_bytes
    assert 10 * 1024**2 <= cap <= 100 * 1024**2
