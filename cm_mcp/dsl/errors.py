"""The one error type of the DSL engine (a branch of the error tree drawn in cm_mcp/api/errors.py)."""

from __future__ import annotations

from cm_mcp.api.errors import CMError


class DSLError(CMError, ValueError):
    """A query or aggregation the engine cannot run; the message names the offending path."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)
