"""SQL text pieces every part of the DuckDB engine writes: typed literals and two-valued boolean
combinations (constant-folded, so a query never carries `AND true`)."""

from __future__ import annotations

from collections.abc import Sequence

from cm_mcp.dsl.duck.structure import quote

TRUE, FALSE = "true", "false"


def lit(value: object) -> str:
    """A typed SQL literal (integers as HUGEINT, floats round-trip exact as DOUBLE)."""
    if isinstance(value, bool):
        return TRUE if value else FALSE
    if isinstance(value, int):
        return f"{value}::HUGEINT"
    if isinstance(value, float):
        return f"'{value!r}'::DOUBLE"
    return quote(str(value))


def any_of(parts: Sequence[str]) -> str:
    parts = [p for p in parts if p != FALSE]
    if not parts:
        return FALSE
    if TRUE in parts:
        return TRUE
    return parts[0] if len(parts) == 1 else "(" + " OR ".join(parts) + ")"


def all_of(parts: Sequence[str]) -> str:
    parts = [p for p in parts if p != TRUE]
    if not parts:
        return TRUE
    if FALSE in parts:
        return FALSE
    return parts[0] if len(parts) == 1 else "(" + " AND ".join(parts) + ")"


def not_(cond: str) -> str:
    return FALSE if cond == TRUE else TRUE if cond == FALSE else f"(NOT {cond})"
