"""Settings: defaults, CM_* variables, the .env file, precedence, the token file, secrecy."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
import pytest
from pydantic import SecretStr, ValidationError

from cm_mcp.api.settings import Settings

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
        "CM_MAX_RETRIES=1\nCM_READ_TIMEOUT=11\nCM_CONNECT_TIMEOUT=2\nCM_MAX_TOKENS=900\n"
    )
    monkeypatch.setenv("CM_READ_TIMEOUT", "22")
    monkeypatch.setenv("CM_CONNECT_TIMEOUT", "3")
    settings = Settings(connect_timeout=4)
    assert settings.connect_timeout == 4  # argument beats environment and .env
    assert settings.read_timeout == 22  # environment beats .env
    assert settings.max_retries == 1  # .env beats the default
    assert settings.default_max_tokens == 900  # CM_MAX_TOKENS works from .env too
    assert settings.retry_base_delay == 0.5  # default
    assert Settings(default_max_tokens=600).default_max_tokens == 600  # field name as an argument
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


@pytest.mark.parametrize("value", ["300", "499", "20001", "0", "-5", "lots"])
def test_max_tokens_outside_the_tools_range_is_refused_at_start_up(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    """CM_MAX_TOKENS=300 was accepted, then every budgeted tool refused its own default (issue 13)."""
    monkeypatch.setenv("CM_MAX_TOKENS", value)
    with pytest.raises(ValidationError) as caught:
        Settings()
    text = str(caught.value)
    assert "CM_MAX_TOKENS" in text
    assert "500-20000" in text, text


@pytest.mark.parametrize("value", [500, 4000, 20000])
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
    assert "CM_MAX_TOKENS" in err and "500-20000" in err
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
