"""Settings: defaults, CM_* variables, the .env file, precedence, the token files, secrecy, the
plain-http rule, the HTTP transport's settings and the download allow-list's host:port rules."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlsplit

import platformdirs
import pytest
from pydantic import SecretStr, ValidationError

from cm_mcp.api.settings import Settings
from cm_mcp.batch.download import DownloadPolicy, check_url
from cm_mcp.batch.errors import HostNotAllowedError, InsecureURLError
from cm_mcp.server.runtime import pointed_at

JWT = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvbmNhbGwifQ.c2lnbmF0dXJlLXNlY3JldA"


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """No CM_* variable from the developer's shell, and no .env but the one a test writes."""
    for name in list(os.environ):
        if name.upper().startswith("CM_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)
    return tmp_path


def test_defaults() -> None:
    settings = Settings()
    assert settings.api_url == "http://127.0.0.1:8766"
    assert settings.api_token is None
    assert settings.current_token() is None
    assert settings.auth_scheme == "Bearer"
    assert (settings.connect_timeout, settings.read_timeout) == (5.0, 30.0)
    assert (settings.max_retries, settings.retry_max_seconds, settings.retry_base_delay) == (4, 30.0, 0.5)
    assert settings.data_dir == Path(platformdirs.user_data_dir("cm-mcp"))
    assert settings.enable_v1 is False
    assert settings.default_max_tokens == 4000
    assert settings.download_allowed_hosts == ["*.amazonaws.com"]
    assert settings.token_source() == "none"


def test_environment_variables(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("CM_API_URL", "https://cm.example.com/api/")
    monkeypatch.setenv("CM_API_TOKEN", JWT)
    monkeypatch.setenv("CM_AUTH_SCHEME", "JWT")
    monkeypatch.setenv("CM_READ_TIMEOUT", "12.5")
    monkeypatch.setenv("CM_MAX_RETRIES", "0")
    monkeypatch.setenv("CM_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("CM_ENABLE_V1", "true")
    monkeypatch.setenv("CM_MAX_TOKENS", "1500")
    monkeypatch.setenv("CM_DOWNLOAD_ALLOWED_HOSTS", " *.amazonaws.com, Files.Example.com ,, ")
    settings = Settings()
    assert settings.api_url == "https://cm.example.com/api"
    assert settings.current_token() == JWT
    assert settings.auth_header_value(JWT) == f"JWT {JWT}"
    assert settings.read_timeout == 12.5
    assert settings.max_retries == 0
    assert settings.data_dir == tmp_path / "data"
    assert settings.enable_v1 is True
    assert settings.default_max_tokens == 1500
    assert settings.download_allowed_hosts == ["*.amazonaws.com", "files.example.com"]


def test_allowed_hosts_as_json_list(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CM_DOWNLOAD_ALLOWED_HOSTS", '["127.0.0.1", "*.s3.amazonaws.com"]')
    assert Settings().download_allowed_hosts == ["127.0.0.1", "*.s3.amazonaws.com"]


def test_precedence_arguments_over_environment_over_dotenv_over_defaults(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text(
        "CM_MAX_RETRIES=1\nCM_READ_TIMEOUT=11\nCM_CONNECT_TIMEOUT=2\nCM_MAX_TOKENS=1900\n"
    )
    monkeypatch.setenv("CM_READ_TIMEOUT", "22")
    monkeypatch.setenv("CM_CONNECT_TIMEOUT", "3")
    settings = Settings(connect_timeout=4)
    assert settings.connect_timeout == 4  # argument beats environment and .env
    assert settings.read_timeout == 22  # environment beats .env
    assert settings.max_retries == 1  # .env beats the default
    assert settings.default_max_tokens == 1900  # CM_MAX_TOKENS works from .env too
    assert settings.retry_base_delay == 0.5  # default
    assert Settings(default_max_tokens=1600).default_max_tokens == 1600  # field name as an argument
    assert Settings(_env_file=None).max_retries == 4  # the .env file can be switched off


def test_token_file_is_read_and_stripped(tmp_path: Path) -> None:
    token_file = tmp_path / "jwt.txt"
    token_file.write_text(f"\n  {JWT}  \n")
    settings = Settings(api_token_file=token_file)
    assert settings.current_token() == JWT
    assert settings.token_source() == "file"

    token_file.write_text("a-fresh-token\n")  # a refreshed JWT is picked up without a restart
    assert settings.current_token() == "a-fresh-token"


def test_token_beats_token_file(tmp_path: Path) -> None:
    token_file = tmp_path / "jwt.txt"
    token_file.write_text("from-file")
    settings = Settings(api_token=JWT, api_token_file=token_file)
    assert settings.current_token() == JWT
    assert settings.token_source() == "argument or environment"


def test_unreadable_or_blank_token_means_no_token(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    assert Settings(api_token_file=tmp_path / "missing").current_token() is None
    (tmp_path / "blank").write_text("  \n")
    assert Settings(api_token_file=tmp_path / "blank").current_token() is None
    monkeypatch.setenv("CM_API_TOKEN", "   ")
    assert Settings().api_token is None


def test_token_never_shows(tmp_path: Path) -> None:
    settings = Settings(api_token=SecretStr(JWT))
    for text in (repr(settings), str(settings), settings.model_dump_json(), str(settings.model_dump())):
        assert JWT not in text
    from_file = tmp_path / "jwt"
    from_file.write_text(JWT)
    assert JWT not in repr(Settings(api_token_file=from_file))


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("api_url", "cm.example.com"),
        ("api_url", "ftp://cm.example.com"),
        ("read_timeout", 0),
        ("max_retries", -1),
        ("default_max_tokens", 0),
    ],
)
def test_invalid_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError):
        Settings(**{field: value})  # type: ignore[arg-type]


# --- plain http only to this machine -----------------------------------------------------------------


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8766", "http://localhost:9", "http://[::1]:8080/api", "http://127.8.9.10"]
)
def test_plain_http_api_url_is_accepted_for_loopback_hosts(url: str) -> None:
    assert Settings(api_url=url).api_url == url


@pytest.mark.parametrize(
    "url",
    [
        "http://cm.example.com",
        "http://10.0.0.7:8766",
        "http://localhost.evil.example.com",
        "http://127.0.0.1.nip.io",
        "http://[2001:db8::1]:80",
    ],
)
def test_plain_http_api_url_to_another_host_is_refused(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(api_url=url)
    message = str(refused.value)
    assert "CM_API_URL" in message and "cleartext" in message and "https://" in message
    assert Settings(api_url=url.replace("http://", "https://", 1)).api_url.startswith("https://")


def test_a_configuration_error_is_one_clear_message_without_traceback(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CM_")}
    secret_token = "short-secret"  # too short: refused, and never printed
    done = subprocess.run(
        [sys.executable, "-m", "cm_mcp.cli", "tools"],
        capture_output=True,
        text=True,
        env={**env, "CM_API_URL": "http://cm.example.com", "CM_HTTP_TOKEN": secret_token},
        cwd=tmp_path,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    assert "CM_API_URL 'http://cm.example.com' uses plain http" in done.stderr
    assert "CM_HTTP_TOKEN is 12 characters long" in done.stderr
    assert secret_token not in done.stderr


# --- the HTTP transport's settings -----------------------------------------------------------------

HTTP_TOKEN = "http-bearer-token-0123456789abcdef"


def test_http_settings_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    defaults = Settings()
    assert defaults.http_token is None and defaults.http_token_file is None
    assert not defaults.http_token_configured() and defaults.current_http_token() is None
    assert defaults.http_allowed_hosts == defaults.http_allowed_origins == []
    assert defaults.http_stateless is False

    monkeypatch.setenv("CM_HTTP_TOKEN", f"  {HTTP_TOKEN}\n")
    monkeypatch.setenv("CM_HTTP_ALLOWED_HOSTS", "MCP.example.com, mcp.example.com:8443 ,[::1]:*")
    monkeypatch.setenv("CM_HTTP_ALLOWED_ORIGINS", '["https://App.example.com/", "http://localhost:*"]')
    monkeypatch.setenv("CM_HTTP_STATELESS", "true")
    settings = Settings()
    assert settings.current_http_token() == HTTP_TOKEN
    assert settings.http_allowed_hosts == ["mcp.example.com", "mcp.example.com:8443", "[::1]:*"]
    assert settings.http_allowed_origins == ["https://app.example.com", "http://localhost:*"]
    assert settings.http_stateless is True
    for text in (repr(settings), str(settings), settings.model_dump_json()):
        assert HTTP_TOKEN not in text


def test_http_token_beats_token_file_which_is_reread(tmp_path: Path) -> None:
    token_file = tmp_path / "http-token"
    token_file.write_text(f"{HTTP_TOKEN}\n")
    from_file = Settings(http_token_file=token_file)
    assert from_file.http_token_configured()
    assert from_file.current_http_token() == HTTP_TOKEN
    token_file.write_text("rotated-token-0123456789abcdef")
    assert from_file.current_http_token() == "rotated-token-0123456789abcdef"
    both = Settings(http_token="from-the-env-0123456789", http_token_file=token_file)
    assert both.current_http_token() == "from-the-env-0123456789"


@pytest.mark.parametrize(
    ("content", "problem"),
    [
        (None, "cannot be read"),
        ("  \n", "is empty"),
        ("short-token", "at least 16"),
        ("tab\tinside-a-long-token", "ASCII"),
    ],
)
def test_an_unusable_http_token_file_says_why_without_its_content(
    tmp_path: Path, content: str | None, problem: str
) -> None:
    token_file = tmp_path / "http-token"
    if content is not None:
        token_file.write_text(content)
    with pytest.raises(ValueError, match=problem) as unusable:
        Settings(http_token_file=token_file).current_http_token()
    assert "CM_HTTP_TOKEN_FILE" in str(unusable.value) and str(token_file) in str(unusable.value)
    if content and content.strip():
        assert content.strip() not in str(unusable.value)


@pytest.mark.parametrize("token", ["short", "has a space inside it", "non-ascii-token-ééééééé"])
def test_an_unusable_http_token_is_refused_without_echoing_it(token: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(http_token=token)
    assert "CM_HTTP_TOKEN" in str(refused.value)
    assert token not in str(refused.value)


def test_malformed_http_hosts_and_origins_are_listed_at_once() -> None:
    with pytest.raises(ValidationError) as refused:
        Settings(
            http_allowed_hosts=["ok.example.com", "https://a.example.com", "b.example.com/path"],
            http_allowed_origins=["app.example.com", "https://ok.example.com", "https://c.example.com/x"],
        )
    message = str(refused.value)
    for wrong in (
        "'https://a.example.com'",
        "'b.example.com/path'",
        "'app.example.com'",
        "'https://c.example.com/x'",
    ):
        assert wrong in message
    assert "CM_HTTP_ALLOWED_HOSTS" in message and "CM_HTTP_ALLOWED_ORIGINS" in message


# --- the download allow-list: host and port ------------------------------------------------------


@pytest.mark.parametrize(
    ("entries", "url", "allowed"),
    [
        # no port in the entry: the scheme's default port only
        (["*.amazonaws.com"], "https://bucket.s3.amazonaws.com/part?sig=1", True),
        (["*.amazonaws.com"], "https://bucket.s3.amazonaws.com:443/part", True),
        (["*.amazonaws.com"], "https://bucket.s3.amazonaws.com:8443/part", False),
        (["*.amazonaws.com"], "https://amazonaws.com/part", False),
        (["*.amazonaws.com"], "https://evilamazonaws.com/part", False),
        (["files.example.com"], "https://files.example.com/part", True),
        (["files.example.com"], "https://files.example.com:9000/part", False),
        (["files.example.com"], "http://files.example.com/part", True),  # http: its default, 80
        (["files.example.com"], "http://files.example.com:443/part", False),
        # a port in the entry: that port only
        (["s3.local:9000"], "http://s3.local:9000/bucket/part", True),
        (["s3.local:9000"], "http://s3.local:9001/bucket/part", False),
        (["s3.local:9000"], "http://s3.local/bucket/part", False),
        (["s3.local:443"], "https://s3.local/bucket/part", True),
        (["*.minio.internal:9000"], "https://a.minio.internal:9000/part", True),
        (["*.minio.internal:9000"], "https://a.minio.internal/part", False),
        # any port
        (["127.0.0.1:*"], "http://127.0.0.1:41234/_s3/part", True),
        (["127.0.0.1:*"], "http://127.0.0.2:41234/_s3/part", False),
        (["[::1]:9000"], "http://[::1]:9000/part", True),
        (["[::1]:9000"], "http://[::1]:9001/part", False),
    ],
)
def test_download_allow_list_matches_host_and_port(entries: list[str], url: str, allowed: bool) -> None:
    policy = DownloadPolicy.from_settings(Settings(download_allowed_hosts=entries))
    if allowed:
        assert check_url(url, policy) == urlsplit(url).hostname
    else:
        with pytest.raises(HostNotAllowedError, match="CM_DOWNLOAD_ALLOWED_HOSTS"):
            check_url(url, policy)


def test_a_refused_port_is_named_so_the_entry_to_add_is_clear() -> None:
    policy = DownloadPolicy.from_settings(Settings(download_allowed_hosts=["s3.local"]))
    with pytest.raises(HostNotAllowedError, match=re.escape("'s3.local:9000'")):
        check_url("http://s3.local:9000/bucket/part", policy)


def test_plain_http_download_still_needs_an_exact_host_entry() -> None:
    policy = DownloadPolicy.from_settings(Settings(download_allowed_hosts=["*.example.com:*"]))
    with pytest.raises(InsecureURLError):
        check_url("http://files.example.com:9000/part", policy)
    assert check_url("https://files.example.com:9000/part", policy) == "files.example.com"


def test_a_sandbox_allows_downloads_from_its_own_host_and_port_only() -> None:
    settings = pointed_at(Settings(), "http://127.0.0.1:41234", "sandbox-token-0123456789")
    assert settings.download_allowed_hosts == ["*.amazonaws.com", "127.0.0.1:41234"]
    policy = DownloadPolicy.from_settings(settings)
    assert check_url("http://127.0.0.1:41234/_s3/bucket/part?X-Amz-Signature=x", policy) == "127.0.0.1"
    with pytest.raises(HostNotAllowedError):
        check_url("http://127.0.0.1:41235/_s3/bucket/part", policy)


@pytest.mark.parametrize("value", ["300", "999", "20001", "0", "-5", "lots"])
def test_max_tokens_outside_the_tools_range_is_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """CM_MAX_TOKENS=300 was accepted, then every budgeted tool refused its own default (issue 13)."""
    monkeypatch.setenv("CM_MAX_TOKENS", value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    text = str(caught.value)
    assert "CM_MAX_TOKENS" in text
    assert "1000-20000" in text, text


@pytest.mark.parametrize("value", [1000, 4000, 20000])
def test_every_budget_the_settings_accept_the_tools_accept(value: int) -> None:
    """One range: what CM_MAX_TOKENS accepts is what a tool's max_tokens accepts, bounds included."""
    from cm_mcp.server.schemas import MAX_TOKENS_PROPERTY
    from cm_mcp.server.tooling import budget_issue

    settings = Settings(default_max_tokens=value)
    assert budget_issue(settings.default_max_tokens) is None
    assert MAX_TOKENS_PROPERTY["minimum"] <= value <= MAX_TOKENS_PROPERTY["maximum"]
    assert budget_issue(MAX_TOKENS_PROPERTY["minimum"] - 1) is not None
    assert budget_issue(MAX_TOKENS_PROPERTY["maximum"] + 1) is not None


def test_a_bad_setting_stops_the_cli_with_one_clear_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from cm_mcp.cli import main

    monkeypatch.setenv("CM_MAX_TOKENS", "300")
    assert main(["tools"]) == 2
    err = capsys.readouterr().err
    assert "CM_MAX_TOKENS" in err and "1000-20000" in err
    assert "Traceback" not in err


def test_the_size_limits_are_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CM_MAX_RESPONSE_BYTES", "1000000")
    monkeypatch.setenv("CM_MAX_DOWNLOAD_BYTES", "5000000")
    settings = Settings()
    assert (settings.max_response_bytes, settings.max_download_bytes) == (1_000_000, 5_000_000)
    assert Settings(_env_file=None, max_download_bytes=7).max_download_bytes == 7
    monkeypatch.delenv("CM_MAX_DOWNLOAD_BYTES")
    assert Settings().max_download_bytes == 2 * 1024**3  # a partition file of 2 GiB by default


@pytest.mark.anyio
async def test_a_download_over_the_size_setting_says_narrow_the_window_or_raise_it(tmp_path: Path) -> None:
    """The limit advised resubmitting the same range, which makes the same too-large file (issue 9)."""
    import httpx2

    from cm_mcp.batch.download import Downloader, DownloadPolicy
    from cm_mcp.batch.errors import FileTooLargeError
    from tests.test_batch_fakes import StreamingMock

    policy = DownloadPolicy.from_settings(
        Settings(_env_file=None, download_allowed_hosts=["*.amazonaws.com"], max_download_bytes=1000)
    )
    assert policy.max_bytes == 1000
    transport = StreamingMock(lambda _: httpx2.Response(200, content=b'{"_id": "a"}\n' * 500))
    async with Downloader(policy, transport=transport) as downloader:
        with pytest.raises(FileTooLargeError) as caught:
            await downloader.fetch("https://b.s3.amazonaws.com/p?X-Amz-Signature=s", tmp_path, "p")
    text = str(caught.value)
    assert "CM_MAX_DOWNLOAD_BYTES" in text and "narrower" in text and "1,000" in text
