"""cm-mcp configuration, read from arguments, `CM_*` environment variables and a `.env` file.

Precedence, highest first: constructor arguments > environment variables > the `.env` file (in the
current directory) > the defaults below. Every variable is `CM_` + the field name in upper case, except
`CM_MAX_TOKENS` (field `default_max_tokens`).

The API token is a `SecretStr`: it never shows in `repr`, `str` or `model_dump_json`. When `CM_API_TOKEN`
is unset, the token is read from `CM_API_TOKEN_FILE`, and re-read before every request (`current_token`),
so dropping a fresh JWT into that file takes effect without a restart. The HTTP transport's bearer token
(`CM_HTTP_TOKEN`, or `CM_HTTP_TOKEN_FILE` re-read per request) follows the same rules. Every token read
is registered with `redaction`, so no log record can show it.

`CM_API_URL` may use plain http only for a loopback host (the sandbox): anywhere else the JWT would
travel in cleartext.
"""

from __future__ import annotations

import ipaddress
import json
import re
from pathlib import Path
from typing import Annotated, Any, Final, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cm_mcp.api.budget import DEFAULT_TOKENS, RANGE_TEXT, budget_problem
from cm_mcp.api.redaction import register_secret

APP_NAME = "cm-mcp"
#: CM_MAX_RESPONSE_BYTES default: 32 MiB (see `Settings.max_response_bytes`).
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024**2
#: CM_MAX_DOWNLOAD_BYTES default: 2 GiB per partition file (see `Settings.max_download_bytes`).
DEFAULT_MAX_DOWNLOAD_BYTES = 2 * 1024**3

#: A bearer token shorter than this can be guessed over the network; `secrets.token_urlsafe(32)` is 43.
MIN_HTTP_TOKEN_LENGTH = 16


def _default_data_dir() -> Path:
    return platformdirs.user_data_path(APP_NAME)


