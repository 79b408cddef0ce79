"""Message catalogues and the placeholder machinery of the sandbox data.

Everything the generator needs to look realistic lives here as plain data: the domains, services,
log groups, tenants and stages of each application, and dozens of message templates per application
with variable parts written as ``{kind}`` placeholders (``{ip}``, ``{ms}``, ``{uuid}``...).

Templates are compiled once into a ``%``-format string plus a tuple of value pools, so filling one
costs one tuple build and one ``%`` (the generator's hot loop runs this hundreds of thousands of
times at start-up). Pools are pre-drawn from a seeded RNG, which keeps the output deterministic.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Final

# ---------------------------------------------------------------------------------------------------------
# Catalogue: domains and serverless routing values
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DomainInfo:
    name: str
    infra_type: str  # "ec2" or "kubernetes" (lower case, as in `<app>.infra_type`)
    namespace: str  # kubernetes namespace; also used as the ec2 host-name stem
    services: tuple[str, ...]
    weight: float  # share of the application's traffic


#: ec2/kubernetes domains per application. Names are distinct across applications so a domain
#: identifies its application (billing is queried by domain alone).
DOMAINS: Final[dict[str, tuple[DomainInfo, ...]]] = {
    "atr": (
        DomainInfo("pay.example.com", "kubernetes", "payments", ("payment-api", "ledger", "fraud-check"), 3),
        DomainInfo("ops.example.com", "ec2", "ops", ("ops-console", "runbook-runner", "scheduler"), 2),
        DomainInfo("identity.example.com", "kubernetes", "identity", ("auth-api", "session-store"), 2),
        DomainInfo("notify.example.com", "ec2", "notify", ("notifier", "mailer", "sms-gateway"), 1),
    ),
    "klewer": (
        DomainInfo("shop.example.com", "kubernetes", "shop", ("storefront", "cart-api", "checkout"), 3),
        DomainInfo("search.example.com", "kubernetes", "search", ("search-api", "indexer"), 2),
        DomainInfo("cms.example.com", "ec2", "cms", ("cms-web", "media-worker"), 1),
    ),
    "quasar": (
        DomainInfo("data.example.com", "ec2", "data", ("query-engine", "catalog"), 2),
        DomainInfo("etl.example.com", "kubernetes", "etl", ("etl-runner", "spark-driver", "loader"), 3),
        DomainInfo("reports.example.com", "ec2", "reports", ("report-builder", "exporter"), 1),
    ),
}

#: EventOps (serverless) log groups -> (function memory MB, endpoints served, traffic weight).
LOG_GROUPS: Final[dict[str, tuple[int, tuple[str, ...], float]]] = {
    "/aws/lambda/ingest": (1024, ("/v1/events", "/v1/events/batch"), 4),
    "/aws/lambda/enrich": (2048, ("/v1/enrich", "/v1/events/{id}/enrich"), 3),
    "/aws/lambda/dispatch": (512, ("/v1/dispatch", "/v1/subscriptions"), 2),
    "/aws/lambda/notify": (256, ("/v1/notifications", "/v1/notifications/{id}"), 1),
    "/aws/lambda/authorizer": (128, ("/v1/token", "/v1/introspect"), 2),
}
TENANTS: Final[dict[str, float]] = {"acme": 4, "globex": 3, "initech": 2, "umbrella": 1, "stark": 1}
STAGES: Final[dict[str, float]] = {"prod": 8, "staging": 2, "dev": 1}
EVENT_ORIGINS: Final[dict[str, float]] = {"api-gateway": 6, "sqs": 2, "eventbridge": 1, "s3": 1, "kinesis": 1}

WORKFLOWS: Final[dict[str, float]] = {
    "Incident_Response_Workflow": 6,
    "Scheduled_Maintenance_Workflow": 3,
    "Data_Enrichment_Workflow": 3,
    "Data_Processing_Workflow": 4,
    "Patch_Deployment_Workflow": 2,
    "Access_Request_Workflow": 2,
    "Backup_Verification_Workflow": 1,
    "Certificate_Renewal_Workflow": 1,
}
#: How each workflow is usually started: (trigger, ticket type or None) with weights.
WORKFLOW_TRIGGERS: Final[dict[str, tuple[tuple[str, str | None, float], ...]]] = {
    "Incident_Response_Workflow": (("TICKET", "INCIDENT", 8), ("API", None, 1), ("MANUAL", None, 1)),
    "Scheduled_Maintenance_Workflow": (("SCHEDULE", None, 8), ("TICKET", "CHANGE", 2)),
    "Data_Enrichment_Workflow": (("TICKET", "SR_TASK", 5), ("API", None, 3), ("SCHEDULE", None, 2)),
    "Data_Processing_Workflow": (("SCHEDULE", None, 5), ("API", None, 4), ("TICKET", "SR_TASK", 1)),
    "Patch_Deployment_Workflow": (("TICKET", "CHANGE", 7), ("SCHEDULE", None, 3)),
    "Access_Request_Workflow": (("TICKET", "SR_TASK", 8), ("TICKET", "REQUEST", 2)),
    "Backup_Verification_Workflow": (("SCHEDULE", None, 9), ("MANUAL", None, 1)),
    "Certificate_Renewal_Workflow": (("SCHEDULE", None, 6), ("TICKET", "CHANGE", 3), ("MANUAL", None, 1)),
}
#: Final states of finished workloads (RUNNING is decided by elapsed time, not drawn).
WORKLOAD_FINAL_STATES: Final[dict[str, float]] = {
    "COMPLETED": 90,
    "FAILED": 5,
    "CANCELLED": 3,
    "TIMED_OUT": 2,
}
#: `status` is the lower-case, coarser companion of `workload.state` (the reference lists both).
WORKLOAD_STATUS: Final[dict[str, str]] = {
    "COMPLETED": "success",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "TIMED_OUT": "failed",
    "RUNNING": "running",
    "PENDING": "pending",
}
#: Typical workload duration per workflow in seconds (median); actual values spread around it.
WORKFLOW_MEDIAN_SECONDS: Final[dict[str, float]] = {
    "Incident_Response_Workflow": 240,
    "Scheduled_Maintenance_Workflow": 900,
    "Data_Enrichment_Workflow": 45,
    "Data_Processing_Workflow": 600,
    "Patch_Deployment_Workflow": 1500,
    "Access_Request_Workflow": 30,
    "Backup_Verification_Workflow": 1200,
    "Certificate_Renewal_Workflow": 120,
}

#: Share of the daily log volume per application (sums to 1).
APP_SHARES: Final[dict[str, float]] = {"atr": 0.35, "klewer": 0.25, "quasar": 0.2, "eventops": 0.2}

LEVELS: Final = ("DEBUG", "INFO", "WARN", "ERROR")

# ---------------------------------------------------------------------------------------------------------
# Message catalogues: (level, weight, template)
# ---------------------------------------------------------------------------------------------------------

#: (level, weight, text, stems): `stems` restricts a template to the domains whose first label (or the
#: log groups whose last path part) is listed, so payments messages come from pay.example.com only;
#: empty = every stream of the application.
Template = tuple[str, float, str, tuple[str, ...]]

_COMMON_JVM: Final[tuple[Template, ...]] = (
    ("INFO", 30, "HTTP {method} {path} -> {status_ok} in {ms}ms", ()),
    ("INFO", 8, "Health check passed: db={ms}ms cache={ms}ms", ()),
    ("DEBUG", 10, "Cache hit for key {word}:{int} (ttl {count}s)", ()),
    ("DEBUG", 6, "Acquired connection from pool (active={count}, idle={count})", ()),
    ("INFO", 5, "Scheduled job {word}-sync finished in {ms}ms, {int} records", ()),
    ("WARN", 5, "Slow request {method} {path} took {slow_ms}ms (threshold 1000ms)", ()),
    ("WARN", 3, "HTTP {method} {path} -> {status_4xx} in {ms}ms", ()),
    ("WARN", 2, "Retrying call to {host}:{port} (attempt {attempt}/3) after {ms}ms", ()),
    ("WARN", 1.5, "Connection pool usage at {pct}% (max 50)", ()),
    ("ERROR", 1.2, "HTTP {method} {path} -> {status_5xx} in {slow_ms}ms", ()),
    (
        "ERROR",
        0.6,
        "Request {uuid} failed: java.net.SocketTimeoutException: Read timed out after {slow_ms}ms",
        (),
    ),
    (
        "ERROR",
        0.4,
        "Unhandled exception in request {uuid}: java.lang.NullPointerException at {java_frame}",
        (),
    ),
)

CATALOGUES: Final[dict[str, tuple[Template, ...]]] = {
    "atr": (
        *_COMMON_JVM,
        ("INFO", 12, "Payment {txn} authorised for {amount} {currency} (merchant {int})", ("pay",)),
        ("INFO", 6, "Ledger entry {txn} posted to account {account}", ("pay",)),
        ("INFO", 5, "User {user} logged in from {ip} (mfa={bool})", ("identity",)),
        ("INFO", 4, "Issued session token for {user}, expires in {int}s", ("identity",)),
        ("INFO", 4, "Runbook {word}-restart executed on {host} by {user}", ("ops",)),
        ("INFO", 3, "Notification {uuid} delivered via {channel} to {email}", ("notify",)),
        ("INFO", 3, "Ticket {ticket} picked up by workflow engine, workload {wl}", ("ops",)),
        ("INFO", 2, "Fraud score for {txn}: {pct} (threshold 80)", ("pay",)),
        ("DEBUG", 4, "Evaluating routing rule {int} for tenant {word}", ("notify",)),
        ("DEBUG", 3, "Kafka consumer payments-{count} committed offset {big} on partition {count}", ("pay",)),
        ("WARN", 2, "Fraud check latency {slow_ms}ms exceeds SLO for {txn}", ("pay",)),
        (
            "WARN",
            2,
            "Login failed for {user} from {ip}: invalid credentials ({attempt} attempts)",
            ("identity",),
        ),
        ("WARN", 1.5, "Payment {txn} declined: insufficient funds", ("pay",)),
        ("WARN", 1, "SMS gateway throttled: {int} messages queued", ("notify",)),
        ("WARN", 1, "Certificate for {host} expires in {count} days", ("ops",)),
        ("ERROR", 0.8, "Payment {txn} failed: upstream acquirer returned {status_5xx}", ("pay",)),
        ("ERROR", 0.5, "Ledger write failed for {txn}: deadlock detected, transaction rolled back", ("pay",)),
        ("ERROR", 0.4, "Mail delivery to {email} failed: 421 Service not available", ("notify",)),
        ("ERROR", 0.3, "Token validation failed for {user}: signature mismatch (kid {hex})", ("identity",)),
    ),
    "klewer": (
        *_COMMON_JVM,
        ("INFO", 12, "GET /product/{int} rendered in {ms}ms (cache {hitmiss})", ("shop",)),
        ("INFO", 8, "Cart {uuid} updated: {count} items, total {amount} {currency}", ("shop",)),
        ("INFO", 5, "Order {order} placed by {user} ({count} items)", ("shop",)),
        ("INFO", 5, "Search query '{word}' returned {int} hits in {ms}ms", ("search",)),
        ("INFO", 3, "Indexed {int} documents into products-v{count} in {ms}ms", ("search",)),
        ("INFO", 2, "Media {hex}.jpg resized to {count} variants in {ms}ms", ("cms",)),
        ("INFO", 2, "CMS page {path} published by {user}", ("cms",)),
        ("DEBUG", 4, "Promotion engine evaluated {count} rules for cart {uuid}", ("shop",)),
        ("DEBUG", 3, "Elasticsearch bulk request of {int} actions took {ms}ms", ("search",)),
        ("WARN", 2, "Payment provider responded slowly for order {order}: {slow_ms}ms", ("shop",)),
        ("WARN", 2, "Stock level low for SKU {sku}: {count} left", ("shop",)),
        (
            "WARN",
            1.5,
            "Search query '{word}' timed out on shard {count}, partial results returned",
            ("search",),
        ),
        ("WARN", 1, "Indexer lag {int}s behind source", ("search",)),
        (
            "ERROR",
            0.7,
            "Checkout failed for order {order}: payment declined by provider ({status_4xx})",
            ("shop",),
        ),
        ("ERROR", 0.4, "Failed to render /product/{int}: TemplateNotFound: product_v{count}.html", ("shop",)),
        ("ERROR", 0.3, "Media worker crashed processing {hex}.jpg: OutOfMemoryError", ("cms",)),
    ),
    "quasar": (
        *_COMMON_JVM,
        ("INFO", 10, "Query {qid} finished: {int} rows scanned, {count} returned in {ms}ms", ("data",)),
        ("INFO", 8, "ETL job {word}_daily stage {count}/7 completed in {sec}s", ("etl",)),
        ("INFO", 5, "Loaded {int} rows into warehouse.{table} in {sec}s", ("etl",)),
        ("INFO", 4, "Spark executor {count} registered on {ip} with {count} cores", ("etl",)),
        ("INFO", 3, "Report {uuid} generated ({bytes} bytes) for {user}", ("reports",)),
        ("INFO", 3, "Catalog refreshed: {int} tables, {int} partitions", ("data",)),
        ("DEBUG", 5, "Partition dt={date} of {table} pruned", ("data",)),
        ("DEBUG", 3, "Shuffle write {bytes} bytes for stage {count}", ("etl",)),
        ("WARN", 2.5, "Query {qid} exceeded memory budget, spilling {bytes} bytes to disk", ("data",)),
        ("WARN", 2, "ETL job {word}_daily stage {count}/7 retried: {s3err}", ("etl",)),
        ("WARN", 1.5, "Schema drift on {table}: column {word} added", ("data",)),
        ("WARN", 1, "Export of report {uuid} took {sec}s", ("reports",)),
        ("ERROR", 0.6, "Query {qid} failed: Table not found: warehouse.{table}", ("data",)),
        (
            "ERROR",
            0.5,
            "Spark executor {count} lost on {ip}: Container killed by YARN for exceeding memory",
            ("etl",),
        ),
        (
            "ERROR",
            0.4,
            "Load into warehouse.{table} failed: duplicate key value violates unique constraint",
            ("etl",),
        ),
    ),
    "eventops": (
        ("INFO", 20, "START RequestId: {uuid} Version: $LATEST", ()),
        ("INFO", 20, "END RequestId: {uuid}", ()),
        ("INFO", 18, "REPORT RequestId: {uuid} Duration: {lambda_ms} ms Billed Duration: {int} ms", ()),
        ("INFO", 10, "Processed event {uuid} in {ms}ms", ()),
        ("INFO", 6, "Accepted {count} records for tenant batch {hex}", ("ingest",)),
        ("INFO", 4, "Enriched event {uuid} with {count} attributes", ("enrich",)),
        ("INFO", 3, "Dispatched message {uuid} to subscription {hex}", ("dispatch",)),
        ("INFO", 2, "Token issued for client {hex} (scope {word})", ("authorizer",)),
        ("DEBUG", 6, "Payload size {bytes} bytes, schema v{count}", ()),
        ("DEBUG", 3, "DynamoDB GetItem events-{word} consumed {count} RCU", ()),
        ("WARN", 3, "Init Duration: {slow_ms} ms (cold start)", ()),
        ("WARN", 2, "Throttled by DynamoDB, retrying in {ms}ms", ()),
        ("WARN", 1.5, "Validation failed for event {uuid}: missing field '{word}'", ()),
        ("WARN", 1, "Duplicate event {uuid} ignored", ()),
        ("ERROR", 0.6, "Task timed out after {count}.00 seconds", ()),
        (
            "ERROR",
            0.5,
            "[ERROR] ClientError: An error occurred (ThrottlingException) when calling PutEvents",
            (),
        ),
        ("ERROR", 0.3, "[ERROR] KeyError: '{word}'", ()),
        ("ERROR", 0.3, "Unhandled rejection: ECONNRESET talking to {host}:{port}", ()),
    ),
}

# ---------------------------------------------------------------------------------------------------------
# Placeholders
# ---------------------------------------------------------------------------------------------------------

_WORDS: Final = [
    "customer_id",
    "order_id",
    "tenant",
    "region",
    "amount",
    "currency",
    "sku",
    "payload",
    "user_id",
    "event_type",
    "source",
    "account",
    "invoice",
    "shipment",
    "profile",
    "catalog",
    "pricing",
    "inventory",
    "session",
    "billing",
    "metrics",
    "audit",
    "alerts",
    "device",
    "channel",
    "campaign",
    "segment",
    "ledger",
    "refund",
]
_PATH_STEMS: Final = [
    "/api/v1/orders",
    "/api/v1/users",
    "/api/v1/payments",
    "/api/v2/accounts",
    "/health",
    "/api/v1/search",
    "/api/v1/cart",
    "/api/v1/tickets",
    "/api/v2/reports",
    "/api/v1/sessions",
    "/internal/metrics",
    "/api/v1/refunds",
]
_TABLES: Final = [
    "orders",
    "customers",
    "events_daily",
    "sessions",
    "invoices",
    "shipments",
    "page_views",
    "ledger_entries",
]
_JAVA_FRAMES: Final = (
    "com.example.pay.PaymentService.capture(PaymentService.java:{n})",
    "com.example.cart.CartController.update(CartController.java:{n})",
    "com.example.core.RetryTemplate.execute(RetryTemplate.java:{n})",
    "com.example.auth.TokenFilter.doFilter(TokenFilter.java:{n})",
)


def _hexs(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _uuid(rng: random.Random) -> str:
    h = _hexs(rng, 128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _ip(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.6:
        return f"10.{rng.randrange(0, 8)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
    if r < 0.8:
        return f"172.{rng.randrange(16, 32)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
    return f"{rng.randrange(20, 223)}.{rng.randrange(0, 256)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"


def _lognormal_int(rng: random.Random, median: float, sigma: float) -> str:
    return str(max(1, int(rng.lognormvariate(0, sigma) * median)))


def _user(rng: random.Random) -> str:
    first = rng.choice(
        [
            "alice",
            "bob",
            "carol",
            "dave",
            "erin",
            "frank",
            "grace",
            "heidi",
            "ivan",
            "judy",
            "mallory",
            "niaj",
            "olivia",
            "peggy",
        ]
    )
    return f"{first}.{rng.choice(['smith', 'jones', 'brown', 'lee', 'garcia', 'miller', 'davis', 'wilson', 'moore', 'taylor'])}"


#: Placeholder kind -> function drawing one value from an RNG. The first six are the documented ones
#: for scenario files ({int} {ip} {hex} {uuid} {word} {path}); the rest feed the built-in catalogues.
GENERATORS: Final[dict[str, Callable[[random.Random], str]]] = {
    "int": lambda r: str(r.randrange(1, 100_000)),
    "ip": _ip,
    "hex": lambda r: _hexs(r, 32),
    "uuid": _uuid,
    "word": lambda r: r.choice(_WORDS),
    "path": lambda r: r.choice(_PATH_STEMS) + (f"/{r.randrange(1, 99_999)}" if r.random() < 0.5 else ""),
    "ms": lambda r: _lognormal_int(r, 40, 0.8),
    "slow_ms": lambda r: str(r.randrange(1_000, 30_000)),
    "lambda_ms": lambda r: f"{r.lognormvariate(0, 0.9) * 80:.2f}",
    "sec": lambda r: f"{r.lognormvariate(0, 0.7) * 20:.1f}",
    "count": lambda r: str(r.randrange(1, 64)),
    "attempt": lambda r: str(r.randrange(1, 4)),
    "big": lambda r: str(r.randrange(1_000_000, 900_000_000)),
    "bytes": lambda r: str(int(r.lognormvariate(0, 1.2) * 200_000)),
    "pct": lambda r: str(r.randrange(50, 100)),
    "port": lambda r: r.choice(("443", "8080", "5432", "6379", "9092", "8443", "3306")),
    "host": lambda r: f"ip-10-{r.randrange(0, 8)}-{r.randrange(0, 256)}-{r.randrange(1, 255)}.ec2.internal",
    "method": lambda r: r.choices(("GET", "POST", "PUT", "DELETE", "PATCH"), (60, 25, 8, 4, 3))[0],
    "status_ok": lambda r: r.choices(("200", "201", "204", "304"), (80, 8, 7, 5))[0],
    "status_4xx": lambda r: r.choices(("400", "401", "403", "404", "409", "429"), (30, 15, 10, 30, 5, 10))[0],
    "status_5xx": lambda r: r.choices(("500", "502", "503", "504"), (40, 25, 20, 15))[0],
    "user": _user,
    "email": lambda r: f"{_user(r)}@example.org",
    "txn": lambda r: f"txn_{_hexs(r, 48)}",
    "order": lambda r: f"ORD-{r.randrange(100_000, 999_999)}",
    "ticket": lambda r: r.choice(("INC", "SR", "CHG")) + str(r.randrange(1_000_000, 9_999_999)),
    "wl": lambda r: f"wl-{_hexs(r, 48)}",
    "qid": lambda r: f"q_{_hexs(r, 32)}",
    "sku": lambda r: f"SKU-{r.randrange(10_000, 99_999)}",
    "account": lambda r: f"ACC{r.randrange(10_000_000, 99_999_999)}",
    "amount": lambda r: f"{r.lognormvariate(0, 1) * 40:.2f}",
    "currency": lambda r: r.choices(("EUR", "USD", "GBP", "CHF"), (5, 4, 2, 1))[0],
    "channel": lambda r: r.choice(("email", "sms", "push", "webhook")),
    "bool": lambda r: r.choice(("true", "false")),
    "hitmiss": lambda r: r.choices(("hit", "miss"), (4, 1))[0],
    "table": lambda r: r.choice(_TABLES),
    "date": lambda r: f"2026-{r.randrange(1, 13):02d}-{r.randrange(1, 29):02d}",
    "origin": lambda r: r.choice(tuple(EVENT_ORIGINS)),
    "s3err": lambda r: r.choice(
        ("SlowDown: Please reduce your request rate", "RequestTimeout", "503 Service Unavailable")
    ),
    "java_frame": lambda r: r.choice(_JAVA_FRAMES).replace("{n}", str(r.randrange(20, 900))),
}
#: The placeholders a scenario file may use (documented in the README); the catalogues may use all.
SCENARIO_PLACEHOLDERS: Final = ("int", "ip", "hex", "uuid", "word", "path")

_PLACEHOLDER_RE: Final = re.compile(r"\{\{|\}\}|\{([a-z_][a-z0-9_]*)\}")
POOL_BITS: Final = 12  # 4096 pre-drawn values per kind: plenty of variety, cheap to build


def placeholders_in(template: str) -> list[str]:
    """The placeholder kinds `template` uses, in order (``{{``/``}}`` are literal braces)."""
    return [m.group(1) for m in _PLACEHOLDER_RE.finditer(template) if m.group(1)]


def unknown_placeholders(template: str) -> list[str]:
    return [k for k in placeholders_in(template) if k not in GENERATORS]


class Pools:
    """Pre-drawn values per placeholder kind (deterministic for a seed).

    `pick(kind)` draws with `getrandbits`, the cheapest call on `random.Random`.
    """

    def __init__(self, seed: int | str) -> None:
        self._seed = seed
        self._pools: dict[str, list[str]] = {}

    def pool(self, kind: str) -> list[str]:
        p = self._pools.get(kind)
        if p is None:
            # One RNG per kind: adding a kind never shifts the values of the others.
            rng = random.Random(f"{self._seed}:{kind}")
            gen = GENERATORS[kind]
            p = [gen(rng) for _ in range(1 << POOL_BITS)]
            self._pools[kind] = p
        return p


@dataclass(frozen=True)
class CompiledTemplate:
    """A template as a `%`-format string and the pools for its `%s` slots."""

    fmt: str
    pools: tuple[list[str], ...]

    def render(self, rng: random.Random) -> str:
        if not self.pools:
            return self.fmt
        bits = rng.getrandbits
        return self.fmt % tuple([p[bits(POOL_BITS)] for p in self.pools])


def compile_template(template: str, pools: Pools) -> CompiledTemplate:
    """Compile `template`; unknown ``{kind}`` raise KeyError (validate scenario input beforehand)."""
    out: list[str] = []
    kinds: list[list[str]] = []
    pos = 0
    for m in _PLACEHOLDER_RE.finditer(template):
        out.append(template[pos : m.start()].replace("%", "%%"))
        tok = m.group(0)
        if tok == "{{":
            out.append("{")
        elif tok == "}}":
            out.append("}")
        else:
            out.append("%s")
            kinds.append(pools.pool(m.group(1)))
        pos = m.end()
    out.append(template[pos:].replace("%", "%%"))
    fmt = "".join(out)
    if not kinds:
        fmt = fmt.replace("%%", "%")  # rendered verbatim, without `%`
    return CompiledTemplate(fmt, tuple(kinds))


def stream_template_table(
    catalogue: Sequence[Template], stem: str, rng: random.Random, size: int = 1 << POOL_BITS
) -> list[int]:
    """`size` template indexes drawn by weight among the templates allowed for `stem`.

    Picking ``table[getrandbits(12)]`` per record is far cheaper than a weighted draw per record,
    and per-stream tables keep domain-specific messages on their own domain.
    """
    idx = [i for i, t in enumerate(catalogue) if not t[3] or stem in t[3]]
    return rng.choices(idx, weights=[catalogue[i][1] for i in idx], k=size)


def cumulative(weights: Sequence[float]) -> list[float]:
    """Cumulative weights for `random.choices(..., cum_weights=...)` (saves a pass per call)."""
    acc = 0.0
    out = []
    for w in weights:
        acc += w
        out.append(acc)
    return out


def pod_suffix(rng: random.Random) -> str:
    """A kubernetes-style replica-set + pod suffix, e.g. ``7d9f8c6b5-x2kqz``."""
    alnum = string.ascii_lowercase + string.digits
    return f"{_hexs(rng, 36)[:9]}-{''.join(rng.choice(alnum) for _ in range(5))}"
