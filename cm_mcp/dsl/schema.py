"""The tantivy schema behind `DocIndex` and the mapping from OpenSearch field names to it.

One `_source` is indexed twice: `kw` (raw tokenizer, fast) answers exact terms, ranges, exists and
aggregations; `tx` (default tokenizer with positions) answers match/match_phrase. `@timestamp` is a
separate i64 of epoch milliseconds because tantivy date fields default to second precision and its
date_histogram ignores i64 fields; `_id` is a fast raw text field so ties sort by it.
"""

from __future__ import annotations

import re
from typing import Final

import tantivy

from cm_mcp.api.fields import TIMESTAMP_FIELD

KW: Final = "kw"
TX: Final = "tx"
TS: Final = "ts"
ID: Final = "id"
IX: Final = "ix"
RAW: Final = "raw"

#: Documents without a parsable @timestamp sort first; range filters on @timestamp never match them.
MISSING_TS: Final = -(2**62)

# Paths the tantivy query parser accepts unescaped (only ranges on `_source` go through the parser).
_SAFE_PATH = re.compile(r"^[A-Za-z0-9_@\-]+(\.[A-Za-z0-9_@\-]+)*$")


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


def strip_keyword(field: str) -> str:
    # `x.keyword` is the OpenSearch exact-match sub-field; here every leaf is exact in `kw` already.
    return field[: -len(".keyword")] if field.endswith(".keyword") else field


def is_timestamp(field: str) -> bool:
    return strip_keyword(field) == TIMESTAMP_FIELD


def special_field(field: str) -> str | None:
    """The dedicated tantivy field for `@timestamp`, `_id` and `_index`, else None."""
    f = strip_keyword(field)
    return {TIMESTAMP_FIELD: TS, "_id": ID, "_index": IX}.get(f)


def kw_path(field: str) -> str:
    return special_field(field) or f"{KW}.{strip_keyword(field)}"


def tx_path(field: str) -> str:
    return f"{TX}.{strip_keyword(field)}"


def parser_safe(field: str) -> bool:
    return bool(_SAFE_PATH.match(strip_keyword(field)))
