"""The shape of a result's `_source` documents as DuckDB types, and where a field's values live in it.

DuckDB's `json_structure` describes one JSON value (`{"a": "VARCHAR", "b": ["UBIGINT"]}`); the
structures of every record are merged here into one, which `json_transform` then uses to turn each
`_source` into a typed STRUCT column, so that queries read typed columns instead of parsing JSON.

Where a path has no single type (a number in one record, a string in another; a scalar here and an
object there) the merged type is "JSON": such a subtree keeps its JSON text, and its scalar leaves are
also written, typed, to a side table (`leaves`: did, path, s, i, n, b) under their OpenSearch field
path. So is an object whose keys differ only in case (DuckDB struct fields are case-insensitive) or
have an empty key, or that has more than `MAX_OBJECT_KEYS` keys.

Field paths follow OpenSearch: `a.b` reaches `{"a": {"b": 1}}`, `{"a.b": 1}` and, through arrays,
`{"a": [{"b": 1}, {"b": 2}]}` alike; `resolve` lists every physical place a field can be.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final, TypeAlias

Structure: TypeAlias = str | dict[str, "Structure"] | list["Structure"]

#: An object with more keys than this is kept as JSON (its leaves go to the side table): a struct that
#: wide (per-request header names, say) would cost more to build and scan than it saves.
MAX_OBJECT_KEYS: Final = 1000
JSON: Final = "JSON"
#: Integer columns: UBIGINT when every value is >= 0 (all of u64, exact), else BIGINT (Parquet has no
#: wider integer; a value beyond i64 in a column that also has negative ones is not indexed).
INTEGERS: Final = frozenset({"UBIGINT", "BIGINT"})
#: Scalar types a typed column can have.
SCALARS: Final = frozenset({"VARCHAR", "BIGINT", "UBIGINT", "DOUBLE", "BOOLEAN"})
_SIGNED: Final = frozenset({"BIGINT", "HUGEINT", "INTEGER", "SMALLINT", "TINYINT"})
_FLOATS: Final = frozenset({"DOUBLE", "FLOAT", "UHUGEINT"})


def normalise(raw: object, *, in_array: bool = False) -> Structure:
    """One record's `json_structure` in the types of SCALARS.

    Outside arrays "JSON" can only be an empty object there (one record has no type conflicts): it has
    no values, so it is "NULL" here rather than a JSON subtree that would swallow the field's typed
    columns when merged with the records that have some."""
    if isinstance(raw, dict):
        return {str(k): normalise(v, in_array=in_array) for k, v in raw.items()}
    if isinstance(raw, list):
        return [normalise(raw[0], in_array=True) if raw else "NULL"]
    text = str(raw)
    if text == JSON and not in_array:
        return "NULL"
    if text in _SIGNED:
        return "BIGINT"
    if text in _FLOATS:
        return "DOUBLE"
    return text if text in SCALARS or text == "NULL" else JSON


def merge(a: Structure, b: Structure) -> Structure:
    """The structure of values of both shapes: integers of both signs are BIGINT, integers and floats
    DOUBLE, anything else mixed is JSON."""
    if a == b:
        return a
    if a == "NULL":
        return b
    if b == "NULL":
        return a
    if isinstance(a, dict) and isinstance(b, dict):
        out = dict(a)
        for key, value in b.items():
            out[key] = merge(out[key], value) if key in out else value
        return out
    if isinstance(a, list) and isinstance(b, list):
        return [merge(a[0], b[0])]
    numbers = ("BIGINT", "UBIGINT", "DOUBLE")
    if isinstance(a, str) and isinstance(b, str) and a in numbers and b in numbers:
        return "BIGINT" if a in INTEGERS and b in INTEGERS else "DOUBLE"
    return JSON


def finalise(s: Structure) -> Structure | None:
    """What `json_transform` is given: no all-null paths, empty objects or empty arrays (no values:
    nothing to find there); objects DuckDB cannot hold as a struct become JSON (see the module doc)."""
    if isinstance(s, dict):
        lowered = [k.lower() for k in s]
        if "" in s or len(set(lowered)) != len(lowered) or len(s) > MAX_OBJECT_KEYS:
            return JSON
        out = {}
        for key, value in s.items():
            kept = finalise(value)
            if kept is not None:
                out[key] = kept
        return out or None
    if isinstance(s, list):
        inner = finalise(s[0])
        return None if inner is None else [inner]
    return None if s == "NULL" else s


def source_structure(s: Structure | None) -> Structure:
    """The `_source` column's structure: an object (or JSON when it cannot be one); `@timestamp`
    must be a string or an integer column, else JSON (its epoch ms are computed per value then)."""
    s = finalise(s) if s is not None else None
    if not isinstance(s, dict):
        return JSON
    stamp = s.get("@timestamp")
    if stamp is not None and stamp not in ("VARCHAR", *INTEGERS):
        s = {**s, "@timestamp": JSON}
    return s


def dumps(s: Structure) -> str:
    return json.dumps(s, separators=(",", ":"), ensure_ascii=False)


# -- where a field is -----------------------------------------------------------------------------------
Step = str | None  # a struct key, or None: "each element of this list"


@dataclass(frozen=True)
class Column:
    """A field's values inside the typed `src` column: `expr` is one scalar, or a list of scalars
    (`many`) when the path goes through an array."""

    expr: str
    many: bool
    type: str


@dataclass
class Resolved:
    """Every place field `path` has values: typed columns exactly at it, columns below it (when it is
    an object: what `exists` looks at), and whether JSON subtrees (the leaves table) may hold some."""

    path: str
    columns: list[Column]
    below: list[Column]
    loose: bool

    @property
    def empty(self) -> bool:
        return not (self.columns or self.below or self.loose)


def resolve(root: Structure, field: str) -> Resolved:
    out = Resolved(field, [], [], False)
    _walk(root, [], field.split("."), out, exact=True)
    return out


def _walk(node: Structure, steps: list[Step], parts: list[str], out: Resolved, *, exact: bool) -> None:
    if node == JSON:
        out.loose = True
        return
    if isinstance(node, list):
        _walk(node[0], [*steps, None], parts, out, exact=exact)
        return
    if isinstance(node, dict):
        if not parts:  # the field is an object: everything below it counts for `exists`
            for key, child in node.items():
                _walk(child, [*steps, key], [], out, exact=False)
            return
        for i in range(1, len(parts) + 1):
            key = ".".join(parts[:i])
            if key in node:
                _walk(node[key], [*steps, key], parts[i:], out, exact=exact)
        # A literal dotted key deeper than the field ({"a.b": 1} for field "a") is below it.
        deeper = ".".join(parts) + "."
        for key, child in node.items():
            if key.startswith(deeper):
                _walk(child, [*steps, key], [], out, exact=False)
        return
    if not parts:
        column = Column(*sql_of(steps), type=node)
        (out.columns if exact else out.below).append(column)


def sql_of(steps: list[Step], base: str = "d.src") -> tuple[str, bool]:
    """The SQL expression of a path of struct keys and list steps, and whether it yields a list."""
    expr, many, depth = base, False, 0
    for step in steps:
        if step is None:
            if many:
                expr = f"flatten({expr})"
            many = True
            continue
        if many:
            depth += 1
            var = f"_x{depth}"
            expr = f"list_transform({expr}, lambda {var}: struct_extract({var}, {quote(step)}))"
        else:
            expr = f"struct_extract({expr}, {quote(step)})"
    return expr, many


def json_nodes(root: Structure) -> Iterator[tuple[str, str, bool]]:
    """(field path, SQL expression, is a list) of every JSON subtree: what the leaves table covers."""

    def walk(node: Structure, steps: list[Step], names: list[str]) -> Iterator[tuple[str, str, bool]]:
        if node == JSON:
            expr, many = sql_of(steps, base="s.src")
            yield ".".join(names), expr, many
        elif isinstance(node, list):
            yield from walk(node[0], [*steps, None], names)
        elif isinstance(node, dict):
            for key, child in node.items():
                yield from walk(child, [*steps, key], [*names, key])

    yield from walk(root, [], [])


def quote(text: str) -> str:
    """A SQL string literal (NUL cannot appear inside quotes, so it is spliced in with chr(0))."""
    body = "'" + text.replace("'", "''") + "'"
    return body.replace("\x00", "' || chr(0) || '") if "\x00" in text else body


def relative_path(fullkey: str) -> str:
    """`json_tree`'s fullkey (`$.a."b.c"[0].d`) as a dotted field path below its root (`a.b.c.d`)."""
    names: list[str] = []
    i, n = 1, len(fullkey)  # after "$"
    while i < n:
        char = fullkey[i]
        if char == "[":
            i = fullkey.index("]", i) + 1
        elif char == "." and i + 1 < n and fullkey[i + 1] == '"':
            j = i + 2
            while fullkey[j] != '"':
                j += 2 if fullkey[j] == "\\" else 1
            names.append(json.loads(fullkey[i + 1 : j + 1]))
            i = j + 1
        else:  # ".name": up to the next "." or "["
            j = i + 1
            while j < n and fullkey[j] not in ".[":
                j += 1
            names.append(fullkey[i + 1 : j])
            i = j
    return ".".join(names)
