"""The sandbox's answers: JSON bodies and the error shapes each endpoint documents.

Error bodies (the reference documents three shapes, item 38):
- V1: ``{"status_code": N, "detail": "..."}`` for every error.
- V2 invalid input: ``{"error": "Invalid input", "details": "<path>: <message>; ..."}``.
- V2 unknown/expired batch token: 404 ``{"message": "No record of this token. Note: Tokens expire
  after 2 hours"}``; unknown/expired scroll_id: 404 ``{"message": "No search context found ..."}``.
- V2 401/429/5xx: ``{"message": "..."}`` (the API-gateway style the 404 already uses).
- anything unexpected: 500 ``{"message": "Internal server error", "request_id": ...}``, traceback on
  stderr (logger ``cm_mcp.sandbox``).
"""

from __future__ import annotations

from typing import Any, Final

from starlette.responses import JSONResponse

from cm_mcp.api.endpoints import Endpoint
from cm_mcp.api.errors import RequestValidationError

SCROLL_UNKNOWN_MESSAGE: Final = (
    "No search context found for this scroll_id (unknown or expired after 5 minutes idle)"
)
V1_APPLICATIONS: Final = "atr, klewer, eventops, quasar"


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(body, status_code=status, headers=headers)


def error_response(
    endpoint: Endpoint,
    status: int,
    message: str,
    *,
    request_id: str,
    headers: dict[str, str] | None = None,
    invalid_input: bool = False,
) -> JSONResponse:
    """The error body in the endpoint's documented shape (see the module docstring)."""
    body: dict[str, Any]
    if endpoint.version == "v1":
        body = {"status_code": status, "detail": message}
    elif invalid_input:
        body = {"error": "Invalid input", "details": message}
    else:
        body = {"message": message}
    return json_response(body, status, {"x-request-id": request_id, **(headers or {})})


def v1_detail(exc: RequestValidationError) -> str:
    """V1 400 text: the documented sentences where the reference has one, else 'path: message'."""
    for issue in exc.issues:
        if issue.path == "application" and issue.message != "required field is missing":
            return f"Invalid application type. Must be one of: {V1_APPLICATIONS}"
        if issue.message == "required field is missing":
            return f"Invalid input. Missing {issue.path} variable in payload"
    return "Invalid input. " + "; ".join(str(issue) for issue in exc.issues)
