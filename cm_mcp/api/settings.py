"""cm-mcp configuration, read from arguments, `CM_*` environment variables and a `.env` file.

Precedence, highest first: constructor arguments > environment variables > the `.env` file (in the
current directory) > the defaults below. Every variable is `CM_` + the field name in upper case, except
`CM_MAX_TOKENS` (field `default_max_tokens`).

The API token is a `SecretStr`: it never shows in `repr`, `str` or `model_dump_json`. When `CM_API_TOKEN`
is unset, the token is read from `CM_API_TOKEN_FILE`, and re-read before every request (`current_token`),
so dropping a fresh JWT into that file takes effect without a restart.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

import platformdirs
from pydantic import Field, PrivateAttr, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from cm_mcp.api.budget import DEFAULT_TOKENS, RANGE_TEXT, budget_problem

APP_NAME = "cm-mcp"
#: CM_MAX_RESPONSE_BYTES default: 32 MiB (see `Settings.max_response_bytes`).
DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024**2
#: CM_MAX_DOWNLOAD_BYTES default: 2 GiB per partition file (see `Settings.max_download_bytes`).
DEFAULT_MAX_DOWNLOAD_BYTES = 2 * 1024**3


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
    #: the budget of a tool result whose call names none; within the range every tool accepts
    default_max_tokens: int = Field(default=DEFAULT_TOKENS, validation_alias="CM_MAX_TOKENS")
    #: hosts presigned URLs may point to; `*.` matches any subdomain. CSV or a JSON list in the env.
    download_allowed_hosts: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["*.amazonaws.com"]
    )

    _token_from_file: bool = PrivateAttr(default=False)

    @field_validator("api_url")
    @classmethod
    def _check_api_url(cls, value: str) -> str:
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError(f"CM_API_URL must be an http(s) URL, got {value!r}")
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

    @field_validator("download_allowed_hosts", mode="before")
    @classmethod
    def _split_hosts(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            value = json.loads(text) if text.startswith("[") else text.split(",")
        if isinstance(value, list | tuple):
            return [str(host).strip().lower() for host in value if str(host).strip()]
        return value

    def model_post_init(self, context: Any, /) -> None:
        if self.api_token is None and self.api_token_file is not None:
            self._token_from_file = True
            self.api_token = self._read_token_file()

    def current_token(self) -> str | None:
        """The JWT to send now: the configured token, or the token file's current content."""
        if self._token_from_file:
            self.api_token = self._read_token_file()
        return self.api_token.get_secret_value() if self.api_token is not None else None

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
