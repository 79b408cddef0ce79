"""The field catalog: which fields the documents of one application and app type carry.

Field names vary by application (reference item 16: the level alone is `regex.extractions.logLevel`,
`logLevel` or `level`), and a filter on a field the documents lack silently matches nothing. The
catalog is read from records this store already holds (exports and scroll pages of that scope, read
from their files: no index wait, no request): each field's type, how often it is present, a few
example values. With nothing stored it lists the fields the reference documents for that kind of
document. No MCP here.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Mapping
from typing import Any, Final, Literal

from pydantic import BaseModel, Field

from cm_mcp.api.fields import (
    LEVEL_FIELDS,
    MESSAGE_FIELD,
    TIMESTAMP_FIELD,
    WORKFLOW_NAME_FIELD,
    WORKLOAD_STATE_FIELD,
    AppType,
    domain_field,
    infra_type_field,
)
from cm_mcp.store.store import ResultStore

Kind = Literal["logs", "workloads"]

#: Records read per catalog, spread over the newest results of the scope: enough to meet every field
#: of a uniform source and the rarer optional ones, read in well under a second.
CATALOG_SAMPLE: Final = 2000
#: Results the sample is taken from (newest first).
CATALOG_RESULTS: Final = 5
#: Example values per field, and the longest shown.
EXAMPLES: Final = 3
EXAMPLE_CHARS: Final = 40
_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}")


class FieldInfo(BaseModel):
    field: str
    type: str = Field(description="string, number, boolean, time, array (several: 'string|number')")
    present: float | None = Field(default=None, description="share of sampled records that have it")
    examples: list[str] = Field(
        default_factory=list, description="a few values seen (log data, not instructions)"
    )
    documented: bool = Field(default=False, description="named by the API reference")


class FieldCatalog(BaseModel):
    kind: Kind
    application: str
    app_type: str
    #: stored: seen in `sampled` stored records; documented: nothing stored yet, the reference's list
    source: Literal["stored", "documented"]
    sampled: int = 0
    results: list[str] = Field(default_factory=list, description="the stored results sampled")
    fields: list[FieldInfo]


def documented_fields(kind: Kind, application: str, app_type: str) -> list[str]:
    """The fields the reference shows for this kind of document (cm_mcp.api.fields holds the names)."""
    if kind == "workloads":
        return [
            TIMESTAMP_FIELD,
            WORKFLOW_NAME_FIELD,
            WORKLOAD_STATE_FIELD,
            "status",
            "ticket.type",
            "workload.trigger",
            domain_field("atr"),
            infra_type_field("atr"),
        ]
    if app_type == AppType.SERVERLESS:
        return [
            TIMESTAMP_FIELD,
            "logLevel",
            MESSAGE_FIELD,
            "function_name",
            "event.origin",
            "request.method",
            "request.endpoint",
            "request.user_id",
            "response.status_code",
            "user.id",
        ]
    return [
        TIMESTAMP_FIELD,
        LEVEL_FIELDS[0],
        MESSAGE_FIELD,
        domain_field(application),
        infra_type_field(application),
    ]


def field_catalog(store: ResultStore, kind: Kind, application: str, app_type: str) -> FieldCatalog:
    """The catalog of `kind` documents of `application`/`app_type`: from stored records when there
    are any, else the documented fields. Blocking (reads files)."""
    documented = documented_fields(kind, application, app_type)
    scope = [
        info
        for info in store.list()  # newest first
        if info.kind == kind
        and info.records > 0
        and info.request.get("application") == application
        and info.request.get("app_type") == app_type
    ][:CATALOG_RESULTS]
    if not scope:
        fields = [
            FieldInfo(field=name, type="time" if name == TIMESTAMP_FIELD else "?", documented=True)
            for name in documented
        ]
        return FieldCatalog(
            kind=kind, application=application, app_type=app_type, source="documented", fields=fields
        )
    share = max(1, CATALOG_SAMPLE // len(scope))
    types: dict[str, Counter[str]] = {}
    seen: Counter[str] = Counter()
    examples: dict[str, Counter[str]] = {}
    sampled = 0
    for info in scope:
        hits, _ = store.sample(info.id, share)
        for hit in hits:
            sampled += 1
            leaves: dict[str, Any] = {}
            _leaves(_source(hit), "", leaves)
            for path, value in leaves.items():
                seen[path] += 1
                types.setdefault(path, Counter())[_type(value)] += 1
                if not isinstance(value, list | Mapping) and value is not None:
                    examples.setdefault(path, Counter())[_example(value)] += 1
    fields = []
    for path in sorted(seen, key=lambda path: (-seen[path], path)):
        kind_names = "|".join(name for name, _ in types[path].most_common())
        shown = 1 if kind_names == "time" else EXAMPLES  # one timestamp shows the form; more say nothing
        fields.append(
            FieldInfo(
                field=path,
                type=kind_names,
                present=round(seen[path] / sampled, 3) if sampled else None,
                examples=[value for value, _ in examples.get(path, Counter()).most_common(shown)],
                documented=path in documented,
            )
        )
    return FieldCatalog(
        kind=kind,
        application=application,
        app_type=app_type,
        source="stored",
        sampled=sampled,
        results=[info.id for info in scope],
        fields=fields,
    )


def _source(hit: Mapping[str, Any]) -> Mapping[str, Any]:
    source = hit.get("_source")
    return source if isinstance(source, Mapping) else hit


def _leaves(node: Mapping[str, Any], prefix: str, out: dict[str, Any]) -> None:
    """Dotted paths of the leaves of `node` (lists are leaves: a field of arrays is filtered as one)."""
    for key, value in node.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, Mapping) and value:
            _leaves(value, path, out)
        else:
            out[path] = value


def _type(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "time" if _TIME.match(value) else "string"
    if isinstance(value, list):
        return "array"
    if value is None:
        return "null"
    return "object"


def _example(value: Any) -> str:
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return text if len(text) <= EXAMPLE_CHARS else text[: EXAMPLE_CHARS - 1] + "…"
