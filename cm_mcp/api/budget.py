"""The token budget of a tool result: the range callers may ask for, the default, the summary floor.

Defined once, here at the bottom layer, because `Settings` checks CM_MAX_TOKENS against the range at
start-up (a default the tools would refuse made every budgeted tool fail with an error about an
argument the caller never sent). The tools' `max_tokens` schema and check, and the summarisers
(`cm_mcp.summarize.budget`, which also holds the counting helpers), read it from here.
"""

from __future__ import annotations

from typing import Any, Final

#: The smallest budget a caller may ask for. The budget covers the text AND the structured content
#: (a client may forward both): a scroll page's header, ids and continuation alone are 450-550 tokens
#: of the two together, so 1,000 leaves room for a few templates (500 did not hold even the ids).
MIN_TOKENS: Final = 1000
#: The largest: a bigger result would crowd the rest of an investigation out of a context window.
MAX_TOKENS: Final = 20_000
#: What a result gets when the caller says nothing (CM_MAX_TOKENS changes it, within the range).
DEFAULT_TOKENS: Final = 4000
#: The smallest summary ever built, whatever its header costs: less would say nothing useful.
SUMMARY_FLOOR: Final = 300

RANGE_TEXT: Final = f"an integer {MIN_TOKENS}-{MAX_TOKENS}"


def budget_problem(value: Any) -> str | None:
    """Why `value` is not a budget callers may ask for; None when it is one."""
    if isinstance(value, bool) or not isinstance(value, int) or not MIN_TOKENS <= value <= MAX_TOKENS:
        return f"must be {RANGE_TEXT}, got {value!r}"
    return None
