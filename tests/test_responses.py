"""Response models on the reference's samples, the Partition mapping, quota fields, timestamps."""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from cm_mcp.api.endpoints import ENDPOINTS
from cm_mcp.api.partitions import Partition, partitions_from_status, usable_url
from cm_mcp.api.responses import (
    RESPONSE_MODELS,
    AggsResponse,
    BatchResponse,
    BillingResponse,
    LogsScrollResponse,
    V1BatchResponse,
    V1ScrollResponse,
    WorkloadsScrollResponse,
    daily_remaining,
    parse_response,
    parse_time_or_none,
    request_id_of,
)

# --- the reference's samples -------------------------------------------------------------------------

V2_LOGS_SCROLL: dict[str, Any] = {
    "data": {
        "logs": [
            {
                "_index": "logs-application-2026-01",
                "_id": "abc123xyz",
                "_score": 1.0,
                "_source": {"...": "Log content varies by application"},
            }
        ],
        "count": 3595,
    },
    "meta": {
        "api_version": "v2",
        "time_range": {"start": "2026-01-19T00:00:00Z", "end": "2026-01-19T23:59:59Z"},
        "rate_limit": {"daily_remaining": 47},
        "request_id": "10615c94-d835-413e-ad3f-57c5a4c2276b",
        "scroll_id": "FGluY2x1ZGVfY29udGV4hYmMxMjN4eXpkZWY0NTZ1dnd...",
    },
}
V2_WORKLOADS_SCROLL: dict[str, Any] = {
    "data": {
        "workloads": [{"_index": "workloads-atr-2026-01", "_id": "wl-abc123", "_score": 1.0, "_source": {}}],
        "count": 50,
    },
    "meta": {
        "api_version": "v2",
        "time_range": {"start": "2026-01-20T03:52:06.960046Z", "end": "2026-01-20T07:12:06.960046Z"},
        "rate_limit": {"daily_remaining": 48},
        "request_id": "3a5f1229-ccef-4fcb-be27-98fd88e950c7",
        "app_type": "kubernetes",
        "domain": ["domain1.com", "domain2.com"],
        "scroll_id": "DnF1ZXJ5VGhlbkZldGNo...",
        "workloads_available": 150,
    },
}
V2_BATCH: dict[str, Any] = {
    "data": {"token": "a6EBWDj2yr5v1UUG"},
    "meta": {
        "api_version": "v2",
        "time_range": {"start": "2026-01-20T03:35:03.399316Z", "end": "2026-01-20T06:55:03.399316Z"},
        "rate_limit": {"daily_remaining": 49},
        "request_id": "dbfc4889-a1da-40d0-8dc9-3e08ef3e913c",
        "app_type": "kubernetes",
        "domain": ["*"],
    },
}
V2_LOGS_AGGS: dict[str, Any] = {
    "data": {
        "aggregations": {
            "log_levels": {
                "doc_count_error_upper_bound": 0,
                "sum_other_doc_count": 0,
                "buckets": [{"key": "WARN", "doc_count": 117315928}],
            }
        },
        "total_documents": 269456123,
    },
    "meta": {
        "api_version": "v2",
        "rate_limit": {"daily_remaining": 999},
        "request_id": "a1b2c3d4-e5f6-7890-abcd-ef1234567890",
        "application": "atr",
        "app_type": "kubernetes",
        "domain": ["domain1.com", "domain2.com"],
    },
}
V2_WORKLOADS_STATUS: dict[str, Any] = {
    "presigned_urls": [
        {
            "start_time": "2026-01-21T08:00:00Z",
            "end_time": "2026-01-21T14:00:00Z",
            "workload_count": 1523,
            "presigned_url": "https://s3.amazonaws.com/...",
            "completed": True,
            "status": "completed",
        },
        {
            "start_time": "2026-01-21T14:00:00Z",
            "end_time": "2026-01-21T20:00:00Z",
            "workload_count": 892,
            "presigned_url": "null",
            "completed": False,
            "status": "processing",
        },
    ]
}
V1_SCROLL: dict[str, Any] = {
    "logs": [{"domain": "example.domain.com", "time_range": "now-15m/m"}],
    "scroll_id": "DXF1ZXJ5QW5vbmU=",
    "has_more": True,
    "daily_requests_remaining": 480,
}
V1_BATCH: dict[str, Any] = {
    "logs": [{"domain": "example.domain.com", "time_range": "now-15m/m"}],
    "token": "czpcL1wvY29nb",
    "daily_requests_remaining": 480,
}
V1_URLS: dict[str, Any] = {
    "presigned_urls": [
        {
            "presigned_url": "https://cm-api-logs-prod.s3.amazonaws.com/logs-domain-name?AWSAccessKeyId=...",
            "time_range": "string",
            "ready": True,
            "status": "completed",
        }
    ]
}
BILLING: dict[str, Any] = {
    "summary": {
        "ticket_count": 125,
        "domain": "example.domain.com",
        "time_range": "now-15m/m",
        "client": "CMClient",
        "live_status": "active",
        "WBS": "1234ABCD",
        "created": "2025-11-11T12:00:00Z",
        "infra_type": "EC2",
        "billing_type": "monthly",
        "point_of_contact": "team@example.com",
        "cost_center": "not documented",
    },
    "daily_requests_remaining": 480,
}


