"""The MCP surface besides tools, through real MCP sessions: stored results listed as resources
(newest first, paginated), the field catalog (resource and tool), completions for the prompt and the
resource templates, the prompt's serverless scope."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from mcp import Client, MCPError
from mcp.types import PromptReference, ResourceTemplateReference

from cm_mcp.api.settings import Settings
from cm_mcp.sandbox.runner import RunningSandbox
from cm_mcp.server.app import build_server
from cm_mcp.server.catalog import RESOURCES_PAGE
from cm_mcp.store import ResultStore
from tests.test_server_sandbox import _api_requests, _session, _settings, _text
from tests.token_ruler import model_tokens

pytestmark = pytest.mark.anyio

WINDOW = {"start_time": "2026-01-19T00:00:00.000Z", "end_time": "2026-01-19T23:59:59.999Z"}


@asynccontextmanager
async def _offline(data_dir: Path) -> AsyncIterator[Client]:
    """A session whose API is never reached (the surface under test answers from the store)."""
    settings = Settings(data_dir=data_dir, api_url="http://127.0.0.1:9", api_token="unused")
    async with Client(build_server(settings), raise_exceptions=True) as client:
        yield client


def _hit(n: int, **source: Any) -> dict[str, Any]:
    return {"_id": f"id-{n}", "_source": {"@timestamp": f"2026-01-19T00:00:{n % 60:02d}.000Z", **source}}


def _store(data_dir: Path, request: dict[str, Any], hits: list[dict[str, Any]], kind: str = "logs") -> str:
    info = ResultStore(data_dir).create(kind=kind, source="scroll", request={**request, **WINDOW}, hits=hits)  # type: ignore[arg-type]
    return info.id


async def test_resources_list_pages_stored_results_newest_first(tmp_path: Path) -> None:
    request = {"application": "atr", "app_type": "kubernetes", "domain": ["pay.example.com"]}
    stored = [_store(tmp_path, request, [_hit(n, message="m")]) for n in range(RESOURCES_PAGE + 7)]
    async with _offline(tmp_path) as client:
        first = await client.list_resources()
        assert first.next_cursor is not None
        catalogs = [r for r in first.resources if str(r.uri).startswith("cm://fields/")]
        assert [str(r.uri) for r in catalogs] == ["cm://fields/atr/kubernetes"]
        results = [r for r in first.resources if str(r.uri).startswith("cm://results/")]
        assert len(results) == RESOURCES_PAGE
        # a result stored between two pages does not shift them
        late = _store(tmp_path, request, [_hit(0, message="late")])
        second = await client.list_resources(cursor=first.next_cursor)
        assert second.next_cursor is None
        assert not [r for r in second.resources if str(r.uri).startswith("cm://fields/")]
        listed = [str(r.uri).rsplit("/", 1)[1] for r in results + list(second.resources)]
        infos = [info for info in ResultStore(tmp_path).list() if info.id in stored]
        newest_first = [info.id for info in sorted(infos, key=lambda i: (i.created, i.id), reverse=True)]
        assert listed == newest_first, "every result once, newest first"
        assert late not in listed
        assert results[0].mime_type == "application/json" and "1 records" in (results[0].title or "")
        assert results[0].annotations is not None and results[0].annotations.last_modified
        body = await client.read_resource(str(results[0].uri))
        assert json.loads(body.contents[0].text)["id"] == listed[0]  # type: ignore[union-attr]
        with pytest.raises(MCPError, match="invalid cursor"):
            await client.list_resources(cursor="not-a-cursor")


async def test_the_field_catalog_is_documented_until_data_is_stored(tmp_path: Path) -> None:
    async with _offline(tmp_path) as client:
        documented = json.loads(
            (await client.read_resource("cm://fields/eventops/serverless")).contents[0].text
        )  # type: ignore[union-attr]
        assert documented["source"] == "documented"
        assert {"logLevel", "function_name", "response.status_code"} <= {
            f["field"] for f in documented["fields"]
        }
        with pytest.raises(MCPError, match="serverless"):
            await client.read_resource("cm://fields/eventops/ec2")
        hits = [
            _hit(
                n,
                logLevel=("ERROR", "INFO")[n % 2],
                message=f"Task {n} timed out",
                tenant="acme",
                stage="prod",
            )
            | (
                {"_source": {**_hit(n)["_source"], "logLevel": "WARN", "user": {"id": f"u{n}"}}}
                if n % 4 == 0
                else {}
            )
            for n in range(40)
        ]
        _store(tmp_path, {"application": "eventops", "app_type": "serverless", "tenant": ["acme"]}, hits)
        stored = json.loads((await client.read_resource("cm://fields/eventops/serverless")).contents[0].text)  # type: ignore[union-attr]
        tool = await client.call_tool("fields", {"application": "eventops", "app_type": "serverless"})
    assert stored["source"] == "stored" and stored["sampled"] == 40
    fields = {f["field"]: f for f in stored["fields"]}
    assert fields["logLevel"]["present"] == 1.0 and fields["logLevel"]["documented"] is True
    assert set(fields["logLevel"]["examples"]) <= {"ERROR", "INFO", "WARN"}
    assert fields["user.id"]["present"] == 0.25 and fields["user.id"]["type"] == "string"
    assert fields["@timestamp"]["type"] == "time"
    assert fields["tenant"]["examples"] == ["acme"]
    assert "stage" in fields and "message" in fields
    assert not tool.is_error
    text = _text(tool)
    assert "user.id" in text and "25%" in text and '"acme"' in text
    assert tool.structured_content["fields"][0] in fields  # type: ignore[index]
    assert sum(model_tokens(tool)) <= 4000


async def test_completions_for_the_prompt_and_the_templates(sandbox: RunningSandbox, tmp_path: Path) -> None:
    async with _session(sandbox, _settings(sandbox, tmp_path)) as client:
        assert client.server_capabilities.completions is not None
        investigate = PromptReference(name="investigate")
        apps = await client.complete(investigate, {"name": "application", "value": "e"})
        assert apps.completion.values == ["eventops"]
        types = await client.complete(
            investigate, {"name": "app_type", "value": ""}, {"application": "eventops"}
        )
        assert types.completion.values == ["serverless"]
        types = await client.complete(investigate, {"name": "app_type", "value": ""}, {"application": "atr"})
        assert types.completion.values == ["ec2", "kubernetes"]
        assert (await client.complete(investigate, {"name": "domain", "value": ""})).completion.values == []
        starts = await client.complete(investigate, {"name": "start_time", "value": "now-1"})
        assert "now-1h" in starts.completion.values and "now-1d/d" in starts.completion.values

        before = await _api_requests(sandbox)
        scope = {"start_time": "now-2d", "end_time": "now-1d", "size": 300}
        await client.call_tool(
            "logs_scroll", {"application": "atr", "app_type": "kubernetes", "domain": ["*"], **scope}
        )
        serverless = {
            "application": "eventops",
            "app_type": "serverless",
            "log_group": ["*"],
            "tenant": ["*"],
            "stage": ["*"],
        }
        await client.call_tool("logs_scroll", {**serverless, **scope})
        spent = await _api_requests(sandbox) - before
        domains = await client.complete(
            investigate, {"name": "domain", "value": "pa"}, {"application": "atr"}
        )
        assert domains.completion.values == ["pay.example.com"]
        everything = await client.complete(
            investigate, {"name": "domain", "value": ""}, {"application": "atr"}
        )
        assert "pay.example.com" in everything.completion.values and len(everything.completion.values) >= 2
        assert all(value.endswith(".example.com") for value in everything.completion.values)
        tenants = await client.complete(
            investigate, {"name": "tenant", "value": ""}, {"application": "eventops"}
        )
        assert "acme" in tenants.completion.values
        stages = await client.complete(
            investigate, {"name": "stage", "value": "pr"}, {"application": "eventops"}
        )
        assert stages.completion.values == ["prod"]

        results = ResourceTemplateReference(uri="cm://results/{result_id}")
        ids = (await client.complete(results, {"name": "result_id", "value": "r"})).completion.values
        assert ids == [info.id for info in ResultStore(tmp_path).list()] and len(ids) == 2  # newest first
        one = (await client.complete(results, {"name": "result_id", "value": ids[1][-6:]})).completion.values
        assert one == [ids[1]]
        fields = ResourceTemplateReference(uri="cm://fields/{application}/{app_type}{?kind}")
        kinds = await client.complete(fields, {"name": "kind", "value": "w"})
        assert kinds.completion.values == ["workloads"]
        workload_types = await client.complete(
            fields, {"name": "app_type", "value": ""}, {"kind": "workloads"}
        )
        assert workload_types.completion.values == ["ec2", "kubernetes"]
        assert await _api_requests(sandbox) - before == spent, "completions cost no request"
        prompt = await client.get_prompt(
            "investigate",
            {"application": "eventops", "app_type": "serverless", "tenant": "acme", "stage": "prod"},
        )
    text = prompt.messages[0].content.text  # type: ignore[union-attr]
    assert "for tenant acme, stage prod (eventops, serverless)" in text
    assert "logLevel" in text
