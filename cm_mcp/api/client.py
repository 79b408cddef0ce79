"""The async client of the Central Monitoring API: one pooled connection, one retry policy, typed errors.

    async with CMClient(Settings()) as client:
        page = await client.call("logs_scroll", request)     # a LogsScrollResponse
        page = await client.scroll_page("logs_scroll", request)  # the same page, its hits as dicts
        raw = await client.post("/v2/logs/aggs", {...})       # the JSON object as sent

Before sending, the client checks locally what would certainly fail: no JWT, an expired JWT, a family
whose daily quota a 429 already exhausted. Each of those raises without spending a request. After
sending it retries per `retry.should_retry`, records the remaining quota, and logs (logger
"cm_mcp.api") the endpoint, status and request_id, never the JWT and never request bodies (batch
tokens live there).

Bodies are streamed and never read past a limit: a 2xx body past CM_MAX_RESPONSE_BYTES raises
ResponseTooLargeError (a declared Content-Length past it, before a byte is read); an error body is read
only as far as its message needs (ERROR_BODY_BYTES).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from types import TracebackType
from typing import Any, Final, Literal, Protocol, Self, TypeVar, overload, runtime_checkable

import httpx2
from pydantic import ValidationError

from cm_mcp import __version__
from cm_mcp.api.auth import check_token, redact
from cm_mcp.api.endpoints import Endpoint, get_endpoint
from cm_mcp.api.error_responses import error_from_response, parse_retry_after
from cm_mcp.api.errors import (
    REQUEST_ID_HEADERS,
    RateLimitError,
    ResponseTooLargeError,
    TransportError,
    UnexpectedResponseError,
)
from cm_mcp.api.pages import ScrollEndpoint, ScrollPage, parse_scroll_page
from cm_mcp.api.quota import QuotaTracker, utc_now
from cm_mcp.api.responses import (
    AggsResponse,
    BatchResponse,
    BatchStatusResponse,
    BillingResponse,
    LogsScrollResponse,
    ResponseModel,
    V1BatchResponse,
    V1BatchUrlsResponse,
    V1ScrollResponse,
    WorkloadsScrollResponse,
    parse_response,
    request_id_of,
)
from cm_mcp.api.retry import RetryPolicy, should_retry
from cm_mcp.api.settings import Settings
from cm_mcp.api.tls import default_ssl_context

logger = logging.getLogger("cm_mcp.api")

Parsed = TypeVar("Parsed")

#: Connections kept open to the API; an on-call session makes a few calls at a time, not hundreds.
MAX_CONNECTIONS: Final = 10
MAX_KEEPALIVE_CONNECTIONS: Final = 5
#: Most of an error body ever read: its message is cut to 500 characters anyway (errors.py), and an
#: HTML error page or a runaway proxy must not be read whole.
ERROR_BODY_BYTES: Final = 64 * 1024


@dataclass(frozen=True)
class Answer:
    """One HTTP answer, its body read (at most up to the limit that applies to its status)."""

    status: int
    headers: httpx2.Headers
    content: bytes

    @property
    def is_success(self) -> bool:
        return 200 <= self.status < 300

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def retry_after(self) -> float | None:
        return parse_retry_after(self.headers.get("retry-after"))


@runtime_checkable
class SupportsBody(Protocol):
    """A request model (cm_mcp.api.requests): `to_body()` returns exactly the JSON object to send."""

    def to_body(self) -> dict[str, Any]: ...


Body = Mapping[str, Any] | SupportsBody


class CMClient:
    """Async client; use as `async with CMClient(...) as client`, or call `aclose()` when done."""

    def __init__(
        self,
        settings: Settings | None = None,
        *,
        api_url: str | None = None,
        token: str | None = None,
        transport: httpx2.AsyncBaseTransport | None = None,
        retry_policy: RetryPolicy | None = None,
        quota: QuotaTracker | None = None,
        now: Callable[[], datetime] = utc_now,
    ) -> None:
        """Explicit `api_url` and `token` override `settings`; `transport`, `retry_policy`, `quota` and
        `now` (wall clock for the JWT and quota) are injectable for tests."""
        self._settings = settings if settings is not None else Settings()
        self._token_override = token
        self._now = now
        self._retry = retry_policy or RetryPolicy.from_settings(self._settings)
        self.quota = quota or QuotaTracker(clock=now)
        self.api_url = (api_url or self._settings.api_url).rstrip("/")
        self._http = httpx2.AsyncClient(
            base_url=self.api_url,
            timeout=httpx2.Timeout(self._settings.read_timeout, connect=self._settings.connect_timeout),
            limits=httpx2.Limits(
                max_connections=MAX_CONNECTIONS, max_keepalive_connections=MAX_KEEPALIVE_CONNECTIONS
            ),
            # The JWT is added per request, never to the client's default headers, and redirects are
            # not followed, so it can only ever go to `api_url`.
            headers={
                "Content-Type": "application/json",
                "Accept": "application/json",
                "User-Agent": f"cm-mcp/{__version__}",
            },
            follow_redirects=False,
            verify=default_ssl_context(),
            transport=transport,
        )

    # --- lifecycle -----------------------------------------------------------------------------------

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    def __repr__(self) -> str:
        # Says whether a token is configured, without reading the token file or showing the token.
        configured = self._token_override is not None or self._settings.api_token is not None
        token = "set" if configured else "missing"
        return (
            f"CMClient(api_url={self.api_url!r}, token={token}, auth_scheme={self._settings.auth_scheme!r})"
        )

    # --- calls ---------------------------------------------------------------------------------------

    async def post(self, endpoint: Endpoint | str, body: Body) -> dict[str, Any]:
        """POST `body` to `endpoint` (an Endpoint, its name or its path); the 200 JSON object.

        Raises JWTMissingError / JWTExpiredError / RateLimitError (known exhausted) before sending,
        TransportError when no answer came, an APIError subclass for an error status.
        """
        target = get_endpoint(endpoint)
        payload = encode_body(body)
        self._refuse_if_exhausted(target)
        answer, token = await self._send_with_retries(target, payload)
        return self._accept(target, answer, token)

    @overload
    async def call(self, endpoint_name: Literal["logs_scroll"], body: Body) -> LogsScrollResponse: ...
    @overload
    async def call(
        self, endpoint_name: Literal["workloads_scroll"], body: Body
    ) -> WorkloadsScrollResponse: ...
    @overload
    async def call(
        self, endpoint_name: Literal["logs_batch", "workloads_batch"], body: Body
    ) -> BatchResponse: ...
    @overload
    async def call(
        self, endpoint_name: Literal["logs_batch_status", "workloads_batch_status"], body: Body
    ) -> BatchStatusResponse: ...
    @overload
    async def call(
        self, endpoint_name: Literal["logs_aggs", "workloads_aggs"], body: Body
    ) -> AggsResponse: ...
    @overload
    async def call(self, endpoint_name: Literal["v1_logs_scroll"], body: Body) -> V1ScrollResponse: ...
    @overload
    async def call(self, endpoint_name: Literal["v1_logs_batch"], body: Body) -> V1BatchResponse: ...
    @overload
    async def call(self, endpoint_name: Literal["v1_logs_batch_urls"], body: Body) -> V1BatchUrlsResponse: ...
    @overload
    async def call(self, endpoint_name: Literal["billing_query"], body: Body) -> BillingResponse: ...
    @overload
    async def call(self, endpoint_name: str, body: Body) -> ResponseModel: ...

    async def call(self, endpoint_name: str, body: Body) -> ResponseModel:
        """`post`, then the endpoint's response model; UnexpectedResponseError if the shape is wrong."""
        target = get_endpoint(endpoint_name)
        raw = await self.post(target, body)
        return self._validated(target, raw, parse_response)

    async def scroll_page(self, endpoint_name: ScrollEndpoint, body: Body) -> ScrollPage:
        """`call` of a V2 scroll endpoint, its hits as plain dicts (pages.py: the same checks, without a
        model per hit); UnexpectedResponseError if the shape is wrong."""
        target = get_endpoint(endpoint_name)
        raw = await self.post(target, body)
        return self._validated(target, raw, parse_scroll_page)

    def _validated(
        self,
        target: Endpoint,
        raw: dict[str, Any],
        parse: Callable[[Any, dict[str, Any]], Parsed],
    ) -> Parsed:
        """`parse(target.name, raw)`; a body that does not fit is an UnexpectedResponseError naming the
        first five fields at fault."""
        try:
            return parse(target.name, raw)
        except ValidationError as exc:
            problems = "; ".join(
                f"{'.'.join(str(part) for part in error['loc']) or '(body)'}: {error['msg']}"
                for error in exc.errors()[:5]
            )
            raise UnexpectedResponseError(
                f"The {target.path} response does not have the documented shape ({problems})",
                status=200,
                endpoint=target.name,
                request_id=request_id_of(raw),
            ) from None

    # --- internals -----------------------------------------------------------------------------------

    def _current_token(self) -> str | None:
        return self._token_override if self._token_override is not None else self._settings.current_token()

    def _refuse_if_exhausted(self, target: Endpoint) -> None:
        until = self.quota.exhausted_until(target.family)
        if until is None:
            return
        raise RateLimitError(
            f"The daily quota of {target.family} was exhausted by an earlier HTTP 429; not sent",
            endpoint=target.name,
            endpoint_family=target.family,
            retry_after=max(0.0, (until - self._now()).total_seconds()),
            hint=f"Try again after {until:%Y-%m-%d %H:%M} UTC.",
            attempts=0,  # refused locally: nothing was sent
        )

    async def _send_with_retries(self, target: Endpoint, payload: bytes) -> tuple[Answer, str]:
        """The first 2xx answer (and the token it was sent with), or raise the final error.

        Every failed attempt goes through the one decision below (retry.should_retry) and the one
        wait; the only other way round the loop is the single immediate re-send after a 401/403 when
        the token file has changed since (items 39/40: refresh the JWT once, then fail clearly).
        """
        started = self._retry.clock()
        refreshed_token = False
        attempt = 0
        while True:
            token = check_token(self._current_token(), now=self._now())
            attempt += 1
            outcome: Answer | httpx2.HTTPError
            try:
                outcome = await self._send(target, payload, token)
            except httpx2.HTTPError as exc:
                outcome = exc
            if isinstance(outcome, Answer):
                if outcome.is_success:
                    return outcome, token
                if outcome.status in (401, 403) and not refreshed_token and self._token_changed(token):
                    refreshed_token = True
                    logger.info(
                        "%s: HTTP %s; retrying once with the refreshed token", target.path, outcome.status
                    )
                    continue
            elapsed = self._retry.clock() - started
            if isinstance(outcome, Answer):
                delay = should_retry(
                    attempt, outcome.status, outcome.retry_after, elapsed=elapsed, policy=self._retry
                )
                if delay is None:
                    raise self._api_error(target, outcome, token, attempt)
                reason = f"HTTP {outcome.status}"
            else:
                delay = should_retry(attempt, outcome, elapsed=elapsed, policy=self._retry)
                if delay is None:
                    raise self._transport_error(target, outcome, attempt, token) from outcome
                reason = type(outcome).__name__
            logger.warning("%s: %s on attempt %d; retrying in %.2f s", target.path, reason, attempt, delay)
            await self._retry.sleep(delay)

    async def _send(self, target: Endpoint, payload: bytes, token: str) -> Answer:
        """POST and read the answer's body within its limit (see the module docstring)."""
        logger.debug("POST %s", target.path)
        request = self._http.build_request(
            "POST",
            target.path,
            content=payload,
            headers={"Authorization": self._settings.auth_header_value(token)},
        )
        response = await self._http.send(request, stream=True)
        try:
            success = response.is_success
            limit = self._settings.max_response_bytes if success else ERROR_BODY_BYTES
            declared = response.headers.get("content-length", "")
            if success and declared.isdigit() and int(declared) > limit:
                raise ResponseTooLargeError(
                    endpoint=target.name,
                    status=response.status_code,
                    limit=limit,
                    size=int(declared),
                    declared=True,
                )
            chunks: list[bytes] = []
            received = 0
            async for chunk in response.aiter_bytes():
                chunks.append(chunk)
                received += len(chunk)
                if received > limit:
                    if success:
                        raise ResponseTooLargeError(
                            endpoint=target.name,
                            status=response.status_code,
                            limit=limit,
                            size=received,
                            declared=False,
                        )
                    break  # an error body: its beginning holds the message
            return Answer(response.status_code, response.headers, b"".join(chunks)[: max(limit, 0)])
        finally:
            await response.aclose()

    def _token_changed(self, used: str) -> bool:
        current = self._current_token()
        return current is not None and current.strip() not in ("", used)

    def _accept(self, target: Endpoint, answer: Answer, token: str) -> dict[str, Any]:
        request_id = _header_request_id(answer.headers)
        try:
            body = json.loads(answer.content)
        except (ValueError, RecursionError):
            body = None
        if not isinstance(body, dict):
            snippet = redact(answer.text[:200], [token])
            raise UnexpectedResponseError(
                f"The {target.path} response is not a JSON object: {snippet!r}",
                status=answer.status,
                endpoint=target.name,
                request_id=request_id,
            )
        remaining = self.quota.record_response(target.family, body)
        logger.info(
            "%s: HTTP %s request_id=%s daily_remaining=%s",
            target.path,
            answer.status,
            request_id_of(body) or request_id,
            "unknown" if remaining is None else remaining,
        )
        return body

    def _api_error(self, target: Endpoint, answer: Answer, token: str, attempts: int) -> Exception:
        error = error_from_response(
            answer.status, answer.content, answer.headers, target, secrets=[token], attempts=attempts
        )
        if isinstance(error, RateLimitError):
            until = self.quota.mark_exhausted(target.family, error.retry_after)
            if until is not None:
                logger.warning(
                    "%s: quota of %s exhausted until %s", target.path, target.family, until.isoformat()
                )
        logger.warning("%s failed: %s", target.path, error)
        return error

    def _transport_error(
        self, target: Endpoint, exc: httpx2.HTTPError, attempts: int, token: str
    ) -> TransportError:
        tries = f"{attempts} attempt{'s' if attempts != 1 else ''}"
        message = redact(
            f"No answer from {self.api_url}{target.path} after {tries}: {_describe(exc)}", [token]
        )
        logger.warning("%s", message)
        return TransportError(message, endpoint=target.name, attempts=attempts)


def encode_body(body: Body) -> bytes:
    """The exact JSON bytes to send, from a request model (`to_body()`) or a plain mapping."""
    if isinstance(body, SupportsBody):
        data: Any = body.to_body()
    elif isinstance(body, Mapping):
        data = dict(body)
    else:
        raise TypeError(f"request body must be a Mapping or have to_body(), got {type(body).__name__}")
    # allow_nan=False: NaN/Infinity are not JSON, better a local ValueError than a server 400.
    return json.dumps(data, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode("utf-8")


def _describe(exc: httpx2.HTTPError) -> str:
    if isinstance(exc, httpx2.ConnectTimeout):
        return "connecting timed out (CM_CONNECT_TIMEOUT)"
    if isinstance(exc, httpx2.ReadTimeout):
        return "no response before the read timeout (CM_READ_TIMEOUT)"
    detail = str(exc).strip()
    return f"{type(exc).__name__}: {detail}" if detail else type(exc).__name__


def _header_request_id(headers: httpx2.Headers) -> str | None:
    for name in REQUEST_ID_HEADERS:
        value = headers.get(name)
        if value:
            return value
    return None
