"""Reading what cm-mcp's server knows about the API quota (its `quota_status` result) and what a
result says about itself, so the agent never keeps a second account of the quota."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

#: A family blocked for longer than this is out of quota for the day, not throttled.
THROTTLE = timedelta(minutes=5)

Quota = dict[str, Any]


def result_meta(structured: dict[str, Any] | None) -> dict[str, Any]:
    """What a cm-mcp result says about itself: result_id, request_id, quota left, the window."""
    if not structured:
        return {}
    call = _object(structured.get("call"))
    export = _object(structured.get("export"))
    found = {
        "result_id": structured.get("result_id") or export.get("result_id"),
        "request_id": call.get("request_id"),
        "quota_remaining": call.get("quota_remaining"),
        "time_range": call.get("time_range"),
    }
    return {key: value for key, value in found.items() if value is not None}


def spent(before: Quota | None, after: Quota | None, family: str, *, failed: bool, exhausted: bool) -> bool:
    """Whether a call of `family` spent a request, by the server's own quota tracking: a success did;
    a failure did when the API answered it (the remaining count appeared or went down), e.g. an export
    cancelled after its batch was submitted; a refusal before sending (bad arguments, a spent quota)
    did not."""
    if not failed:
        return True
    if exhausted:
        return False
    was, now = remaining(before, family), remaining(after, family)
    return now is not None and (was is None or now < was)


def remaining(quota: Quota | None, family: str) -> int | None:
    entry = _family(quota, family)
    value = entry.get("remaining")
    return value if isinstance(value, int) else None


def exhausted(quota: Quota | None, family: str, now: datetime | None = None) -> bool:
    """The family's daily quota is spent: blocked with 0 left, or blocked for longer than a throttle
    (a short Retry-After) lasts."""
    entry = _family(quota, family)
    if not entry.get("exhausted_until"):
        return False
    if entry.get("remaining") == 0:
        return True
    try:
        until = datetime.fromisoformat(str(entry["exhausted_until"]).replace("Z", "+00:00"))
    except ValueError:
        return True
    return until - (now or datetime.now(UTC)) > THROTTLE


def _family(quota: Quota | None, family: str) -> dict[str, Any]:
    for entry in (quota or {}).get("families", []):
        if isinstance(entry, dict) and entry.get("family") == family:
            return entry
    return {}


def _object(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}
