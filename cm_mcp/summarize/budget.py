"""Token budget: how big a rendering is, how much of a caller's budget a summary gets, and `fit`.

The range callers may ask for, the default and the summary floor are defined once in
`cm_mcp.api.budget` (Settings checks CM_MAX_TOKENS against them); they are re-exported here for the
summarisers.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Final, TypeVar

from cm_mcp.api.budget import DEFAULT_TOKENS, MAX_TOKENS, MIN_TOKENS, SUMMARY_FLOOR

__all__ = [
    "DEFAULT_TOKENS",
    "MAX_TOKENS",
    "MIN_TOKENS",
    "SAFETY_MARGIN",
    "SUMMARY_FLOOR",
    "clamp_budget",
    "estimate_tokens",
    "fit",
    "fits",
    "summary_budget",
]

#: Share of a budget `fit` leaves unused. `estimate_tokens` counts 4 characters per token, the usual
#: figure for English and code; logs and JSON with many numbers and symbols run denser with BPE
#: tokenizers. With 10% kept free, a rendering still fits a tokenizer that counts 3.6 characters per
#: token (tests/test_budget.py measures it so, with its own ruler).
SAFETY_MARGIN: Final = 0.1

T = TypeVar("T")
S = TypeVar("S")


def estimate_tokens(text: str) -> int:
    """Tokens in `text`, estimated as characters / 4 (rounded up); see SAFETY_MARGIN."""
    return (len(text) + 3) // 4


def clamp_budget(max_tokens: int) -> int:
    """Budgets outside SUMMARY_FLOOR..MAX_TOKENS are brought into that range."""
    return max(SUMMARY_FLOOR, min(MAX_TOKENS, int(max_tokens)))


def summary_budget(max_tokens: int, *paid: str) -> int:
    """What a summary may use of a caller's `max_tokens` once the texts a tool adds around it (header
    line, notes) are paid for; never less than SUMMARY_FLOOR. Pass the very texts the tool will add."""
    return max(SUMMARY_FLOOR, max_tokens - sum(estimate_tokens(text) for text in paid))


def fits(text: str, max_tokens: int) -> bool:
    """True when `text` is within `max_tokens` with the safety margin kept free."""
    return estimate_tokens(text) <= math.floor(max_tokens * (1 - SAFETY_MARGIN))


def fit(
    candidates: Sequence[T], build: Callable[[T], S], render: Callable[[S], str], max_tokens: int
) -> tuple[S, str]:
    """`build` of the first candidate (ordered largest first) whose rendering `fits` the budget, and
    that rendering; else those of the last candidate. Each candidate is built and rendered at most once."""
    if not candidates:
        raise ValueError("no candidates")
    for candidate in candidates:
        built = build(candidate)
        text = render(built)
        if fits(text, max_tokens):
            break
    return built, text
