"""MCP progress strictly increases, as a client receives it.

The MCP spec: "The `progress` value MUST increase with each notification". The batch layer reports an
event after every step, and a status poll that changed nothing repeats the last value, so the server
drops repeats (`cm_mcp.server.endpoint.progress_of`). Checked here where a client sees it: through a real
MCP client session, in both protocol eras (`auto`: direct dispatch; `legacy`: JSON-RPC notifications
carrying the progress token).
"""

from __future__ import annotations

from itertools import pairwise
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import Client
from mcp.server.mcpserver import Context, MCPServer

from cm_mcp.api.client import CMClient
from cm_mcp.api.settings import Settings
from cm_mcp.batch import ProgressEvent
from cm_mcp.sandbox.runner import RunningSandbox
from cm_mcp.server.app import build_server
from cm_mcp.server.endpoint import progress_of
from cm_mcp.server.runtime import pointed_at
from tests.conftest import fast_retries

pytestmark = pytest.mark.anyio

MODES = ["auto", "legacy"]

Received = list[tuple[float, float | None, str | None]]


def _recorder(received: Received) -> Any:
    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        received.append((progress, total, message))

    return on_progress


def _strictly_increasing(values: list[float]) -> bool:
    return all(before < after for before, after in pairwise(values))


@pytest.mark.parametrize("mode", MODES)
async def test_an_export_reports_strictly_increasing_progress(
    sandbox: RunningSandbox, tmp_path: Path, mode: str
) -> None:
    settings = pointed_at(Settings(data_dir=tmp_path), sandbox.url, sandbox.token)
    received: Received = []
    arguments = {
        "application": "atr",
        "app_type": "kubernetes",
        "domain": ["*"],
        "start_time": "now-7d",
        "end_time": "now-1d",
    }
    async with (
        CMClient(api_url=sandbox.url, token=sandbox.token, retry_policy=fast_retries()) as api,
        Client(build_server(settings, client=api), mode=mode, raise_exceptions=True) as mcp,
    ):
        with anyio.fail_after(120):
            result = await mcp.call_tool("logs_batch", arguments, progress_callback=_recorder(received))
    assert not result.is_error, result.content
    outcome = result.structured_content
    assert outcome is not None and outcome["complete"] is True
    progress = [value for value, _, _ in received]
    # submitted, at least one poll, the partitions downloaded, done: several steps, none repeated
    assert len(progress) >= 2, received
    assert _strictly_increasing(progress), f"progress repeats or goes back: {progress}"
    # the partitions, then storing the result: the final event is above every other, so it arrives
    assert received[-1][0] == received[-1][1] == outcome["partitions"] + 1, "progress ends at its total"
    assert (received[-1][2] or "").startswith("export finished: "), received[-1]


def _scripted(events: list[ProgressEvent]) -> MCPServer:
    """A server whose one tool passes `events` through the export tools' progress reporter."""
    server = MCPServer("progress-guard")

    @server.tool()
    async def run(ctx: Context) -> str:
        report = progress_of(ctx)
        for event in events:
            await report(event)
        return f"reported {len(events)} events"

    return server


@pytest.mark.parametrize("mode", MODES)
async def test_repeated_and_lower_values_never_reach_the_client(mode: str) -> None:
    # What an export can produce: submitted (no total yet), polls that change nothing, a total that
    # grows; plus a lower value, which the batch layer never sends but the protocol would still forbid.
    script = [
        (0.0, None, "submitted"),
        (0.0, 3.0, "poll: nothing ready"),
        (0.0, 3.0, "poll: nothing ready"),
        (1.0, 3.0, "1/3 partitions"),
        (1.0, 4.0, "poll: a partition more"),
        (0.5, 4.0, "lower"),
        (2.0, 4.0, "2/4 partitions"),
        (4.0, 4.0, "export finished"),
        (4.0, 4.0, "export finished"),
    ]
    events = [ProgressEvent(value, total, message, "polling") for value, total, message in script]
    received: Received = []
    async with Client(_scripted(events), mode=mode, raise_exceptions=True) as mcp:
        result = await mcp.call_tool("run", {}, progress_callback=_recorder(received))
    assert not result.is_error
    assert received == [
        (0.0, None, "submitted"),
        (1.0, 3.0, "1/3 partitions"),
        (2.0, 4.0, "2/4 partitions"),
        (4.0, 4.0, "export finished"),
    ]


async def test_without_a_progress_token_reports_are_a_no_op() -> None:
    events = [ProgressEvent(value, 2.0, "step", "polling") for value in (0.0, 1.0, 1.0, 2.0)]
    async with Client(_scripted(events), raise_exceptions=True) as mcp:
        result = await mcp.call_tool("run", {})
    assert not result.is_error
    assert result.content[0].text == "reported 4 events"
