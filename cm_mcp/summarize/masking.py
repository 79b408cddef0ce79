"""Turning a log message into the tokens template mining compares, cheaply.

A message is first reduced to its *shape*: every run of digits (with the hex letters glued to it)
becomes a single "0", so "upstream 10.0.3.7:8443 after 45ms" and "upstream 10.0.9.1:443 after 7ms"
have the same shape. That is one small regex pass in C; most messages of a busy log repeat a shape
already seen, and a dict lookup finishes them. Only a new shape is split on whitespace, and only a
whitespace token not seen before is classified (IP, timestamp, number with unit, path, ...), once, by
the regexes below; the result is cached by token. Compared with one large masking regex tried at every
position of every message this is about ten times cheaper, and it never lets a mask swallow structure:
a quoted request line stays three tokens ('"GET', '<PATH>', '<*>"'), "rhost=1.2.3.4" keeps its key
("rhost=<IP>"), and "(1.2 KB)" becomes one optional size annotation.

The rule for what is variable is deliberately simple and general: a token with a digit in it is a
value (ids, counts, addresses, times, versions); so are paths, URLs, e-mail addresses and dotted names
of three or more parts (hosts, Java classes). Words are left alone: whether a word is a value (a user
name) or part of the event ("Stopped" vs "Started") is decided later, from how many distinct words
the position holds across similar messages (see templates.py).
"""

from __future__ import annotations

import re
from collections.abc import Sequence

#: One digit and the hex digits glued to it: "10" "0x1f" (as "0x0") "a3f0c9" (as "a0") "45ms" ("0ms").
_SHAPE_RE = re.compile(r"\d[0-9a-fA-F]*")
#: Characters that separate a token's structure from its values: "rhost=<IP>", "(<NUM>", "<IP>,<IP>".
_DELIMITERS_RE = re.compile(r"([=,;()\[\]{}\"'|<>\\]|:(?!//))")
#: Leading / trailing punctuation kept around a whole-token value: "(<SIZE>)", "<IP>,".
_LEAD = "([{<\"'"
_TRAIL = ")]}>\"',;:."
_BRACKETS = {"(": ")", "[": "]", "{": "}"}
_EMPTY_BRACKETS = frozenset(["()", "[]", "{}", "(),", "[],", "{},"])

# Whole-value shapes, matched on a shape token (digits already "0") once its punctuation is stripped.
# A number: "-12", "3.5", "1.2.3" (a version), "1,5" (a decimal comma; "1,2,3" is a list, not one).
_NUMBER = r"[-+]?0(?:\.0)*(?:,0)?"
_TIME_UNITS = r"(?:ns|us|µs|ms|s|sec|secs|seconds?|m|mins?|minutes?|h|hrs?|hours?|d|days?)"
_SIZE_UNITS = r"(?:[kKMGTPE]i?[bB]|[kKMGTPE]|B|bytes?|%)"
_TYPED: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "<TS>",
        re.compile(r"0[-/]0[-/]0(?:[T ]0:0(?::0(?:[.,]0)?)?)?(?:Z|[+-]0(?::?0)?)?|0:0(?::0)?(?:[.,]0)?"),
    ),
    ("<IP>", re.compile(r"/?0\.0\.0\.0(?::0)?")),
    ("<UUID>", re.compile(r"[0-9a-fA-F]+(?:-[0-9a-fA-F]+){4}")),
    ("<HEX>", re.compile(r"0x0")),
    ("<DUR>", re.compile(_NUMBER + _TIME_UNITS)),
    ("<SIZE>", re.compile(_NUMBER + _SIZE_UNITS)),
    ("<NUM>", re.compile(_NUMBER)),
)
_URL_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9+.\-]*://\S+")
_PATH_RE = re.compile(r"(?:[A-Za-z]:\\|\\\\|~?/)[^\s\"'<>|]*[/\\][^\s\"'<>|]*|[\w.\-]+(?:/[\w.\-]+){2,}/?")
_EMAIL_RE = re.compile(r"[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+")
# Dotted names of three or more parts: hosts, Java packages and classes, metric names, Android
# components ("com.example.app/.MainActivity").
_NAME_RE = re.compile(r"[A-Za-z_$][\w\-$]*(?:[./]+[A-Za-z_$][\w\-$]*){2,}(?:[@:#$][\w.\-$]*)?")
#: Units written apart from their number ("9.2 KB", "<1 sec"): joined with it into one value token.
_UNIT_TOKENS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("<SIZE>", re.compile(r"(?:[kKMGTPE]i?[bB]|[kKMGTPE]B?|B)([)\]},;:.]*)")),
    ("<DUR>", re.compile(r"(?:ns|us|µs|ms|s|secs?|seconds?|mins?|minutes?|hrs?|hours?|days?)([)\]},;:.]*)")),
)
#: Day and month names are parts of a date when a number stands next to them ("Sun Jul  3 10:05:25").
_CALENDAR_WORDS = frozenset(
    [
        "mon",
        "tue",
        "wed",
        "thu",
        "fri",
        "sat",
        "sun",
        "monday",
        "tuesday",
        "wednesday",
        "thursday",
        "friday",
        "saturday",
        "sunday",
        "jan",
        "feb",
        "mar",
        "apr",
        "may",
        "jun",
        "jul",
        "aug",
        "sep",
        "sept",
        "oct",
        "nov",
        "dec",
        "january",
        "february",
        "march",
        "april",
        "june",
        "july",
        "august",
        "september",
        "october",
        "november",
        "december",
    ]
)

