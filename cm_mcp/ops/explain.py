"""Turn any `CMError` into a message that tells the model (and the engineer) what to do next.

A failed call should cost at most one turn: every message opens with its cause (`Network:`,
`Upstream failure:`, `Quota:` ...; invalid arguments list every field at fault instead), says whether
a request was spent, and gives the next action that fits that cause: arguments are blamed only when
the arguments are at fault, and "after N attempts" is said only when there were N. Messages never
contain the JWT (the api layer redacts; nothing here adds secrets).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime

from cm_mcp.api import errors
from cm_mcp.api.quota import next_utc_midnight
from cm_mcp.api.retry import RETRYABLE_STATUSES
from cm_mcp.batch.errors import (
    BatchError,
    DownloadError,
    HostNotAllowedError,
    InsecureURLError,
    NothingRecoveredError,
)
from cm_mcp.dsl.errors import DSLError
from cm_mcp.ops.interrupted import ExportInterrupted, interrupted_text, missing_lines
from cm_mcp.store.errors import ResultEvictedError, ResultNotFoundError, StoreError

TOKEN_HELP = (
    "Set a fresh JWT with CM_API_TOKEN (or write it to the file named by CM_API_TOKEN_FILE, which is "
    "re-read on every request, so no restart is needed)."
)


def explain(error: errors.CMError, *, tool: str, now: datetime | None = None) -> str:
    """One paragraph (or a short list) for an `isError` tool result, opening with its cause."""
    now = now or datetime.now(UTC)
    if isinstance(error, ExportInterrupted):
        return _interrupted(error, tool=tool, now=now)
    if isinstance(error, errors.RequestValidationError):
        return explain_validation(error, tool=tool)
    if isinstance(error, errors.JWTMissingError):
        return f"Configuration: no API token (JWT) is configured, so nothing was sent. {TOKEN_HELP}"
    if isinstance(error, errors.JWTExpiredError):
        return f"Configuration: {error} {TOKEN_HELP}"
    if isinstance(error, errors.TransportError):
        return (
            f"Network: {error}. Check CM_API_URL and the network, then try again; a request that got "
            "no answer may still have been counted against the quota."
        )
    if isinstance(error, errors.APIError):
        return _api_failure(error, tool=tool, now=now)
    if isinstance(error, DSLError):  # arguments the local search engine cannot run
        issue = errors.ValidationIssue(error.path or "(request)", f"{error.reason} (local search engine)")
        return explain_validation(errors.RequestValidationError([issue], tool), tool=tool)
    if isinstance(error, ResultNotFoundError) and not isinstance(error, ResultEvictedError):
        return f"Local store: {error}. results_list shows the stored results (no quota)."
    if isinstance(error, StoreError):
        return f"Local store: {error}"
    if isinstance(error, HostNotAllowedError | InsecureURLError):
        return f"Configuration: {error}"
    if isinstance(error, DownloadError):
        return f"Download: {error}"
    if isinstance(error, NothingRecoveredError) and not error.resumable:  # resumable: ExportInterrupted
        return "\n".join([f"Export: {error}", *missing_lines(error.kind, error.failed, resume=None)])
    if isinstance(error, BatchError):
        return f"Export: {error}"
    return f"{tool} failed: {type(error).__name__}: {error}"


def explain_failure(error: Exception, *, tool: str, now: datetime | None = None) -> str:
    """Any failure a tool reports: a CMError through `explain`, anything else by its own message."""
    if isinstance(error, errors.CMError):
        return explain(error, tool=tool, now=now)
    return f"{tool} failed: {type(error).__name__}: {error}"


def explain_validation(error: errors.RequestValidationError, *, tool: str) -> str:
    lines = [f"Invalid arguments for {tool}; nothing was sent and no quota was used:"]
    lines += [f"- {issue.path}: {issue.message}" for issue in error.issues]
    if error.example:
        lines.append(f"A valid call: {json.dumps(error.example)}")
    return "\n".join(lines)


def _api_failure(error: errors.APIError, *, tool: str, now: datetime) -> str:
    """The server answered; the status (and endpoint) decide whose fault it is."""
    if isinstance(error, errors.RateLimitError):
        return _rate_limited(error, now)
    if isinstance(error, errors.BatchTokenExpiredError):
        return (
            f"Batch token: the token is unknown or expired (tokens expire 2 hours after submission). "
            f"Submit the export again with {_submit_tool(tool)} and use the new token. ({error})"
        )
    if isinstance(error, errors.AuthError):
        if error.endpoint == "v1_logs_batch_urls":
            return (
                f"Authentication or batch token (ambiguous): /v1/logs/batch/urls answered {error.status} "
                f"'{error.message}', which may mean the batch token (unknown or expired, 2 hours after "
                "submission) or the JWT (reference item 39). If other tools still work, the batch token "
                f"is the problem: submit again with {_submit_tool(tool)} for a new one. Otherwise the JWT "
                f"is: {TOKEN_HELP}"
            )
        return (
            f"Authentication: the API rejected the JWT (HTTP {error.status}: {error.message}); it is "
            f"invalid, expired or not allowed here. {TOKEN_HELP}"
        )
    if isinstance(error, errors.ResponseTooLargeError):
        return f"Upstream response too large: {error}"
    if isinstance(error, errors.UnexpectedResponseError):
        return (
            f"Upstream response: the API answered with a body cm-mcp cannot read ({error}). Nothing is "
            "wrong with the call as far as can be checked; try again later, and if it persists report it "
            "to the API owner with the request_id."
        )
    if isinstance(error, errors.ServerError):
        return (
            f"Upstream failure: the API failed with HTTP {error.status} ({error}) {_attempts(error)}. "
            "Try again in a few minutes; if it fails again for this query only, a smaller window or "
            "fewer buckets may avoid it."
        )
    if isinstance(error, errors.NotFoundError):
        return f"Configuration: the API has no such endpoint ({error})."
    if isinstance(error, errors.BadRequestError):
        return (
            f"Arguments rejected upstream: {error}. The call passed cm-mcp's checks of every documented "
            "rule, so the API has one more; change the arguments it names and call again."
        )
    return f"Upstream failure: {error} {_attempts(error)}."


def _attempts(error: errors.APIError) -> str:
    if error.attempts > 1:
        return f"after {error.attempts} attempts"
    if error.status in RETRYABLE_STATUSES:
        return "after 1 attempt (no time left to retry)"
    return f"after 1 attempt ({error.status} is not retried: only 502, 503, 504, timeouts and resets are)"


def _submit_tool(tool: str) -> str:
    """The tool that submits a new batch, for a status tool (`logs_batch_status` -> `logs_batch`)."""
    return tool.replace("_status", "").replace("_urls_v1", "_v1")


def _interrupted(error: ExportInterrupted, *, tool: str, now: datetime) -> str:
    return interrupted_text(error, explain_failure(error.cause, tool=tool, now=now))


def _rate_limited(error: errors.RateLimitError, now: datetime) -> str:
    family = error.endpoint_family or error.endpoint
    others = (
        "Other endpoints have separate quotas (quota_status shows them): logs_aggs/workloads_aggs are the "
        "cheapest way to keep investigating."
    )
    if error.attempts == 0:  # refused locally after an earlier 429: nothing was sent
        return f"Quota: {error}; nothing was sent. {error.hint or ''} {others}".replace("  ", " ")
    if error.retry_after is not None and error.retry_after < 3600:
        return (
            f"Quota: the API throttled {family} (HTTP 429) and asked to wait {error.retry_after:g} s "
            f"(Retry-After); call again after about {_duration(error.retry_after)}. {others}"
        )
    reset = next_utc_midnight(now)
    return (
        f"Quota: the daily quota for {family} is spent; it resets at {reset:%Y-%m-%d %H:%M} UTC (in "
        f"{_duration((reset - now).total_seconds())}; the reset time is undocumented, midnight UTC is "
        f"assumed). {others}"
    )


def _duration(seconds: float) -> str:
    minutes = max(1, round(seconds / 60))
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if hours else f"{minutes} min"
