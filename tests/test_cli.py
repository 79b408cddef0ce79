"""`cm-mcp call` as a user runs it: a real process, the embedded sandbox, a real MCP session inside."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.types import ResourceLink, TextContent

from cm_mcp.server.runtime import block_text

EXPORT_ARGS = {
    "application": "atr",
    "app_type": "kubernetes",
    "domain": ["*"],
    "start_time": "now-2d",
    "end_time": "now",
}


def _cm_mcp(*args: str, data_dir: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cm_mcp.cli", *args],
        capture_output=True,
        text=True,
        env={**os.environ, "CM_DATA_DIR": str(data_dir), **env},
        timeout=180,
        check=False,
    )


def test_call_logs_batch_prints_progress_summary_and_links(tmp_path: Path) -> None:
    done = _cm_mcp(
        "call", "logs_batch", json.dumps(EXPORT_ARGS), "--sandbox", "--volume", "300", data_dir=tmp_path
    )
    assert done.returncode == 0, done.stderr
    assert "partitions" in done.stderr and "1/1" in done.stderr  # the progress bar, on stderr
    out = done.stdout
    assert out.startswith("export complete: ")
    (result_line,) = [line for line in out.splitlines() if line.startswith("-> result-")]
    result_id = result_line.split("cm://results/", 1)[1].split()[0]
    assert (tmp_path / "results" / result_id / "meta.json").exists()
    file_lines = [line for line in out.splitlines() if line.startswith("-> part-")]
    assert file_lines and all("file://" in line for line in file_lines)
    assert '{"name"' not in out  # links are lines for a person, not JSON dumps

    listed = _cm_mcp("call", "results_list", "{}", "--json", data_dir=tmp_path)  # no API needed
    assert listed.returncode == 0, listed.stderr
    assert [r["id"] for r in json.loads(listed.stdout)["results"]] == [result_id]


def test_call_with_invalid_arguments_fails_with_the_rule_and_sends_nothing(tmp_path: Path) -> None:
    bad = {**EXPORT_ARGS, "domain": "pay.example.com"}
    # Nothing listens on the API URL and there is no token: only local validation can answer.
    offline = {"CM_API_URL": "http://127.0.0.1:9", "CM_API_TOKEN": ""}
    done = _cm_mcp("call", "logs_batch", json.dumps(bad), data_dir=tmp_path, **offline)
    assert done.returncode == 1
    assert "domain: must be a list of strings" in done.stdout
    assert "nothing was sent" in done.stdout
    assert "A valid call:" in done.stdout
    not_json = _cm_mcp("call", "logs_batch", "{domain", data_dir=tmp_path, **offline)
    assert not_json.returncode == 2 and "JSON" in not_json.stderr


def test_block_text_renders_links_as_lines() -> None:
    assert block_text(TextContent(type="text", text="hello")) == "hello"
    link = ResourceLink(type="resource_link", name="r1", uri="cm://results/r1", description="The export")
    assert block_text(link) == "-> r1: cm://results/r1  (The export)"
    bare = ResourceLink(type="resource_link", name="f", uri="file:///tmp/f.gz")
    assert block_text(bare) == "-> f: file:///tmp/f.gz"


@pytest.mark.anyio
async def test_serve_over_streamable_http_with_the_sandbox(tmp_path: Path) -> None:
    """`cm-mcp serve --sandbox --transport streamable-http`: a real MCP client over HTTP.

    The server binds port 0 itself and announces the address it got (no port picked, closed, then
    rebound: another process could take it in between)."""
    command = [sys.executable, "-m", "cm_mcp.cli", "serve", "--sandbox", "--volume", "300"]
    command += ["--transport", "streamable-http", "--port", "0"]
    server = await anyio.open_process(
        command,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        env={**os.environ, "CM_DATA_DIR": str(tmp_path)},
    )
    try:
        assert server.stderr is not None
        with anyio.fail_after(120):
            url = await _announced_url(server.stderr)
        async with Client(url) as client:
            names = {tool.name for tool in (await client.list_tools()).tools}
            assert {"logs_aggs", "logs_batch", "results_search"} <= names
            levels = {"levels": {"terms": {"field": "regex.extractions.logLevel"}}}
            result = await client.call_tool(
                "logs_aggs", {**EXPORT_ARGS, "start_time": "now-1d", "aggs": levels}
            )
            assert not result.is_error, result.content
            assert result.structured_content["summary"]["total_documents"] > 0  # type: ignore[index]
    finally:
        server.terminate()
        with anyio.fail_after(60):
            await server.wait()


async def _announced_url(stderr: Any) -> str:
    """The MCP endpoint from the server's start-up line (`... streamable HTTP at http://...:PORT/mcp`)."""
    seen = b""
    while True:
        chunk = await stderr.receive()
        seen += chunk
        found = re.search(rb"streamable HTTP at (http://127\.0\.0\.1:\d+/mcp)", seen)
        if found:
            return found[1].decode()


def test_triage_prints_a_table_of_findings_with_sparklines(tmp_path: Path) -> None:
    """`cm-mcp triage --sandbox`: the built-in cluster-down incident (5 h ago) as the first finding,
    what was spent, and the next call; --json gives the tool's structured result."""
    args = ("triage", "--sandbox", "--application", "atr", "--app-type", "kubernetes")
    done = _cm_mcp(*args, data_dir=tmp_path, COLUMNS="120")
    assert done.returncode == 0, done.stderr
    out = done.stdout
    assert "spent: 2 logs_aggs" in out
    (row,) = [line for line in out.splitlines() if line.startswith("│1 ")]
    assert "pay.example.com" in row and "ERROR" in row
    assert re.search("[▁▂▃▄▅▆▇█]{4,}", row), row  # the finding's sparkline
    assert "#1 NEW " in out  # its top message, new against the baseline
    assert "next (#1): " in out

    as_json = _cm_mcp(*args, "--json", data_dir=tmp_path)
    assert as_json.returncode == 0, as_json.stderr
    result = json.loads(as_json.stdout)
    assert result["findings"][0]["scope"]["atr.domain_name"] == "pay.example.com"
    assert result["spent"]["requests"]["logs_aggs"] == 2


def test_triage_with_invalid_options_names_the_field_and_sends_nothing(tmp_path: Path) -> None:
    offline = {"CM_API_URL": "http://127.0.0.1:9", "CM_API_TOKEN": ""}
    done = _cm_mcp(
        "triage", "--application", "atr", "--app-type", "kubernetes", "--since", "now-2m",
        data_dir=tmp_path, **offline,
    )  # fmt: skip
    assert done.returncode == 1
    assert "start_time" in done.stderr and "at least 10 minutes" in done.stderr
    assert "nothing was sent" in done.stderr
    # sandbox options without --sandbox are refused, as by every command
    misplaced = _cm_mcp(
        "triage",
        "--application",
        "atr",
        "--app-type",
        "kubernetes",
        "--seed",
        "3",
        data_dir=tmp_path,
        **offline,
    )
    assert misplaced.returncode == 2 and "--sandbox" in misplaced.stderr
