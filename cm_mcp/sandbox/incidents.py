"""Incidents: bursts of records with exact ground truth, built in or read from a scenarios file.

A scenarios file (``--scenarios FILE``) has exactly this shape::

    {"incidents": [
      {"id": "inc-42", "kind": "logs", "application": "atr", "app_type": "kubernetes",
       "domain": "pay.example.com", "start": "now-5h", "minutes": 20, "per_minute": 150, "level": "ERROR",
       "messages": ["upstream connect error to {ip}:{int} after {int}ms"],
       "fields": {"k8s.pod": "api-{hex}"}},
      {"id": "inc-43", "kind": "logs", "application": "eventops", "app_type": "serverless",
       "log_group": "/aws/lambda/ingest", "tenant": "acme", "stage": "prod", "start": "2026-11-25T10:00:00Z",
       "minutes": 5, "per_minute": 40, "level": "ERROR", "messages": ["KeyError: '{word}'"]},
      {"id": "inc-44", "kind": "workloads", "application": "atr", "app_type": "ec2",
       "domain": "ops.example.com", "start": "now-1d", "minutes": 60, "per_minute": 3,
       "workflow": "Data_Enrichment_Workflow", "state": "FAILED", "trigger": "TICKET", "ticket_type": "SR_TASK"}
    ]}

Every generated record of an incident carries ``sandbox.incident_id`` (nested as
``{"sandbox": {"incident_id": ...}}``) and its `_id` starts with ``<incident id>-``, so the exact
records are always findable; an incident produces exactly ``minutes * per_minute`` records, spread
over ``[start, start + minutes)`` with exactly ``per_minute`` in each minute.

`start` is ISO 8601 (UTC if no offset) or date math (`now`, `now-5h`, `now-1d-30m`, `now-2h/h`; units
s m h d w) where `now` is the start of the UTC hour the sandbox started in: an incident that ends by
`now` is then entirely in the past, whatever the minute. Records are never served before the real
clock reaches their timestamp, so an incident planned partly in the future appears as time passes (its
ground truth says how much of it a query sees now).
"""

from __future__ import annotations

import itertools
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Annotated, Any, Final, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from cm_mcp.api import times
from cm_mcp.api.fields import Application, AppType
from cm_mcp.sandbox.catalogue import DOMAINS, LEVELS
from cm_mcp.sandbox.templates import SCENARIO_PLACEHOLDERS, unknown_placeholders

INCIDENT_ID_FIELD: Final = "sandbox.incident_id"
#: Fields a scenario may not override: they carry the ground truth.
_PROTECTED_FIELDS: Final = ("@timestamp", "sandbox")
MAX_RECORDS_PER_INCIDENT: Final = 2_000_000


class ScenarioError(ValueError):
    """A scenarios file is unreadable or invalid; the message names the incident and the field."""


def resolve_time(expr: str, now: datetime) -> datetime:
    """Resolve ISO 8601 or OpenSearch date math (``now-2h/h``) against `now` (UTC), like the API does."""
    return times.resolve_time(expr, now.astimezone(UTC))


def _check_template(value: str) -> str:
    unknown = unknown_placeholders(value)
    if unknown:
        raise ValueError(
            f"unknown placeholder(s) {', '.join('{' + k + '}' for k in unknown)} in {value!r}; "
            f"use {', '.join('{' + k + '}' for k in SCENARIO_PLACEHOLDERS)} (or '{{{{' / '}}}}' for braces)"
        )
    return value


class _IncidentBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9_.:-]+$")]
    start: str
    minutes: Annotated[int, Field(gt=0, le=60 * 24 * 31)]
    per_minute: Annotated[int, Field(gt=0, le=100_000)]
    fields: dict[str, Any] = Field(default_factory=dict)

    @field_validator("start")
    @classmethod
    def _start_parses(cls, v: str) -> str:
        resolve_time(v, datetime(2026, 1, 1, tzinfo=UTC))  # syntax check only; resolved at generation
        return v

    @field_validator("fields")
    @classmethod
    def _fields_ok(cls, v: dict[str, Any]) -> dict[str, Any]:
        for key, val in v.items():
            if not key or any(not part for part in key.split(".")):
                raise ValueError(f"invalid field name {key!r}")
            if key.split(".")[0] in _PROTECTED_FIELDS:
                raise ValueError(f"field {key!r} cannot be set: the sandbox sets it")
            if isinstance(val, str):
                _check_template(val)
        keys = sorted(v)
        for a, b in itertools.pairwise(keys):
            if b.startswith(a + "."):
                raise ValueError(f"fields {a!r} and {b!r} conflict (one is inside the other)")
        return v

    @model_validator(mode="after")
    def _not_too_big(self) -> _IncidentBase:
        if self.count > MAX_RECORDS_PER_INCIDENT:
            raise ValueError(f"minutes*per_minute = {self.count} exceeds {MAX_RECORDS_PER_INCIDENT}")
        return self

    @property
    def count(self) -> int:
        """The exact number of records this incident generates."""
        return self.minutes * self.per_minute

    def window(self, now: datetime) -> tuple[datetime, datetime]:
        start = resolve_time(self.start, now)
        return start, start + timedelta(minutes=self.minutes)


