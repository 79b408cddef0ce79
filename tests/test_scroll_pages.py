"""Scroll pages with plain-dict hits (api/pages.py) are exactly what the per-hit models gave.

The reference below is the code path the scroll tools used before issue 10's hot-path work:
`parse_response` into `Hit` models, then `model_dump(by_alias=True)` per hit. Every comparison is
against that reference computed in the same test, on real sandbox pages and on generated odd ones.
"""

from __future__ import annotations

import json
from typing import Any

import httpx2
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cm_mcp.api.client import CMClient
from cm_mcp.api.errors import UnexpectedResponseError
from cm_mcp.api.pages import ScrollEndpoint, ScrollPage, parse_scroll_page, plain_hits
from cm_mcp.api.requests import LogsScrollRequest, WorkloadsScrollRequest, parse_request
from cm_mcp.api.responses import LogsScrollResponse, WorkloadsScrollResponse, parse_response
from cm_mcp.ops import scrolls
from cm_mcp.sandbox.runner import RunningSandbox
from tests.conftest import frozen

WINDOW = {
    "application": "atr",
    "app_type": "kubernetes",
    "domain": ["*"],
    "start_time": "now-3d",
    "end_time": "now-1d",
}


def reference(endpoint: ScrollEndpoint, body: dict[str, Any]) -> ScrollPage:
    """The page as the models make it (the old path)."""
    response = parse_response(endpoint, body)
    if isinstance(response, LogsScrollResponse):
        listed = response.data.logs
    else:
        assert isinstance(response, WorkloadsScrollResponse)
        listed = response.data.workloads
    return ScrollPage(response.meta, response.data.count, [hit.model_dump(by_alias=True) for hit in listed])


def assert_same_page(endpoint: ScrollEndpoint, body: dict[str, Any]) -> None:
    """Both paths accept `body` with the same page (hits equal, key order included), or both reject it
    with the same errors."""
    try:
        expected = reference(endpoint, body)
    except ValidationError as exc:
        with pytest.raises(ValidationError) as raised:
            parse_scroll_page(endpoint, body)
        assert raised.value.errors() == exc.errors()
        return
    page = parse_scroll_page(endpoint, body)
    assert page.meta == expected.meta
    assert page.count == expected.count
    assert page.hits == expected.hits
    assert json.dumps(page.hits) == json.dumps(expected.hits)  # the same keys in the same order


# --- real pages ----------------------------------------------------------------------------------------


async def _raw_page(sandbox: RunningSandbox, path: str, body: dict[str, Any]) -> bytes:
    async with httpx2.AsyncClient(base_url=sandbox.url, timeout=120) as http:
        response = await http.post(path, json=body, headers={"Authorization": f"Bearer {sandbox.token}"})
    response.raise_for_status()
    return response.content


@pytest.mark.anyio
async def test_sandbox_pages_are_the_models_pages(sandbox: RunningSandbox) -> None:
    logs = parse_request(LogsScrollRequest, {**frozen(WINDOW), "size": 2000}).to_body()
    workloads = parse_request(WorkloadsScrollRequest, {**frozen(WINDOW), "size": 200}).to_body()
    logs_body = json.loads(await _raw_page(sandbox, "/v2/logs/scroll", logs))
    workloads_body = json.loads(await _raw_page(sandbox, "/v2/workloads/scroll", workloads))
    assert len(logs_body["data"]["logs"]) > 100
    assert workloads_body["data"]["workloads"]
    # the fast path is the one taken on the API's own pages
    assert plain_hits(logs_body["data"]["logs"]) is not None
    assert plain_hits(workloads_body["data"]["workloads"]) is not None
    assert_same_page("logs_scroll", logs_body)
    assert_same_page("workloads_scroll", workloads_body)


