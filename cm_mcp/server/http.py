"""Streamable HTTP, safe by default: a bearer token, loopback only without one, Host/Origin checks.

The rules, each for a way the server would otherwise be used by someone it was not meant for:
- **Bearer token** (CM_HTTP_TOKEN or CM_HTTP_TOKEN_FILE): every request but `GET /healthz` must carry
  `Authorization: Bearer <token>`, compared in constant time (`hmac.compare_digest`); 401 otherwise.
  The token is never logged (the log-record factory of `api.redaction` hides it everywhere).
- **No token, no network**: without a token the server binds loopback addresses only; anything else
  (`0.0.0.0`, a LAN address) is refused before a socket is opened, naming the setting to add.
- **Host and Origin checked on every bind** (the SDK's `TransportSecuritySettings`; on its own the SDK
  turns them off for any host but localhost): a wrong Host gets 421, a wrong Origin 403, so a web page
  cannot reach the server through DNS rebinding. Loopback names are always allowed; the bind address
  too when it is a specific one; everything else comes from CM_HTTP_ALLOWED_HOSTS / _ORIGINS (or
  `--allowed-host` / `--allowed-origin`). A request without Origin (any non-browser client) passes.
- **Stateless mode** (`--stateless`): no MCP session lives in the server, so replicas behind a load
  balancer need no affinity. Without it a 2025-11-25 client's session lives in one process.

`/healthz` answers `{"status": "ok"}` and nothing else, without token or Host check, for load balancer
probes (they call the replica by its address, not by the public name).
"""

from __future__ import annotations

import hmac
import json
import logging
from collections.abc import AsyncIterator, Callable, Generator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from typing import Any, Final

import anyio
import uvicorn
from mcp.server.mcpserver import MCPServer
from mcp.server.transport_security import TransportSecuritySettings
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from cm_mcp.api.settings import Settings, check_allowed_hosts, check_allowed_origins, is_loopback_host

logger = logging.getLogger("cm_mcp.server.http")

MCP_PATH: Final = "/mcp"
HEALTH_PATH: Final = "/healthz"
#: Loopback names as a Host header spells them (`name` on port 80, `name:*` on any other port).
LOOPBACK_HOSTS: Final = ("127.0.0.1", "localhost", "[::1]")
#: Addresses that mean "every interface": no single name to add to the allowed hosts.
WILDCARD_BINDS: Final = frozenset({"0.0.0.0", "::", ""})
#: How long `running_http` waits for uvicorn to accept connections (lifespan: store and API client).
START_TIMEOUT_SECONDS: Final = 120.0
#: In-flight requests (an export can run for minutes) get this long after a stop before being cut.
GRACEFUL_SHUTDOWN_SECONDS: Final = 10


class HttpConfigError(Exception):
    """The HTTP transport cannot start as configured; the message names the setting to change."""


@dataclass(frozen=True)
class HttpOptions:
    """Everything the HTTP transport needs, settings and command line merged (`resolve`)."""

    host: str
    port: int
    stateless: bool
    #: Host header values besides loopback ones and the bind address (configured, as given)
    allowed_hosts: tuple[str, ...] = ()
    allowed_origins: tuple[str, ...] = ()

    @classmethod
    def resolve(
        cls,
        settings: Settings,
        *,
        host: str,
        port: int,
        stateless: bool = False,
        allowed_hosts: Sequence[str] = (),
        allowed_origins: Sequence[str] = (),
    ) -> HttpOptions:
        """Settings plus command-line options (which add to the lists and can only turn stateless on),
        checked: HttpConfigError when the server must not start."""
        try:
            hosts = [
                *settings.http_allowed_hosts,
                *check_allowed_hosts(list(allowed_hosts), "--allowed-host"),
            ]
            origins = [
                *settings.http_allowed_origins,
                *check_allowed_origins(list(allowed_origins), "--allowed-origin"),
            ]
        except ValueError as exc:
            raise HttpConfigError(str(exc)) from None
        options = cls(
            host=host.strip(),
            port=port,
            stateless=stateless or settings.http_stateless,
            allowed_hosts=tuple(dict.fromkeys(hosts)),
            allowed_origins=tuple(dict.fromkeys(origins)),
        )
        check_bind(options.host, settings)
        return options

    def security(self) -> TransportSecuritySettings:
        """DNS-rebinding protection, on whatever the bind address (421 for a Host, 403 for an Origin)."""
        hosts = [*LOOPBACK_HOSTS, *_extra_hosts(self)]
        # A configured origin is exact (another port on the same host may be another application);
        # loopback pages may be served from any port.
        origins = _with_any_port([f"http://{name}" for name in LOOPBACK_HOSTS]) + list(self.allowed_origins)
        return TransportSecuritySettings(
            enable_dns_rebinding_protection=True,
            allowed_hosts=_with_any_port(hosts),
            allowed_origins=origins,
        )


