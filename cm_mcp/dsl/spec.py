"""What the OpenSearch filter DSL means here, independent of the engine that runs it (DuckDB or
tantivy): the query object, text tokenisation, typed term matching, timestamps, cursors.

Both engines read these definitions, so a rule lives in one place (tests/test_dsl_engine.py runs the
same brute-force oracle against both).
"""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final, Literal

from cm_mcp.api.fields import TIMESTAMP_FIELD
from cm_mcp.dsl.datemath import parse_date, parse_iso_ms
from cm_mcp.dsl.errors import DSLError

Filter = Mapping[str, Any]
TermValue = str | int | float | bool
Order = Literal["asc", "desc"]

#: Free-text fields: tokenized for match/match_phrase (a field below one, `message.x`, is text too).
#: Every other field is a keyword: match/match_phrase on it is a case-insensitive exact match.
TEXT_FIELDS: Final = ("message", "error.message")
#: Documents without a parsable @timestamp sort first; range filters on @timestamp never match them.
MISSING_TS: Final = -(2**62)
#: `time_zone` values accepted (on range filters and date_histogram): UTC is the only zone supported.
UTC_ZONES: Final = (None, "UTC", "Z", "+00:00", "Etc/UTC")

# Alphanumeric runs (Unicode), without "_": tantivy's default analyzer and DuckDB's `[\pL\pN]+` alike.
TOKEN_RE = re.compile(r"[^\W_]+")
#: Tokens of this many UTF-8 bytes or more are dropped (tantivy's RemoveLongFilter).
MAX_TOKEN_BYTES: Final = 40
_INT_RE = re.compile(r"-?\d+")
_PERCENT_RE = re.compile(r"-?\d+(\.\d+)?%")


@dataclass(frozen=True)
class DocQuery:
    """Everything that selects documents: filters plus the fixed window and routing constraints.

    The window is inclusive at both ends (`start <= @timestamp <= end`), like OpenSearch gte/lte,
    so a document stamped exactly at `end` is returned. Routing maps a field to its allowed values:
    `["*"]` allows any value (no constraint), an empty list allows none.
    """

    filters: Sequence[Filter] = ()
    start: datetime | str | int | None = None
    end: datetime | str | int | None = None
    routing: Mapping[str, Sequence[TermValue]] | None = None
    now: datetime | None = None


QueryLike = DocQuery | Sequence[Mapping[str, Any]] | None


def as_doc_query(query: QueryLike) -> DocQuery:
    if query is None:
        return DocQuery()
    if isinstance(query, DocQuery):
        return query
    return DocQuery(filters=list(query))


# -- fields ---------------------------------------------------------------------------------------------
def strip_keyword(field: str) -> str:
    # `x.keyword` is the OpenSearch exact-match sub-field; here every leaf is exact already.
    return field.removesuffix(".keyword")


def is_timestamp(field: str) -> bool:
    return strip_keyword(field) == TIMESTAMP_FIELD


def is_text(field: str) -> bool:
    """Whether match/match_phrase on `field` is a tokenized text match (else a keyword match)."""
    if field.endswith(".keyword"):
        return False
    return any(field == t or field.startswith(t + ".") for t in TEXT_FIELDS)


# -- values ---------------------------------------------------------------------------------------------
def tokenize(text: str) -> list[str]:
    """Alphanumeric runs, lowercased, long tokens dropped (tantivy's default analyzer)."""
    return [t for t in map(str.lower, TOKEN_RE.findall(text)) if len(t.encode()) < MAX_TOKEN_BYTES]


def term_candidates(value: object) -> list[TermValue]:
    """Typed terms a keyword-style `term` value matches: "1024" also matches the number 1024."""
    if isinstance(value, bool):
        return [value, "true" if value else "false"]
    if isinstance(value, int):
        return [value, str(value)]
    if isinstance(value, float):
        if not math.isfinite(value):
            return [str(value)]
        return [int(value), str(value)] if value.is_integer() else [value, str(value)]
    if isinstance(value, str):
        out: list[TermValue] = [value]
        if value in ("true", "false"):
            out.append(value == "true")
        try:
            out.append(int(value))
        except ValueError:
            try:
                f = float(value)
                if math.isfinite(f):
                    out.append(int(f) if f.is_integer() else f)
            except ValueError:
                pass
        return out
    raise TypeError(value)