def _check_domain(application: str, app_type: str, domain: str) -> None:
    known = {d.name: d for d in DOMAINS.get(application, ())}
    for app, infos in DOMAINS.items():
        if app != application and any(d.name == domain for d in infos):
            raise ValueError(f"domain {domain!r} belongs to application {app!r}, not {application!r}")
    info = known.get(domain)
    if info is not None and info.infra_type != app_type:
        raise ValueError(f"domain {domain!r} of {application} is {info.infra_type}, not {app_type}")


class LogIncident(_IncidentBase):
    kind: Literal["logs"]
    application: Application
    app_type: AppType
    domain: str | None = None
    log_group: str | None = None
    tenant: str | None = None
    stage: str | None = None
    level: str = "ERROR"
    messages: Annotated[list[str], Field(min_length=1)]

    @field_validator("level")
    @classmethod
    def _level_ok(cls, v: str) -> str:
        up = v.upper()
        up = "WARN" if up == "WARNING" else up
        if up not in LEVELS:
            raise ValueError(f"level must be one of {', '.join(LEVELS)}")
        return up

    @field_validator("messages")
    @classmethod
    def _messages_ok(cls, v: list[str]) -> list[str]:
        return [_check_template(m) for m in v]

    @model_validator(mode="after")
    def _routing_ok(self) -> LogIncident:
        serverless = self.app_type is AppType.SERVERLESS
        if serverless != (self.application is Application.EVENTOPS):
            raise ValueError("app_type 'serverless' goes with application 'eventops' and only with it")
        if serverless:
            missing = [n for n in ("log_group", "tenant", "stage") if not getattr(self, n)]
            if missing:
                raise ValueError(f"serverless incidents need {', '.join(missing)}")
            if self.domain is not None:
                raise ValueError("serverless incidents have no domain (use log_group, tenant, stage)")
        else:
            if not self.domain:
                raise ValueError("ec2/kubernetes incidents need a domain")
            if self.log_group or self.tenant or self.stage:
                raise ValueError("log_group/tenant/stage are for serverless incidents only")
            _check_domain(self.application.value, self.app_type.value, self.domain)
        return self


class WorkloadIncident(_IncidentBase):
    kind: Literal["workloads"]
    application: Literal["atr"] = "atr"
    app_type: Literal["ec2", "kubernetes"]
    domain: Annotated[str, Field(min_length=1)]
    workflow: Annotated[str, Field(min_length=1)]
    state: str = "FAILED"
    trigger: str = "TICKET"
    ticket_type: str | None = None

    @model_validator(mode="after")
    def _domain_ok(self) -> WorkloadIncident:
        _check_domain(self.application, self.app_type, self.domain)
        return self


Incident = Annotated[LogIncident | WorkloadIncident, Field(discriminator="kind")]


class ScenarioFile(BaseModel):
    model_config = ConfigDict(extra="forbid")

    incidents: list[Incident]

    @model_validator(mode="after")
    def _unique_ids(self) -> ScenarioFile:
        seen: set[str] = set()
        for inc in self.incidents:
            if inc.id in seen:
                raise ValueError(f"duplicate incident id {inc.id!r}")
            seen.add(inc.id)
        return self


def _describe(err: ValidationError, raw: Any) -> str:
    """Turn pydantic errors into lines naming the incident id and the field."""
    lines = []
    for e in err.errors():
        loc = list(e["loc"])
        where = "scenarios file"
        if len(loc) >= 2 and loc[0] == "incidents" and isinstance(loc[1], int):
            idx = loc[1]
            inc_id = None
            if (
                isinstance(raw, dict)
                and isinstance(raw.get("incidents"), list)
                and idx < len(raw["incidents"])
            ):
                item = raw["incidents"][idx]
                inc_id = item.get("id") if isinstance(item, dict) else None
            where = f"incident {inc_id!r} (incidents[{idx}])" if inc_id else f"incidents[{idx}]"
            loc = loc[2:]
            if loc and loc[0] in ("logs", "workloads"):  # the discriminator tag pydantic inserts
                loc = loc[1:]
        field = ".".join(str(p) for p in loc)
        msg = str(e["msg"]).removeprefix("Value error, ")
        lines.append(f"{where}: {'field ' + repr(field) + ': ' if field else ''}{msg}")
    return "; ".join(lines)


def parse_scenarios(raw: Any) -> list[LogIncident | WorkloadIncident]:
    """Validate an already-decoded scenarios document; raises ScenarioError with readable messages."""
    try:
        return ScenarioFile.model_validate(raw).incidents
    except ValidationError as err:
        raise ScenarioError(_describe(err, raw)) from None