def test_every_endpoint_has_a_response_model() -> None:
    assert set(RESPONSE_MODELS) == set(ENDPOINTS)


def test_v2_logs_scroll_sample() -> None:
    page = parse_response("logs_scroll", V2_LOGS_SCROLL)
    assert isinstance(page, LogsScrollResponse)
    hit = page.data.logs[0]
    assert (hit.index, hit.id, hit.score) == ("logs-application-2026-01", "abc123xyz", 1.0)
    assert hit.source == {"...": "Log content varies by application"}
    assert hit.model_dump(by_alias=True)["_id"] == "abc123xyz"
    assert page.data.count == 3595
    assert page.meta.rate_limit is not None
    assert page.meta.rate_limit.daily_remaining == 47
    assert page.meta.time_range is not None
    assert page.meta.time_range.end_time == datetime(2026, 1, 19, 23, 59, 59, tzinfo=UTC)
    assert page.meta.scroll_id is not None


def test_v2_workloads_scroll_sample() -> None:
    page = parse_response("workloads_scroll", V2_WORKLOADS_SCROLL)
    assert isinstance(page, WorkloadsScrollResponse)
    assert page.data.workloads[0].id == "wl-abc123"
    assert page.meta.workloads_available == 150
    assert page.meta.domain == ["domain1.com", "domain2.com"]


def test_v2_batch_and_aggs_samples() -> None:
    batch = parse_response("workloads_batch", V2_BATCH)
    assert isinstance(batch, BatchResponse)
    assert batch.data.token == "a6EBWDj2yr5v1UUG"
    aggs = parse_response("logs_aggs", V2_LOGS_AGGS)
    assert isinstance(aggs, AggsResponse)
    assert aggs.data.total_documents == 269456123
    assert aggs.data.aggregations["log_levels"]["buckets"][0]["key"] == "WARN"
    assert aggs.meta.application == "atr"


def test_v1_samples_and_scroll_id_spellings() -> None:
    scroll = parse_response("v1_logs_scroll", V1_SCROLL)
    assert isinstance(scroll, V1ScrollResponse)
    assert (scroll.scroll_id, scroll.has_more, scroll.daily_requests_remaining) == (
        "DXF1ZXJ5QW5vbmU=",
        True,
        480,
    )
    camel = V1ScrollResponse.model_validate({"logs": [], "scrollId": "abc", "has_more": False})
    assert camel.scroll_id == "abc"
    batch = parse_response("v1_logs_batch", V1_BATCH)
    assert isinstance(batch, V1BatchResponse)
    assert batch.token == "czpcL1wvY29nb"


def test_billing_keeps_documented_and_unknown_keys() -> None:
    billing = parse_response("billing_query", BILLING)
    assert isinstance(billing, BillingResponse)
    assert billing.summary.wbs == "1234ABCD"
    assert billing.summary.ticket_count == 125
    assert billing.summary.model_extra == {"cost_center": "not documented"}
    assert BillingResponse.model_validate({"summary": {}}).summary.domain is None


def test_unknown_keys_are_kept_everywhere() -> None:
    body = {**V2_BATCH, "debug": {"shard": 3}}
    body["meta"] = {**V2_BATCH["meta"], "new_echo": "x"}
    batch = BatchResponse.model_validate(body)
    assert batch.model_extra == {"debug": {"shard": 3}}
    assert batch.meta.model_extra == {"new_echo": "x"}