class Settings(BaseSettings):
    """Everything configurable about talking to the Central Monitoring API (see the module docstring)."""

    model_config = SettingsConfigDict(
        env_prefix="CM_",
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        validate_by_name=True,
        validate_by_alias=True,
        # A validation error must never print a token it was given (pydantic echoes inputs by default).
        hide_input_in_errors=True,
    )

    #: base URL; the reference gives none (item 43). The default is the local sandbox.
    api_url: str = "http://127.0.0.1:8766"
    api_token: SecretStr | None = None
    api_token_file: Path | None = None
    #: `Authorization: <scheme> <jwt>`; the reference does not name the scheme (item 40). Empty: bare JWT.
    auth_scheme: str = "Bearer"
    connect_timeout: float = Field(default=5.0, gt=0)
    read_timeout: float = Field(default=30.0, gt=0)
    #: retries after the first attempt (so at most max_retries + 1 requests per call)
    max_retries: int = Field(default=4, ge=0)
    #: no retry starts once this many seconds have passed since the first attempt
    retry_max_seconds: float = Field(default=30.0, ge=0)
    retry_base_delay: float = Field(default=0.5, ge=0)
    #: the largest response body read (bytes). The biggest documented answer is a scroll page of up
    #: to 10,000 records, ~1-3 KB each; a body past this is stopped mid-stream, never read whole.
    max_response_bytes: int = Field(default=DEFAULT_MAX_RESPONSE_BYTES, gt=0)
    #: the largest partition file an export downloads (bytes on the wire): a bigger one is stopped
    #: mid-stream. The partitioning is undocumented (item 27); 2 GiB holds millions of records.
    max_download_bytes: int = Field(default=DEFAULT_MAX_DOWNLOAD_BYTES, gt=0)
    data_dir: Path = Field(default_factory=_default_data_dir)
    #: expose the deprecated V1 logs endpoints (retired 2026-03-01); billing (/v1/query) is unaffected
    enable_v1: bool = False
    #: the response cache answers a repeated request only if its window ended at least this many
    #: seconds before the API answered it (late logs may still arrive in a window that just ended)
    cache_settle_seconds: float = Field(default=600.0, ge=0)
    #: the budget of a tool result whose call names none; within the range every tool accepts
    default_max_tokens: int = Field(default=DEFAULT_TOKENS, validation_alias="CM_MAX_TOKENS")
    #: hosts presigned URLs may point to; `*.` matches any subdomain. CSV or a JSON list in the env.
    download_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*.amazonaws.com"]
    )

    #: the bearer token every streamable-HTTP request must carry (`Authorization: Bearer <token>`), or a
    #: file holding it (re-read per request: a rotated file takes effect at once). CM_HTTP_TOKEN wins
    #: when both are set. Without a token, `serve --transport streamable-http` binds loopback only.
    http_token: SecretStr | None = None
    http_token_file: Path | None = None
    #: Host header values streamable HTTP accepts besides loopback ones: `name` (any port) or
    #: `name:port`. CSV or a JSON list in the env. Checked on every bind (DNS-rebinding protection).
    http_allowed_hosts: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: Origin header values accepted besides loopback ones: `https://app.example.com`, `…:8443`, `…:*`.
    #: A request without an Origin (any non-browser client) is not affected.
    http_allowed_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    #: keep no MCP session in the server, so any replica behind a load balancer can answer any request
    http_stateless: bool = False

    _token_from_file: bool = PrivateAttr(default=False)

    @field_validator("api_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"CM_API_URL must be an http(s) URL, got {value!r}")
        if parts.scheme == "http" and not is_loopback_host(parts.hostname or ""):
            raise ValueError(
                f"CM_API_URL {value!r} uses plain http to a host that is not this machine: the JWT would "
                "travel in cleartext. Use https:// (plain http is accepted only for localhost, 127.0.0.0/8 "
                "and ::1, e.g. the sandbox)."
            )
        return value

    @field_validator("default_max_tokens", mode="before")
    @classmethod
    def _budget_in_range(cls, value: Any) -> Any:
        number = value
        if isinstance(value, str):
            try:
                number = int(value.strip())
            except ValueError:
                number = value
        if budget_problem(number) is not None:
            raise ValueError(
                f"must be {RANGE_TEXT} (the budgets every tool's max_tokens accepts), got {value!r}"
            )
        return number

    @field_validator("api_token", mode="before")
    @classmethod
    def _blank_token_is_none(cls, value: Any) -> Any:
        if isinstance(value, str):
            return value.strip() or None
        if isinstance(value, SecretStr):
            return value.get_secret_value().strip() or None
        return value

    @field_validator("auth_scheme")
    @classmethod
    def _strip_scheme(cls, value: str) -> str:
        return value.strip()

    @field_validator("download_allowed_hosts", "http_allowed_hosts", "http_allowed_origins", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list | tuple):
            return [str(host).strip().lower() for host in value if str(host).strip()]
        return value

    @field_validator("http_token")
    @classmethod
    def _check_http_token(cls, value: SecretStr | None) -> SecretStr | None:
        text = value.get_secret_value().strip() if value is not None else ""
        return SecretStr(check_http_token(text, "CM_HTTP_TOKEN")) if text else None

    @field_validator("http_allowed_hosts")
    @classmethod
    def _check_http_hosts(cls, hosts: list[str]) -> list[str]:
        return check_allowed_hosts(hosts, "CM_HTTP_ALLOWED_HOSTS")

    @field_validator("http_allowed_origins")
    @classmethod
    def _check_http_origins(cls, origins: list[str]) -> list[str]:
        return check_allowed_origins(origins, "CM_HTTP_ALLOWED_ORIGINS")

    def model_post_init(self, context: Any, /) -> None:
        if self.api_token is None and self.api_token_file is not None:
            self._token_from_file = True
            self.api_token = self._read_token_file()
        for secret in (self.api_token, self.http_token):
            register_secret(secret.get_secret_value() if secret is not None else None)

    def current_token(self) -> str | None:
        """The JWT to send now: the configured token, or the token file's current content."""
        if self._token_from_file:
            self.api_token = self._read_token_file()
            register_secret(self.api_token.get_secret_value() if self.api_token is not None else None)
        return self.api_token.get_secret_value() if self.api_token is not None else None

    def http_token_configured(self) -> bool:
        return self.http_token is not None or self.http_token_file is not None

    def current_http_token(self) -> str | None:
        """The bearer token HTTP clients must send now (None: none configured).

        CM_HTTP_TOKEN, else the current content of CM_HTTP_TOKEN_FILE; ValueError (naming the file and
        the problem, never the content) when that file is unreadable, empty or holds an unusable token.
        """
        if self.http_token is not None:
            return self.http_token.get_secret_value()
        if self.http_token_file is None:
            return None
        path = self.http_token_file.expanduser()
        try:
            text = path.read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError) as exc:
            raise ValueError(
                f"CM_HTTP_TOKEN_FILE {str(path)!r} cannot be read ({type(exc).__name__})"
            ) from None
        if not text:
            raise ValueError(f"CM_HTTP_TOKEN_FILE {str(path)!r} is empty")
        register_secret(text)
        return check_http_token(text, f"the token in CM_HTTP_TOKEN_FILE {str(path)!r}")

    def auth_header_value(self, token: str) -> str:
        return f"{self.auth_scheme} {token}" if self.auth_scheme else token

    def _read_token_file(self) -> SecretStr | None:
        # An unreadable file is "no token" here: the request fails locally with JWTMissingError, which
        # names both variables, instead of the whole server refusing to start.
        if self.api_token_file is None:
            return None
        try:
            text = self.api_token_file.expanduser().read_text(encoding="utf-8").strip()
        except (OSError, UnicodeDecodeError):
            return None
        return SecretStr(text) if text else None

    def token_source(self) -> Literal["argument or environment", "file", "none"]:
        """Where the token comes from, for diagnostics (never the token itself)."""
        if self._token_from_file:
            return "file"
        return "argument or environment" if self.api_token is not None else "none"


