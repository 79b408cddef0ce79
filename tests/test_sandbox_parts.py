"""Sandbox building blocks: scenarios parsing, auth, quotas, presign, faults, batch jobs, scrolls."""

from __future__ import annotations

import gzip
import itertools
import json
import zlib
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import anyio
import pytest

from cm_mcp.sandbox import auth
from cm_mcp.sandbox.batchjobs import (
    CONTENT_TYPES,
    BatchRegistry,
    TokenUnknown,
    read_partition_file,
    split_time_range,
    write_partition_file,
)
from cm_mcp.sandbox.config import SandboxConfig
from cm_mcp.sandbox.faults import FaultConfig, FaultInjector, FaultParseError, merge_faults, parse_faults
from cm_mcp.sandbox.incidents import (
    BUILTIN_INCIDENTS,
    ScenarioError,
    load_scenarios,
    merge_incidents,
    parse_scenarios,
    resolve_time,
)
from cm_mcp.sandbox.presign import Presigner, PresignError, s3_error_xml
from cm_mcp.sandbox.quotas import QuotaExhausted, Quotas
from cm_mcp.sandbox.scrolls import ScrollRegistry, ScrollUnknown

EXAMPLE: dict[str, Any] = {
    "incidents": [
        {"id": "inc-42", "kind": "logs", "application": "atr", "app_type": "kubernetes",
         "domain": "pay.example.com", "start": "now-5h", "minutes": 20, "per_minute": 150, "level": "ERROR",
         "messages": ["upstream connect error to {ip}:{int} after {int}ms"], "fields": {"k8s.pod": "api-{hex}"}},
        {"id": "inc-43", "kind": "logs", "application": "eventops", "app_type": "serverless",
         "log_group": "/aws/lambda/ingest", "tenant": "acme", "stage": "prod", "start": "2026-11-25T10:00:00Z",
         "minutes": 5, "per_minute": 40, "level": "ERROR", "messages": ["KeyError: '{word}'"]},
        {"id": "inc-44", "kind": "workloads", "application": "atr", "app_type": "ec2",
         "domain": "ops.example.com", "start": "now-1d", "minutes": 60, "per_minute": 3,
         "workflow": "Data_Enrichment_Workflow", "state": "FAILED", "trigger": "TICKET", "ticket_type": "SR_TASK"},
    ]
}  # fmt: skip
NOW = datetime(2026, 1, 20, 11, tzinfo=UTC)

# --------------------------------------------------------------------------------------------- scenarios


def test_example_scenarios_file_parses(tmp_path: Path) -> None:
    f = tmp_path / "s.json"
    f.write_text(json.dumps(EXAMPLE))
    incs = load_scenarios(f)
    assert [i.id for i in incs] == ["inc-42", "inc-43", "inc-44"]
    assert [i.count for i in incs] == [3000, 200, 180]
    assert incs[0].window(NOW) == (NOW - timedelta(hours=5), NOW - timedelta(hours=4, minutes=40))
    assert incs[1].window(NOW)[0] == datetime(2026, 11, 25, 10, tzinfo=UTC)
    assert len(merge_incidents(incs)) == len(BUILTIN_INCIDENTS) + 3


def _bad(change: dict[str, Any], index: int = 0) -> str:
    doc = json.loads(json.dumps(EXAMPLE))
    doc["incidents"][index].update(change)
    with pytest.raises(ScenarioError) as err:
        parse_scenarios(doc)
    return str(err.value)


@pytest.mark.parametrize(
    ("index", "change", "expected"),
    [
        (0, {"minutes": 0}, "incident 'inc-42' (incidents[0]): field 'minutes'"),
        (0, {"messages": ["boom {nope}"]}, "unknown placeholder(s) {nope}"),
        (0, {"start": "yesterday"}, "'yesterday' is not an ISO 8601 time"),
        (0, {"domain": None}, "need a domain"),
        (0, {"app_type": "ec2"}, "is kubernetes, not ec2"),
        (0, {"domain": "shop.example.com"}, "belongs to application 'klewer'"),
        (0, {"level": "LOUD"}, "level must be one of"),
        (0, {"colour": "red"}, "field 'colour': Extra inputs are not permitted"),
        (0, {"fields": {"@timestamp": "x"}}, "cannot be set"),
        (0, {"fields": {"k8s": "x", "k8s.pod": "y"}}, "conflict"),
        (1, {"tenant": None}, "incident 'inc-43' (incidents[1]): serverless incidents need tenant"),
        (1, {"application": "atr"}, "'serverless' goes with application 'eventops'"),
        (2, {"workflow": ""}, "incident 'inc-44' (incidents[2]): field 'workflow'"),
        (2, {"app_type": "serverless"}, "field 'app_type'"),
        (2, {"id": "inc-42"}, "duplicate incident id 'inc-42'"),
    ],
)
def test_invalid_scenarios_name_incident_and_field(index: int, change: dict[str, Any], expected: str) -> None:
    assert expected in _bad(change, index)


