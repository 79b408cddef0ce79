"""Token budget: how big a rendering is, how much of a caller's budget a summary gets, and `fit`.

The range callers may ask for, the default and the summary floor are defined once in
`cm_mcp.api.budget` (Settings checks CM_MAX_TOKENS against them); they are re-exported here for the
summarisers.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from typing import Any, Final, Protocol, TypeVar, runtime_checkable

from pydantic import BaseModel

from cm_mcp.api.budget import DEFAULT_TOKENS, MAX_TOKENS, MIN_TOKENS, SUMMARY_FLOOR

__all__ = [
    "DEFAULT_TOKENS",
    "ESTIMATE_FACTOR",
    "MAX_TOKENS",
    "MIN_TOKENS",
    "SAFETY_MARGIN",
    "SUMMARY_FLOOR",
    "HasStructuredForm",
    "clamp_budget",
    "compact_json",
    "envelope_json",
    "estimate_tokens",
    "fit",
    "fits",
    "seen_tokens",
    "summary_budget",
]

#: Share of a budget `fit` leaves unused, for tokenizers denser than the one `estimate_tokens` was
#: calibrated on (cl100k_base): Claude's and others count some text 10-20% higher.
SAFETY_MARGIN: Final = 0.1

#: `estimate_tokens` counts the pieces a BPE tokenizer cuts text into, then adds this share. Fitted on
#: this server's renderings (tables, histograms, templates), their structured content, and Loghub's
#: logs of ten systems, in 3,000-character chunks: with it the estimate is 1.01-1.5x what cl100k_base
#: counts (median about 1.16x), never less. Characters / 4, the common rule of thumb, counted 0.44-1.1x
#: of it: aligned tables, timestamps and counts run at 1.8-2.8 characters per token.
ESTIMATE_FACTOR: Final = 1.15

# Pieces: a run of ASCII letters, up to 3 digits (BPE vocabularies hold 1-3 digit numbers), a run of
# punctuation, a line break with its indentation, a run of 2+ blanks, any other non-ASCII character.
# A single space merges into the next word's token, so it is not a piece.
_PIECES = re.compile(r"[A-Za-z]+|\d{1,3}|[^\w\s]+|\n[ \t]*|[ \t]{2,}|[^\x00-\x7f]|_")
_LONG_WORDS = re.compile(r"[A-Za-z]{7,}")  # one token per 5 letters beyond a common word's length
_PUNCTUATION_RUNS = re.compile(r"[^\w\s]{4,}")  # `":"` and `","` are one token, `"},{"` two
_LONG_BLANKS = re.compile(r"\s{17,}")  # a token holds at most about 16 blanks

T = TypeVar("T")
S = TypeVar("S")


@runtime_checkable
class HasStructuredForm(Protocol):
    """A summary that is also sent as structured content: `fit` counts that JSON too."""

    def structured_json(self) -> str: ...


def estimate_tokens(text: str) -> int:
    """Tokens in `text` as a BPE tokenizer counts them, erring high (see ESTIMATE_FACTOR)."""
    if not text:
        return 0
    pieces = len(_PIECES.findall(text))
    pieces += sum((len(word) + 4) // 5 - 1 for word in _LONG_WORDS.findall(text))
    pieces += sum((len(run) + 2) // 3 - 1 for run in _PUNCTUATION_RUNS.findall(text))
    pieces += sum((len(run) + 15) // 16 - 1 for run in _LONG_BLANKS.findall(text))
    return math.ceil(pieces * ESTIMATE_FACTOR)


def seen_tokens(text: str, structured: BaseModel | str | None = None) -> int:
    """What a result costs a model whose client forwards everything: its text and its structured
    content (as the compact JSON a client sends)."""
    if isinstance(structured, BaseModel):
        structured = compact_json(structured)
    return estimate_tokens(text) + estimate_tokens(structured or "")


def compact_json(model: BaseModel) -> str:
    """A model as structured content goes over the wire: no None fields, no blanks."""
    return model.model_dump_json(exclude_none=True)


def envelope_json(result: type[BaseModel], **fields: Any) -> str:
    """The structured content of a tool result around its summary (`fields`: all but `summary`), as
    sent: a tool pays for it out of the caller's budget like the header of its text."""
    return result.model_construct(**fields).model_dump_json(
        exclude={"summary"}, exclude_none=True, warnings=False
    )


def clamp_budget(max_tokens: int) -> int:
    """Budgets outside SUMMARY_FLOOR..MAX_TOKENS are brought into that range."""
    return max(SUMMARY_FLOOR, min(MAX_TOKENS, int(max_tokens)))


def summary_budget(max_tokens: int, *paid: str) -> int:
    """What a summary may use of a caller's `max_tokens` once the texts a tool adds around it (header
    line, notes) are paid for; never less than SUMMARY_FLOOR. Pass the very texts the tool will add."""
    return max(SUMMARY_FLOOR, max_tokens - sum(estimate_tokens(text) for text in paid))


def fits(text: str, max_tokens: int, structured: str = "") -> bool:
    """True when `text` (and the `structured` JSON sent with it) is within `max_tokens` with the
    safety margin kept free."""
    return seen_tokens(text, structured) <= math.floor(max_tokens * (1 - SAFETY_MARGIN))


def fit(
    candidates: Sequence[T], build: Callable[[T], S], render: Callable[[S], str], max_tokens: int
) -> tuple[S, str]:
    """`build` of the first candidate (ordered largest first) whose rendering `fits` the budget, and
    that rendering; else those of the last candidate. Each candidate is built and rendered at most once.
    A built summary with a structured form (`HasStructuredForm`) pays for that JSON too: a client may
    forward both to the model."""
    if not candidates:
        raise ValueError("no candidates")
    for candidate in candidates:
        built = build(candidate)
        text = render(built)
        structured = built.structured_json() if isinstance(built, HasStructuredForm) else ""
        if fits(text, max_tokens, structured):
            break
    return built, text