def _extra_hosts(options: HttpOptions) -> list[str]:
    """Allowed Host names besides loopback ones: the bind address when it is one, then the configured."""
    bound = [] if options.host in WILDCARD_BINDS or is_loopback_host(options.host) else [options.host]
    return [f"[{host}]" if ":" in host else host for host in bound] + list(options.allowed_hosts)


def _with_any_port(entries: Sequence[str]) -> list[str]:
    # A host without a port matches the name alone (default port) and on any port (`name:*`, the
    # SDK's wildcard): DNS rebinding is about names. An entry with a port or `:*` stays as given.
    expanded: list[str] = []
    for entry in entries:
        expanded.append(entry)
        if not _has_port(entry):
            expanded.append(f"{entry}:*")
    return list(dict.fromkeys(expanded))


def _has_port(entry: str) -> bool:
    tail = entry.rsplit("]", 1)[-1] if "[" in entry else entry.split("://", 1)[-1]
    return ":" in tail


def check_bind(host: str, settings: Settings) -> None:
    """HttpConfigError unless `host` may be served: loopback, or any address with a usable token."""
    if settings.http_token_configured():
        try:
            settings.current_http_token()
        except ValueError as exc:
            raise HttpConfigError(f"{exc}: fix the file, or set CM_HTTP_TOKEN instead") from None
        return
    if not is_loopback_host(host):
        raise HttpConfigError(
            f"Refusing to serve MCP over HTTP on {host!r} without a bearer token: anyone who can reach "
            "it could spend the API quota and read stored results. Set CM_HTTP_TOKEN (or "
            "CM_HTTP_TOKEN_FILE) and have clients send `Authorization: Bearer <token>`, or bind a "
            "loopback address (--host 127.0.0.1)."
        )


class BearerTokenAuth:
    """ASGI middleware: every HTTP request but `exempt` paths carries `Authorization: Bearer <token>`.

    `token` is called per request (a token file is re-read, so rotating it needs no restart); it
    raises ValueError when the configured file is unusable, which fails closed with 503.
    """

    def __init__(self, app: ASGIApp, token: Callable[[], str | None], *, exempt: frozenset[str]) -> None:
        self.app = app
        self.token = token
        self.exempt = exempt

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in self.exempt:
            await self.app(scope, receive, send)
            return
        try:
            expected = self.token()
        except ValueError as exc:
            logger.error("refusing every HTTP request: %s", exc)
            await _json_error(send, 503, "server_error", "the server's bearer token is unusable; see its log")
            return
        if expected is None:  # no token configured: loopback only (checked before binding)
            await self.app(scope, receive, send)
            return
        presented = _bearer_token(scope)
        if presented is None:
            await _json_error(
                send, 401, None, "send `Authorization: Bearer <token>` (the server's CM_HTTP_TOKEN)"
            )
            return
        # Constant time: how long the comparison takes must not tell how much of a guess was right.
        if not hmac.compare_digest(presented, expected.encode("ascii")):
            client = scope.get("client")
            logger.warning(
                "rejected a request with a wrong bearer token from %s", client[0] if client else "?"
            )
            await _json_error(send, 401, "invalid_token", "the bearer token is not the server's")
            return
        await self.app(scope, receive, send)


def _bearer_token(scope: Scope) -> bytes | None:
    for name, value in scope["headers"]:
        if name == b"authorization":
            scheme, _, token = value.strip().partition(b" ")
            token = token.strip()
            return token if scheme.lower() == b"bearer" and token else None
    return None


