"""Reading fields and levels out of OpenSearch hits."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from cm_mcp.api.fields import LEVEL_FIELDS, WORKLOAD_STATE_FIELD
from cm_mcp.api.times import TimeFormatError, parse_iso8601

_MISSING = object()


def source_of(hit: Mapping[str, Any]) -> Mapping[str, Any]:
    """The document of a hit envelope (`_source`), or the hit itself when it is a bare document."""
    source = hit.get("_source")
    return source if isinstance(source, Mapping) else hit


def get_field(doc: Mapping[str, Any], path: str) -> Any:
    """`doc[path]` for a dotted path: a literal dotted key wins, else nested objects are walked.

    Mixed shapes ({"regex": {"extractions.logLevel": ...}}) are found too: at each level every dotted
    prefix of the remaining path is tried as a key.
    """
    value = _lookup(doc, path)
    return None if value is _MISSING else value


def _lookup(doc: Any, path: str) -> Any:
    if not isinstance(doc, Mapping):
        return _MISSING
    if path in doc:
        return doc[path]
    parts = path.split(".")
    for cut in range(len(parts) - 1, 0, -1):
        head = ".".join(parts[:cut])
        if head in doc:
            found = _lookup(doc[head], ".".join(parts[cut:]))
            if found is not _MISSING:
                return found
    return _MISSING


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