@pytest.mark.anyio
@pytest.mark.parametrize("fields", [None, ["message", "service"]])
async def test_the_logs_scroll_answer_is_the_one_the_models_gave(
    sandbox: RunningSandbox, fields: list[str] | None
) -> None:
    """One real page, replayed byte for byte: the tool's answer (text and structured content) is the
    one built from the models' hits."""
    arguments = {**frozen(WINDOW), "size": 3000, **({"fields": fields} if fields else {})}
    request = parse_request(LogsScrollRequest, arguments)
    content = await _raw_page(sandbox, "/v2/logs/scroll", request.to_body())

    def replay(_: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, content=content, headers={"Content-Type": "application/json"})

    async with CMClient(
        api_url=sandbox.url, token=sandbox.token, transport=httpx2.MockTransport(replay)
    ) as api:
        answer = await scrolls.scroll(api, request, max_tokens=4000)
    old = reference("logs_scroll", json.loads(content))
    expected = await scrolls._scroll_page(request, old.meta, old.hits, old.count, 4000, None)
    assert answer.text == expected.text
    assert answer.structured.model_dump(mode="json") == expected.structured.model_dump(mode="json")
    assert "templates" in answer.text or "template" in answer.text


# --- odd pages: every shape the fast path passes on must come out as the models make it -----------------

_text = st.text(max_size=8)
_json_scalar = st.none() | st.booleans() | st.integers(-(2**60), 2**60) | st.floats() | _text
_value = st.recursive(
    _json_scalar,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(_text, inner, max_size=3),
    max_leaves=6,
)
_hit_key = st.sampled_from(
    ["_index", "_id", "_score", "_source", "index", "id", "score", "source", "extra", "_x"]
)
_hit = st.dictionaries(_hit_key, _value, max_size=6) | st.fixed_dictionaries(
    {
        "_index": _text,
        "_id": _text,
        "_score": st.none() | st.floats() | st.integers(),
        "_source": st.dictionaries(_text, _value),
    }
)


@settings(max_examples=300, deadline=None)
@given(
    hits=st.lists(_hit, max_size=4) | _value,
    count=st.none() | st.integers() | _text,
    endpoint=st.sampled_from(["logs_scroll", "workloads_scroll"]),
)
def test_any_page_is_accepted_and_made_as_the_models_do(
    hits: Any, count: Any, endpoint: ScrollEndpoint
) -> None:
    key = "logs" if endpoint == "logs_scroll" else "workloads"
    assert_same_page(endpoint, {"data": {key: hits, "count": count}, "meta": {"request_id": "r-1"}})


@pytest.mark.parametrize(
    "body",
    [
        {},
        {"data": None},
        {"data": {"logs": None}},
        {"data": {"logs": [{"_source": None}]}},
        {"data": {"logs": [{"_id": 7}]}, "meta": {"request_id": "r-2"}},
        {"data": {"logs": [{"_score": "1.5", "_source": {"a": 1}}]}},
        {"data": {"logs": [{"_score": True}]}},
        {"data": {"logs": [{"_score": 2**60}]}},
        {"data": {"logs": [{"source": {"a": 1}, "_index": "i"}]}},
        {"data": {"logs": [{"_source": {"a": 1}, "source": {"b": 2}}]}},
        {"data": {"logs": [{"_id": "x", "extra": [1], "_score": 3}], "count": "12"}},
        {"data": {"logs": [], "count": 5}, "meta": {"scroll_id": 5}},
        {"data": {"logs": [{}], "extra": 1}, "meta": {"rate_limit": {"daily_remaining": "4"}}, "x": 1},
    ],
)
def test_odd_pages(body: dict[str, Any]) -> None:
    assert_same_page("logs_scroll", body)


@pytest.mark.anyio
async def test_a_malformed_page_is_the_same_clear_error(sandbox: RunningSandbox) -> None:
    body = {
        "data": {"logs": [{"_id": "a", "_source": {}}, {"_id": 5, "_source": []}]},
        "meta": {"request_id": "r-9"},
    }

    def replay(_: httpx2.Request) -> httpx2.Response:
        return httpx2.Response(200, json=body)

    async with CMClient(
        api_url=sandbox.url, token=sandbox.token, transport=httpx2.MockTransport(replay)
    ) as api:
        with pytest.raises(UnexpectedResponseError) as old:
            await api.call("logs_scroll", {"scroll_id": "s"})
        with pytest.raises(UnexpectedResponseError) as new:
            await api.scroll_page("logs_scroll", {"scroll_id": "s"})
    assert str(new.value) == str(old.value)
    assert "data.logs.1._id" in str(new.value) and "data.logs.1._source" in str(new.value)
    assert new.value.request_id == "r-9"
