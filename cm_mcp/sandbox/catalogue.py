"""What the sandbox's world holds, as plain data: domains, services, log groups, tenants, stages,
workflows, and dozens of message templates per application.

Message templates write their variable parts as ``{kind}`` placeholders (``{ip}``, ``{ms}``,
``{uuid}``...), filled from value pools by templates.py. How much traffic each part of this world sees
and when (seasonality, noise, benign bursts) is variation.py's business.
"""

from __future__ import annotations

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
        # Low traffic (~1 % of atr's logs): an incident here is small in absolute numbers.
        DomainInfo("legacy.example.com", "ec2", "legacy", ("legacy-gateway",), 0.08),
    ),
    "klewer": (
        DomainInfo("shop.example.com", "kubernetes", "shop", ("storefront", "cart-api", "checkout"), 3),
        DomainInfo("search.example.com", "kubernetes", "search", ("search-api", "indexer"), 2),
        DomainInfo("cms.example.com", "ec2", "cms", ("cms-web", "media-worker"), 1),
        DomainInfo("labs.example.com", "kubernetes", "labs", ("labs-api",), 0.06),  # low traffic
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
    "/aws/lambda/audit": (128, ("/v1/audit",), 0.2),  # low traffic
}
TENANTS: Final[dict[str, float]] = {
    "acme": 4,
    "globex": 3,
    "initech": 2,
    "umbrella": 1,
    "stark": 1,
    "wayne": 0.15,  # low traffic
}
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
#: `status` is the lower-case, coarser companion of `workload.state` (the reference lists both).
WORKLOAD_STATUS: Final[dict[str, str]] = {
    "COMPLETED": "success",
    "FAILED": "failed",
    "CANCELLED": "cancelled",
    "TIMED_OUT": "failed",
    "RUNNING": "running",
    "PENDING": "pending",
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
