"""No secret in any log: real `cm-mcp -v` processes at DEBUG, their stderr captured whole.

- a real export against the sandbox (httpx2 logs every presigned URL at INFO; the JWT is in use);
- the streamable HTTP server with a bearer token, called by a real MCP client and by requests that
  put the token where loggers see it (uvicorn's access log prints the query string).
Plus the redaction rules themselves, and that a formatter reading `record.args` still works.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import httpx2
import pytest
from anyio.abc import Process
from mcp import Client
from mcp.client.streamable_http import streamable_http_client

from cm_mcp.api.redaction import redact_record, redact_text, register_secret
from cm_mcp.sandbox.runner import RunningSandbox

HTTP_TOKEN = "log-test-bearer-token-0123456789abcdef"
#: any `?key=value` after a URL or a path: a presigned URL's signature, or a token passed as a parameter
QUERY_WITH_VALUES = re.compile(r"\?(?!\[REDACTED\])[^\s\"'<>#]*=")
SIGNATURE_WORDS = ("X-Amz-Signature", "X-Amz-Credential", "Signature=")


def _environment(tmp_path: Path, **settings: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CM_")}
    return {**env, "CM_DATA_DIR": str(tmp_path / "data"), **settings}


def _assert_clean(log: str, *secrets: str) -> None:
    for secret in secrets:
        assert secret not in log
    for word in SIGNATURE_WORDS:
        assert word not in log
    assert not QUERY_WITH_VALUES.search(log), QUERY_WITH_VALUES.search(log)
    assert not re.search(r"(?i)bearer\s+(?!\[REDACTED\])[A-Za-z0-9._~+/=-]{8,}", log)


# --- the rules ---------------------------------------------------------------------------------------


def test_redaction_rules() -> None:
    url = "https://bucket.s3.amazonaws.com/exports/part-0.ndjson.gz?X-Amz-Signature=abc123&X-Amz-Credential=AKIA"
    line = f'HTTP Request: GET {url} "HTTP/1.1 200 OK"'
    assert redact_text(line) == (
        'HTTP Request: GET https://bucket.s3.amazonaws.com/exports/part-0.ndjson.gz?[REDACTED] "HTTP/1.1 200 OK"'
    )
    access = '127.0.0.1:5000 - "GET /_s3/b/part-1?X-Amz-Date=20260101&X-Amz-Signature=f00 HTTP/1.1" 200'
    assert redact_text(access) == '127.0.0.1:5000 - "GET /_s3/b/part-1?[REDACTED] HTTP/1.1" 200'
    assert (
        redact_text(json.dumps({"url": url}))
        == '{"url": "https://bucket.s3.amazonaws.com/exports/part-0.ndjson.gz?[REDACTED]"}'
    )
    assert redact_text("Authorization: Bearer abcdefghijklmnop") == "Authorization: Bearer [REDACTED]"
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvbmNhbGwifQ.c2lnbmF0dXJl"
    assert redact_text(f"token={jwt} sent") == "token=[REDACTED] sent"
    opaque = "opaque-secret-zq8w7e6r5t4y"
    register_secret(opaque)
    assert redact_text(f"the key is {opaque}.") == "the key is [REDACTED]."
    # What is not a secret stays readable.
    for plain in (
        "POST /mcp HTTP/1.1",
        "what? no=way",
        "GET /healthz",
        "logs_batch: 5,529 records in 3 partitions",
    ):
        assert redact_text(plain) == plain


def test_a_record_keeps_its_args_shape_for_formatters_that_read_them() -> None:
    # uvicorn's access formatter unpacks exactly five args.
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:1234", "GET", f"/mcp?access_token={HTTP_TOKEN}", "1.1", 200),
        None,
    )
    redact_record(record)
    assert isinstance(record.args, tuple) and len(record.args) == 5
    assert record.args[4] == 200
    assert record.getMessage() == '127.0.0.1:1234 - "GET /mcp?[REDACTED] HTTP/1.1" 200'
    from uvicorn.logging import AccessFormatter

    formatted = AccessFormatter(
        '%(client_addr)s "%(request_line)s" %(status_code)s', use_colors=False
    ).format(record)
    assert formatted == '127.0.0.1:1234 "GET /mcp?[REDACTED] HTTP/1.1" 200 OK'


def test_a_traceback_is_cleaned_too() -> None:
    try:
        raise RuntimeError("fetch failed for https://h.example.com/p?X-Amz-Signature=deadbeef")
    except RuntimeError:
        record = logging.getLogger("t").makeRecord(
            "t", logging.ERROR, __file__, 1, "boom", (), sys.exc_info()
        )
    redact_record(record)
    assert record.exc_text is not None and "deadbeef" not in record.exc_text
    assert "https://h.example.com/p?[REDACTED]" in logging.Formatter().format(record)


# --- real processes at DEBUG ------------------------------------------------------------------------


@pytest.mark.anyio
async def test_a_real_export_logs_no_signature_and_no_jwt(sandbox: RunningSandbox, tmp_path: Path) -> None:
    env = _environment(
        tmp_path,
        CM_API_URL=sandbox.url,
        CM_API_TOKEN=sandbox.token,
        CM_DOWNLOAD_ALLOWED_HOSTS=sandbox.url.split("://", 1)[1],
    )
    arguments = {
        "application": "atr",
        "app_type": "kubernetes",
        "domain": ["*"],
        "start_time": "now-3d",
        "end_time": "now-2d",
    }
    # The sandbox runs in this test's event loop: the command must be awaited, not run blocking.
    with anyio.fail_after(300):
        done = await anyio.run_process(
            [sys.executable, "-m", "cm_mcp.cli", "-v", "call", "logs_batch", json.dumps(arguments), "--json"],
            env=env,
            check=False,
        )
    log = done.stderr.decode()
    assert done.returncode == 0, log[-3000:]
    assert json.loads(done.stdout)["complete"] is True
    # The log is real and detailed: debug records, every request line, every partition download.
    assert " DEBUG " in log
    downloads = re.findall(r"HTTP Request: GET (\S+)", log)
    assert downloads and all(url.endswith("?[REDACTED]") for url in downloads), downloads
    assert "HTTP Request: POST" in log
    _assert_clean(log, sandbox.token)


@asynccontextmanager
async def _serving_with_captured_log(env: dict[str, str]) -> AsyncIterator[tuple[str, list[bytes], Process]]:
    """`cm-mcp -v serve --transport streamable-http --port 0`; yields its URL (read from its startup
    line) and the stderr collected so far (drained continuously: a full pipe would block the server)."""
    options = ["-v", "serve", "--transport", "streamable-http", "--port", "0"]
    command = [sys.executable, "-m", "cm_mcp.cli", *options]
    process = await anyio.open_process(command, env=env, stdout=subprocess.DEVNULL)
    chunks: list[bytes] = []
    assert process.stderr is not None
    stderr = process.stderr

    async def drain() -> None:
        async for chunk in stderr:
            chunks.append(chunk)

    try:
        async with anyio.create_task_group() as group:
            group.start_soon(drain)
            with anyio.fail_after(120):
                while not (
                    found := re.search(rb"MCP over streamable HTTP at (http://\S+)/mcp", b"".join(chunks))
                ):
                    assert process.returncode is None, b"".join(chunks).decode()[-3000:]
                    await anyio.sleep(0.05)
            yield found[1].decode(), chunks, process
            process.terminate()
            with anyio.fail_after(60):
                await process.wait()
    finally:
        if process.returncode is None:
            process.kill()
        await process.aclose()


@pytest.mark.anyio
async def test_http_requests_carrying_the_bearer_token_log_no_token(tmp_path: Path) -> None:
    env = _environment(tmp_path, CM_HTTP_TOKEN=HTTP_TOKEN)
    async with _serving_with_captured_log(env) as (url, chunks, _process):
        headers = {"Authorization": f"Bearer {HTTP_TOKEN}"}
        async with httpx2.AsyncClient(headers=headers, timeout=60) as http:
            async with Client(
                streamable_http_client(f"{url}/mcp", http_client=http), mode="legacy"
            ) as client:
                assert not (await client.call_tool("results_list", {})).is_error
            # Clients that pass the token as a parameter, and a wrong token: both end up in a log line.
            in_query = await http.get(
                f"{url}/mcp?access_token={HTTP_TOKEN}", headers={"Accept": "text/event-stream"}
            )
            assert in_query.status_code in (400, 405, 406)
            wrong = await http.post(
                f"{url}/mcp", headers={"Authorization": f"Bearer wrong-{HTTP_TOKEN}"}, json={}
            )
            assert wrong.status_code == 401
    log = b"".join(chunks).decode()
    assert " DEBUG " in log and "uvicorn.access" in log  # access log lines were written
    assert 'GET /mcp?[REDACTED] HTTP/1.1"' in log
    assert "rejected a request with a wrong bearer token" in log
    _assert_clean(log, HTTP_TOKEN)
