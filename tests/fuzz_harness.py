"""Fuzzing every tool through a real MCP client session: strategies, a counting upstream, the oracle.

Shared by tests/test_fuzz.py (a few thousand examples, derandomised, in CI) and bench/fuzz.py
(10,000+, random). One in-memory MCP session (`mcp.Client` on the real server) runs in a background
event loop, so each Hypothesis example is one `tools/call`, not one session.

The upstream is an httpx2 transport that counts every request and answers each endpoint with a
documented-shape body (aggregation answers mirror the request's aggregations, so the summarisers
run on real structures). Batch submissions answer 500 and status polls 404, so a valid export call
ends quickly with an explained upstream error instead of a long export.

The oracle, independent of the implementation's own classification:
- no call raises and no result is the SDK's bare "Error executing tool" (an unhandled exception);
- every isError either lists fields (`- <path>: <rule>` lines) or opens with a known cause label;
- a call refused as invalid made no upstream request;
- arguments known to be invalid by construction (an unknown key, a required key left out, a value of
  the wrong JSON type, a budget outside its range) are refused, without an upstream request.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx2
import jwt
from anyio.from_thread import BlockingPortal, start_blocking_portal
from hypothesis import strategies as st
from mcp import Client

from cm_mcp.api.budget import MAX_TOKENS, MIN_TOKENS
from cm_mcp.api.client import CMClient
from cm_mcp.api.settings import Settings
from cm_mcp.server.app import build_server
from cm_mcp.server.tools import build_tools
from cm_mcp.store import ResultStore

TOKEN = jwt.encode(
    {"sub": "fuzz", "exp": 4_102_444_800}, "a-secret-for-fuzzing-only-32-bytes!", algorithm="HS256"
)

#: How an explained failure opens (cm_mcp/ops/explain.py): the cause, before anything else.
CAUSE_LABELS = (
    "Configuration:",
    "Network:",
    "Upstream failure:",
    "Upstream response:",
    "Upstream response too large:",
    "Arguments rejected upstream:",
    "Quota:",
    "Batch token:",
    "Authentication:",
    "Authentication or batch token (ambiguous):",
    "Local store:",
    "Download:",
    "Export:",
)
_FIELD_LINE = re.compile(r"^- \S[^:]*: \S", re.MULTILINE)
UNHANDLED = "Error executing tool"
VALIDATION = "Invalid arguments for "

#: A stored result the results_* tools can be pointed at.
STORED_HITS = [
    {
        "_id": f"id-{n}",
        "_source": {
            "@timestamp": f"2026-01-19T00:{n:02d}:00.000Z",
            "message": f"GET /orders/{n} failed after {n * 7} ms",
            "regex": {"extractions": {"logLevel": ["ERROR", "INFO", "WARN"][n % 3]}},
            "atr": {"domain_name": "pay.example.com"},
        },
    }
    for n in range(30)
]


# --- the upstream ------------------------------------------------------------------------------------


class CountingUpstream:
    """Stands in for the API: counts requests, answers each endpoint with a documented-shape body."""

    def __init__(self) -> None:
        self.requests = 0
        self.paths: Counter[str] = Counter()

    def __call__(self, request: httpx2.Request) -> httpx2.Response:
        self.requests += 1
        path = request.url.path
        self.paths[path] += 1
        body = json.loads(request.content) if request.content else {}
        meta = {"api_version": "v2", "rate_limit": {"daily_remaining": 40}, "request_id": "fuzz-1"}
        if path == "/v2/logs/scroll":
            return httpx2.Response(200, json={"data": {"logs": _hits(), "count": 3}, "meta": meta})
        if path == "/v2/workloads/scroll":
            return httpx2.Response(
                200, json={"data": {"workloads": _hits(workloads=True), "count": 3}, "meta": meta}
            )
        if path in ("/v2/logs/aggs", "/v2/workloads/aggs"):
            aggs = body.get("aggs") if isinstance(body.get("aggs"), dict) else {}
            data = {"aggregations": fake_aggregations(aggs), "total_documents": 1234}
            return httpx2.Response(200, json={"data": data, "meta": meta})
        if path in ("/v2/logs/batch", "/v2/workloads/batch", "/v1/logs/batch"):
            return httpx2.Response(500, json={"message": "fuzz: batch submissions are not simulated"})
        if path in ("/v2/logs/batch/status", "/v2/workloads/batch/status"):
            return httpx2.Response(
                404, json={"message": "No record of this token. Note: Tokens expire after 2 hours"}
            )
        if path == "/v1/logs/batch/urls":
            entry = {"presigned_url": "null", "time_range": "now-15m/m", "ready": False, "status": "pending"}
            return httpx2.Response(200, json={"presigned_urls": [entry]})
        if path == "/v1/logs/scroll":
            logs = [hit["_source"] for hit in _hits()]
            return httpx2.Response(
                200, json={"logs": logs, "has_more": False, "daily_requests_remaining": 400}
            )
        if path == "/v1/query":
            summary = {"ticket_count": 3, "domain": body.get("domain"), "client": "fuzz", "WBS": "W1"}
            return httpx2.Response(200, json={"summary": summary, "daily_requests_remaining": 400})
        return httpx2.Response(404, json={"message": f"no route {path}"})


def _hits(*, workloads: bool = False) -> list[dict[str, Any]]:
    out = []
    for n in range(3):
        source: dict[str, Any] = {"@timestamp": f"2026-01-19T00:0{n}:00.000Z"}
        if workloads:
            source |= {"workflow": {"name": "Incident_Response_Workflow"}, "workload": {"state": "FAILED"}}
        else:
            source |= {
                "message": f"upstream timeout after {n} ms",
                "regex": {"extractions": {"logLevel": "ERROR"}},
            }
        out.append({"_index": "logs-atr", "_id": f"h{n}", "_score": 1.0, "_source": source})
    return out


def fake_aggregations(aggs: Mapping[str, Any], depth: int = 0) -> dict[str, Any]:
    """An OpenSearch-shaped answer to `aggs` (two buckets per bucket aggregation)."""
    out: dict[str, Any] = {}
    for name, spec in aggs.items():
        if not isinstance(spec, Mapping):
            continue
        kinds = [key for key in spec if key not in ("aggs", "aggregations")]
        kind = kinds[0] if kinds else "terms"
        sub = spec.get("aggs", spec.get("aggregations"))
        children = fake_aggregations(sub, depth + 1) if isinstance(sub, Mapping) and depth < 4 else {}
        if kind in ("date_histogram", "histogram"):
            start = 1768780800000
            out[name] = {
                "buckets": [
                    {
                        "key_as_string": "2026-01-19T00:00:00.000Z",
                        "key": start + i * 3_600_000,
                        "doc_count": 5 * i,
                        **children,
                    }
                    for i in range(3)
                ]
            }
        elif kind in ("filter", "missing"):
            out[name] = {"doc_count": 7, **children}
        elif kind in ("terms", "range", "filters"):
            out[name] = {
                "doc_count_error_upper_bound": 0,
                "sum_other_doc_count": 2,
                "buckets": [{"key": f"k{i}", "doc_count": 10 - i, **children} for i in range(2)],
            }
        else:
            out[name] = {"value": 4.5}
    return out


# --- the session -------------------------------------------------------------------------------------


@dataclass
class Stats:
    cases: int = 0
    calls: int = 0
    refused_locally: int = 0
    invalid_by_construction: int = 0
    upstream_requests: int = 0
    upstream_requests_for_invalid_input: int = 0
    unhandled_errors: int = 0
    unexplained_errors: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    def line(self) -> str:
        return (
            f"cases {self.cases:,} | calls {self.calls:,} | refused locally {self.refused_locally:,} "
            f"(invalid by construction {self.invalid_by_construction:,}) | upstream requests "
            f"{self.upstream_requests:,} | upstream requests for invalid input "
            f"{self.upstream_requests_for_invalid_input} | unhandled errors {self.unhandled_errors} | "
            f"unexplained errors {self.unexplained_errors}"
        )


class FuzzSession:
    """One MCP client session on the real server, driven synchronously from Hypothesis examples."""

    def __init__(self, portal: BlockingPortal, client: Client, upstream: CountingUpstream, result_id: str):
        self.portal = portal
        self.client = client
        self.upstream = upstream
        self.result_id = result_id
        self.stats = Stats()

    def call(self, tool: str, arguments: dict[str, Any], *, invalid: str | None) -> list[str]:
        """Call `tool` and check the oracle; returns the problems found (empty when it held)."""
        before = self.upstream.requests
        self.stats.calls += 1
        try:
            result = self.portal.call(self.client.call_tool, tool, arguments)
        except Exception as exc:  # the oracle's first rule: nothing escapes as an exception
            self.stats.unhandled_errors += 1
            return [f"{tool} raised {type(exc).__name__}: {exc}"]
        sent = self.upstream.requests - before
        self.stats.upstream_requests += sent
        text = "\n".join(getattr(block, "text", "") for block in result.content)
        return self._judge(tool, arguments, invalid, bool(result.is_error), text, sent)

    def _judge(
        self, tool: str, arguments: dict[str, Any], invalid: str | None, is_error: bool, text: str, sent: int
    ) -> list[str]:
        problems = []
        where = f"{tool} {json.dumps(arguments, default=str)[:300]}"
        refused = is_error and text.startswith(VALIDATION)
        if invalid is not None:
            self.stats.invalid_by_construction += 1
            if not refused:
                problems.append(f"invalid ({invalid}) but not refused: {where} -> {text[:300]}")
        if refused:
            self.stats.refused_locally += 1
            self.stats.outcomes["refused"] += 1
            if not _FIELD_LINE.search(text):
                problems.append(f"refusal names no field: {where} -> {text[:300]}")
        if (refused or invalid is not None) and sent:
            self.stats.upstream_requests_for_invalid_input += sent
            problems.append(f"{sent} upstream request(s) for invalid input: {where}")
        if is_error and UNHANDLED in text:
            self.stats.unhandled_errors += 1
            problems.append(f"unhandled error: {where} -> {text[:300]}")
        elif is_error and not refused:
            label = next((label for label in CAUSE_LABELS if text.startswith(label)), None)
            self.stats.outcomes[label or "unexplained"] += 1
            if label is None:
                self.stats.unexplained_errors += 1
                problems.append(f"error names neither a field nor a cause: {where} -> {text[:300]}")
        elif not is_error:
            self.stats.outcomes["ok"] += 1
        return problems


@contextmanager
def fuzz_session(data_dir: Path) -> Iterator[FuzzSession]:
    """A FuzzSession on a fresh data dir holding one stored result."""
    info = ResultStore(data_dir).create(
        kind="logs", source="scroll", request={"fuzz": True}, hits=STORED_HITS
    )
    ResultStore(data_dir).ensure_index(info.id)
    upstream = CountingUpstream()
    settings = Settings(
        _env_file=None,
        api_url="https://api.fuzz",
        api_token=TOKEN,
        data_dir=data_dir,
        enable_v1=True,
        max_retries=0,
    )
    with ExitStack() as stack:
        portal = stack.enter_context(start_blocking_portal())
        api = stack.enter_context(
            portal.wrap_async_context_manager(CMClient(settings, transport=httpx2.MockTransport(upstream)))
        )
        client = stack.enter_context(
            portal.wrap_async_context_manager(Client(build_server(settings, client=api)))
        )
        yield FuzzSession(portal, client, upstream, info.id)


# --- strategies --------------------------------------------------------------------------------------

SCHEMAS: dict[str, dict[str, Any]] = {
    tool.name: tool.parameters for tool in build_tools(Settings(_env_file=None, enable_v1=True))
}
TOOLS = sorted(SCHEMAS)

_scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(10**6), max_value=10**12)
    | st.floats(allow_nan=False, allow_infinity=False, width=32)
    | st.text(max_size=24)
)
json_values = st.recursive(
    _scalars,
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)

times = st.one_of(
    st.sampled_from(
        ["now", "now-15m", "now-1h", "now-6h", "now-1d/d", "now-7d", "now-30d/d", "now+1h", "now-1x"]
    ),
    st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2030, 1, 1)).map(
        lambda moment: moment.strftime("%Y-%m-%dT%H:%M:%SZ")
    ),
    st.text(max_size=12),
)
names = st.lists(
    st.sampled_from(["*", "pay.example.com", "shop.example.com", "", " ", "a*"]), min_size=0, max_size=3
)
fields = st.sampled_from(
    ["regex.extractions.logLevel", "@timestamp", "message", "atr.domain_name", "workload.state", "", "x.y"]
)
filter_leaf = st.one_of(
    st.builds(lambda f, v: {"term": {f: v}}, fields, _scalars),
    st.builds(lambda f, v: {"terms": {f: v}}, fields, st.lists(_scalars, max_size=3)),
    st.builds(
        lambda f, op, v: {"range": {f: {op: v}}},
        fields,
        st.sampled_from(["gt", "gte", "lt", "lte", "gtt"]),
        times,
    ),
    st.builds(lambda f: {"exists": {"field": f}}, fields),
    st.builds(lambda f, q: {"match": {f: q}}, fields, st.text(max_size=10)),
    st.builds(lambda f, q: {"match_phrase": {f: q}}, fields, st.text(max_size=10)),
    st.builds(lambda k, v: {k: v}, st.sampled_from(["prefix", "wildcard", "query_string"]), json_values),
)
filters = st.recursive(
    filter_leaf,
    lambda inner: st.builds(
        lambda clause, items: {"bool": {clause: items}},
        st.sampled_from(["must", "should", "must_not", "filter", "maybe"]),
        st.lists(inner, max_size=3),
    ),
    max_leaves=6,
)
intervals = st.sampled_from(
    ["1s", "30s", "1m", "5m", "1h", "1d", "2d", "1w", "1M", "0m", "1 hour", "hour", "7x"]
)
agg_leaf = st.one_of(
    st.builds(
        lambda f, size: {"terms": {"field": f, **({"size": size} if size is not None else {})}},
        fields,
        st.none() | st.integers(min_value=-1, max_value=100_000),
    ),
    st.builds(
        lambda key, value: {"date_histogram": {"field": "@timestamp", key: value}},
        st.sampled_from(["fixed_interval", "calendar_interval", "interval"]),
        intervals,
    ),
    st.builds(lambda f: {"filter": f}, filters),
    st.builds(
        lambda kind, f: {kind: {"field": f}},
        st.sampled_from(["avg", "max", "cardinality", "value_count"]),
        fields,
    ),
    st.builds(lambda kind: {kind: {}}, st.sampled_from(["significant_terms", "geo_bounds", "terms"])),
)
agg_names = st.sampled_from(["levels", "t", "by_domain", "x", "", "a.b"])
aggs = st.recursive(
    st.dictionaries(agg_names, agg_leaf, min_size=0, max_size=3),
    lambda inner: st.dictionaries(
        agg_names, st.builds(lambda leaf, sub: {**leaf, "aggs": sub}, agg_leaf, inner), min_size=1, max_size=2
    ),
    max_leaves=8,
)

#: Plausible values per argument name: enough valid ones to reach the upstream, enough wrong ones to
#: reach every rule.
FIELD_VALUES: dict[str, st.SearchStrategy[Any]] = {
    "application": st.sampled_from(["atr", "klewer", "eventops", "quasar", "ATR", "other"]),
    "app_type": st.sampled_from(["ec2", "kubernetes", "serverless", "caas", "lambda"]),
    "domain": names,
    "log_group": names,
    "tenant": names,
    "stage": names,
    "start_time": times,
    "end_time": times,
    "time_range": times,
    "size": st.integers(min_value=-5, max_value=20_000),
    "filters": st.lists(filters, max_size=3),
    "fields": st.lists(fields, max_size=3),
    "aggs": aggs,
    "scroll_id": st.sampled_from(["", "  ", "DXF1ZXJ5", "x" * 300]),
    "token": st.sampled_from(["", " ", "a6EBWDj2yr5v1UUG", "t" * 500]),
    "max_tokens": st.integers(min_value=0, max_value=40_000),
    "download": st.booleans(),
    "order": st.sampled_from(["asc", "desc", "up"]),
    "result_id": st.one_of(
        st.sampled_from(["r20261126-101500-a1b2c3", "../x", "r" * 300, ""]), st.text(max_size=40)
    ),
}

#: Values that are valid on their own (combinations may still break a rule): calls that reach the
#: upstream and the summarisers with many shapes, not only the examples.
valid_filter = st.one_of(
    st.builds(
        lambda v: {"term": {"regex.extractions.logLevel": v}}, st.sampled_from(["ERROR", "WARN", "INFO"])
    ),
    st.builds(
        lambda v: {"terms": {"atr.domain_name": v}}, st.lists(st.sampled_from(["a.com", "b.com"]), min_size=1)
    ),
    st.just({"range": {"@timestamp": {"gte": "now-2h"}}}),
    st.just({"exists": {"field": "message"}}),
    st.builds(lambda q: {"match": {"message": q}}, st.sampled_from(["timeout", "refused", "GET /orders"])),
)
valid_aggs = st.recursive(
    st.dictionaries(
        st.sampled_from(["levels", "t", "by_domain", "n"]),
        st.one_of(
            st.builds(
                lambda size: {"terms": {"field": "regex.extractions.logLevel", "size": size}},
                st.integers(1, 50),
            ),
            st.builds(
                lambda interval: {"date_histogram": {"field": "@timestamp", "fixed_interval": interval}},
                st.sampled_from(["1m", "5m", "15m", "1h", "6h", "1d"]),
            ),
            st.builds(lambda f: {"filter": f}, valid_filter),
            st.just({"max": {"field": "response.status_code"}}),
            st.just({"cardinality": {"field": "atr.domain_name"}}),
        ),
        min_size=1,
        max_size=3,
    ),
    lambda inner: st.dictionaries(
        st.sampled_from(["outer", "by_level"]),
        st.builds(lambda sub: {"terms": {"field": "atr.domain_name", "size": 5}, "aggs": sub}, inner),
        min_size=1,
        max_size=1,
    ),
    max_leaves=6,
)
PLAUSIBLE: dict[str, st.SearchStrategy[Any]] = {
    "domain": st.sampled_from([["*"], ["pay.example.com"], ["pay.example.com", "shop.example.com"]]),
    "start_time": st.sampled_from(["now-15m", "now-1h", "now-6h", "now-1d/d", "2026-01-19T00:00:00Z"]),
    "end_time": st.just("now"),
    "size": st.integers(min_value=1, max_value=2000),
    "filters": st.lists(valid_filter, min_size=1, max_size=3),
    "fields": st.lists(
        st.sampled_from(["message", "@timestamp", "regex.extractions.logLevel"]),
        min_size=1,
        max_size=2,
        unique=True,
    ),
    "aggs": valid_aggs,
    "max_tokens": st.integers(min_value=MIN_TOKENS, max_value=MAX_TOKENS),
    "order": st.sampled_from(["asc", "desc"]),
    "time_range": st.sampled_from(["now-15m/m", "now-1d/d", "now-30d/d"]),
}

#: Values of a JSON type the property does not take (never null: null means "not given").
_WRONG_TYPE: dict[str, st.SearchStrategy[Any]] = {
    "string": st.one_of(st.integers(), st.booleans(), st.lists(st.text(max_size=4), min_size=1, max_size=2)),
    "integer": st.one_of(
        st.lists(st.integers(), min_size=1, max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
        st.text(alphabet="abc", min_size=1, max_size=4),
    ),
    "boolean": st.one_of(
        st.lists(st.booleans(), min_size=1, max_size=2),
        st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
    ),
    "array": st.one_of(
        st.integers(),
        st.booleans(),
        st.dictionaries(st.text(max_size=3), st.integers(), min_size=1, max_size=2),
    ),
    "object": st.one_of(st.integers(), st.booleans(), st.lists(st.integers(), min_size=1, max_size=2)),
}


def example_arguments(tool: str, result_id: str) -> dict[str, Any]:
    """A valid call of `tool` (the request model's own example)."""
    from cm_mcp.api.requests import REQUEST_MODELS
    from cm_mcp.ops.stored import ResultsAggsRequest, ResultsSearchRequest
    from cm_mcp.triage.requests import LogsTriageRequest, WorkloadsTriageRequest

    models = {
        **{model.ENDPOINT: model for model in REQUEST_MODELS.values()},
        "results_search": ResultsSearchRequest,
        "results_aggs": ResultsAggsRequest,
        "logs_triage": LogsTriageRequest,
        "workloads_triage": WorkloadsTriageRequest,
    }
    names_by_tool = {
        "logs_scroll_v1": "v1_logs_scroll",
        "logs_batch_v1": "v1_logs_batch",
        "logs_batch_urls_v1": "v1_logs_batch_urls",
    }
    model = models.get(names_by_tool.get(tool, tool))
    arguments = dict(model.EXAMPLE) if model is not None else {}
    if "result_id" in arguments:
        arguments["result_id"] = result_id
    return arguments


#: How a call is made from its tool's valid example, weighted: about a third keep or get valid values,
#: some vary arguments with values valid or not, the rest are invalid by construction or garbage.
MODES = (
    "valid",
    "plausible",
    "plausible",
    "plausible",
    "vary",
    "vary",
    "drop",
    "wrong_type",
    "unknown",
    "budget",
    "garbage",
)


@st.composite
def tool_calls(draw: st.DrawFn, result_id: str) -> tuple[str, dict[str, Any], str | None]:
    """(tool, arguments, why they are invalid by construction or None)."""
    tool = draw(st.sampled_from(TOOLS))
    schema = SCHEMAS[tool]
    properties: dict[str, Any] = schema.get("properties", {})
    required: list[str] = schema.get("required", [])
    arguments = example_arguments(tool, result_id)
    mode = draw(st.sampled_from(MODES))
    invalid: str | None = None
    if mode == "plausible" and properties:  # valid values for some arguments
        choices = sorted(name for name in properties if name in PLAUSIBLE)
        if choices:
            for name in draw(st.lists(st.sampled_from(choices), min_size=1, max_size=3, unique=True)):
                arguments[name] = draw(PLAUSIBLE[name])
    elif mode == "vary" and properties:  # plausible values for some arguments: valid or not, unknown
        for name in draw(st.lists(st.sampled_from(sorted(properties)), min_size=1, max_size=4, unique=True)):
            arguments[name] = draw(FIELD_VALUES.get(name, json_values))
    elif mode == "drop" and required:
        dropped = draw(st.sampled_from(required))
        arguments.pop(dropped, None)
        invalid = f"required {dropped} left out"
    elif mode == "wrong_type" and properties:
        name = draw(st.sampled_from(sorted(properties)))
        kind = properties[name].get("type")
        if kind in _WRONG_TYPE:
            arguments[name] = draw(_WRONG_TYPE[kind])
            invalid = f"{name} is not a {kind}"
    elif mode == "unknown":
        name = draw(st.text(alphabet="abcdefghijklmnopqrstuvwxyz_", min_size=1, max_size=12))
        if name not in properties:
            arguments[name] = draw(json_values)
            invalid = f"unknown argument {name}"
    elif mode == "budget" and "max_tokens" in properties:
        value = draw(st.integers(min_value=-100, max_value=100_000))
        arguments["max_tokens"] = value
        if not MIN_TOKENS <= value <= MAX_TOKENS:
            invalid = f"max_tokens {value}"
    elif mode == "garbage":
        arguments = draw(st.dictionaries(st.sampled_from([*properties, "other"]), json_values, max_size=6))
    return tool, arguments, invalid