#: `name`, `name:port` or `name:*`; IPv6 in brackets. Lower-cased before this check.
_HOST_ENTRY: Final = re.compile(r"(?:[a-z0-9_.-]+|\[[0-9a-f:.]+\])(?::(?:\d{1,5}|\*))?")
#: `scheme://name[:port|:*]` with no path (what a browser sends as Origin).
_ORIGIN_ENTRY: Final = re.compile(r"https?://(?:[a-z0-9_.-]+|\[[0-9a-f:.]+\])(?::(?:\d{1,5}|\*))?")


def is_loopback_host(host: str) -> bool:
    """`localhost`, 127.0.0.0/8 or ::1 (brackets allowed): traffic to it never leaves this machine."""
    host = host.strip().lower().removeprefix("[").removesuffix("]").rstrip(".")
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_http_token(token: str, source: str) -> str:
    """`token` if it can serve as the HTTP bearer token; ValueError naming `source` (never the value)."""
    if len(token) < MIN_HTTP_TOKEN_LENGTH:
        raise ValueError(
            f"{source} is {len(token)} characters long; use at least {MIN_HTTP_TOKEN_LENGTH} random "
            "characters, e.g. the output of `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`"
        )
    if not all(33 <= ord(char) <= 126 for char in token):
        raise ValueError(
            f"{source} must be printable ASCII without spaces (it travels in an Authorization header)"
        )
    return token


def check_allowed_hosts(hosts: list[str], source: str) -> list[str]:
    """Host header entries, lower-cased; ValueError naming `source` and every malformed entry."""
    hosts = [host.strip().lower() for host in hosts if host.strip()]
    wrong = [host for host in hosts if not _HOST_ENTRY.fullmatch(host)]
    if wrong:
        raise ValueError(
            f"{source}: not a Host header value: {', '.join(map(repr, wrong))}; give `name`, `name:port` "
            "or `name:*` (no scheme, no path; IPv6 in brackets, e.g. `[::1]:*`)"
        )
    return hosts


def check_allowed_origins(origins: list[str], source: str) -> list[str]:
    """Origin entries, lower-cased, without a trailing slash; ValueError naming every malformed one."""
    origins = [origin.strip().lower().rstrip("/") for origin in origins if origin.strip()]
    wrong = [origin for origin in origins if not _ORIGIN_ENTRY.fullmatch(origin)]
    if wrong:
        raise ValueError(
            f"{source}: not an origin: {', '.join(map(repr, wrong))}; give `https://name`, "
            "`https://name:port` or `https://name:*` (or http://; no path)"
        )
    return origins


def describe_invalid_settings(error: BaseException) -> str | None:
    """One line per invalid setting, for a command that cannot start; None for any other error."""
    if not isinstance(error, ValidationError) or error.title != Settings.__name__:
        return None
    lines = ["cm-mcp cannot start: invalid settings"]
    for problem in error.errors(include_url=False):
        name = ".".join(str(part) for part in problem["loc"]) or "(settings)"
        if not name.startswith("CM_"):
            name = f"CM_{name.upper()}"
        lines.append(f"  {name}: {str(problem['msg']).removeprefix('Value error, ')}")
    return "\n".join(lines)
