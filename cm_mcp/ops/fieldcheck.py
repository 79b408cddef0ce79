"""Why did a filtered scroll match nothing? Check its filter fields against stored records.

Field names vary by application and are not catalogued (reference item 16: the level alone is
`regex.extractions.logLevel`, `logLevel` or `level`), and a filter on a field the documents lack
silently matches nothing. Rejecting unknown fields up front would be wrong, since `_source` varies,
so the check comes after an empty answer, and costs no request: it samples records this store
already holds for the same application and app type, and names the filter fields none of them
has, with the closest field they do have.
"""

from __future__ import annotations

import difflib
from collections.abc import Mapping
from typing import Any, Literal

from cm_mcp.api.fields import LEVEL_FIELDS, AppType, domain_field
from cm_mcp.api.querydsl import filter_fields
from cm_mcp.api.requests import LogsScrollRequest, WorkloadsScrollRequest
from cm_mcp.store import ResultStore
from cm_mcp.summarize.fields import source_of

#: Stored records sampled for their field names: enough to see every field of a uniform source.
FIELD_SAMPLE = 200


def no_match_note(
    store: ResultStore | None, request: LogsScrollRequest | WorkloadsScrollRequest
) -> str | None:
    """A note for a first page that matched nothing, when its filters may name absent fields."""
    if request.is_continuation or not request.filters:
        return None
    fields = sorted(filter_fields(request.filters))
    kind: Literal["logs", "workloads"] = "logs" if isinstance(request, LogsScrollRequest) else "workloads"
    scope = f"{request.application} {request.app_type}"
    sampled, known = _stored_fields(store, kind, str(request.application), str(request.app_type))
    if not sampled:
        return (
            f"no record matched. Filters name {', '.join(fields)}; a field the documents lack matches "
            f"nothing, and field names vary (reference item 16). Check them on a small scroll without "
            f"filters (size 5) first; documented here: {', '.join(_documented(request))}."
        )
    absent = [field for field in fields if field not in known]
    if not absent:
        return (
            f"no record matched, though every filter field occurs in {sampled} stored {scope} {kind} "
            "records: the values or the time window are the likely cause."
        )
    guesses = "; ".join(f"{field} (did you mean {_closest(field, known)}?)" for field in absent)
    return (
        f"no record matched. None of {sampled} stored {scope} {kind} records has {guesses}. "
        "A filter on a field the documents lack matches nothing."
    )


def _stored_fields(
    store: ResultStore | None, kind: str, application: str, app_type: str
) -> tuple[int, set[str]]:
    """(records sampled, dotted field paths in them) from the newest stored result of this scope."""
    if store is None:
        return 0, set()
    for info in store.list():  # newest first
        asked = info.request
        same = asked.get("application") == application and asked.get("app_type") == app_type
        if info.kind != kind or not same or info.records == 0:
            continue
        hits, _ = store.sample(info.id, FIELD_SAMPLE)
        paths: set[str] = set()
        for hit in hits:
            _collect(source_of(hit), "", paths)
        return len(hits), paths
    return 0, set()


def _collect(node: Any, prefix: str, out: set[str]) -> None:
    """Every dotted path of `node`: leaves and the objects above them (`exists` may name either)."""
    items = node if isinstance(node, list) else [node]
    for item in items:
        if not isinstance(item, Mapping):
            continue
        for key, value in item.items():
            path = f"{prefix}.{key}" if prefix else str(key)
            out.add(path)
            _collect(value, path, out)


def _closest(field: str, known: set[str]) -> str:
    if field in LEVEL_FIELDS:  # another spelling of the level: the one these records use
        level = next((name for name in LEVEL_FIELDS if name in known), None)
        if level is not None:
            return level
    close = difflib.get_close_matches(field, sorted(known), n=1, cutoff=0.5)
    return close[0] if close else "none close; list them with a small scroll without filters"


def _documented(request: LogsScrollRequest | WorkloadsScrollRequest) -> list[str]:
    """The fields the reference shows for this kind of document."""
    if isinstance(request, WorkloadsScrollRequest):
        return ["@timestamp", "workflow.name", "workload.state", "ticket.type", "workload.trigger"]
    if request.app_type == AppType.SERVERLESS:
        return ["@timestamp", "logLevel", "message", "function_name", "event.origin"]
    return ["@timestamp", LEVEL_FIELDS[0], "message", domain_field(str(request.application))]
