"""What the DuckDB engine reads: files of hits (`SourceFile`) and hits as lines (`prepare_line`).
Kept apart from the loader so the store's file code can name them without importing DuckDB."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

#: Key of a prepared line that carries a hit whose `_id`/`_index`/`_source` had to be normalised for
#: the index: the normalised fields sit beside it and this key holds the hit's own JSON text.
WRAP_KEY: Final = "cm-mcp:raw"
_DUMPS = json.JSONEncoder(ensure_ascii=False, separators=(",", ":")).encode


@dataclass(frozen=True)
class SourceFile:
    """A file of hit records for `DuckIndex.add_files`.

    `records`: the count verified at download (another count means damage: the fallback decides).
    `prepared`: lines from `prepare_line`, taken as they are; otherwise records follow the store's
    normalisation (a missing or empty `_id` gets a synthetic one), which only the fallback applies.
    `fallback`: prepared lines of the same records (raises the store's error on a damaged file).
    """

    path: Path
    gzip: bool = False
    array: bool = False
    records: int | None = None
    prepared: bool = False
    fallback: Callable[[], Iterable[bytes]] | None = None


def prepare_line(hit: Mapping[str, Any], raw: bytes | None = None) -> bytes:
    """One hit as a line DuckDB loads: its own JSON text (`raw` when given and usable) when `_id` and
    `_index` are strings (or `_index` absent) and `_source` an object; otherwise a wrapper with those
    fields normalised for the index (`str()`, `{}`) and the hit's own text under WRAP_KEY."""
    src = hit.get("_source")
    index = hit.get("_index", "")
    if type(src) is dict and type(hit.get("_id")) is str and type(index) is str:
        if raw is not None:
            text = raw.strip()
            if text.startswith(b"{") and text.endswith(b"}") and b"\n" not in text:
                return text + b"\n"
        return _DUMPS(hit if type(hit) is dict else dict(hit)).encode() + b"\n"
    wrapper = {
        "_index": str(index),
        "_id": str(hit.get("_id", "")),
        "_source": dict(src) if isinstance(src, Mapping) else {},
        WRAP_KEY: _DUMPS(dict(hit)),
    }
    return _DUMPS(wrapper).encode() + b"\n"
