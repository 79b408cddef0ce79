"""Benign episodes: bursts in the logs that look alarming in a histogram and are not incidents.

Deploys (readiness probes failing, connections reset while draining), cron jobs at the same time every
day or week, brief retry blips, error flaps on flaky streams, login-failure storms. `EPISODES` says which
stream has which (`Schedule`), `KINDS` what each kind logs, for how long and how many records at the
default volume (30,000 logs/day; sizes scale with ``--volume`` and are carved out of it). plan.py turns
them into dated episodes; ``GET /_sandbox/episodes`` lists them with their exact counts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Final, Literal

from cm_mcp.sandbox.catalogue import Template


@dataclass(frozen=True)
class EpisodeKind:
    name: str
    messages: tuple[Template, ...]  # (level, weight, text, ()) as in the catalogue
    minutes: tuple[float, float]
    records: tuple[int, int]  # at the default volume


_RETRY_JVM: Final[tuple[Template, ...]] = (
    ("WARN", 6, "Retrying call to {host}:{port} (attempt {attempt}/3) after {ms}ms", ()),
    ("WARN", 2, "Connection pool usage at {pct}% (max 50)", ()),
    ("WARN", 2, "Slow request {method} {path} took {slow_ms}ms (threshold 1000ms)", ()),
    (
        "ERROR",
        0.8,
        "Request {uuid} failed: java.net.SocketTimeoutException: Read timed out after {slow_ms}ms",
        (),
    ),
)
KINDS: Final[dict[str, EpisodeKind]] = {
    kind.name: kind
    for kind in (
        EpisodeKind(
            "deploy",
            (
                ("INFO", 4, 'Pulling image "registry.example.com/{word}:{count}.{count}.{count}"', ()),
                ("INFO", 4, "Started container, readiness probe starts in {count}s", ()),
                ("INFO", 3, "Stopping container: SIGTERM received, graceful shutdown within {count}s", ()),
                ("WARN", 5, "Readiness probe failed: HTTP probe failed with statuscode: 503", ()),
                ("WARN", 3, "Connection reset by peer while draining connections ({count} in flight)", ()),
                ("WARN", 2, "Retrying call to {host}:{port} (attempt {attempt}/3) after {ms}ms", ()),
                ("ERROR", 0.4, "HTTP GET /health -> 503 in {ms}ms", ()),
            ),
            (3, 8),
            (40, 120),
        ),
        EpisodeKind("retry-blip", _RETRY_JVM, (1, 3), (10, 50)),
        EpisodeKind(
            "retry-blip-lambda",
            (
                ("WARN", 6, "Throttled by DynamoDB, retrying in {ms}ms", ()),
                ("WARN", 2, "Init Duration: {slow_ms} ms (cold start)", ()),
                (
                    "ERROR",
                    0.6,
                    "[ERROR] ClientError: An error occurred (ThrottlingException) when calling PutEvents",
                    (),
                ),
            ),
            (1, 3),
            (10, 40),
        ),
        EpisodeKind(
            "error-flap",
            (
                ("ERROR", 7, "Mail delivery to {email} failed: 421 Service not available", ()),
                ("WARN", 3, "SMS gateway throttled: {int} messages queued", ()),
            ),
            (1, 4),
            (8, 40),
        ),
        EpisodeKind(
            "error-flap-gateway",
            (
                ("ERROR", 6, "HTTP {method} {path} -> {status_5xx} in {slow_ms}ms", ()),
                ("WARN", 3, "Retrying call to {host}:{port} (attempt {attempt}/3) after {ms}ms", ()),
            ),
            (1, 3),
            (5, 20),
        ),
        EpisodeKind(
            "error-flap-lambda",
            (
                ("ERROR", 5, "[ERROR] KeyError: '{word}'", ()),
                ("ERROR", 3, "Task timed out after {count}.00 seconds", ()),
                ("WARN", 2, "Validation failed for event {uuid}: missing field '{word}'", ()),
            ),
            (1, 5),
            (6, 30),
        ),
        EpisodeKind(
            "login-storm",
            (
                (
                    "WARN",
                    8,
                    "Login failed for {user} from {ip}: invalid credentials ({attempt} attempts)",
                    (),
                ),
                ("WARN", 2, "Account {user} temporarily locked after {attempt} failed attempts", ()),
                ("INFO", 1, "Rate limit applied to {ip}: {int} requests in 60s", ()),
            ),
            (5, 15),
            (30, 150),
        ),
        EpisodeKind(
            "cron-backup",
            (
                ("INFO", 5, "Backup job started for volume vol-{hex}", ()),
                ("INFO", 5, "Backup {uuid} uploaded ({bytes} bytes) in {sec}s", ()),
                ("WARN", 2, "Backup throughput degraded: {int} KB/s (snapshot in progress)", ()),
                ("ERROR", 0.3, "Backup of vol-{hex} failed: snapshot busy (will retry)", ()),
            ),
            (10, 14),
            (90, 110),
        ),
        EpisodeKind(
            "cron-compaction",
            (
                ("INFO", 6, "Compaction of {table} partition dt={date} done in {sec}s", ()),
                ("WARN", 3, "Query {qid} exceeded memory budget, spilling {bytes} bytes to disk", ()),
                ("WARN", 1, "Compaction of {table} slow: {sec}s for {bytes} bytes", ()),
            ),
            (13, 17),
            (120, 150),
        ),
        EpisodeKind(
            "cron-reports",
            (
                ("INFO", 6, "Report {uuid} generated ({bytes} bytes) for {user}", ()),
                ("WARN", 2, "Export of report {uuid} took {sec}s", ()),
                ("ERROR", 0.5, "Report {uuid} generation failed: upstream timeout (will retry)", ()),
            ),
            (18, 22),
            (70, 90),
        ),
        EpisodeKind(
            "cron-digest",
            (
                ("INFO", 6, "Daily digest queued for {int} recipients", ()),
                ("WARN", 2, "SMS gateway throttled: {int} messages queued", ()),
                ("ERROR", 0.3, "Mail delivery to {email} failed: 421 Service not available", ()),
            ),
            (8, 12),
            (60, 80),
        ),
        EpisodeKind(
            "cron-etl",
            (
                ("INFO", 6, "ETL job {word}_daily stage {count}/7 completed in {sec}s", ()),
                ("WARN", 2, "ETL job {word}_daily stage {count}/7 retried: {s3err}", ()),
            ),
            (25, 35),
            (150, 200),
        ),
        EpisodeKind(
            "cron-reindex",
            (
                ("INFO", 3, "Indexed {int} documents into products-v{count} in {ms}ms", ()),
                ("WARN", 5, "Indexer lag {int}s behind source", ()),
                ("WARN", 2, "Search query '{word}' timed out on shard {count}, partial results returned", ()),
            ),
            (35, 45),
            (250, 300),
        ),
        EpisodeKind(
            "cron-lambda",
            (
                ("INFO", 3, "START RequestId: {uuid} Version: $LATEST", ()),
                ("INFO", 3, "END RequestId: {uuid}", ()),
                (
                    "INFO",
                    3,
                    "REPORT RequestId: {uuid} Duration: {lambda_ms} ms Billed Duration: {int} ms",
                    (),
                ),
                ("WARN", 1, "Throttled by DynamoDB, retrying in {ms}ms", ()),
            ),
            (6, 10),
            (50, 70),
        ),
        EpisodeKind(
            "cron-import",
            (
                ("INFO", 6, "Accepted {count} records for tenant batch {hex}", ()),
                ("WARN", 1, "Duplicate event {uuid} ignored", ()),
            ),
            (2, 4),
            (12, 18),
        ),
    )
}

Every = Literal["day", "weekday", "week", "hour"]
#: A stream that is any of the application's streams, picked by traffic.
ANY_STREAM: Final = "*"


@dataclass(frozen=True)
class Schedule:
    """When a kind of episode happens on a stream (a domain, or ``log_group|tenant|stage``)."""

    kind: str
    stream: str
    every: Every  # the days (or, for "hour", the hours) it happens on
    #: the UTC hour of day it starts at (``2.25`` = 02:15); for "hour", the minute as a fraction of an hour
    at: float = 0.0
    weekday: int = 6  # "week": 0 = Monday ... 6 = Sunday
    #: > 0: instead of at `at`, this many episodes per day on average (Poisson), at random times
    per_day: float = 0.0
    hours: tuple[float, float] = (0.0, 24.0)  # the part of the day random episodes start in


def _deploys(app_domains: tuple[tuple[str, float], ...]) -> tuple[Schedule, ...]:
    return tuple(
        Schedule("deploy", domain, "weekday", per_day=rate, hours=(9, 17)) for domain, rate in app_domains
    )


EPISODES: Final[dict[str, tuple[Schedule, ...]]] = {
    "atr": (
        *_deploys(
            (
                ("pay.example.com", 0.4),
                ("ops.example.com", 0.5),
                ("identity.example.com", 0.6),
                ("notify.example.com", 0.5),
            )
        ),
        Schedule("cron-backup", "ops.example.com", "day", at=2.0),
        Schedule("cron-digest", "notify.example.com", "day", at=7.0),
        Schedule("retry-blip", ANY_STREAM, "day", per_day=2.5),
        Schedule("error-flap", "notify.example.com", "day", per_day=5),
        Schedule("error-flap-gateway", "legacy.example.com", "day", per_day=2, hours=(7, 19)),
        Schedule("login-storm", "identity.example.com", "day", per_day=1.5),
    ),
    "klewer": (
        *_deploys((("shop.example.com", 0.8), ("search.example.com", 0.7), ("cms.example.com", 0.3))),
        Schedule("cron-reindex", "search.example.com", "week", at=3.0, weekday=6),
        Schedule("retry-blip", ANY_STREAM, "day", per_day=2.5),
        Schedule("error-flap-gateway", "labs.example.com", "day", per_day=2, hours=(9, 18)),
    ),
    "quasar": (
        *_deploys((("data.example.com", 0.4), ("etl.example.com", 0.3))),
        Schedule("cron-etl", "etl.example.com", "day", at=1.0),
        Schedule("cron-compaction", "data.example.com", "day", at=3.0),
        Schedule("cron-reports", "reports.example.com", "weekday", at=6.0),
        Schedule("retry-blip", ANY_STREAM, "day", per_day=2.0),
    ),
    "eventops": (
        Schedule("cron-lambda", "/aws/lambda/notify|acme|prod", "day", at=7.0),
        Schedule("cron-import", "/aws/lambda/ingest|globex|prod", "hour", at=5 / 60),
        Schedule("retry-blip-lambda", ANY_STREAM, "day", per_day=3),
        Schedule("error-flap-lambda", "/aws/lambda/enrich|initech|dev", "day", per_day=2, hours=(9, 18)),
        Schedule("error-flap-lambda", "/aws/lambda/ingest|acme|dev", "day", per_day=2, hours=(9, 18)),
    ),
}
#: Episodes never take more than this share of an application's volume (tiny volumes scale them down).
MAX_EPISODE_SHARE: Final = 0.15
#: The smallest episode kept when sizes scale down with the volume.
MIN_EPISODE_RECORDS: Final = 3
