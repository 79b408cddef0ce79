"""What a triage looks at, as field names: the scope fields, the field split into series (level or
workload state), the message field, the fields that may sharpen a scope.

One place states them (from `cm_mcp.api.fields`), so the queries, the statistics and the follow-up
calls agree.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final, Literal

from cm_mcp.api.fields import (
    MESSAGE_FIELD,
    SERVERLESS_FIELDS,
    WORKFLOW_NAME_FIELD,
    WORKLOAD_STATE_FIELD,
    domain_field,
)

#: How many values of a scope field a triage asks for when the request says "*" (the biggest by
#: records; the rest is counted and reported as not analysed). Sized so that scopes x splits x
#: histogram buckets stay under OpenSearch's bucket limit at a useful resolution.
WILDCARD_SIZES: Final = {
    "domain": 25,
    "log_group": 8,
    "tenant": 8,
    "stage": 3,
    "workload_domain": 10,
    "workflow": 10,
}
#: Levels (or states) per scope: the usual four plus room for FATAL, TRACE, CRITICAL...
SPLIT_SIZE: Final = 6
LEVEL_FIELD_HOSTS: Final = "regex.extractions.logLevel"
LEVEL_FIELD_SERVERLESS: Final = "logLevel"
WORKLOAD_MESSAGE_FIELD: Final = "error.message"
DURATION_FIELD: Final = "duration_ms"


@dataclass(frozen=True)
class Target:
    kind: Literal["logs", "workloads"]
    application: str
    app_type: str
    #: scope fields in nesting order, with the terms size of each
    scope_fields: tuple[str, ...]
    scope_sizes: tuple[int, ...]
    split_field: str
    message_field: str
    sharpen_fields: tuple[str, ...]

    @property
    def serverless(self) -> bool:
        return self.app_type == "serverless"


def _size(values: Sequence[str] | None, wildcard: int) -> int:
    if not values or list(values) == ["*"]:
        return wildcard
    return max(1, len(values))


def logs_target(
    application: str,
    app_type: str,
    *,
    domain: Sequence[str] | None = None,
    log_group: Sequence[str] | None = None,
    tenant: Sequence[str] | None = None,
    stage: Sequence[str] | None = None,
) -> Target:
    if app_type == "serverless":
        lists = {"log_group": log_group, "tenant": tenant, "stage": stage}
        return Target(
            kind="logs",
            application=application,
            app_type=app_type,
            scope_fields=SERVERLESS_FIELDS,
            scope_sizes=tuple(_size(lists[name], WILDCARD_SIZES[name]) for name in SERVERLESS_FIELDS),
            split_field=LEVEL_FIELD_SERVERLESS,
            message_field=MESSAGE_FIELD,
            sharpen_fields=("function_name",),
        )
    return Target(
        kind="logs",
        application=application,
        app_type=app_type,
        scope_fields=(domain_field(application),),
        scope_sizes=(_size(domain, WILDCARD_SIZES["domain"]),),
        split_field=LEVEL_FIELD_HOSTS,
        message_field=MESSAGE_FIELD,
        sharpen_fields=("service",),
    )


def workloads_target(app_type: str, *, domain: Sequence[str] | None = None) -> Target:
    return Target(
        kind="workloads",
        application="atr",
        app_type=app_type,
        scope_fields=(domain_field("atr"), WORKFLOW_NAME_FIELD),
        scope_sizes=(_size(domain, WILDCARD_SIZES["workload_domain"]), WILDCARD_SIZES["workflow"]),
        split_field=WORKLOAD_STATE_FIELD,
        message_field=WORKLOAD_MESSAGE_FIELD,
        sharpen_fields=("ticket.type", "workload.trigger"),
    )