def test_unreadable_scenarios_file(tmp_path: Path) -> None:
    f = tmp_path / "bad.json"
    f.write_text("{nope")
    with pytest.raises(ScenarioError, match="not JSON"):
        load_scenarios(f)
    with pytest.raises(ScenarioError, match="cannot read"):
        load_scenarios(tmp_path / "missing.json")
    with pytest.raises(ScenarioError, match="used more than once"):
        merge_incidents([BUILTIN_INCIDENTS[0]])


def test_date_math() -> None:
    now = datetime(2026, 1, 20, 10, 37, 12, tzinfo=UTC)
    assert resolve_time("now", now) == now
    assert resolve_time("now-5h", now) == now - timedelta(hours=5)
    assert resolve_time("now-1d-30m", now) == now - timedelta(days=1, minutes=30)
    assert resolve_time("now-2h/h", now) == datetime(2026, 1, 20, 8, tzinfo=UTC)
    assert resolve_time("now/d", now) == datetime(2026, 1, 20, tzinfo=UTC)
    assert resolve_time("2026-01-19T00:00:00.000Z", now) == datetime(2026, 1, 19, tzinfo=UTC)
    assert resolve_time("2026-01-19T02:00:00+02:00", now) == datetime(2026, 1, 19, tzinfo=UTC)


# ------------------------------------------------------------------------------------------------- auth


def test_jwt_issue_verify() -> None:
    tok = auth.issue_token("alice", now=1_000_000)
    claims = auth.verify(f"Bearer {tok}", now=1_000_001)
    assert claims["sub"] == "alice"
    assert claims["exp"] - claims["iat"] == 12 * 3600
    assert auth.verify(tok, now=1_000_001)["sub"] == "alice"  # bare token accepted too


@pytest.mark.parametrize(
    ("header", "reason"),
    [
        (None, "missing"),
        ("  ", "missing"),
        ("Bearer not.a.jwt", "invalid"),
        ("Basic a b", "invalid"),
    ],
)
def test_jwt_rejects(header: str | None, reason: str) -> None:
    with pytest.raises(auth.AuthError) as err:
        auth.verify(header)
    assert err.value.reason == reason


def test_jwt_expired_and_tampered() -> None:
    tok = auth.issue_token("bob", ttl_seconds=60, now=1_000_000)
    with pytest.raises(auth.AuthError) as err:
        auth.verify(f"Bearer {tok}", now=1_000_061)
    assert err.value.reason == "expired"
    head, body, sig = tok.split(".")
    tampered = f"{head}.{body}.{sig[:-4]}{'AAAA' if sig[-4:] != 'AAAA' else 'BBBB'}"
    with pytest.raises(auth.AuthError) as err:
        auth.verify(f"Bearer {tampered}", now=1_000_001)
    assert err.value.reason == "invalid"
    other = auth.issue_token("bob", secret="another-secret-of-sufficient-length!", now=1_000_000)
    with pytest.raises(auth.AuthError):
        auth.verify(other, now=1_000_001)


# ----------------------------------------------------------------------------------------------- quotas


def test_quotas_consume_exhaust_and_reset_at_midnight() -> None:
    q = Quotas({"logs_scroll": 3})
    t = datetime(2026, 1, 20, 23, 59, tzinfo=UTC)
    assert [q.consume("u", "logs_scroll", t) for _ in range(3)] == [2, 1, 0]
    with pytest.raises(QuotaExhausted) as err:
        q.consume("u", "logs_scroll", t)
    assert err.value.reset_at == datetime(2026, 1, 21, tzinfo=UTC)
    assert q.consume("other", "logs_scroll", t) == 2  # per subject
    assert q.consume("u", "logs_aggs", t) == 999  # per family
    assert q.consume("u", "logs_batch_status", t) is None  # free
    assert q.remaining("u", "logs_scroll", t) == 0
    assert q.consume("u", "logs_scroll", t + timedelta(minutes=1)) == 2  # 00:00 UTC: fresh day
    stats = q.stats(t + timedelta(minutes=1))
    assert stats["reset_at"] == "2026-01-22T00:00:00Z"
    assert stats["usage"] == {"u": {"logs_scroll": {"used": 1, "limit": 3, "remaining": 2}}}


