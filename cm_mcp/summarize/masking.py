"""Turning a log message into the tokens template mining compares, cheaply.

A message is first reduced to its *shape*: every run of digits (with the hex letters glued to it)
becomes a single "0", so "upstream 10.0.3.7:8443 after 45ms" and "upstream 10.0.9.1:443 after 7ms"
have the same shape. That is one small regex pass in C; most messages of a busy log repeat a shape
already seen, and a dict lookup finishes them. Only a new shape is split on whitespace, and only a
whitespace token not seen before is classified (IP, timestamp, number with unit, path, ...), once, by
the regexes below; the result is cached by token. The one large masking regex tried at every position
of every message that this replaces cost 25 us per Loghub message; the shape pass costs about 1 us.
And no mask swallows structure: a quoted request line keeps its method and quotes ('"GET <*>" <NUM>',
not '"<*>"'), "rhost=1.2.3.4" keeps its key ("rhost=<IP>"), and "(1.2 KB)" is one optional size.

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
SHAPE_RE = re.compile(r"\d[0-9a-fA-F]*")
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
    ("<SIZE>", re.compile(r"(?:[kKMGTPE]i?[bB]|[kKMGTPE]B?|B|bytes?)([)\]},;:.]*)")),
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
_PLACEHOLDER_TOKEN_RE = re.compile(r"([(\[{<\"']*)(<(?:[A-Z]+|\*)>)([)\]}>\"',;:.]*)")
#: The generic placeholder: a position learned to be variable, or values of mixed types.
WILDCARD = "<*>"

#: Messages longer than this many tokens are compared on their first MAX_TOKENS - 1 tokens; the rest
#: becomes one "<*>" (a stack trace or a dumped payload is not worth a template per variant).
MAX_TOKENS = 96
#: Bounds on the masking caches (entries), and the longest shape worth caching (characters).
TOKEN_CACHE_LIMIT = 200_000
KEY_CACHE_LIMIT = 50_000
MAX_CACHED_SHAPE = 1000


def shape_of(message: str) -> str:
    """`message` with every digit run (and hex digits glued to it) replaced by a single "0"."""
    return SHAPE_RE.sub("0", message)


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
    return "<" in token and _PLACEHOLDER_TOKEN_RE.fullmatch(token) is not None


# Masking is a pure function of the text, so its caches are shared by every summary in the process (a
# server summarising page after page of the same services finds most shapes already known). Bounded:
# a full cache is emptied and refills with what is current.
_TOKENS: dict[str, str] = {}  # whitespace token of a shape -> masked token
_KEYS: dict[str, tuple[str, ...]] = {}  # shape -> key (its masked tokens in canonical form)


def key_of(shape: str) -> tuple[str, ...]:
    """The key of a message's shape (see `shape_of`): its masked tokens in `canonical` form."""
    key = _KEYS.get(shape)
    if key is None:
        key = _key(shape)
        if len(_KEYS) >= KEY_CACHE_LIMIT:
            _KEYS.clear()
        if len(shape) <= MAX_CACHED_SHAPE:
            _KEYS[shape] = key
    return key


def _key(shape: str) -> tuple[str, ...]:
    raw = shape.split()
    if len(raw) > MAX_TOKENS:
        raw = raw[: MAX_TOKENS - 1]
        raw.append(WILDCARD)
    masked: list[str] = []
    for token in raw:
        out = _TOKENS.get(token)
        if out is None:
            out = mask_token(token)
            if len(_TOKENS) >= TOKEN_CACHE_LIMIT:
                _TOKENS.clear()
            _TOKENS[token] = out
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


def merge_key(template: tuple[str, ...]) -> tuple[str, ...]:
    """`canonical(template)[0]`, cached like the keys (templates recur from summary to summary)."""
    key = _MERGE_KEYS.get(template)
    if key is None:
        key = canonical(template)[0]
        if len(_MERGE_KEYS) >= KEY_CACHE_LIMIT:
            _MERGE_KEYS.clear()
        _MERGE_KEYS[template] = key
    return key


_MERGE_KEYS: dict[tuple[str, ...], tuple[str, ...]] = {}


def canonical(tokens: Sequence[str]) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(merge key, text) of masked `tokens`, written the same way whatever the number of values.

    Values of one kind side by side are one value ("<IP>, <IP>, <IP>", stack frames, a multi-word
    value), a repeated group of tokens holding a value is one (a list of "node-<*> <HEX> ok" items),
    and a bracketed value ("(1.2 KB)", "()") is an optional annotation, dropped. Values of different
    kinds stay apart ("<DUR>, <SIZE>" are two fields), and so do values on either side of a closing
    quote or bracket ('"GET <PATH> <*>" <NUM>': the request line ends at its quote). The merge key
    has every placeholder generic ("<*>", keeping quotes and brackets); the text keeps the kind.
    Both have the same length.
    """
    generic: list[str] = []
    shown: list[str] = []
    run_kind = ""  # the kind of the value run that shown[-1] ends, "" when it is not a value
    run_lead = ""
    for token in tokens:
        if token in _EMPTY_BRACKETS:
            continue  # "()": the annotation present but empty
        match = _PLACEHOLDER_TOKEN_RE.fullmatch(token) if "<" in token else None
        if match is None:
            generic.append(PLACEHOLDER_RE.sub(WILDCARD, token) if "<" in token else token)
            shown.append(token)
            run_kind = ""
            continue
        lead, kind, trail = match.groups()
        if lead and lead[0] in _BRACKETS and trail.endswith(_BRACKETS[lead[0]]):
            continue  # "(<SIZE>)": an optional annotation of what comes before
        if run_kind and not lead and (kind == run_kind or WILDCARD in (kind, run_kind)):
            run_kind = kind if kind == run_kind else WILDCARD
            generic.pop()
            shown.pop()
            lead = run_lead
        else:
            run_kind, run_lead = kind, lead
        generic.append(_structure(lead) + WILDCARD + _structure(trail))
        shown.append(lead + run_kind + trail)
        if trail.strip(",;"):
            run_kind = ""  # a closing quote or bracket ends the run
    _collapse_repeats(generic, shown)
    return tuple(generic), tuple(shown)


def _structure(punctuation: str) -> str:
    """The quotes and brackets of a value's surrounding punctuation (commas, "<1" and such are not)."""
    return "".join(ch for ch in punctuation if ch in "()[]{}\"'") if punctuation else ""


def _collapse_repeats(generic: list[str], shown: list[str], longest: int = 4) -> None:
    """Drop, in place, the repeats of a group of 2..`longest` tokens that holds a value."""
    if len(set(generic)) == len(generic):
        return  # no token twice: nothing repeats
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
    return " ".join(key_of(shape_of(message)))