@pytest.mark.parametrize(
    ("endpoint", "body"),
    [
        ("logs_scroll", {"meta": {}}),  # no data: not an empty page
        ("logs_batch", {"data": {}}),  # no token
        ("logs_batch_status", {}),
        ("v1_logs_batch", {"logs": []}),
        ("billing_query", {"daily_requests_remaining": 3}),
        ("logs_scroll", {"data": {"logs": ["not a hit"]}}),
    ],
)
def test_missing_payload_is_a_validation_error(endpoint: str, body: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_response(endpoint, body)


# --- partitions --------------------------------------------------------------------------------------


def v2_entry(**fields: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "start_time": "2026-01-20T03:52:06.960046Z",
        "end_time": "2026-01-20T07:12:06.960046Z",
        "log_count": 1234,
        "presigned_url": "https://s3.amazonaws.com/bucket/part?X-Amz-Signature=abc",
        "completed": True,
        "status": "completed",
    }
    entry.update(fields)
    return {key: value for key, value in entry.items() if value is not ...}


def one_partition(kind: str = "logs", **fields: Any) -> Partition:
    [partition] = partitions_from_status({"presigned_urls": [v2_entry(**fields)]}, kind)  # type: ignore[arg-type]
    return partition


def test_v2_logs_partition() -> None:
    partition = one_partition()
    assert partition.key == ("2026-01-20T03:52:06.960046+00:00", "2026-01-20T07:12:06.960046+00:00")
    assert partition.start_time == datetime(2026, 1, 20, 3, 52, 6, 960046, tzinfo=UTC)
    assert partition.count == 1234
    assert partition.url is not None
    assert partition.ready
    assert partition.is_final
    assert not partition.is_failed
    assert not partition.is_empty


def test_v2_workloads_sample_partitions() -> None:
    done, processing = partitions_from_status(V2_WORKLOADS_STATUS, "workloads")
    assert (done.count, done.ready, done.is_final) == (1523, True, True)
    assert (processing.count, processing.url, processing.ready) == (892, None, False)
    assert processing.status == "processing"
    assert not processing.is_final


@pytest.mark.parametrize(
    "url", [None, "null", "NULL", "", "   ", ..., "ftp://host/file", "s3://bucket/key", 42]
)
def test_unusable_urls_mean_not_ready(url: Any) -> None:
    if url == 42:
        with pytest.raises(ValidationError):
            one_partition(presigned_url=url)
        return
    partition = one_partition(presigned_url=url)
    assert partition.url is None
    assert partition.completed
    assert not partition.ready  # completed, but nothing to download yet: poll again


def test_completed_with_count_zero_and_no_url_is_empty_and_ready() -> None:
    partition = one_partition(log_count=0, presigned_url="null")
    assert partition.ready
    assert partition.is_empty
    assert partition.is_final


def test_completed_flag_false_with_completed_status_counts_as_completed() -> None:
    assert one_partition(completed=..., status="completed").ready
    assert one_partition(completed=False, status="Completed").ready


@pytest.mark.parametrize("status", ["processing", "pending", "queued", "", None, ...])
def test_unknown_or_pending_statuses_are_not_final(status: Any) -> None:
    partition = one_partition(completed=False, presigned_url="null", status=status)
    assert not partition.is_final
    assert not partition.ready
    if status in ("", None, ...):
        assert partition.status == "unknown"


def test_failed_is_final_but_not_ready() -> None:
    partition = one_partition(completed=False, presigned_url="null", status="FAILED")
    assert partition.is_failed
    assert partition.is_final
    assert not partition.ready


def test_count_is_none_when_absent_and_other_family_name_is_tolerated() -> None:
    assert one_partition(log_count=...).count is None
    assert one_partition("workloads", log_count=...).count is None
    assert one_partition("workloads").count == 1234  # a log_count on the workloads endpoint is still read


def test_partition_key_is_stable_across_timestamp_precision() -> None:
    first = one_partition(start_time="2026-01-21T08:00:00Z", end_time="2026-01-21T14:00:00Z")
    second = one_partition(start_time="2026-01-21T08:00:00.000000000Z", end_time="2026-01-21T15:00:00+01:00")
    assert first.key == second.key
    assert first == second.model_copy(update={"time_range_text": first.time_range_text})


def test_partition_without_times_is_keyed_by_position() -> None:
    body = {"presigned_urls": [v2_entry(start_time=..., end_time=...), v2_entry(start_time="garbage")]}
    first, second = partitions_from_status(body, "logs")
    assert first.key == ("#0", "#0")
    assert first.time_range_text is None
    assert second.key == ("garbage", "2026-01-20T07:12:06.960046+00:00")
    assert second.start_time is None


def test_partition_is_frozen() -> None:
    with pytest.raises(ValidationError):
        one_partition().count = 3  # type: ignore[misc]


def test_v1_partitions() -> None:
    [partition] = partitions_from_status(V1_URLS, "v1")
    assert partition.key == "string"
    assert partition.time_range_text == "string"
    assert partition.count is None
    assert partition.ready
    assert partition.start_time is None
    not_ready = {"presigned_urls": [{"presigned_url": "null", "ready": False}, {"ready": True}]}
    first, second = partitions_from_status(not_ready, "v1")
    assert (first.key, first.ready, first.is_final, first.status) == ("#0", False, False, "unknown")
    # ready but no URL and no count: completed, nothing downloadable, so not "ready"
    assert (second.completed, second.ready) == (True, False)


def test_usable_url() -> None:
    assert usable_url("https://s3.amazonaws.com/x") == "https://s3.amazonaws.com/x"
    assert usable_url(" http://127.0.0.1:8766/files/1 ") == "http://127.0.0.1:8766/files/1"
    for value in (None, "null", "", "https://", "https://[broken", "mailto:a@b.c", 3):
        assert usable_url(value) is None


# --- timestamps --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2026-01-19T00:00:00Z", datetime(2026, 1, 19, tzinfo=UTC)),
        ("2026-01-19T00:00:00.000Z", datetime(2026, 1, 19, tzinfo=UTC)),
        ("2026-01-20T03:35:03.399316Z", datetime(2026, 1, 20, 3, 35, 3, 399316, tzinfo=UTC)),
        ("2026-01-20T03:35:03.123456789Z", datetime(2026, 1, 20, 3, 35, 3, 123456, tzinfo=UTC)),
        ("2026-01-20T03:35:03.1Z", datetime(2026, 1, 20, 3, 35, 3, 100000, tzinfo=UTC)),
        ("2026-01-20T05:35:03+02:00", datetime(2026, 1, 20, 3, 35, 3, tzinfo=UTC)),
        ("2026-01-20T03:35:03", datetime(2026, 1, 20, 3, 35, 3, tzinfo=UTC)),
        ("yesterday", None),
        ("2026-13-01T00:00:00Z", None),
        ("0001-01-01T00:00:00+05:00", None),
        (None, None),
        (1737244800000, None),
    ],
)
def test_parse_time_or_none(text: Any, expected: datetime | None) -> None:
    parsed = parse_time_or_none(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.utcoffset() == timedelta(0)
        assert parsed.tzinfo in (UTC, UTC)


def test_nine_digit_partition_times() -> None:
    partition = one_partition(start_time="2026-01-20T03:52:06.960046123Z")
    assert partition.start_time == datetime(2026, 1, 20, 3, 52, 6, 960046, tzinfo=UTC)


# --- quota and request id ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "remaining"),
    [
        (V1_SCROLL, 480),
        (BILLING, 480),
        (V2_LOGS_SCROLL, 47),
        (V2_LOGS_AGGS, 999),
        (V1_URLS, None),
        (V2_WORKLOADS_STATUS, None),
        ({}, None),
        ({"meta": {"rate_limit": {}}}, None),
        ({"meta": {"rate_limit": None}}, None),
        ({"meta": "weird"}, None),
        ({"daily_requests_remaining": 0}, 0),
        ({"daily_requests_remaining": "12"}, 12),
        ({"daily_requests_remaining": 12.0}, 12),
        ({"daily_requests_remaining": True}, None),
        ({"daily_requests_remaining": -1}, None),
        ({"daily_requests_remaining": "²"}, None),
        ({"daily_requests_remaining": None, "meta": {"rate_limit": {"daily_remaining": 5}}}, 5),
    ],
)
def test_daily_remaining(body: dict[str, Any], remaining: int | None) -> None:
    assert daily_remaining(body) == remaining