def test_quota_defaults_and_unknown_family() -> None:
    q = Quotas()
    assert q.limits["workloads_batch"] == 50
    assert q.limits["workloads_aggs"] == 1000
    assert q.limits["v1_logs_batch"] == 500
    assert q.limits["billing_query"] == 500
    assert q.limits["v1_logs_batch_urls"] is None
    with pytest.raises(KeyError):
        q.consume("u", "nope")
    with pytest.raises(ValueError, match="unknown quota families"):
        Quotas({"nope": 1})
    q.exhaust("u", "logs_batch")
    with pytest.raises(QuotaExhausted):
        q.consume("u", "logs_batch")


# ---------------------------------------------------------------------------------------------- presign


def _params(url: str) -> tuple[str, dict[str, str]]:
    parts = urlsplit(url)
    return parts.path.removeprefix("/_s3/"), dict(parse_qsl(parts.query))


def test_presign_roundtrip_expiry_and_tampering() -> None:
    p = Presigner("s3cret")
    url = p.sign("http://127.0.0.1:8766/_s3", "logs/tok/part-0000.ndjson.gz", 900, now=1_000_000)
    key, qp = _params(url)
    assert key == "logs/tok/part-0000.ndjson.gz"
    assert qp["X-Amz-Expires"] == "900"
    assert {"X-Amz-Date", "X-Amz-Signature", "X-Amz-Algorithm"} <= set(qp)
    p.verify(key, qp, now=1_000_899)
    with pytest.raises(PresignError) as err:
        p.verify(key, qp, now=1_000_901)
    assert (err.value.code, err.value.message) == ("AccessDenied", "Request has expired")
    with pytest.raises(PresignError) as err:
        p.verify(key, {**qp, "X-Amz-Expires": "99999"}, now=1_000_001)
    assert err.value.code == "SignatureDoesNotMatch"
    with pytest.raises(PresignError) as err:
        p.verify("logs/tok/part-0001.ndjson.gz", qp, now=1_000_001)
    assert err.value.code == "SignatureDoesNotMatch"
    with pytest.raises(PresignError) as err:
        Presigner("other").verify(key, qp, now=1_000_001)
    assert err.value.code == "SignatureDoesNotMatch"
    with pytest.raises(PresignError) as err:
        p.verify(key, {}, now=1_000_001)
    assert err.value.code == "AccessDenied"


def test_s3_error_xml() -> None:
    xml = s3_error_xml("AccessDenied", "Request has expired", "/logs/a&b", "RID")
    assert xml.startswith('<?xml version="1.0" encoding="UTF-8"?>')
    assert "<Error><Code>AccessDenied</Code><Message>Request has expired</Message>" in xml
    assert "<Resource>/logs/a&amp;b</Resource>" in xml


# ----------------------------------------------------------------------------------------------- faults


def test_faults_parse_cli_and_json() -> None:
    assert not FaultConfig().active
    f = parse_faults("error_rate=0.2, latency_ms=50,expired_url,burst_429=3")
    assert (f.error_rate, f.latency_ms, f.expired_url, f.burst_429) == (0.2, 50, True, 3)
    assert f.active
    assert parse_faults("") == FaultConfig()
    with pytest.raises(FaultParseError, match="unknown fault 'nope'"):
        parse_faults("nope=1")
    with pytest.raises(FaultParseError, match="error_rate"):
        parse_faults("error_rate=2")
    g = merge_faults(f, {"error_rate": 0, "partition_fail_rate": 0.5})
    assert (g.error_rate, g.partition_fail_rate, g.latency_ms) == (0, 0.5, 50)
    with pytest.raises(FaultParseError):
        merge_faults(f, {"latency_ms": "slow"})
    with pytest.raises(FaultParseError):
        merge_faults(f, [1])


def test_fault_decisions_seeded() -> None:
    cfg = FaultConfig(error_rate=0.3, burst_429=2, seed=5)
    a, b = FaultInjector(cfg), FaultInjector(cfg)
    seq_a = [a.api_error_status() for _ in range(200)]
    assert seq_a == [b.api_error_status() for _ in range(200)]
    errors = [s for s in seq_a if s is not None]
    assert 30 < len(errors) < 90
    assert set(errors) <= {502, 503, 504}
    assert [a.take_429() for _ in range(3)] == [True, True, False]
    off = FaultInjector()
    assert off.api_error_status() is None
    assert not off.connection_reset()
    assert off.file_variant() == "ok"
    assert off.partition_slowness() == 1.0
    assert off.latency_seconds() == 0


