"""Tool input schemas, generated from the `api/` request models (one source of truth).

The generated JSON schema is made compact for the model's context: titles dropped (the property name
says it), `$ref`s to enums inlined, `anyOf [X, null]` collapsed to X (omitting a field is how a model
says "none"). The whole `tools/list` must stay small (< 6,000 tokens), and every byte here is paid on
every conversation turn of every client.
"""

from __future__ import annotations

import copy
from typing import Any

from pydantic import BaseModel

from cm_mcp.api.budget import DEFAULT_TOKENS, MAX_TOKENS, MIN_TOKENS

MAX_TOKENS_PROPERTY: dict[str, Any] = {
    "type": "integer",
    "minimum": MIN_TOKENS,
    "maximum": MAX_TOKENS,
    "description": f"Token budget of this result (default {DEFAULT_TOKENS})",
}


FRESH_OPTION: dict[str, Any] = {
    "type": "boolean",
    "description": "true: ask the API even when an identical earlier answer is cached",
}


DOWNLOAD_OPTION: dict[str, Any] = {
    "type": "boolean",
    "description": "true: download the export into the local store (continues an interrupted one)",
}


def input_schema(model: type[BaseModel], *, extra: dict[str, dict[str, Any]] | None = None) -> dict[str, Any]:
    """The compact JSON schema of `model`, plus `extra` server-side properties (e.g. max_tokens)."""
    schema = model.model_json_schema()
    defs = schema.pop("$defs", {})
    compact: dict[str, Any] = _compact(schema, defs)
    compact.setdefault("properties", {})
    for name, prop in (extra or {}).items():
        compact["properties"][name] = prop
    compact["additionalProperties"] = False
    compact.pop("description", None)  # the tool description says it, better
    return compact


def _compact(node: Any, defs: dict[str, Any]) -> Any:
    if isinstance(node, list):
        return [_compact(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        target = copy.deepcopy(defs[node["$ref"].rsplit("/", 1)[-1]])
        merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
        return _compact(merged, defs)
    any_of = node.get("anyOf")
    if isinstance(any_of, list):
        options = [option for option in any_of if option != {"type": "null"}]
        if len(options) == 1 and len(options) < len(any_of):
            rest = {k: v for k, v in node.items() if k != "anyOf"}
            merged = {**_compact(options[0], defs), **rest}
            if merged.get("default", ...) is None:
                merged.pop("default")
            return _compact(merged, defs)
    result: dict[str, Any] = {}
    for key, value in node.items():
        if key == "title":
            continue
        if key == "properties" and isinstance(value, dict):
            result[key] = {name: _compact(prop, defs) for name, prop in value.items()}
            continue
        result[key] = _compact(value, defs)
    if result.get("default", ...) is None:
        result.pop("default")
    return result


def output_schema(model: type[BaseModel], *, depth: int = 1) -> dict[str, Any]:
    """The model's schema, inlined and cut below `depth` levels to a bare type.

    Deep (and recursive) summary structures would cost thousands of tokens in every tools/list; the
    top levels tell a program what it gets, and the text content carries the detail. Cutting only
    loosens the schema, so the structured content always validates against it. It is the
    serialisation schema (what is sent: summaries as digests), and a field that may be None is not
    required: structured content leaves None fields out.
    """
    schema = model.model_json_schema(mode="serialization")
    defs = schema.pop("$defs", {})
    return _cut(schema, defs, depth)


def _allows_null(prop: dict[str, Any]) -> bool:
    return prop.get("type") == "null" or any(option.get("type") == "null" for option in prop.get("anyOf", []))


def _cut(node: dict[str, Any], defs: dict[str, Any], depth: int) -> dict[str, Any]:
    if "$ref" in node:
        node = {**defs[node["$ref"].rsplit("/", 1)[-1]], **{k: v for k, v in node.items() if k != "$ref"}}
    if isinstance(node.get("anyOf"), list):
        options = [_cut(option, defs, depth) for option in node["anyOf"]]
        return {"anyOf": options}
    kind = node.get("type")
    if depth <= 0 and kind in ("object", "array"):
        return {"type": kind}
    drop = ("description", "default", "examples", "title")
    result = {key: value for key, value in node.items() if key not in drop}
    if isinstance(node.get("properties"), dict):
        result["properties"] = {
            name: _cut(prop, defs, depth - 1) for name, prop in node["properties"].items()
        }
        if "required" in node:
            nullable = {name for name, prop in node["properties"].items() if _allows_null(prop)}
            result["required"] = [name for name in node["required"] if name not in nullable]
    if isinstance(node.get("items"), dict):
        result["items"] = _cut(node["items"], defs, depth - 1)
    if isinstance(node.get("additionalProperties"), dict):
        result["additionalProperties"] = _cut(node["additionalProperties"], defs, depth - 1)
    return result