def test_request_id_of() -> None:
    assert request_id_of(V2_LOGS_SCROLL) == "10615c94-d835-413e-ad3f-57c5a4c2276b"
    assert request_id_of({"request_id": "top"}) == "top"
    assert request_id_of(V1_SCROLL) is None
    assert request_id_of({"meta": {"request_id": 5}}) is None


# --- robustness --------------------------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=5)
    ),
    max_leaves=25,
)
#: Bodies that look like responses (the documented keys, arbitrary values), so validation gets deep.
KEYS = st.sampled_from(
    [
        "data",
        "meta",
        "logs",
        "workloads",
        "count",
        "token",
        "presigned_urls",
        "presigned_url",
        "start_time",
        "end_time",
        "completed",
        "ready",
        "status",
        "log_count",
        "rate_limit",
        "daily_remaining",
        "scroll_id",
        "scrollId",
        "summary",
        "_source",
        "_score",
        "__class__",
        "model_config",
    ]
)
SHAPED = st.recursive(
    JSON_VALUES,
    lambda children: st.lists(children, max_size=3) | st.dictionaries(KEYS, children, max_size=6),
    max_leaves=30,
)


@settings(max_examples=300)
@given(body=SHAPED, endpoint=st.sampled_from(sorted(RESPONSE_MODELS)))
def test_models_raise_only_validation_errors(body: Any, endpoint: str) -> None:
    with contextlib.suppress(ValidationError):
        RESPONSE_MODELS[endpoint].model_validate(body)


@settings(max_examples=300)
@given(body=SHAPED, kind=st.sampled_from(["logs", "workloads", "v1"]))
def test_partitions_and_quota_raise_only_validation_errors(body: Any, kind: Any) -> None:
    if isinstance(body, dict):
        daily_remaining(body)
        request_id_of(body)
    with contextlib.suppress(ValidationError):
        partitions_from_status(body, kind)