def test_batch_and_download_faults_do_not_depend_on_the_api_requests_around_them() -> None:
    """Concurrency changes how many API requests a batch's submission follows; its faults stay the same."""
    cfg = FaultConfig(error_rate=0.5, partition_fail_rate=0.3, truncated_file_rate=0.3, seed=11)
    quiet, busy = FaultInjector(cfg), FaultInjector(cfg)
    for _ in range(37):
        busy.api_error_status()
    assert [quiet.partition_fails() for _ in range(50)] == [busy.partition_fails() for _ in range(50)]
    assert [quiet.file_variant() for _ in range(50)] == [busy.file_variant() for _ in range(50)]


# ------------------------------------------------------------------------------------------- batch jobs


def _parts(n: int) -> list[tuple[datetime, datetime, int]]:
    return [(NOW + timedelta(hours=i), NOW + timedelta(hours=i + 1), 10 * i) for i in range(n)]


def test_batch_states_progress_with_elapsed_time() -> None:
    reg = BatchRegistry(batch_seconds=3)
    tok = reg.submit("logs", {"q": 1}, _parts(3), now=100.0)
    assert len(tok) >= 16
    assert tok.replace("-", "").replace("_", "").isalnum()

    def states(t: float) -> list[str]:
        return [s.state for s in reg.status(tok, now=t)]

    assert states(100.0) == ["processing", "pending", "pending"]
    assert states(101.0) == ["completed", "processing", "processing"]
    assert states(102.0) == ["completed", "completed", "processing"]
    assert states(103.0) == ["completed", "completed", "completed"]
    st = reg.status(f"  {tok}\n", now=103.0)  # tokens are trimmed
    assert [s.partition.count for s in st] == [0, 10, 20]
    assert st[1].object_key == f"logs/{tok}/part-0001.ndjson.gz"
    assert st[2].completed
    assert reg.get(tok, now=103).query == {"q": 1}


def test_batch_failures_and_slow_partitions_under_faults() -> None:
    inj = FaultInjector(
        FaultConfig(partition_fail_rate=1.0, slow_partition_factor=10, slow_partition_rate=1.0)
    )
    reg = BatchRegistry(batch_seconds=2, faults=inj)
    tok = reg.submit("workloads", None, _parts(2), now=0.0)
    assert [s.state for s in reg.status(tok, now=12.0)] == ["failed", "processing"]
    assert [s.state for s in reg.status(tok, now=20.0)] == ["failed", "failed"]


def test_batch_token_expiry() -> None:
    reg = BatchRegistry(batch_seconds=0, token_ttl_seconds=7200)
    tok = reg.submit("logs", None, _parts(1), now=0.0)
    assert reg.status(tok, now=7199.0)[0].completed
    with pytest.raises(TokenUnknown, match="Tokens expire after 2 hours"):
        reg.status(tok, now=7200.0)
    with pytest.raises(TokenUnknown):
        reg.get("never-issued", now=0.0)
    reg.submit("logs", None, _parts(1), now=9000.0)  # purges the expired one
    assert len(reg) == 1


def test_split_time_range() -> None:
    start, end = NOW, NOW + timedelta(hours=10)
    assert split_time_range(start, end, 0) == [(start, end)]
    parts = split_time_range(start, end, 250_001)
    assert len(parts) == 3
    assert parts[0][0] == start
    assert parts[-1][1] == end
    assert all(a[1] == b[0] for a, b in itertools.pairwise(parts))
    assert len(split_time_range(start, end, 10_000_000, max_partitions=8)) == 8
    with pytest.raises(ValueError, match="after start"):
        split_time_range(end, start, 1)


HITS = [
    {"_index": "logs-atr-2026.01", "_id": f"id{i}", "_source": {"message": f"m{i} é", "n": i}}
    for i in range(50)
]


@pytest.mark.parametrize("fmt", ["ndjson.gz", "ndjson", "json"])
def test_partition_files_roundtrip(tmp_path: Path, fmt: Any) -> None:
    path = tmp_path / f"p.{fmt}"
    assert write_partition_file(path, iter(HITS), fmt) == 50
    assert read_partition_file(path, fmt) == HITS
    raw = path.read_bytes()
    assert raw[:2] == b"\x1f\x8b" if fmt == "ndjson.gz" else raw[:1] in (b"{", b"[")
    assert fmt in CONTENT_TYPES
    empty = tmp_path / f"e.{fmt}"
    assert write_partition_file(empty, [], fmt) == 0
    assert read_partition_file(empty, fmt) == []