#: A placeholder inside a token: "<IP>", "<*>".
PLACEHOLDER_RE = re.compile(r"<(?:[A-Z]+|\*)>")
#: The generic placeholder: a position learned to be variable, or values of mixed types.
WILDCARD = "<*>"

#: Messages longer than this many tokens are compared on their first MAX_TOKENS - 1 tokens; the rest
#: becomes one "<*>" (a stack trace or a dumped payload is not worth a template per variant).
MAX_TOKENS = 96
#: Bound on the token cache; beyond it tokens are classified every time (still correct, just slower).
TOKEN_CACHE_LIMIT = 100_000


def shape_of(message: str) -> str:
    """`message` with every digit run (and hex digits glued to it) replaced by a single "0"."""
    return _SHAPE_RE.sub("0", message)


def _typed(value: str, *, fallback: str | None) -> str | None:
    """The placeholder for a whole value (digits already reduced to "0"); `fallback` for other text
    with a digit in it; None for text without one that is no path, URL, address or dotted name."""
    if "0" in value:
        for placeholder, pattern in _TYPED:
            if pattern.fullmatch(value):
                return placeholder
    if _URL_RE.fullmatch(value):
        return "<URL>"
    if ("/" in value or "\\" in value) and _PATH_RE.fullmatch(value):
        return "<PATH>"
    if "@" in value and _EMAIL_RE.fullmatch(value):
        return "<EMAIL>"
    if "." in value and _NAME_RE.fullmatch(value):
        return "<NAME>"
    return fallback if "0" in value else None


def mask_token(token: str) -> str:
    """One whitespace token of a shape (see `shape_of`) with its variable parts as placeholders.

    A token that is one value with punctuation around it becomes one placeholder ("(<IP>)," stays
    that); otherwise it is cut at delimiters ("=", ",", brackets, quotes, ":") and each piece that is
    a value is replaced, so keys, brackets and separators stay visible: "x[0]=0.0," -> "x[<NUM>]=<NUM>,".
    """
    start, end = 0, len(token)
    while start < end and token[start] in _LEAD:
        start += 1
    while end > start and token[end - 1] in _TRAIL:
        end -= 1
    core = token[start:end]
    if not core:
        return token
    whole = _typed(core, fallback=None)
    if whole is not None:
        return token[:start] + whole + token[end:]
    if not _DELIMITERS_RE.search(core):
        return token[:start] + WILDCARD + token[end:] if "0" in core else token
    pieces = _DELIMITERS_RE.split(token)
    for index in range(0, len(pieces), 2):  # even indexes are the text between delimiters
        piece = pieces[index]
        if piece:
            typed = _typed(piece, fallback=WILDCARD)
            if typed is not None:
                pieces[index] = typed
    return "".join(pieces)


def is_placeholder_token(token: str) -> bool:
    """True when `token` is a placeholder with at most punctuation around it ("<IP>", "(<SIZE>),")."""
    match = PLACEHOLDER_RE.search(token)
    if match is None:
        return False
    return all(ch in _LEAD for ch in token[: match.start()]) and all(
        ch in _TRAIL for ch in token[match.end() :]
    )