async def _json_error(send: Send, status: int, error: str | None, description: str) -> None:
    body = json.dumps({"error": error or "unauthorized", "error_description": description}).encode()
    # RFC 6750: no error code when the request carried no credentials at all.
    challenge = 'Bearer realm="cm-mcp"' + (f', error="{error}"' if error else "")
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    if status == 401:
        headers.append((b"www-authenticate", challenge.encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


def build_http_app(server: MCPServer[Any], settings: Settings, options: HttpOptions) -> ASGIApp:
    """The ASGI app: the SDK's streamable HTTP app (Host/Origin checks, stateless or not, SSE so that
    progress notifications reach the client) behind the bearer-token check, plus `/healthz`."""

    async def healthz(_: Request) -> Response:
        return JSONResponse({"status": "ok"})

    server.custom_route(HEALTH_PATH, methods=["GET"])(healthz)
    app = server.streamable_http_app(
        streamable_http_path=MCP_PATH,
        stateless_http=options.stateless,
        json_response=False,
        transport_security=options.security(),
        host=options.host,
    )
    return BearerTokenAuth(app, settings.current_http_token, exempt=frozenset({HEALTH_PATH}))


class _EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signal handling to its host (pytest)."""

    @contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


@dataclass
class RunningHttp:
    url: str
    server: uvicorn.Server
    finished: anyio.Event

    def stop(self) -> None:
        self.server.should_exit = True


@asynccontextmanager
async def running_http(
    app: ASGIApp, host: str, port: int, *, handle_signals: bool = False
) -> AsyncIterator[RunningHttp]:
    """Serve `app` with uvicorn until the block exits; `port` 0 binds an ephemeral port (read back into
    `url`). uvicorn logs through the root logger (no handlers of its own, so nothing on stdout and
    everything through the process's redaction and format)."""
    _uvicorn_logs_to_root()
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_config=None,
        lifespan="on",
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_SECONDS,
    )
    server = (uvicorn.Server if handle_signals else _EmbeddedServer)(config)
    finished = anyio.Event()

    async def serve() -> None:
        try:
            await server.serve()
        finally:
            finished.set()

    async with anyio.create_task_group() as group:
        group.start_soon(serve)
        with anyio.fail_after(START_TIMEOUT_SECONDS):
            while not server.started:
                if finished.is_set():
                    raise HttpConfigError(f"the HTTP server on {host}:{port} stopped before it started")
                await anyio.sleep(0.01)
        bound_host, bound_port = server.servers[0].sockets[0].getsockname()[:2]
        url_host = f"[{bound_host}]" if ":" in bound_host else bound_host
        try:
            yield RunningHttp(f"http://{url_host}:{bound_port}", server, finished)
        finally:
            server.should_exit = True


def _uvicorn_logs_to_root() -> None:
    # An embedded sandbox in the same process may have applied uvicorn's default config (own handlers,
    # access log on stdout, propagate off); route every uvicorn logger back to the root handler.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        named = logging.getLogger(name)
        named.handlers.clear()
        named.propagate = True
        named.setLevel(logging.NOTSET)


def describe(options: HttpOptions, settings: Settings, url: str) -> str:
    """One startup line for the operator: where, whether a token is required, what is allowed."""
    token = (
        "required (CM_HTTP_TOKEN" + ("_FILE)" if settings.http_token is None else ")")
        if settings.http_token_configured()
        else "none (loopback only)"
    )
    lines = [
        f"cm-mcp: MCP over streamable HTTP at {url}{MCP_PATH}",
        f"  bearer token: {token}; sessions: {'stateless' if options.stateless else 'stateful'}",
        f"  Host header allowed: loopback names{''.join(f', {host}' for host in _extra_hosts(options))}",
        "  Origin header allowed: absent (non-browser clients), loopback pages"
        + "".join(f", {origin}" for origin in options.allowed_origins),
    ]
    if options.host in WILDCARD_BINDS and not options.allowed_hosts:
        lines.append(
            "  note: only loopback Host names are accepted; set CM_HTTP_ALLOWED_HOSTS (or --allowed-host) "
            "to the name clients use, or they get 421"
        )
    return "\n".join(lines)
