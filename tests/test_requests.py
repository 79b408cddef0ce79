"""Every documented request rule, with valid and invalid cases; invalid ones must name the field."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cm_mcp.api.errors import RequestValidationError
from cm_mcp.api.requests import (
    FILTERED_AGG,
    REQUEST_MODELS,
    APIRequest,
    BillingQueryRequest,
    LogsAggsRequest,
    LogsBatchRequest,
    LogsBatchStatusRequest,
    LogsScrollRequest,
    V1BatchUrlsRequest,
    V1LogsBatchRequest,
    V1LogsScrollRequest,
    WorkloadsAggsRequest,
    WorkloadsBatchRequest,
    WorkloadsBatchStatusRequest,
    WorkloadsScrollRequest,
    parse_request,
)

NOW = datetime(2026, 11, 26, 12, 34, 56, 789000, tzinfo=UTC)

K8S = {
    "application": "atr",
    "app_type": "kubernetes",
    "start_time": "2026-01-19T00:00:00Z",
    "end_time": "2026-01-19T23:59:59Z",
    "domain": ["domain1.com", "domain2.com"],
}
SERVERLESS = {
    "application": "eventops",
    "app_type": "serverless",
    "start_time": "2026-01-19T00:00:00Z",
    "end_time": "2026-01-19T23:59:59Z",
    "log_group": ["*"],
    "tenant": ["tenant1"],
    "stage": ["prod"],
}
WORKLOADS = {
    "application": "atr",
    "app_type": "ec2",
    "start_time": "2026-01-19T00:00:00Z",
    "end_time": "2026-01-19T23:59:59Z",
    "domain": ["domain1.com"],
}
AGGS = {"levels": {"terms": {"field": "regex.extractions.logLevel", "size": 10}}}
V1 = {"application": "quasar", "app_type": "caas", "domain": "example.domain.com", "time_range": "now-15m/m"}


def scroll(**changes: Any) -> dict[str, Any]:
    return _with({**K8S, "size": 100}, changes)


def _with(base: dict[str, Any], changes: dict[str, Any]) -> dict[str, Any]:
    body = dict(base)
    for key, value in changes.items():
        if value is _DROP:
            body.pop(key, None)
        else:
            body[key] = value
    return body


_DROP = object()


def f(*filters: Any) -> dict[str, Any]:
    return scroll(filters=list(filters))


VALID: list[tuple[str, type[APIRequest], dict[str, Any]]] = [
    ("k8s scroll", LogsScrollRequest, scroll()),
    ("ec2 scroll", LogsScrollRequest, scroll(app_type="ec2")),
    ("serverless scroll", LogsScrollRequest, {**SERVERLESS, "size": 100}),
    ("continuation alone", LogsScrollRequest, {"scroll_id": "FGluY2x1ZGVfY29udGV4"}),
    ("wildcard domain", LogsScrollRequest, scroll(domain=["*"])),
    ("fields", LogsScrollRequest, scroll(fields=["@timestamp", "message"])),
    ("ms time", LogsScrollRequest, scroll(start_time="2026-01-19T00:00:00.000Z")),
    ("9 digit fraction", LogsScrollRequest, scroll(start_time="2026-01-19T00:00:00.123456789Z")),
    ("offset time", LogsScrollRequest, scroll(start_time="2026-01-19T02:00:00+02:00")),
    ("date math", LogsScrollRequest, scroll(start_time="now-6h", end_time="now")),
    ("date math rounding", LogsScrollRequest, scroll(start_time="now-1d/d", end_time="now/d")),
    ("term", LogsScrollRequest, f({"term": {"regex.extractions.logLevel": "ERROR"}})),
    ("term object", LogsScrollRequest, f({"term": {"logLevel": {"value": "ERROR"}}})),
    ("terms", LogsScrollRequest, f({"terms": {"workflow.name": ["A", "B"]}})),
    ("range", LogsScrollRequest, f({"range": {"response.status_code": {"gte": 500, "lt": 600}}})),
    ("range date math", LogsScrollRequest, f({"range": {"@timestamp": {"gte": "now-1h", "format": "x"}}})),
    ("exists", LogsScrollRequest, f({"exists": {"field": "user.id"}})),
    ("match", LogsScrollRequest, f({"match": {"message": "cluster down"}})),
    ("match and", LogsScrollRequest, f({"match": {"message": {"query": "a b", "operator": "and"}}})),
    ("match_phrase", LogsScrollRequest, f({"match_phrase": {"message": "cluster down"}})),
    (
        "bool nested",
        LogsScrollRequest,
        f(
            {
                "bool": {
                    "must": [{"term": {"ticket.type": "SR_TASK"}}],
                    "should": [{"bool": {"filter": [{"exists": {"field": "x"}}]}}],
                    "must_not": [{"term": {"workload.state": "FAILED"}}],
                }
            }
        ),
    ),
    ("batch k8s", LogsBatchRequest, dict(K8S)),
    (
        "batch serverless",
        LogsBatchRequest,
        {**SERVERLESS, "filters": [{"term": {"function_memory_size": "1024"}}]},
    ),
    ("aggs", LogsAggsRequest, {**K8S, "aggs": AGGS}),
    (
        "aggs nested and filter",
        LogsAggsRequest,
        {
            **K8S,
            "aggs": {
                "errors": {
                    "filter": {"term": {"regex.extractions.logLevel": "ERROR"}},
                    "aggs": {"hourly": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h"}}},
                },
                "p": {"percentiles": {"field": "duration_ms"}},
            },
        },
    ),
    ("aggs serverless", LogsAggsRequest, {**SERVERLESS, "aggs": {"o": {"terms": {"field": "event.origin"}}}}),
    ("status", LogsBatchStatusRequest, {"token": "  Paw21VHC3VxAs7F4 "}),
    ("workloads status", WorkloadsBatchStatusRequest, {"token": "Paw21VHC3VxAs7F4"}),
    ("workloads scroll", WorkloadsScrollRequest, dict(WORKLOADS)),
    ("workloads continuation", WorkloadsScrollRequest, {"scroll_id": "DnF1ZXJ5"}),
    ("workloads batch", WorkloadsBatchRequest, {**WORKLOADS, "app_type": "kubernetes", "domain": ["*"]}),
    (
        "workloads aggs",
        WorkloadsAggsRequest,
        {**WORKLOADS, "aggs": {"w": {"terms": {"field": "workflow.name"}}}},
    ),
    ("v1 scroll", V1LogsScrollRequest, {**V1, "size": 1000, "filters": {"message": "cluster down"}}),
    ("v1 scroll continuation", V1LogsScrollRequest, {**V1, "scroll_id": "DXF1ZXJ5QW5vbmU="}),
    ("v1 batch", V1LogsBatchRequest, {**V1, "filters": {"status": "error"}}),
    (
        "v1 eventops",
        V1LogsBatchRequest,
        {"application": "eventops", "time_range": "now-1h", "tenant": "acme"},
    ),
    ("v1 urls", V1BatchUrlsRequest, {"token": "1OTk3LCJpc3MiOi"}),
    ("billing", BillingQueryRequest, {"domain": "example.domain.com", "time_range": "now-15m/m"}),
]

# (name, model, args, field path the error must name, words the message must contain)
INVALID: list[tuple[str, type[APIRequest], dict[str, Any], str, str]] = [
    ("bad application", LogsScrollRequest, scroll(application="zeus"), "application", "atr"),
    ("bad app_type", LogsScrollRequest, scroll(app_type="caas"), "app_type", "kubernetes"),
    (
        "serverless with atr",
        LogsScrollRequest,
        {**SERVERLESS, "application": "atr", "size": 1},
        "app_type",
        "eventops",
    ),
    ("eventops with k8s", LogsScrollRequest, scroll(application="eventops"), "app_type", "serverless"),
    (
        "eventops with k8s batch",
        LogsBatchRequest,
        {**K8S, "application": "eventops"},
        "app_type",
        "serverless",
    ),
    (
        "atr serverless aggs",
        LogsAggsRequest,
        {**SERVERLESS, "application": "atr", "aggs": AGGS},
        "app_type",
        "eventops",
    ),
    (
        "serverless no tenant",
        LogsScrollRequest,
        _with({**SERVERLESS, "size": 5}, {"tenant": _DROP}),
        "tenant",
        "required",
    ),
    ("serverless no stage", LogsBatchRequest, _with(SERVERLESS, {"stage": _DROP}), "stage", "required"),
    (
        "serverless no log_group",
        LogsAggsRequest,
        _with({**SERVERLESS, "aggs": AGGS}, {"log_group": _DROP}),
        "log_group",
        "required",
    ),
    (
        "serverless with domain",
        LogsScrollRequest,
        {**SERVERLESS, "size": 5, "domain": ["a"]},
        "domain",
        "serverless",
    ),
    ("k8s without domain", LogsScrollRequest, scroll(domain=_DROP), "domain", "required"),
    ("k8s with tenant", LogsBatchRequest, {**K8S, "tenant": ["t"]}, "tenant", "serverless"),
    ("empty domain", LogsScrollRequest, scroll(domain=[]), "domain", "empty"),
    ("wildcard mixed", LogsScrollRequest, scroll(domain=["*", "a.com"]), "domain", "only element"),
    (
        "wildcard mixed tenant",
        LogsScrollRequest,
        {**SERVERLESS, "size": 1, "tenant": ["x", "*"]},
        "tenant",
        "only element",
    ),
    ("domain not a list", LogsScrollRequest, scroll(domain="a.com"), "domain", "list"),
    ("domain ints", LogsScrollRequest, scroll(domain=[1, 2]), "domain[0]", "string"),
    ("blank domain item", LogsScrollRequest, scroll(domain=[" "]), "domain", "non-empty"),
    ("empty fields", LogsScrollRequest, scroll(fields=[]), "fields", "empty"),
    ("size zero", LogsScrollRequest, scroll(size=0), "size", "at least 1"),
    ("size negative", LogsScrollRequest, scroll(size=-5), "size", "at least 1"),
    (
        "size too big",
        LogsScrollRequest,
        scroll(size=50_000),
        "size",
        "at most 10000 per page; for more, continue with the returned scroll_id",
    ),
    ("size missing", LogsScrollRequest, scroll(size=_DROP), "size", "required"),
    ("size on batch", LogsBatchRequest, {**K8S, "size": 10}, "size", "unknown field"),
    ("size on aggs", LogsAggsRequest, {**K8S, "aggs": AGGS, "size": 10}, "size", "unknown field"),
    (
        "empty filters on aggs",
        LogsAggsRequest,
        {**K8S, "aggs": AGGS, "filters": []},
        "filters",
        "omit filters",
    ),
    (
        "billing wildcard domain",
        BillingQueryRequest,
        {"domain": "*", "time_range": "now-1d"},
        "domain",
        "one",
    ),
    (
        "billing partial wildcard domain",
        BillingQueryRequest,
        {"domain": "*.example.com", "time_range": "now-1d"},
        "domain",
        "wildcard",
    ),
    (
        "billing empty domain",
        BillingQueryRequest,
        {"domain": "", "time_range": "now-1d"},
        "domain",
        "non-empty",
    ),
    (
        "fixed_interval in months",
        LogsAggsRequest,
        {**K8S, "aggs": {"t": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1M"}}}},
        "aggs.t.date_histogram.fixed_interval",
        "calendar_interval",
    ),
    (
        "calendar_interval of 2 days",
        LogsAggsRequest,
        {**K8S, "aggs": {"t": {"date_histogram": {"field": "@timestamp", "calendar_interval": "2d"}}}},
        "aggs.t.date_histogram.calendar_interval",
        "fixed_interval",
    ),
    (
        "start after end",
        LogsScrollRequest,
        scroll(start_time="2026-01-20T00:00:00Z"),
        "end_time",
        "after start_time",
    ),
    ("start equals end", LogsBatchRequest, {**K8S, "end_time": K8S["start_time"]}, "end_time", "after"),
    (
        "end before start aggs",
        LogsAggsRequest,
        {**K8S, "aggs": AGGS, "end_time": "2026-01-18T00:00:00Z"},
        "end_time",
        "after",
    ),
    (
        "end before start workloads",
        WorkloadsScrollRequest,
        {**WORKLOADS, "end_time": "2026-01-18T00:00:00Z"},
        "end_time",
        "after",
    ),
    ("bad time", LogsScrollRequest, scroll(start_time="yesterday"), "start_time", "ISO 8601"),
    ("bad date", LogsScrollRequest, scroll(start_time="2026-02-30T00:00:00Z"), "start_time", "valid"),
    ("bad date math unit", LogsScrollRequest, scroll(start_time="now-5x"), "start_time", "date math"),
    ("missing start", LogsScrollRequest, scroll(start_time=_DROP), "start_time", "required"),
    ("missing end", LogsBatchRequest, _with(K8S, {"end_time": _DROP}), "end_time", "required"),
    ("missing application", LogsScrollRequest, scroll(application=_DROP), "application", "required"),
    ("missing app_type", LogsBatchRequest, _with(K8S, {"app_type": _DROP}), "app_type", "required"),
    ("unknown field", LogsScrollRequest, scroll(domains=["a"]), "domains", "did you mean 'domain'"),
    (
        "unknown filter type",
        LogsScrollRequest,
        f({"wildcard": {"message": "x*"}}),
        "filters[0].wildcard",
        "supported",
    ),
    (
        "two types in one filter",
        LogsScrollRequest,
        f({"term": {"a": 1}, "match": {"b": "c"}}),
        "filters[0]",
        "exactly one",
    ),
    ("filters not list", LogsScrollRequest, scroll(filters={"term": {"a": "b"}}), "filters", "list"),
    ("empty filters", LogsScrollRequest, scroll(filters=[]), "filters", "empty"),
    (
        "term list value",
        LogsScrollRequest,
        f({"term": {"logLevel": ["A"]}}),
        "filters[0].term.logLevel",
        "terms",
    ),
    (
        "term two fields",
        LogsScrollRequest,
        f({"term": {"a": "x", "b": "y"}}),
        "filters[0].term",
        "exactly one field",
    ),
    (
        "terms scalar",
        LogsScrollRequest,
        f({"terms": {"logLevel": "ERROR"}}),
        "filters[0].terms.logLevel",
        "list",
    ),
    (
        "terms empty",
        LogsScrollRequest,
        f({"terms": {"logLevel": []}}),
        "filters[0].terms.logLevel",
        "non-empty",
    ),
    ("range bad op", LogsScrollRequest, f({"range": {"x": {"gtt": 5}}}), "filters[0].range.x.gtt", "gte"),
    (
        "range no bound",
        LogsScrollRequest,
        f({"range": {"x": {"format": "epoch_millis"}}}),
        "filters[0].range.x",
        "at least one",
    ),
    ("range scalar", LogsScrollRequest, f({"range": {"x": 5}}), "filters[0].range.x", "operators"),
    ("exists no field", LogsScrollRequest, f({"exists": {"name": "x"}}), "filters[0].exists", "field"),
    (
        "deep bool range",
        LogsScrollRequest,
        f({"bool": {"must": [{"term": {"a": "b"}}, {"range": {"t": {"from": 1}}}]}}),
        "filters[0].bool.must[1].range.t.from",
        "valid",
    ),
    (
        "bool unknown clause",
        LogsScrollRequest,
        f({"bool": {"must_have": [{"term": {"a": "b"}}]}}),
        "filters[0].bool.must_have",
        "must_not",
    ),
    ("bool empty clause", LogsScrollRequest, f({"bool": {"must": []}}), "filters[0].bool.must", "non-empty"),
    ("bool empty", LogsScrollRequest, f({"bool": {}}), "filters[0].bool", "at least one"),
    (
        "match empty",
        LogsScrollRequest,
        f({"match": {"message": ""}}),
        "filters[0].match.message",
        "non-empty",
    ),
    (
        "match bad operator",
        LogsScrollRequest,
        f({"match": {"message": {"query": "a", "operator": "xor"}}}),
        "filters[0].match.message.operator",
        "and",
    ),
    ("aggs empty", LogsAggsRequest, {**K8S, "aggs": {}}, "aggs", "non-empty"),
    ("aggs missing", LogsAggsRequest, dict(K8S), "aggs", "required"),
    (
        "aggs unknown type",
        LogsAggsRequest,
        {**K8S, "aggs": {"x": {"significant_terms": {"field": "a"}}}},
        "aggs.x.significant_terms",
        "supported",
    ),
    (
        "aggs two types",
        LogsAggsRequest,
        {**K8S, "aggs": {"x": {"terms": {"field": "a"}, "avg": {"field": "b"}}}},
        "aggs.x",
        "exactly one",
    ),
    ("aggs no type", LogsAggsRequest, {**K8S, "aggs": {"x": {"aggs": AGGS}}}, "aggs.x", "exactly one"),
    (
        "terms no field",
        LogsAggsRequest,
        {**K8S, "aggs": {"x": {"terms": {"size": 3}}}},
        "aggs.x.terms.field",
        "field",
    ),
    (
        "histogram no interval",
        LogsAggsRequest,
        {**K8S, "aggs": {"x": {"date_histogram": {"field": "@timestamp"}}}},
        "aggs.x.date_histogram",
        "fixed_interval",
    ),
    (
        "numeric histogram interval not positive",
        LogsAggsRequest,
        {**K8S, "aggs": {"x": {"histogram": {"field": "response.duration_ms", "interval": -1}}}},
        "aggs.x.histogram.interval",
        "> 0; got -1",
    ),
    (
        "numeric histogram interval zero",
        LogsAggsRequest,
        {**K8S, "aggs": {"x": {"histogram": {"field": "response.duration_ms", "interval": 0}}}},
        "aggs.x.histogram.interval",
        "> 0; got 0",
    ),
    (
        "range without ranges",
        LogsAggsRequest,
        {**K8S, "aggs": {"x": {"range": {"field": "response.duration_ms", "ranges": []}}}},
        "aggs.x.range.ranges",
        "non-empty",
    ),
    (
        "range bound not a number",
        LogsAggsRequest,
        {**K8S, "aggs": {"x": {"range": {"field": "response.duration_ms", "ranges": [{"from": [1]}]}}}},
        "aggs.x.range.ranges[0].from",
        "a number or a date",
    ),
    (
        "range unknown key",
        LogsAggsRequest,
        {**K8S, "aggs": {"x": {"range": {"field": "response.duration_ms", "ranges": [{"gte": 5}]}}}},
        "aggs.x.range.ranges[0]",
        "unknown keys ['gte']",
    ),
    (
        "percentiles out of range",
        LogsAggsRequest,
        {**K8S, "aggs": {"x": {"percentiles": {"field": "response.duration_ms", "percents": [50, 101]}}}},
        "aggs.x.percentiles.percents",
        "numbers 0-100",
    ),
    (
        "sub agg bad",
        LogsAggsRequest,
        {**K8S, "aggs": {"x": {"terms": {"field": "a"}, "aggs": {"y": {"foo": {}}}}}},
        "aggs.x.aggs.y.foo",
        "supported",
    ),
    (
        "filter agg bad filter",
        LogsAggsRequest,
        {**K8S, "aggs": {"x": {"filter": {"prefix": {"a": "b"}}}}},
        "aggs.x.filter.prefix",
        "supported",
    ),
    (
        "metric with sub aggs",
        LogsAggsRequest,
        {**K8S, "aggs": {"x": {"avg": {"field": "a"}, "aggs": AGGS}}},
        "aggs.x.aggs",
        "cannot",
    ),
    ("status empty token", LogsBatchStatusRequest, {"token": "   "}, "token", "non-empty"),
    ("status missing token", WorkloadsBatchStatusRequest, {}, "token", "required"),
    (
        "status extra",
        LogsBatchStatusRequest,
        {"token": "a", "scroll_id": "b"},
        "scroll_id",
        "valid fields: token",
    ),
    ("scroll_id blank", LogsScrollRequest, {"scroll_id": "  "}, "scroll_id", "non-empty"),
    (
        "workloads klewer",
        WorkloadsScrollRequest,
        {**WORKLOADS, "application": "klewer"},
        "application",
        "only for application 'atr'",
    ),
    ("workloads bogus app", WorkloadsScrollRequest, {**WORKLOADS, "application": "x"}, "application", "atr"),
    (
        "workloads serverless",
        WorkloadsBatchRequest,
        {**WORKLOADS, "app_type": "serverless"},
        "app_type",
        "no serverless",
    ),
    ("workloads empty domain", WorkloadsScrollRequest, {**WORKLOADS, "domain": []}, "domain", "empty"),
    (
        "workloads missing domain",
        WorkloadsAggsRequest,
        _with({**WORKLOADS, "aggs": AGGS}, {"domain": _DROP}),
        "domain",
        "required",
    ),
    ("workloads size 0", WorkloadsScrollRequest, {**WORKLOADS, "size": 0}, "size", "at least 1"),
    (
        "bad filter on workloads aggs",
        WorkloadsAggsRequest,
        {**WORKLOADS, "aggs": AGGS, "filters": [{"prefix": {"workload.state": "FAIL"}}]},
        "filters[0].prefix",
        "unsupported filter type",
    ),
    ("workloads tenant", WorkloadsScrollRequest, {**WORKLOADS, "tenant": ["x"]}, "tenant", "unknown field"),
    ("v1 bad app_type", V1LogsScrollRequest, {**V1, "app_type": "kubernetes"}, "app_type", "caas"),
    (
        "v1 iso time",
        V1LogsScrollRequest,
        {**V1, "time_range": "2026-01-19T00:00:00Z"},
        "time_range",
        "date math",
    ),
    ("v1 missing time", V1LogsBatchRequest, _with(V1, {"time_range": _DROP}), "time_range", "required"),
    ("v1 list domain", V1LogsBatchRequest, {**V1, "domain": ["a"]}, "domain", "string"),
    (
        "v1 filters list",
        V1LogsScrollRequest,
        {**V1, "filters": [{"term": {"a": "b"}}]},
        "filters",
        "JSON object",
    ),
    ("v1 urls blank token", V1BatchUrlsRequest, {"token": ""}, "token", "non-empty"),
    ("billing no domain", BillingQueryRequest, {"time_range": "now-1d"}, "domain", "required"),
    (
        "billing blank domain",
        BillingQueryRequest,
        {"domain": "  ", "time_range": "now-1d"},
        "domain",
        "non-empty",
    ),
    (
        "billing bad time",
        BillingQueryRequest,
        {"domain": "a.com", "time_range": "last week"},
        "time_range",
        "date math",
    ),
]


@pytest.mark.parametrize(("name", "model", "args"), VALID, ids=[case[0] for case in VALID])
def test_valid_requests_parse(name: str, model: type[APIRequest], args: dict[str, Any]) -> None:
    request = parse_request(model, args, now=NOW)
    body = request.to_body()
    assert isinstance(body, dict)
    assert body, name


@pytest.mark.parametrize(
    ("name", "model", "args", "path", "words"), INVALID, ids=[case[0] for case in INVALID]
)
def test_invalid_requests_name_the_field(
    name: str, model: type[APIRequest], args: dict[str, Any], path: str, words: str
) -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_request(model, args, now=NOW)
    issues = caught.value.issues
    assert any(issue.path == path for issue in issues), f"{name}: {[(i.path, i.message) for i in issues]}"
    message = " ".join(issue.message for issue in issues if issue.path == path)
    assert words.lower() in message.lower(), f"{name}: {message}"
    assert path in str(caught.value)


def test_enough_cases() -> None:
    assert len(VALID) + len(INVALID) >= 60


def test_times_normalised_to_utc_z() -> None:
    request = parse_request(
        LogsScrollRequest, scroll(start_time="2026-01-19T02:00:00.123456789+02:00"), now=NOW
    )
    assert request.start_time == "2026-01-19T00:00:00.123Z"
    assert request.end_time == "2026-01-19T23:59:59.000Z"


def test_date_math_resolved_at_call_time_with_opensearch_rounding() -> None:
    request = parse_request(
        LogsBatchRequest, {**K8S, "start_time": "now-1d/d", "end_time": "now-1d/d"}, now=NOW
    )
    assert request.start_time == "2026-11-25T00:00:00.000Z"
    assert request.end_time == "2026-11-25T23:59:59.999Z"
    request = parse_request(
        LogsBatchRequest, {**K8S, "start_time": "now-2h/h", "end_time": "now-15m"}, now=NOW
    )
    assert request.start_time == "2026-11-26T10:00:00.000Z"
    assert request.end_time == "2026-11-26T12:19:56.789Z"


def test_continuation_sends_only_scroll_id() -> None:
    request = parse_request(LogsScrollRequest, {**scroll(), "scroll_id": " abc "}, now=NOW)
    assert request.to_body() == {"scroll_id": "abc"}
    request = parse_request(WorkloadsScrollRequest, {"scroll_id": "xyz"}, now=NOW)
    assert request.to_body() == {"scroll_id": "xyz"}


def test_workloads_scroll_sends_explicit_default_size() -> None:
    body = parse_request(WorkloadsScrollRequest, dict(WORKLOADS), now=NOW).to_body()
    assert body["size"] == 100


def test_v1_continuation_resends_body() -> None:
    body = parse_request(V1LogsScrollRequest, {**V1, "scroll_id": "s1"}, now=NOW).to_body()
    assert body == {**V1, "scroll_id": "s1"}


def test_tokens_trimmed() -> None:
    assert parse_request(LogsBatchStatusRequest, {"token": " t1 \n"}).to_body() == {"token": "t1"}
    assert parse_request(V1BatchUrlsRequest, {"token": "\tt2"}).to_body() == {"token": "t2"}


def test_batch_and_aggs_bodies_never_carry_size() -> None:
    assert "size" not in parse_request(LogsBatchRequest, dict(K8S), now=NOW).to_body()
    assert "size" not in parse_request(LogsAggsRequest, {**K8S, "aggs": AGGS}, now=NOW).to_body()


def test_error_quotes_a_corrected_example() -> None:
    with pytest.raises(RequestValidationError) as caught:
        parse_request(LogsScrollRequest, scroll(size=0), now=NOW)
    assert caught.value.example == LogsScrollRequest.EXAMPLE
    # the example itself must be valid
    parse_request(LogsScrollRequest, LogsScrollRequest.EXAMPLE, now=NOW)


@pytest.mark.parametrize("model", list(REQUEST_MODELS.values()), ids=list(REQUEST_MODELS))
def test_every_example_is_valid(model: type[APIRequest]) -> None:
    parse_request(model, model.EXAMPLE, now=NOW)


def test_all_twelve_endpoints_have_models() -> None:
    assert len(REQUEST_MODELS) == 12


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=20,
)
_keys = st.sampled_from(
    [
        "application",
        "app_type",
        "start_time",
        "end_time",
        "domain",
        "log_group",
        "tenant",
        "stage",
        "size",
        "filters",
        "fields",
        "scroll_id",
        "aggs",
        "token",
        "time_range",
        "other",
    ]
)


@settings(max_examples=300, deadline=None)
@given(model=st.sampled_from(list(REQUEST_MODELS.values())), args=st.dictionaries(_keys, _json, max_size=8))
def test_no_json_input_raises_anything_but_validation_error(
    model: type[APIRequest], args: dict[str, Any]
) -> None:
    try:
        request = parse_request(model, args, now=NOW)
    except RequestValidationError as exc:
        assert exc.issues
        assert all(issue.path and issue.message for issue in exc.issues)
    else:
        assert isinstance(request.to_body(), dict)


@settings(max_examples=200, deadline=None)
@given(
    filters=st.lists(
        st.dictionaries(
            st.sampled_from(["term", "terms", "range", "exists", "bool", "match", "match_phrase", "nope"]),
            _json,
            min_size=1,
            max_size=2,
        ),
        max_size=3,
    )
)
def test_random_filters_only_raise_validation_errors(filters: list[Any]) -> None:
    try:
        parse_request(LogsScrollRequest, scroll(filters=filters), now=NOW)
    except RequestValidationError as exc:
        assert all(issue.path.startswith("filters") for issue in exc.issues)


def test_filter_fields_names_every_field_through_bool_clauses() -> None:
    from cm_mcp.api.querydsl import filter_fields

    filters = [
        {"term": {"regex.extractions.logLevel.keyword": "ERROR"}},
        {"range": {"@timestamp": {"gte": "now-1h"}}},
        {
            "bool": {
                "should": [{"match": {"message": "timeout"}}, {"exists": {"field": "error.message"}}],
                "must_not": {"terms": {"atr.domain_name": ["a", "b"]}},
                "minimum_should_match": 1,
            }
        },
    ]
    assert filter_fields(filters) == {
        "regex.extractions.logLevel",
        "@timestamp",
        "message",
        "error.message",
        "atr.domain_name",
    }


# --- every problem at once ---------------------------------------------------------------------------


def _paths(model: type[APIRequest], args: dict[str, Any]) -> set[str]:
    with pytest.raises(RequestValidationError) as caught:
        parse_request(model, args, now=NOW)
    paths = [issue.path for issue in caught.value.issues]
    assert len(paths) == len(set(paths)), f"a field reported twice: {caught.value}"
    return set(paths)


def test_every_missing_required_field_is_listed_at_once() -> None:
    """`logs_aggs {"application": "atr"}` said "aggs missing"; adding it revealed app_type, and so on."""
    assert _paths(LogsAggsRequest, {"application": "atr"}) == {
        "aggs",
        "app_type",
        "domain",
        "start_time",
        "end_time",
    }
    assert _paths(LogsBatchRequest, {"application": "eventops"}) == {
        "app_type",
        "log_group",
        "tenant",
        "stage",
        "start_time",
        "end_time",
    }
    assert _paths(LogsScrollRequest, {}) >= {"application", "app_type", "start_time", "end_time", "size"}
    assert _paths(WorkloadsAggsRequest, {}) == {
        "application",
        "app_type",
        "domain",
        "start_time",
        "end_time",
        "aggs",
    }
    assert _paths(BillingQueryRequest, {}) == {"domain", "time_range"}
    with pytest.raises(RequestValidationError) as caught:
        parse_request(LogsAggsRequest, {"application": "atr"}, now=NOW)
    said = {issue.path: issue.message for issue in caught.value.issues}
    assert said["app_type"] == "required: ec2 or kubernetes"  # what atr can take, not every app type
    assert said["aggs"].startswith("required: Named OpenSearch aggregations")


def test_field_errors_and_rule_errors_come_together() -> None:
    """A field that fails its own check no longer hides the cross-field rules (or the other fields)."""
    paths = _paths(
        LogsAggsRequest,
        {"application": "atr", "app_type": "lambda", "aggs": {}, "start_time": "yesterday", "size": 3},
    )
    assert paths == {"app_type", "aggs", "start_time", "end_time", "domain", "size"}
    paths = _paths(
        WorkloadsScrollRequest, {**WORKLOADS, "domain": [], "size": 0, "end_time": "2026-01-18T00:00:00Z"}
    )
    assert paths == {"domain", "size", "end_time"}


def test_every_dsl_problem_is_listed_with_its_own_path() -> None:
    paths = _paths(
        LogsScrollRequest,
        scroll(filters=[{"prefix": {"a": "b"}}, {"range": {"x": {"gtt": 1}}}, {"term": {"a": [1]}}]),
    )
    assert paths == {"filters[0].prefix", "filters[1].range.x.gtt", "filters[2].term.a"}
    paths = _paths(
        LogsAggsRequest,
        {
            **K8S,
            "aggs": {"a": {"significant_terms": {"field": "x"}}, "b": {"terms": {"size": 0, "field": "y"}}},
        },
    )
    assert paths == {"aggs.a.significant_terms", "aggs.b.terms.size"}


def test_a_scroll_continuation_is_not_asked_for_the_query() -> None:
    assert _paths(LogsScrollRequest, {"scroll_id": "  "}) == {"scroll_id"}


@pytest.mark.parametrize(
    ("model", "required"),
    [
        (LogsScrollRequest, set()),  # a continuation needs only scroll_id
        (WorkloadsScrollRequest, set()),
        (LogsBatchRequest, {"application", "app_type", "start_time", "end_time"}),
        (LogsAggsRequest, {"application", "app_type", "start_time", "end_time", "aggs"}),
        (WorkloadsBatchRequest, {"application", "app_type", "domain", "start_time", "end_time"}),
        (WorkloadsAggsRequest, {"application", "app_type", "domain", "start_time", "end_time", "aggs"}),
        (LogsBatchStatusRequest, {"token"}),
        (WorkloadsBatchStatusRequest, {"token"}),
        (V1LogsScrollRequest, {"application", "time_range"}),
        (V1LogsBatchRequest, {"application", "time_range"}),
        (V1BatchUrlsRequest, {"token"}),
        (BillingQueryRequest, {"domain", "time_range"}),
    ],
)
def test_the_schema_requires_what_is_always_required(model: type[APIRequest], required: set[str]) -> None:
    schema = model.model_json_schema()
    assert set(schema.get("required", [])) == required
    for name in required:  # and leaving any one of them out is refused, naming it
        full = dict(model.EXAMPLE)
        if name not in full:
            continue
        del full[name]
        assert name in _paths(model, full)


# --- the API's known limits --------------------------------------------------------------------------

DAY = {**K8S, "start_time": "2026-01-19T00:00:00Z", "end_time": "2026-01-20T00:00:00Z"}


def _histogram(interval: str, key: str = "fixed_interval") -> dict[str, Any]:
    return {"date_histogram": {"field": "@timestamp", key: interval}}


def test_a_date_histogram_past_the_bucket_limit_is_refused_with_the_interval_that_fits() -> None:
    """A 1 s histogram over a day is ~86k buckets: upstream 500 (issue 9), now refused for free."""
    with pytest.raises(RequestValidationError) as caught:
        parse_request(LogsAggsRequest, {**DAY, "aggs": {"t": _histogram("1s")}}, now=NOW)
    (issue,) = caught.value.issues
    assert issue.path == "aggs.t.date_histogram.fixed_interval"
    assert "86,401" in issue.message and "65,535" in issue.message
    assert "'2s'" in issue.message  # the smallest interval that fits
    parse_request(LogsAggsRequest, {**DAY, "aggs": {"t": _histogram("2s")}}, now=NOW)  # and it does


def test_nested_under_terms_the_buckets_multiply_by_the_terms_size() -> None:
    month = {**K8S, "start_time": "2026-01-01T00:00:00Z", "end_time": "2026-01-31T00:00:00Z"}
    aggs = {"d": {"terms": {"field": "atr.domain_name", "size": 100}, "aggs": {"t": _histogram("1h")}}}
    with pytest.raises(RequestValidationError) as caught:
        parse_request(LogsAggsRequest, {**month, "aggs": aggs}, now=NOW)
    (issue,) = caught.value.issues
    assert issue.path == "aggs.d.aggs.t.date_histogram.fixed_interval"
    assert "100" in issue.message and "721" in issue.message
    assert "'2h'" in issue.message and "size" in issue.message
    fixed = {"d": {"terms": {"field": "atr.domain_name", "size": 100}, "aggs": {"t": _histogram("2h")}}}
    parse_request(LogsAggsRequest, {**month, "aggs": fixed}, now=NOW)
    default_size = {"d": {"terms": {"field": "atr.domain_name"}, "aggs": {"t": _histogram("1h")}}}
    parse_request(LogsAggsRequest, {**month, "aggs": default_size}, now=NOW)  # 10 x 721: fine


def test_calendar_histograms_and_workloads_are_counted_too() -> None:
    year = {**WORKLOADS, "start_time": "2020-01-01T00:00:00Z", "end_time": "2026-01-01T00:00:00Z"}
    with pytest.raises(RequestValidationError) as caught:
        parse_request(
            WorkloadsAggsRequest, {**year, "aggs": {"t": _histogram("1m", "calendar_interval")}}, now=NOW
        )
    assert "calendar_interval" in caught.value.issues[0].path
    assert "'1h'" in caught.value.issues[0].message
    parse_request(
        WorkloadsAggsRequest, {**year, "aggs": {"t": _histogram("1h", "calendar_interval")}}, now=NOW
    )


# --- billing and result ids ------------------------------------------------------------------------------


def test_billing_takes_one_literal_domain() -> None:
    assert parse_request(
        BillingQueryRequest, {"domain": " pay.example.com ", "time_range": "now-1d"}
    ).domain == ("pay.example.com")


# --- filters on the aggs endpoints (issue 12) ------------------------------------------------------------


def test_filters_on_aggs_become_a_wrapping_filter_aggregation() -> None:
    """Models put `filters` on logs_aggs as on scroll; the API has no such field (reference item 15),
    so the request wraps the aggregations in one `filter` aggregation instead of refusing."""
    filters = [{"term": {"regex.extractions.logLevel": "ERROR"}}, {"exists": {"field": "message"}}]
    request = parse_request(LogsAggsRequest, {**K8S, "aggs": AGGS, "filters": filters}, now=NOW)
    body = request.to_body()
    assert "filters" not in body
    assert body["aggs"] == {FILTERED_AGG: {"filter": {"bool": {"filter": filters}}, "aggs": AGGS}}
    assert request.aggs == AGGS and request.filters == filters  # the request keeps what was asked
    unfiltered = parse_request(WorkloadsAggsRequest, {**WORKLOADS, "aggs": AGGS}, now=NOW).to_body()
    assert unfiltered["aggs"] == AGGS and "filters" not in unfiltered
    # the sandbox validates what it receives with the same models: the wrapped body is valid as is
    parse_request(LogsAggsRequest, body, now=NOW)