class Tokenizer:
    """Shape tokens -> masked tokens, with a bounded cache by token (tokens repeat far more than
    messages do: the words of an event, and the shapes of its values)."""

    def __init__(self) -> None:
        self._cache: dict[str, str] = {}

    def tokens(self, shape: str) -> tuple[str, ...]:
        """The masked tokens of a message's shape (see `shape_of`), in `canonical` form."""
        cache = self._cache
        raw = shape.split()
        if len(raw) > MAX_TOKENS:
            raw = raw[: MAX_TOKENS - 1]
            raw.append(WILDCARD)
        masked: list[str] = []
        for token in raw:
            out = cache.get(token)
            if out is None:
                out = mask_token(token)
                if len(cache) < TOKEN_CACHE_LIMIT:
                    cache[token] = out
            masked.append(out)
        if len(masked) > 1:
            masked = _join_values(masked, raw)
        return canonical(masked)[1]


def _with_unit(number: str, unit: str) -> str | None:
    """`number` (a token ending in "<NUM>") joined with the unit token after it, if it is one."""
    for placeholder, pattern in _UNIT_TOKENS:
        match = pattern.fullmatch(unit)
        if match is not None:
            return number[: -len("<NUM>")] + placeholder + match.group(1)
    return None


def _is_calendar(token: str) -> bool:
    return token.strip(_TRAIL).lower() in _CALENDAR_WORDS


def _join_values(masked: list[str], raw: list[str]) -> list[str]:
    """Values written over two tokens: a number and its unit ("9.2" "KB)" -> "<SIZE>)"), and day /
    month names next to a number ("Jul" "3" -> "<TS>" "<NUM>")."""
    out: list[str] = []
    index = 0
    last = len(masked) - 1
    while index <= last:
        token = masked[index]
        if index < last and token.endswith("<NUM>"):
            joined = _with_unit(token, raw[index + 1])
            if joined is not None:
                out.append(joined)
                index += 2
                continue
        if _is_calendar(token) and (
            (index < last and ("<" in masked[index + 1] or _is_calendar(masked[index + 1])))
            or (out and "<" in out[-1])
        ):
            token = "<TS>"
        out.append(token)
        index += 1
    return out


def canonical(tokens: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(merge key, text) of masked `tokens`, written the same way whatever the number of values.

    Runs of value tokens count as one ("<IP>, <IP>, <IP>", stack frames, multi-word values), a
    repeated group of tokens with a value in it as one (a list of "node-<*> <HEX> ok" items), and a
    bracketed value ("(1.2 KB)", "()") is an optional annotation, dropped. The merge key has every
    placeholder generic ("<*>"); the text keeps a single value's type. Both have the same length.
    """
    generic: list[str] = []
    shown: list[str] = []
    for token in tokens:
        if token in _EMPTY_BRACKETS:
            continue  # "()": the annotation present but empty
        if is_placeholder_token(token):
            opening = token[0]
            if opening in _BRACKETS and token.endswith(_BRACKETS[opening]):
                continue
            if generic and generic[-1] == WILDCARD and is_placeholder_token(shown[-1]):
                shown[-1] = WILDCARD
                continue
            generic.append(WILDCARD)
            shown.append(token)
            continue
        generic.append(PLACEHOLDER_RE.sub(WILDCARD, token) if "<" in token else token)
        shown.append(token)
    _collapse_repeats(generic, shown)
    return tuple(generic), tuple(shown)


def _collapse_repeats(generic: list[str], shown: list[str], longest: int = 4) -> None:
    """Drop, in place, the repeats of a group of 2..`longest` tokens that holds a value."""
    period = 2
    while period <= longest:
        start = 0
        changed = False
        while start + 2 * period <= len(generic):
            unit = generic[start : start + period]
            if unit == generic[start + period : start + 2 * period] and any("<" in tok for tok in unit):
                del generic[start + period : start + 2 * period]
                del shown[start + period : start + 2 * period]
                changed = True
            else:
                start += 1
        if not changed:
            period += 1


def mask_message(message: str) -> str:
    """`message` with its variable parts as typed placeholders ("<IP>", "<NUM>", "<PATH>", ...),
    tokens separated by single spaces."""
    return " ".join(Tokenizer().tokens(shape_of(message)))
