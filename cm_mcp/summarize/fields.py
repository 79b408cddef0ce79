"""Reading fields and levels out of OpenSearch hits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cm_mcp.api.fields import LEVEL_FIELDS, WORKLOAD_STATE_FIELD
from cm_mcp.api.times import TimeFormatError, parse_iso8601

_MISSING = object()
_UNDECIDED = object()


def source_of(hit: Mapping[str, Any]) -> Mapping[str, Any]:
    """The document of a hit envelope (`_source`), or the hit itself when it is a bare document."""
    source = hit.get("_source")
    return source if type(source) is dict or isinstance(source, Mapping) else hit


def get_field(doc: Mapping[str, Any], path: str) -> Any:
    """`doc[path]` for a dotted path: a literal dotted key wins, else nested objects are walked.

    Mixed shapes ({"regex": {"extractions.logLevel": ...}}) are found too: at each level every dotted
    prefix of the remaining path is tried as a key, longest first.
    """
    value = _nested(doc, path)
    if value is _UNDECIDED:
        value = _lookup(doc, path)
    return None if value is _MISSING else value


def _nested(doc: Any, path: str) -> Any:
    """`_lookup` for plain dicts nested one key per part, without its recursion: the common case.

    At each level `_lookup` tries the rest of the path as one dotted key, then ever shorter dotted
    heads, the single next part last. When none of the longer ones is present, descending by the part
    is all it can do, so the answer is the same; otherwise (or when a level is a Mapping that is not a
    dict) this says _UNDECIDED and `_lookup` decides.
    """
    if type(doc) is not dict:
        return _UNDECIDED
    if path in doc:
        return doc[path]
    route = _ROUTES.get(path)
    if route is None:
        route = _route(path)
    steps, leaf = route
    for before, part in steps:
        for key in before:
            if key in doc:
                return _UNDECIDED
        doc = doc.get(part, _MISSING)
        if type(doc) is not dict:
            return _MISSING if doc is _MISSING or not isinstance(doc, Mapping) else _UNDECIDED
    return doc.get(leaf, _MISSING) if steps else _MISSING


def _lookup(doc: Any, path: str) -> Any:
    if not isinstance(doc, Mapping):
        return _MISSING
    if path in doc:
        return doc[path]
    splits = _SPLITS.get(path)
    if splits is None:
        splits = _splits(path)
    for head, rest in splits:
        if head in doc:
            found = _lookup(doc[head], rest)
            if found is not _MISSING:
                return found
    return _MISSING


def _splits(path: str) -> tuple[tuple[str, str], ...]:
    """(head, rest) cuts of a dotted path, longest head first (cached like `_ROUTES`)."""
    parts = path.split(".")
    cuts = tuple((".".join(parts[:cut]), ".".join(parts[cut:])) for cut in range(len(parts) - 1, 0, -1))
    if len(_SPLITS) < 4096:
        _SPLITS[path] = cuts
    return cuts


_SPLITS: dict[str, tuple[tuple[str, str], ...]] = {}


#: Per dotted path: for each level but the last, (the keys `_lookup` tries before descending by one
#: part, that part); and the last part. Field paths are few, so they are cached (bounded all the same).
_ROUTES: dict[str, tuple[tuple[tuple[tuple[str, ...], str], ...], str]] = {}


def _route(path: str) -> tuple[tuple[tuple[tuple[str, ...], str], ...], str]:
    parts = path.split(".")
    steps = []
    for level in range(len(parts) - 1):
        rest = parts[level:]
        before = [".".join(rest[:cut]) for cut in range(len(rest) - 1, 1, -1)]  # longer heads
        if level:
            before.insert(0, ".".join(rest))  # the rest as one literal key (checked above at level 0)
        steps.append((tuple(before), parts[level]))
    route = (tuple(steps), parts[-1])
    if len(_ROUTES) < 4096:
        _ROUTES[path] = route
    return route


_LEVEL_ALIASES = {
    "fatal": "FATAL",
    "critical": "FATAL",
    "crit": "FATAL",
    "emerg": "FATAL",
    "emergency": "FATAL",
    "alert": "FATAL",
    "panic": "FATAL",
    "severe": "ERROR",
    "error": "ERROR",
    "err": "ERROR",
    "failure": "ERROR",
    "warning": "WARN",
    "warn": "WARN",
    "notice": "INFO",
    "info": "INFO",
    "information": "INFO",
    "informational": "INFO",
    "debug": "DEBUG",
    "dbg": "DEBUG",
    "fine": "DEBUG",
    "trace": "TRACE",
    "verbose": "TRACE",
    "finest": "TRACE",
}
#: Higher is more severe; unknown levels rank between INFO and WARN so they are not buried. Workload
#: states play the part of levels in workload summaries: a failed run ranks like an ERROR line.
SEVERITY = {
    "FATAL": 6,
    "ERROR": 5,
    "WARN": 4,
    "INFO": 2,
    "DEBUG": 1,
    "TRACE": 0,
    "UNSET": -1,
    "FAILED": 5,
    "TIMED_OUT": 5,
    "CANCELLED": 4,
    "CANCELED": 4,
    "ABORTED": 4,
    "COMPLETED": 2,
    "SUCCEEDED": 2,
    "RUNNING": 1,
    "PENDING": 1,
    "QUEUED": 1,
}
UNKNOWN_SEVERITY = 3


def normalize_level(raw: Any) -> str:
    """A canonical level name: WARNING -> WARN, err -> ERROR; "UNSET" when there is none."""
    if raw is None or raw == "":
        return "UNSET"
    text = str(raw).strip()
    alias = _LEVEL_ALIASES.get(text.lower())
    if alias:
        return alias
    cleaned = "".join(ch for ch in text.upper() if ch.isalnum() or ch in "_-")[:16]
    return cleaned or "UNSET"


def severity(level: str) -> int:
    return SEVERITY.get(level, UNKNOWN_SEVERITY)


def level_of(doc: Mapping[str, Any]) -> str:
    """Level from the first of LEVEL_FIELDS present in `doc`."""
    found = raw_level(doc)
    return normalize_level(found[1]) if found else "UNSET"


def raw_state(doc: Mapping[str, Any]) -> tuple[str, Any] | None:
    """(WORKLOAD_STATE_FIELD, value as stored) of a workload: its "level" in workload summaries."""
    value = get_field(doc, WORKLOAD_STATE_FIELD)
    return None if value in (None, "") else (WORKLOAD_STATE_FIELD, value)


def raw_level(doc: Mapping[str, Any]) -> tuple[str, Any] | None:
    """(field name, value as stored) of the first of LEVEL_FIELDS present in `doc`: what a term
    filter on the level must use (`regex.extractions.logLevel` on ec2/kubernetes, `logLevel` on
    serverless)."""
    for name in LEVEL_FIELDS:
        value = get_field(doc, name)
        if value not in (None, ""):
            return name, value
    return None


def parse_time(value: Any) -> float | None:
    """Epoch seconds for an ISO-8601 string or epoch milliseconds; None when unreadable."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value) / 1000.0
    try:
        return parse_iso8601(str(value)).timestamp()  # 0-9 fractional digits, Z or an offset
    except TimeFormatError:
        return None