def number(value: object, path: str) -> float:
    """A numeric range bound; DSLError naming `path` otherwise."""
    if isinstance(value, bool):
        raise DSLError(path, f"expected a number, got {value!r}")
    if isinstance(value, int | float):
        f = float(value)
    elif isinstance(value, str):
        try:
            f = float(value)
        except ValueError:
            raise DSLError(
                path, f"expected a number (ranges on text fields are not supported), got {value!r}"
            ) from None
    else:
        raise DSLError(path, f"expected a number, got {value!r}")
    if not math.isfinite(f):
        raise DSLError(path, "expected a finite number")
    return f


def min_should(raw: object, n_should: int, has_must: bool, path: str) -> int:
    """How many `should` clauses must match (OpenSearch `minimum_should_match`)."""
    if raw is None:
        # OpenSearch: should alone needs one match; next to must/filter it only scores.
        return 0 if has_must or n_should == 0 else 1
    if isinstance(raw, bool):
        raise DSLError(path, "expected an integer or percentage")
    if isinstance(raw, int):
        n = raw
    elif isinstance(raw, str) and _INT_RE.fullmatch(raw.strip()):
        n = int(raw)
    elif isinstance(raw, str) and _PERCENT_RE.fullmatch(raw.strip()):
        pct = float(raw.strip()[:-1])
        n = math.floor(n_should * abs(pct) / 100)
        n = n if pct >= 0 else n_should - n
        return max(n, 0)
    else:
        raise DSLError(path, "expected an integer or percentage")
    return max(n if n >= 0 else n_should + n, 0)


def single_field(body: object, path: str) -> tuple[str, Any]:
    """`{field: spec}` of a term/range/match body (boost and _name ignored)."""
    if not isinstance(body, Mapping):
        raise DSLError(path, "expected an object {field: ...}")
    fields = {k: v for k, v in body.items() if k not in ("boost", "_name")}
    if len(fields) != 1:
        raise DSLError(path, "expected exactly one field")
    ((fname, spec),) = fields.items()
    if not isinstance(fname, str) or not fname:
        raise DSLError(path, "field name must be a non-empty string")
    return fname, spec


# -- timestamps ---------------------------------------------------------------------------------------
# Epoch ms of 'YYYY-MM-DD' days seen by the fast timestamp path (bounded; generated logs span few days).
_DAY_MS: dict[str, int] = {}


def _iso_ms_fast(s: str) -> int | None:
    """'YYYY-MM-DDTHH:MM:SS.mmmZ' (what OpenSearch and the generators emit) without datetime."""
    if len(s) != 24 or s[23] != "Z" or s[19] != "." or s[16] != ":" or s[13] != ":" or s[10] != "T":
        return None
    digits = s[11:13] + s[14:16] + s[17:19] + s[20:23]
    if not (digits.isascii() and digits.isdigit()):
        return None
    day = _DAY_MS.get(s[:10])
    if day is None:
        if s[4] != "-" or s[7] != "-" or len(_DAY_MS) > 100_000:
            return None
        try:
            day = parse_iso_ms(s[:10])
        except ValueError:
            return None
        _DAY_MS[s[:10]] = day
    h, m, sec = int(s[11:13]), int(s[14:16]), int(s[17:19])
    if h > 23 or m > 59 or sec > 59:
        return None
    return day + h * 3_600_000 + m * 60_000 + sec * 1000 + int(s[20:23])


def timestamp_value_ms(value: object) -> int:
    """Epoch ms of an `@timestamp` value: an ISO 8601 string or epoch-ms integer, else MISSING_TS."""
    if isinstance(value, str):
        fast = _iso_ms_fast(value)
        if fast is not None:
            return fast
        try:
            return parse_iso_ms(value)
        except ValueError:
            return MISSING_TS
    if isinstance(value, int) and not isinstance(value, bool):
        return value  # epoch millis
    return MISSING_TS


