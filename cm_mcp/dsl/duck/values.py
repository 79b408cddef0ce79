"""A field's values as one SQL relation `(g, did, s, i, n, b)` for aggregations: every value of every
document of a context (one row per value; `g` is the document's parent bucket), typed: a string in
`s`, an integer in `i` (and `n`), a float in `n`, a boolean in `b`.

Bucket keys are tagged strings (`s...`, `i...`, `f...`, `b...`) so one column holds any type; a float
with an integral value is the integer key, as tantivy (and OpenSearch) make it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from cm_mcp.dsl.duck.filters import FilterCompiler, all_of, lit
from cm_mcp.dsl.duck.structure import quote
from cm_mcp.dsl.spec import MISSING_TS, is_timestamp, strip_keyword

_TYPED = {
    "VARCHAR": "{x} AS s, NULL::HUGEINT AS i, NULL::DOUBLE AS n, NULL::BOOLEAN AS b",
    "BIGINT": "NULL::VARCHAR AS s, CAST({x} AS HUGEINT) AS i, CAST({x} AS DOUBLE) AS n, NULL::BOOLEAN AS b",
    "UBIGINT": "NULL::VARCHAR AS s, CAST({x} AS HUGEINT) AS i, CAST({x} AS DOUBLE) AS n, NULL::BOOLEAN AS b",
    "DOUBLE": "NULL::VARCHAR AS s, NULL::HUGEINT AS i, {x} AS n, NULL::BOOLEAN AS b",
    "BOOLEAN": "NULL::VARCHAR AS s, NULL::HUGEINT AS i, NULL::DOUBLE AS n, {x} AS b",
}
_I64_MAX = 2**63 - 1
#: The integral doubles that key as integers (within i64, like tantivy's f64 -> i64 coercion).
_INTEGRAL = "(isfinite(n) AND n = trunc(n) AND abs(n) < 9.2e18)"
#: One column of any type for grouping and DISTINCT.
TAG = (
    "CASE WHEN s IS NOT NULL THEN 's' || s WHEN b IS NOT NULL THEN 'b' || CAST(b AS VARCHAR) "
    "WHEN i IS NOT NULL THEN 'i' || CAST(i AS VARCHAR) "
    f"WHEN {_INTEGRAL} THEN 'i' || CAST(CAST(n AS HUGEINT) AS VARCHAR) ELSE 'f' || CAST(n AS VARCHAR) END"
)
#: Order of keys of different types among equal counts (tantivy's: str, i64, bool, u64, f64).
RANK = (
    "CASE WHEN s IS NOT NULL THEN 0 WHEN b IS NOT NULL THEN 2 "
    f"WHEN i IS NOT NULL THEN (CASE WHEN i <= {_I64_MAX} THEN 1 ELSE 3 END) "
    f"WHEN {_INTEGRAL} THEN 1 ELSE 4 END"
)
SORT_NUMBER = "coalesce(CAST(i AS DOUBLE), n, CAST(b AS DOUBLE))"


@dataclass(frozen=True)
class Ctx:
    """Documents of an aggregation level: `source` joined with a parent table (`c.did`, `c.g`) below
    the top level; `groups` the parent bucket ids in output order."""

    source: str
    g: str
    where: str
    groups: tuple[int, ...]

    def rows(self, condition: str = "true") -> str:
        """Subquery `d` of the context's documents with their group `g`."""
        return (
            f"(SELECT {self.g} AS g, d.did, d.ts, d.id, d.ix, d.src FROM {self.source} "
            f"WHERE {all_of([self.where, condition])}) d"
        )


def top_context(where: str) -> Ctx:
    return Ctx("docs d", "0", where, (0,))


def child_context(table: str, groups: tuple[int, ...]) -> Ctx:
    return Ctx(f"docs d JOIN {table} c ON c.did = d.did", "c.g", "true", groups)


@dataclass(frozen=True)
class Values:
    sql: str
    #: A document may have several values (arrays, several physical places): DISTINCT is needed to
    #: count it once per bucket.
    multi: bool


def field_values(compiler: FilterCompiler, ctx: Ctx, field: str) -> Values:
    name = strip_keyword(field)
    if is_timestamp(name):
        typed = _TYPED["BIGINT"].format(x="d.ts")
        return Values(f"SELECT d.g, d.did, {typed} FROM {ctx.rows(f'd.ts > {MISSING_TS}')}", False)
    if name in ("_id", "_index"):
        typed = _TYPED["VARCHAR"].format(x="d.id" if name == "_id" else "d.ix")
        return Values(f"SELECT d.g, d.did, {typed} FROM {ctx.rows()}", False)
    resolved = compiler.field(name)
    parts = []
    for column in resolved.columns:
        typed = _TYPED[column.type].format(x="x")
        if column.many:
            inner = f"SELECT d.g, d.did, unnest({column.expr}) AS x FROM {ctx.rows()}"
        else:
            inner = f"SELECT d.g, d.did, {column.expr} AS x FROM {ctx.rows()}"
        parts.append(f"SELECT g, did, {typed} FROM ({inner}) WHERE x IS NOT NULL")
    if resolved.loose:
        parts.append(
            f"SELECT d.g, l.did, l.s, CAST(l.i AS HUGEINT) AS i, l.n, l.b FROM leaves l JOIN {ctx.rows()} ON d.did = l.did "
            f"WHERE l.path = {quote(resolved.path)}"
        )
    if not parts:
        return Values(
            "SELECT NULL::INTEGER AS g, NULL::BIGINT AS did, NULL::VARCHAR AS s, NULL::HUGEINT AS i, "
            "NULL::DOUBLE AS n, NULL::BOOLEAN AS b WHERE false",
            False,
        )
    multi = len(parts) > 1 or resolved.loose or any(c.many for c in resolved.columns)
    return Values(" UNION ALL ".join(parts), multi)


def typed_literal(value: object) -> str:
    """`s, i, n, b` columns of one literal value (a terms `missing` key)."""
    if isinstance(value, bool):
        return _TYPED["BOOLEAN"].format(x=lit(value))
    if isinstance(value, int):
        return _TYPED["BIGINT"].format(x=lit(value))
    if isinstance(value, float):
        return _TYPED["DOUBLE"].format(x=lit(value))
    return _TYPED["VARCHAR"].format(x=quote(str(value)))


def decode_key(tag: str) -> tuple[Any, str | None]:
    """(key, key_as_string) of a tagged bucket key."""
    kind, text = tag[0], tag[1:]
    if kind == "s":
        return text, None
    if kind == "b":
        return (1 if text == "true" else 0), text
    if kind == "i":
        return int(text), None
    return float(text), None
