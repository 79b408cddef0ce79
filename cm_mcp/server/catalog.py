"""What the MCP surface offers besides tools: stored results listed as resources (newest first,
paginated), and completion values. Thin: the data comes from the store
(`cm_mcp.store.catalog`, `ResultStore`); no MCP types here except the listing's `Resource`s.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Sequence
from typing import Any, Final

from mcp.types import Annotations, Resource

from cm_mcp.api.fields import SERVERLESS_APPLICATION, Application, AppType
from cm_mcp.api.times import format_utc
from cm_mcp.ops.exports import resource_uri
from cm_mcp.ops.fields import fields_uri
from cm_mcp.ops.stored import ResultEntry
from cm_mcp.store import ResultInfo, ResultStore

#: Stored results per resources/list page: a client shows them as a list; 50 is a screenful or two.
RESOURCES_PAGE: Final = 50
#: Most completion values returned (the protocol's limit).
MAX_COMPLETIONS: Final = 100
#: Results whose requests and records feed the completion values (newest first).
COMPLETION_RESULTS: Final = 20
#: Records sampled per result for field values (domains, tenants...).
COMPLETION_SAMPLE: Final = 200

START_TIMES: Final = ("now-15m", "now-1h", "now-6h", "now-24h", "now-1d/d", "now-7d")
END_TIMES: Final = ("now", "now-15m", "now-1h", "now-1d/d")
#: The prompt's scope arguments and the `_source` field that holds each (None: request only).
SCOPE_FIELDS: Final = {"domain": None, "log_group": "log_group", "tenant": "tenant", "stage": "stage"}


class CursorError(ValueError):
    """A resources/list cursor this server did not hand out."""


# --- resources/list --------------------------------------------------------------------------------


def _order(info: ResultInfo) -> tuple[str, str]:
    return (info.created.isoformat(), info.id)


def encode_cursor(info: ResultInfo) -> str:
    return base64.urlsafe_b64encode(json.dumps(_order(info)).encode()).decode()


def decode_cursor(cursor: str) -> tuple[str, str]:
    try:
        created, result_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
    except (ValueError, TypeError, binascii.Error):
        raise CursorError(
            f"invalid cursor {cursor[:40]!r}: pass a nextCursor of resources/list as is"
        ) from None
    return str(created), str(result_id)


def result_page(infos: Sequence[ResultInfo], cursor: str | None) -> tuple[list[ResultInfo], str | None]:
    """One page of stored results, newest first, after `cursor` (the last item of the page before:
    results stored meanwhile do not shift the pages), and the cursor of the next page."""
    ordered = sorted(infos, key=_order, reverse=True)
    if cursor is not None:
        after = decode_cursor(cursor)
        ordered = [info for info in ordered if _order(info) < after]
    page = ordered[:RESOURCES_PAGE]
    more = len(ordered) > RESOURCES_PAGE
    return page, encode_cursor(page[-1]) if more and page else None


def result_resource(info: ResultInfo) -> Resource:
    entry = ResultEntry.of(info)
    state = "complete" if info.complete else "partial"
    return Resource(
        uri=resource_uri(info.id),
        name=f"result-{info.id}",
        title=f"{info.kind} {info.source} {entry.start_time} .. {entry.end_time}: {info.records:,} records ({state})",
        description=f"asked: {entry.scope}",
        mime_type="application/json",
        annotations=Annotations(last_modified=format_utc(info.updated)),
    )


def catalog_resources(infos: Iterable[ResultInfo]) -> list[Resource]:
    """A field catalog per scope (kind, application, app type) that stored results hold."""
    scopes = sorted(
        {
            (info.kind, str(info.request.get("application")), str(info.request.get("app_type")))
            for info in infos
            if info.request.get("application") and info.request.get("app_type")
        }
    )
    return [
        Resource(
            uri=fields_uri(application, app_type, kind),
            name=f"fields-{application}-{app_type}" + ("" if kind == "logs" else f"-{kind}"),
            title=f"Fields of {application} {app_type} {kind}",
            description="field names, types, presence and example values seen in stored data",
            mime_type="application/json",
        )
        for kind, application, app_type in scopes
    ]


# --- completion values -----------------------------------------------------------------------------


def applications(store_infos: Sequence[ResultInfo]) -> list[str]:
    stored = [str(info.request.get("application")) for info in store_infos if info.request.get("application")]
    return _unique([*(app.value for app in Application), *stored])


def app_types(application: str | None, kind: str = "logs") -> list[str]:
    if kind == "workloads" or (application and application != SERVERLESS_APPLICATION):
        return [AppType.EC2.value, AppType.KUBERNETES.value]
    if application == SERVERLESS_APPLICATION:
        return [AppType.SERVERLESS.value]
    return [app_type.value for app_type in AppType]


def scope_values(
    store: ResultStore, infos: Sequence[ResultInfo], name: str, application: str | None
) -> list[str]:
    """Values of a scope argument (domain, log_group, tenant, stage) known from stored data: the
    stored requests' lists and the values found in a sample of their records. Blocking."""
    relevant = [
        info
        for info in infos[:COMPLETION_RESULTS]
        if application is None or info.request.get("application") == application
    ]
    values: list[str] = []
    for info in relevant:
        asked = info.request.get(name)
        if isinstance(asked, list):
            values.extend(str(value) for value in asked if value != "*")
    field = SCOPE_FIELDS.get(name)
    for info in relevant:
        app = str(info.request.get("application", ""))
        source_field = field or (f"{app}.domain_name" if app else None)
        if source_field is None or info.records == 0:
            continue
        hits, _ = store.sample(info.id, COMPLETION_SAMPLE)
        values.extend(value for hit in hits if (value := _field(hit, source_field)) is not None)
    return _unique(values)


def _field(hit: dict[str, Any], dotted: str) -> str | None:
    node: Any = hit.get("_source", hit)
    if isinstance(node, dict) and dotted in node:
        node = node[dotted]
    else:
        for part in dotted.split("."):
            node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, str) and node else None


def matching(values: Iterable[str], typed: str) -> list[str]:
    """Values starting with what was typed, then (from 3 characters typed on: fewer match almost
    anything) those containing it; case-insensitive, at most MAX_COMPLETIONS."""
    typed = typed.lower()
    values = _unique(values)
    first = [value for value in values if value.lower().startswith(typed)]
    then = [value for value in values if len(typed) >= 3 and typed in value.lower() and value not in first]
    return (first + then)[:MAX_COMPLETIONS]


def _unique(values: Iterable[str]) -> list[str]:
    return list(dict.fromkeys(values))
