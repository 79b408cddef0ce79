"""Ready follow-up calls for a finding: a narrow scroll (or an export when it is big), and a free
search of the records the triage already stored."""

from __future__ import annotations

from typing import Any, Final

from cm_mcp.api.times import format_utc
from cm_mcp.triage.grid import from_ms
from cm_mcp.triage.models import FollowUp
from cm_mcp.triage.queries import time_range
from cm_mcp.triage.series import Scope
from cm_mcp.triage.target import Target

#: Above this many records a scroll is the wrong tool: the export gets them all in one call.
BATCH_ABOVE: Final = 10_000
#: Records a follow-up scroll asks for: enough for every template of an incident, one page.
SCROLL_SIZE: Final = 1000


def _scope_arguments(target: Target, scope: Scope) -> dict[str, Any]:
    values = dict(scope)
    if target.kind == "workloads":
        return {"domain": [values[target.scope_fields[0]]]}
    if target.serverless:
        return {name: [values[name]] for name in target.scope_fields}
    return {"domain": [values[target.scope_fields[0]]]}


def follow_ups(
    target: Target,
    scope: Scope,
    extra_filters: list[dict[str, Any]],
    start_ms: int,
    end_ms: int,
    count: int,
    *,
    result_id: str | None,
    stored: bool,
) -> list[FollowUp]:
    """`extra_filters`: the level/state term and any sharpening term (the scope is in the routing,
    except a workload's workflow, which is a filter)."""
    base: dict[str, Any] = {
        "application": target.application,
        "app_type": target.app_type,
        **_scope_arguments(target, scope),
        "start_time": format_utc(from_ms(start_ms)),
        "end_time": format_utc(from_ms(end_ms)),
    }
    filters = list(extra_filters)
    if target.kind == "workloads":
        filters = [{"term": {target.scope_fields[1]: dict(scope)[target.scope_fields[1]]}}, *filters]
    family = "logs" if target.kind == "logs" else "workloads"
    # the narrow read first (what a tight budget keeps), then the free search of the stored sample
    calls: list[FollowUp] = []
    if count > BATCH_ABOVE:
        calls.append(
            FollowUp(
                tool=f"{family}_batch",
                arguments={**base, "filters": filters},
                why=f"{count:,} records: export them all in one call",
            )
        )
    calls.append(
        FollowUp(
            tool=f"{family}_scroll",
            arguments={**base, "size": min(SCROLL_SIZE, max(100, count)), "filters": filters},
            why="the records themselves, narrowed to this finding (one scroll request)",
        )
    )
    if stored and result_id:
        local = [
            *({"term": {name: value}} for name, value in scope),
            *extra_filters,
            time_range(start_ms, end_ms),
        ]
        calls.append(
            FollowUp(
                tool="results_search",
                arguments={"result_id": result_id, "filters": local, "size": SCROLL_SIZE},
                why="the triage's sample of these records, already stored: no quota",
            )
        )
    return calls
