"""`match` and `match_phrase`: tokens on the text fields, the whole value ignoring case elsewhere.

Text fields (`spec.TEXT_FIELDS`) are matched by token: RE2 patterns over the stored strings whose
token boundaries are RE2's Unicode `[^\\pL\\pN]`, so a token is an alphanumeric run as the Python
tokenizer (and tantivy's) sees it; `(?i)` folds case. A phrase is its tokens separated by non-token
characters only; with `slop`, the candidates (every token present) are checked in Python.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from cm_mcp.dsl.duck.sql import FALSE, all_of, any_of
from cm_mcp.dsl.duck.structure import quote
from cm_mcp.dsl.errors import DSLError
from cm_mcp.dsl.spec import is_text, is_timestamp, strip_keyword, text_spec, tokenize

if TYPE_CHECKING:
    from cm_mcp.dsl.duck.filters import FilterCompiler

#: A character that is not part of a token (the complement of the tokenizer's alphanumeric runs).
_SEP = r"[^\pL\pN]"
_SPECIAL = ("_id", "_index")


def match(compiler: FilterCompiler, body: object, path: str) -> str:
    fname, text, opts = text_spec(body, path, {"operator", "zero_terms_query"})
    if not isinstance(text, str) or not is_text(fname):
        return keyword_match(compiler, fname, text, f"{path}.{fname}")
    op = str(opts.get("operator", "or")).lower()
    if op not in ("or", "and"):
        raise DSLError(f"{path}.{fname}.operator", "expected 'or' or 'and'")
    tokens = list(dict.fromkeys(tokenize(text)))
    if not tokens:
        return FALSE
    if op == "or":
        return _text(compiler, fname, _token_regex("(?:" + "|".join(tokens) + ")"))
    return all_of([_text(compiler, fname, _token_regex(t)) for t in tokens])


def match_phrase(compiler: FilterCompiler, body: object, path: str) -> str:
    fname, text, opts = text_spec(body, path, {"slop"})
    if not isinstance(text, str) or not is_text(fname):
        return keyword_match(compiler, fname, text, f"{path}.{fname}")
    tokens = tokenize(text)
    if not tokens:
        return FALSE
    slop = int(opts.get("slop", 0))
    if slop > 0 and len(tokens) > 1 and compiler.sloppy is not None:
        candidates = all_of([_text(compiler, fname, _token_regex(t)) for t in dict.fromkeys(tokens)])
        if candidates == FALSE:
            return FALSE
        ids = compiler.sloppy(compiler.field(fname), tokens, slop, candidates)
        return f"d.did IN ({', '.join(map(str, ids))})" if ids else FALSE
    return _text(compiler, fname, _token_regex((_SEP + "+").join(tokens)))


def _text(compiler: FilterCompiler, fname: str, pattern: str) -> str:
    regex = quote(pattern)
    return compiler.match_values(
        fname,
        lambda col: (lambda x: f"regexp_matches({x}, {regex})") if col.type == "VARCHAR" else None,
        f"s IS NOT NULL AND regexp_matches(s, {regex})",
    )


def keyword_match(compiler: FilterCompiler, fname: str, value: object, path: str) -> str:
    """match/match_phrase on a keyword field (or with a non-string query): the whole value, like
    `term`, ignoring case for strings; `x.keyword`, `_id`, `_index` and `@timestamp` stay exact."""
    exact = compiler.terms(fname, [value], path)
    if (
        not isinstance(value, str)
        or value.lower() == value.upper()  # nothing to fold
        or fname.endswith(".keyword")
        or strip_keyword(fname) in _SPECIAL
        or is_timestamp(fname)
    ):
        return exact
    folded = f"lower({quote(value)})"
    ignoring_case = compiler.match_values(
        fname,
        lambda col: (lambda x: f"lower({x}) = {folded}") if col.type == "VARCHAR" else None,
        f"s IS NOT NULL AND lower(s) = {folded}",
    )
    return any_of([exact, ignoring_case])


def _token_regex(body: str) -> str:
    """Case-insensitive RE2 pattern: `body` between token boundaries (RE2's \\pL/\\pN are Unicode)."""
    return f"(?i)(?:^|{_SEP}){body}(?:$|{_SEP})"