def timestamp_ms(src: Mapping[str, Any]) -> int:
    return timestamp_value_ms(src.get(TIMESTAMP_FIELD))


def sort_key(hit: Mapping[str, Any]) -> tuple[int, str]:
    """Where a hit sorts (and what a cursor records): (@timestamp epoch ms, _id)."""
    return timestamp_ms(hit.get("_source") or {}), str(hit.get("_id", ""))


# -- cursors ------------------------------------------------------------------------------------------
def encode_cursor(ts: int, doc_id: str) -> str:
    return base64.urlsafe_b64encode(json.dumps([ts, doc_id]).encode()).decode()


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        ts, doc_id = json.loads(base64.urlsafe_b64decode(cursor.encode()))
        if not isinstance(ts, int) or not isinstance(doc_id, str):
            raise ValueError
    except (ValueError, TypeError, binascii.Error):
        raise DSLError("after", "malformed cursor") from None
    return ts, doc_id


def text_spec(body: object, path: str, extra: set[str]) -> tuple[str, Any, Mapping[str, Any]]:
    """(field, query text, options) of a `match`/`match_phrase` body, either `{field: text}` or
    `{field: {query: text, ...}}` with only `query`, `boost`, `analyzer` and the `extra` options."""
    fname, spec = single_field(body, path)
    opts: Mapping[str, Any] = {}
    if isinstance(spec, Mapping):
        opts = spec
        bad = sorted(set(spec) - ({"query", "boost", "analyzer"} | extra))
        if bad:
            raise DSLError(
                f"{path}.{fname}.{bad[0]}",
                f"unsupported option; supported: query, {', '.join(sorted(extra))}",
            )
        if "query" not in spec:
            raise DSLError(f"{path}.{fname}", "expected {query: ...}")
        spec = spec["query"]
    return fname, spec, opts


def timestamp_bounds(
    spec: Mapping[str, Any], now: datetime, path: str
) -> tuple[int | None, int | None] | None:
    """Inclusive epoch-ms bounds of a `range` on the timestamp (None for no bound), or None when the
    range is empty. Rounding as OpenSearch: gte/lt round down, gt/lte round up; then exclusive bounds
    become +-1 ms."""
    fmt = spec.get("format")
    lo: int | None = None
    hi: int | None = None
    if "gte" in spec:
        lo = parse_date(spec["gte"], now=now, round_up=False, path=f"{path}.gte", fmt=fmt)
    if "gt" in spec:
        above = parse_date(spec["gt"], now=now, round_up=True, path=f"{path}.gt", fmt=fmt) + 1
        lo = above if lo is None else max(lo, above)
    if "lte" in spec:
        hi = parse_date(spec["lte"], now=now, round_up=True, path=f"{path}.lte", fmt=fmt)
    if "lt" in spec:
        below = parse_date(spec["lt"], now=now, round_up=False, path=f"{path}.lt", fmt=fmt) - 1
        hi = below if hi is None else min(hi, below)
    if lo is not None and hi is not None and lo > hi:
        return None
    return lo, hi


def range_spec(body: object, path: str) -> tuple[str, str, Mapping[str, Any]]:
    """(field, its path, bounds) of a `range` filter body, checked: known parameters only, UTC only."""
    fname, spec = single_field(body, path)
    field_path = f"{path}.{fname}"
    if not isinstance(spec, Mapping):
        raise DSLError(field_path, "expected {gt|gte|lt|lte: value}")
    known = {"gt", "gte", "lt", "lte", "format", "time_zone", "boost", "relation"}
    bad = sorted(set(spec) - known)
    if bad:
        raise DSLError(
            f"{field_path}.{bad[0]}", "unsupported range parameter; supported: gt, gte, lt, lte, format"
        )
    if spec.get("time_zone") not in UTC_ZONES:
        raise DSLError(f"{field_path}.time_zone", "only UTC is supported")
    return fname, field_path, spec
