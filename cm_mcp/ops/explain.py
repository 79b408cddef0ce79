"""Turn any `CMError` into a message that tells the model (and the engineer) what to do next.

A failed call should cost at most one turn: every message says what happened, whether a request was
spent, and the next action. Messages never contain the JWT (the api layer redacts; nothing here
adds secrets).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cm_mcp.api import errors
from cm_mcp.api.quota import next_utc_midnight
from cm_mcp.api.times import format_utc
from cm_mcp.ops.interrupted import ExportInterrupted, resume_call

TOKEN_HELP = (
    "Set a fresh JWT with CM_API_TOKEN (or write it to the file named by CM_API_TOKEN_FILE, which is "
    "re-read on every request, so no restart is needed)."
)


def explain(error: errors.CMError, *, tool: str, now: datetime | None = None) -> str:
    """One paragraph (or a short list) for an `isError` tool result."""
    now = now or datetime.now(UTC)
    if isinstance(error, errors.RequestValidationError):
        return explain_validation(error, tool=tool)
    if isinstance(error, errors.JWTMissingError):
        return f"No API token is configured, so nothing was sent. {TOKEN_HELP}"
    if isinstance(error, errors.JWTExpiredError):
        return f"{error} Nothing was sent. {TOKEN_HELP}"
    if isinstance(error, errors.TransportError):
        return (
            f"Could not reach the Central Monitoring API ({error}) after retrying. Check CM_API_URL and "
            "the network; the request may not have been counted."
        )
    if isinstance(error, errors.RateLimitError):
        return _rate_limited(error, now)
    if isinstance(error, errors.BatchTokenExpiredError):
        submit = tool.replace("_status", "").replace("_urls_v1", "_v1")
        return (
            f"The batch token is unknown or expired (tokens expire 2 hours after submission). Submit the "
            f"export again with {submit} and use the new token. ({error})"
        )
    if isinstance(error, errors.AuthError):
        return f"The API rejected the JWT ({error.status}): it is invalid or expired. {TOKEN_HELP}"
    if isinstance(error, errors.ServerError):
        return (
            f"The API failed with {error.status} even after retries ({error}). Try again in a few "
            "minutes, or narrow the time window (smaller queries are less likely to time out)."
        )
    if isinstance(error, errors.APIError):
        return f"The API refused the call: {error}. Adjust the arguments and retry."
    return f"{type(error).__name__}: {error}"


def explain_failure(error: Exception, *, tool: str, now: datetime | None = None) -> str:
    """Any failure a tool reports: API errors through `explain`, an interrupted export with the free
    call that continues it, anything else (store, batch) by its own message."""
    if isinstance(error, ExportInterrupted):
        tool_name, arguments = resume_call(error.kind, error.token)
        return (
            f"{explain_failure(error.cause, tool=tool, now=now)}\n"
            f"The export stopped, but its batch was accepted and goes on upstream; "
            f"{error.partitions_done}/{error.partitions} partitions ({error.records:,} records) are "
            f"downloaded and kept. Once the cause is fixed, continue it at no quota before "
            f"{format_utc(error.expires_at)} (when its token expires) with: {tool_name} {json.dumps(arguments)}. "
            f"Calling {error.kind}_batch again would submit a new batch and cost quota."
        )
    if isinstance(error, errors.CMError):
        return explain(error, tool=tool, now=now)
    return f"{tool} failed: {error}"


def explain_validation(error: errors.RequestValidationError, *, tool: str) -> str:
    lines = [f"Invalid arguments for {tool}; nothing was sent and no quota was used:"]
    lines += [f"- {issue.path}: {issue.message}" for issue in error.issues]
    if error.example:
        lines.append(f"A valid call: {json.dumps(error.example)}")
    return "\n".join(lines)


def _rate_limited(error: errors.RateLimitError, now: datetime) -> str:
    family = error.endpoint_family or error.endpoint
    if error.retry_after is not None and error.retry_after < 3600:
        when = f"in about {_duration(error.retry_after)}"
    else:
        reset = next_utc_midnight(now)
        when = f"at {reset:%Y-%m-%d %H:%M} UTC (in {_duration((reset - now).total_seconds())})"
    return (
        f"The daily quota for {family} is spent; it resets {when}. Other endpoints have separate quotas "
        "(quota_status shows them): logs_aggs/workloads_aggs are the cheapest way to keep investigating."
    )


def _duration(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
