"""Token budget: how big a rendering is, and the range of budgets callers may ask for."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

#: Tool callers may ask for 500..20,000 tokens; the tools pay a header line out of that, so the
#: summaries themselves accept a little less than the callers' floor.
MIN_TOKENS = 300
MAX_TOKENS = 20_000

T = TypeVar("T")
S = TypeVar("S")


def estimate_tokens(text: str) -> int:
    """Tokens in `text`, estimated as characters / 4 (rounded up).

    Four characters per token is the usual figure for English and code with BPE tokenizers; logs with
    many numbers and symbols run a little denser, so the summaries also keep a small safety margin.
    """
    return (len(text) + 3) // 4


def clamp_budget(max_tokens: int) -> int:
    """Budgets outside MIN_TOKENS..MAX_TOKENS are brought into that range."""
    return max(MIN_TOKENS, min(MAX_TOKENS, int(max_tokens)))


def fit(
    candidates: Sequence[T], build: Callable[[T], S], render: Callable[[S], str], max_tokens: int
) -> tuple[S, str]:
    """`build` of the first candidate (ordered largest first) whose rendering fits, and that rendering;
    else those of the last candidate. Each candidate is built and rendered at most once."""
    if not candidates:
        raise ValueError("no candidates")
    for candidate in candidates:
        built = build(candidate)
        text = render(built)
        if estimate_tokens(text) <= max_tokens:
            break
    return built, text
