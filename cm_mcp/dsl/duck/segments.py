"""An index's files: immutable Parquet segments listed by a manifest that is replaced atomically.

Each segment is one Parquet file of documents (`did` insertion order, `id`, `ix`, `ts` epoch ms,
`src` the typed `_source`: what queries scan), one of hits (`did`, `raw` the hit's JSON text as
added: read only for the rows a page returns, so its row groups are small), and, when the structure
has JSON subtrees, one of their typed leaves (see structure.py). Files are never modified: an
append adds a segment and a new manifest, so a reader (another process, say) that read the previous
manifest still finds every file it lists. When an append changes the structure (a new field, a type
conflict), every segment is rewritten under the merged one and the old files are removed after the
new manifest is in place; a reader that loses that race retries with the new manifest.

Parquet rather than a DuckDB database file, by the numbers of bench/engines.py: a quarter of the disk,
faster to write, no open cost or file lock per query, and a format Spark, Trino/Athena and DuckDB read
as it is (for exports that outgrow one machine).
"""

from __future__ import annotations

import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Final

from cm_mcp.dsl.duck.structure import JSON, Structure, dumps

#: Written last when an index changes; an index directory without it has no documents yet.
MANIFEST: Final = "cm-duck-manifest.json"
#: Bumped whenever the file layout or what a segment holds changes (older indexes are refused).
FORMAT_VERSION: Final = 1
#: Rows per Parquet row group of the scanned files: large groups scan fastest, small ones let a time
#: window skip more of them (bench/engines.py: 16k rows scanned as fast as larger groups).
ROW_GROUP_ROWS: Final = 16_384
#: Rows per row group of the hits file: a page's raw hits come from a few small groups (a group of
#: 16k hits is ~6 MB to decompress for one row; 4k fetched a scattered page 4x faster, bench/engines.py).
HIT_GROUP_ROWS: Final = 4_096
PARQUET_OPTIONS: Final = f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {ROW_GROUP_ROWS})"
HITS_OPTIONS: Final = f"(FORMAT parquet, COMPRESSION zstd, ROW_GROUP_SIZE {HIT_GROUP_ROWS})"

_DOCS_COLUMNS: Final = "did BIGINT, id VARCHAR, ix VARCHAR, ts BIGINT, src JSON"
_HITS_COLUMNS: Final = "did BIGINT, raw VARCHAR"
_LEAVES_COLUMNS: Final = "did BIGINT, path VARCHAR, s VARCHAR, i BIGINT, n DOUBLE, b BOOLEAN"


@dataclass
class Segment:
    docs: str
    hits: str
    leaves: str | None
    rows: int

    def files(self) -> list[str]:
        return [name for name in (self.docs, self.hits, self.leaves) if name]


@dataclass
class Manifest:
    structure: Structure = JSON
    segments: list[Segment] = field(default_factory=list)
    next_did: int = 0
    version: int = FORMAT_VERSION

    @property
    def count(self) -> int:
        return sum(s.rows for s in self.segments)


def read_manifest(folder: Path) -> Manifest | None:
    """The manifest of the index in `folder`, None when there is none; ValueError when unreadable
    or written by another version of the engine."""
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except FileNotFoundError:
        return None
    if not isinstance(data, dict) or data.get("version") != FORMAT_VERSION:
        raise ValueError(f"format {data.get('version') if isinstance(data, dict) else data!r}")
    return Manifest(
        structure=data["structure"],
        segments=[Segment(**s) for s in data["segments"]],
        next_did=int(data["next_did"]),
    )


def write_manifest(folder: Path, manifest: Manifest) -> None:
    temp = folder / f".{MANIFEST}.{secrets.token_hex(4)}"
    temp.write_text(json.dumps(asdict(manifest), separators=(",", ":"), ensure_ascii=False))
    os.replace(temp, folder / MANIFEST)


def new_name(folder: Path, kind: str) -> Path:
    return folder / f"{kind}-{secrets.token_hex(6)}.parquet"


def docs_relation(folder: Path, manifest: Manifest) -> str:
    """SQL relation of every document (an empty typed one before the first segment)."""
    if not manifest.segments:
        return f"({_empty(_DOCS_COLUMNS)})"
    return _read(folder, [s.docs for s in manifest.segments])


def hits_relation(folder: Path, manifest: Manifest) -> str:
    if not manifest.segments:
        return f"({_empty(_HITS_COLUMNS)})"
    return _read(folder, [s.hits for s in manifest.segments])


def leaves_relation(folder: Path, manifest: Manifest) -> str:
    files = [s.leaves for s in manifest.segments if s.leaves]
    if not files:
        return f"({_empty(_LEAVES_COLUMNS)})"
    return _read(folder, files)


def _empty(columns: str) -> str:
    casts = ", ".join(f"NULL::{typ} AS {name}" for name, typ in _columns(columns))
    return f"SELECT {casts} WHERE false"


def _read(folder: Path, names: list[str]) -> str:
    files = ", ".join(sql_path(folder / n) for n in names)
    return f"read_parquet([{files}])"


def sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def _columns(spec: str) -> list[tuple[str, str]]:
    return [(part.split()[0], part.split()[1]) for part in spec.split(", ")]


def structure_literal(structure: Structure) -> str:
    return "'" + dumps(structure).replace("'", "''") + "'"
