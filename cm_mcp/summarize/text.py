"""Cleaning untrusted text: control characters, ANSI escapes, truncation with a visible marker."""

from __future__ import annotations

import re

# CSI sequences (colours, cursor moves), OSC sequences (titles, hyperlinks) and lone two-byte escapes.
_ANSI_RE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[@-Z\\-_]")
# C0 and C1 controls except tab/newline (turned into spaces below), plus DEL and bidi overrides that could
# make text render in a misleading order.
_CONTROL_RE = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069]")
_SPACE_RE = re.compile(r"[\t\r\n]+")


def clean(text: str) -> str:
    """`text` without ANSI escape sequences or control characters; line breaks become " ⏎ "."""
    if "\x1b" in text:
        text = _ANSI_RE.sub("", text)
    text = _CONTROL_RE.sub("", text)
    return _SPACE_RE.sub(" ⏎ ", text) if ("\n" in text or "\t" in text or "\r" in text) else text


def truncate(text: str, limit: int) -> tuple[str, bool]:
    """`text` cut to about `limit` characters with a marker saying how much was cut."""
    if len(text) <= limit:
        return text, False
    keep = max(limit, 1)
    return f"{text[:keep]}… [+{len(text) - keep} chars]", True


def to_text(value: object) -> str:
    """Any JSON value as one clean line of text."""
    if value is None:
        return ""
    if isinstance(value, str):
        return clean(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    if isinstance(value, list):
        return clean(", ".join(to_text(v) for v in value))
    return clean(str(value))
