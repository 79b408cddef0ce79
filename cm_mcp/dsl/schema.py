"""The tantivy schema behind `DocIndex` and the mapping from OpenSearch field names to it.

`_source` (JSON, raw tokenizer, fast) answers exact terms, ranges, exists and aggregations for every
field. Only the free-text fields in `TEXT_FIELDS` are indexed a second time, tokenized with positions,
under `@tx` for match/match_phrase; `match`/`match_phrase` on any other field is a case-insensitive
exact match on its `_source` value (see `QueryCompiler`). `@timestamp` is a separate i64 `@ts` of
epoch milliseconds because tantivy date fields default to second precision and its date_histogram
ignores i64 fields; `_id` is a fast raw text field so ties sort by it.

`_source`, `_id` and `_index` carry the names of the hit's own keys so the serialised hit is the
document tantivy parses (it ignores keys that are not in the schema, like `_score` or `sort`); the
extra fields start with `@`, which no OpenSearch hit metadata key does.
"""

from __future__ import annotations

import re
from typing import Final

import tantivy

from cm_mcp.api.fields import TIMESTAMP_FIELD
from cm_mcp.dsl.spec import MISSING_TS, TEXT_FIELDS, is_text, is_timestamp, strip_keyword

__all__ = ["MISSING_TS", "TEXT_FIELDS", "is_text", "is_timestamp", "strip_keyword"]

KW: Final = "_source"
TX: Final = "@tx"
TS: Final = "@ts"
ID: Final = "_id"
IX: Final = "_index"
RAW: Final = "@raw"

_SPECIAL: Final = {TIMESTAMP_FIELD: TS, "_id": ID, "_index": IX}

# Paths the tantivy query parser accepts unescaped (only ranges on `_source` go through the parser).
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_@\-]+(\.[A-Za-z0-9_@\-]+)*$")


#: Bumped whenever the schema or what gets indexed changes; part of `schema_marker()`.
SCHEMA_VERSION: Final = 2
#: File next to tantivy's in an index directory, recording `schema_marker()` at creation.
MARKER_FILE: Final = "cm-dsl-schema.json"


def schema_marker() -> dict[str, object]:
    """What an on-disk index must have been built with to be opened (compared on reopen)."""
    return {"version": SCHEMA_VERSION, "text_fields": list(TEXT_FIELDS)}


def build_schema() -> tantivy.Schema:
    sb = tantivy.SchemaBuilder()
    sb.add_json_field(
        KW, stored=False, fast=True, tokenizer_name="raw", index_option="basic", expand_dots_enabled=True
    )
    sb.add_json_field(
        TX,
        stored=False,
        fast=False,
        tokenizer_name="default",
        index_option="position",
        expand_dots_enabled=True,
    )
    sb.add_integer_field(TS, stored=False, indexed=True, fast=True)
    sb.add_text_field(ID, stored=False, fast=True, tokenizer_name="raw", index_option="basic")
    sb.add_text_field(IX, stored=False, fast=True, tokenizer_name="raw", index_option="basic")
    # The hit exactly as added (key order, number spelling): tantivy's stored JSON re-sorts keys.
    sb.add_bytes_field(RAW, stored=True)
    return sb.build()


def special_field(field: str) -> str | None:
    """The dedicated tantivy field for `@timestamp`, `_id` and `_index`, else None."""
    return _SPECIAL.get(strip_keyword(field))


def kw_path(field: str) -> str:
    return special_field(field) or f"{KW}.{strip_keyword(field)}"


def tx_path(field: str) -> str:
    return f"{TX}.{strip_keyword(field)}"


def parser_safe(field: str) -> bool:
    return bool(_SAFE_PATH.match(strip_keyword(field)))