@pytest.mark.parametrize("fmt", ["ndjson.gz", "ndjson", "json"])
@pytest.mark.parametrize("variant", ["truncated", "corrupt"])
def test_damaged_partition_files_are_unreadable(tmp_path: Path, fmt: Any, variant: Any) -> None:
    path = tmp_path / f"p.{fmt}"
    write_partition_file(path, HITS, fmt, variant)
    with pytest.raises((ValueError, EOFError, OSError, zlib.error, gzip.BadGzipFile)):
        read_partition_file(path, fmt)
    if fmt == "ndjson.gz" and variant == "corrupt":
        assert path.read_bytes()[:2] == b"\x1f\x8b"  # still looks like gzip


# ---------------------------------------------------------------------------------------------- scrolls


def test_scroll_contexts_and_idle_expiry() -> None:
    reg = ScrollRegistry(idle_seconds=300)
    sid = reg.open({"q": 1}, total=25, page_size=10, cursor=None, now=0.0)
    assert "=" not in sid
    assert "/" not in sid
    assert "+" not in sid
    ctx = reg.next(sid, now=10.0)
    assert (ctx.total, ctx.page_size, ctx.cursor, ctx.returned) == (25, 10, None, 0)
    reg.advance(sid, cursor=["2026-01-20T00:00:00Z", "id9"], returned=10, now=20.0)
    ctx = reg.next(sid, now=310.0)  # idle time counts from the last use
    assert ctx.cursor == ["2026-01-20T00:00:00Z", "id9"]
    assert not ctx.exhausted
    reg.advance(sid, cursor=None, returned=15, now=311.0)
    assert reg.next(sid, now=312.0).exhausted
    with pytest.raises(ScrollUnknown):
        reg.next(sid, now=700.0)
    with pytest.raises(ScrollUnknown):
        reg.next("bogus")
    other = reg.open(None, 1, 1, now=0.0)
    reg.close(other)
    with pytest.raises(ScrollUnknown):
        reg.next(other, now=1.0)


def test_scroll_registry_caps_contexts() -> None:
    reg = ScrollRegistry(max_contexts=2)
    first = reg.open(None, 1, 1, now=0.0)
    reg.open(None, 1, 1, now=1.0)
    reg.open(None, 1, 1, now=2.0)
    assert len(reg) == 2
    with pytest.raises(ScrollUnknown):
        reg.next(first, now=3.0)


# ----------------------------------------------------------------------------------------------- config


def test_sandbox_config_defaults() -> None:
    c = SandboxConfig()
    assert (c.host, c.port, c.seed, c.window_days, c.token_ttl_hours) == ("127.0.0.1", 8766, 42, 7, 2.0)
    assert c.file_format == "ndjson.gz"
    assert c.quota_limits["logs_scroll"] == 50
    assert not c.faults.active
    c2 = SandboxConfig.model_validate({"faults": {"error_rate": 0.1}, "file_format": "json"})
    assert c2.faults.error_rate == 0.1
    with pytest.raises(ValueError, match="file_format"):
        SandboxConfig.model_validate({"file_format": "xml"})


def test_a_request_is_counted_before_its_last_byte_is_sent() -> None:
    """A client holding its whole answer that then reads /_sandbox/stats finds the request counted
    (counted after the send, a loaded run showed one call's request in the next call's count)."""
    from cm_mcp.sandbox.middleware import StatsMiddleware
    from cm_mcp.sandbox.state import Stats

    stats = Stats()
    counted_at_last_byte: list[dict[str, int]] = []

    async def app(scope: Any, receive: Any, send: Any) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        await send({"type": "http.response.body", "body": b"}"})

    async def send(message: Any) -> None:
        if message["type"] == "http.response.body" and not message.get("more_body", False):
            counted_at_last_byte.append(dict(stats.by_endpoint.get("/v2/logs/aggs", {})))

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    scope = {"type": "http", "path": "/v2/logs/aggs", "method": "POST", "headers": []}
    anyio.run(StatsMiddleware(app, stats), scope, receive, send)
    assert counted_at_last_byte == [{"200": 1}]
    assert dict(stats.by_endpoint["/v2/logs/aggs"]) == {"200": 1}  # once, not again at the end
