"""`fields` projection: keep only the listed dotted paths of a `_source`, in its nested shape."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any


def project(source: Mapping[str, Any], fields: Sequence[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in fields:
        _copy(source, f.removesuffix(".keyword").split("."), out)
    return out


def _copy(src: Mapping[str, Any], parts: list[str], dst: dict[str, Any]) -> None:
    # A key may itself contain dots ("a.b": 1 next to {"a": {"b": 2}}): try every split of the path.
    for i in range(1, len(parts) + 1):
        key = ".".join(parts[:i])
        if key not in src:
            continue
        value = src[key]
        rest = parts[i:]
        if not rest:
            dst[key] = value
        elif isinstance(value, Mapping):
            child = dst.setdefault(key, {})
            if isinstance(child, dict):
                _copy(value, rest, child)
                if not child:
                    del dst[key]
        elif isinstance(value, list):
            items = []
            for item in value:
                if isinstance(item, Mapping):
                    sub: dict[str, Any] = {}
                    _copy(item, rest, sub)
                    if sub:
                        items.append(sub)
            if items:
                dst[key] = items