def load_scenarios(path: str | Path) -> list[LogIncident | WorkloadIncident]:
    p = Path(path)
    try:
        raw = json.loads(p.read_text(encoding="utf-8"))
    except OSError as err:
        raise ScenarioError(f"cannot read scenarios file {p}: {err.strerror}") from None
    except json.JSONDecodeError as err:
        raise ScenarioError(f"scenarios file {p} is not JSON: {err}") from None
    try:
        return parse_scenarios(raw)
    except ScenarioError as err:
        raise ScenarioError(f"{p}: {err}") from None


_INCIDENTS_ADAPTER: Final = TypeAdapter(list[Incident])

#: Built-in incidents (always present unless disabled): realistic problems a user can investigate.
BUILTIN_INCIDENTS: Final[tuple[LogIncident | WorkloadIncident, ...]] = tuple(
    _INCIDENTS_ADAPTER.validate_python(
        [
            {
                "id": "builtin-atr-cluster-down",
                "kind": "logs",
                "application": "atr",
                "app_type": "kubernetes",
                "domain": "pay.example.com",
                "start": "now-5h",
                "minutes": 20,
                "per_minute": 45,
                "level": "ERROR",
                "messages": [
                    "cluster down: kube-apiserver pay-prod-eks unreachable after {int}ms",
                    "upstream connect error or disconnect/reset before headers. reset reason: connection "
                    "failure, transport failure reason: delayed connect error: 111 to {ip}:8080",
                    'Readiness probe failed: Get "http://{ip}:8080/healthz": dial tcp {ip}:8080: '
                    "connect: connection refused",
                    "Node ip-{int}.eu-west-1.compute.internal status is now: NodeNotReady",
                    "Payment {hex} failed: no healthy upstream for ledger (cluster down)",
                ],
                "fields": {
                    "k8s.pod": "payment-api-{hex}",
                    "k8s.namespace": "payments",
                    "service": "payment-api",
                },
            },
            {
                "id": "builtin-klewer-deploy",
                "kind": "logs",
                "application": "klewer",
                "app_type": "kubernetes",
                "domain": "shop.example.com",
                "start": "now-26h-2m",
                "minutes": 1,
                "per_minute": 1,
                "level": "INFO",
                "messages": ["Deployment checkout rolled out: image checkout:2.14.0 (revision 57) by ci-bot"],
                "fields": {"service": "checkout", "k8s.namespace": "shop"},
            },
            {
                "id": "builtin-klewer-deploy-errors",
                "kind": "logs",
                "application": "klewer",
                "app_type": "kubernetes",
                "domain": "shop.example.com",
                "start": "now-26h",
                "minutes": 45,
                "per_minute": 25,
                "level": "ERROR",
                "messages": [
                    "Checkout failed for order ORD-{int}: java.lang.IllegalStateException: "
                    "PromotionRule v2 missing field 'discountCap'",
                    "HTTP POST /api/v1/checkout -> 500 in {slow_ms}ms",
                    "Unhandled exception in request {uuid}: java.lang.NullPointerException at "
                    "com.example.checkout.PromotionService.apply(PromotionService.java:214)",
                ],
                "fields": {"service": "checkout", "k8s.namespace": "shop", "release": "2.14.0"},
            },
            {
                "id": "builtin-eventops-keyerror",
                "kind": "logs",
                "application": "eventops",
                "app_type": "serverless",
                "log_group": "/aws/lambda/enrich",
                "tenant": "globex",
                "stage": "prod",
                "start": "now-50h",
                "minutes": 30,
                "per_minute": 40,
                "level": "ERROR",
                "messages": [
                    "[ERROR] KeyError: 'customer_id'",
                    "[ERROR] KeyError: 'customer_id' while enriching event {uuid}",
                    'Traceback (most recent call last): File "/var/task/handler.py", line 88, in '
                    "handler KeyError: 'customer_id'",
                ],
            },
            {
                "id": "builtin-atr-enrichment-failures",
                "kind": "workloads",
                "application": "atr",
                "app_type": "ec2",
                "domain": "ops.example.com",
                "start": "now-3d",
                "minutes": 90,
                "per_minute": 4,
                "workflow": "Data_Enrichment_Workflow",
                "state": "FAILED",
                "trigger": "TICKET",
                "ticket_type": "SR_TASK",
                "fields": {"error.message": "Enrichment source CMDB timed out after 30000ms"},
            },
        ]
    )
)


def merge_incidents(
    file_incidents: list[LogIncident | WorkloadIncident], builtin: bool = True
) -> tuple[LogIncident | WorkloadIncident, ...]:
    """Built-ins (if enabled) followed by the file's incidents; ids must stay unique."""
    out = (*BUILTIN_INCIDENTS, *file_incidents) if builtin else tuple(file_incidents)
    ids = [i.id for i in out]
    dup = sorted({i for i in ids if ids.count(i) > 1})
    if dup:
        raise ScenarioError(f"incident id(s) {', '.join(map(repr, dup))} used more than once")
    return out
