"""The one error type of the DSL engine."""

from __future__ import annotations


class DSLError(ValueError):
    """A query or aggregation the engine cannot run; the message names the offending path."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        super().__init__(f"{path}: {message}" if path else message)
