"""Tool calls a model printed as text instead of making them (a known failure of local models).

Recognised shapes: a bare JSON object or list (`{"name": ..., "arguments": {...}}`, with `parameters`,
`input` or `args` for the arguments, or an OpenAI-style `{"function": {...}}`), inside ``` fences,
`<tool_call>...</tool_call>` (Hermes, Qwen), `[TOOL_CALLS]` (Mistral) or `<|python_tag|>` (Llama).
A reply whose text is (almost) only such calls is run as those calls; one that looks like a call but
does not parse gets a correction instead. Prose that merely contains JSON is left alone.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

_WRAPPERS = re.compile(
    r"</?tool_call>|\[TOOL_CALLS\]|<\|python_tag\|>|<\|eom_id\|>|<\|eot_id\|>|```(?:json|tool_call)?",
    re.IGNORECASE,
)
_NAME_KEYS = ("name", "tool", "tool_name", "function")
_ARGUMENT_KEYS = ("arguments", "parameters", "input", "args")
#: a reply is "only calls" when the JSON covers this share of its non-blank text
_CALL_SHARE = 0.8


@dataclass(frozen=True)
class TextCall:
    name: str
    arguments: dict[str, Any] | None
    raw_arguments: str | None


@dataclass(frozen=True)
class Detection:
    calls: list[TextCall]
    #: set when the text looks like a call that does not parse (the model is told how to fix it)
    problem: str | None = None


def detect(text: str, tool_names: set[str]) -> Detection | None:
    """The calls printed in `text`, a problem to correct, or None for an ordinary answer."""
    stripped = _WRAPPERS.sub(" ", text).strip()
    if not stripped or "{" not in stripped:
        return None
    values, covered = _json_values(stripped)
    calls = [call for value in values for call in _calls_in(value)]
    if calls and covered >= _CALL_SHARE * len(re.sub(r"\s", "", stripped)):
        return Detection(calls)
    if _looks_like_call(stripped, tool_names) and not calls:
        return Detection(
            [],
            problem="it looks like a tool call written as text, but it is not a complete JSON object "
            '{"name": ..., "arguments": {...}}',
        )
    return None


def _json_values(text: str) -> tuple[list[Any], int]:
    """Every top-level JSON object/list in `text`, and how many non-blank characters they cover."""
    decoder = json.JSONDecoder()
    values: list[Any] = []
    covered = 0
    index = 0
    while index < len(text):
        if text[index] not in "{[":
            index += 1
            continue
        try:
            value, end = decoder.raw_decode(text, index)
        except ValueError:
            index += 1
            continue
        values.append(value)
        covered += len(re.sub(r"\s", "", text[index:end]))
        index = end
    return values, covered


def _calls_in(value: Any) -> list[TextCall]:
    if isinstance(value, list):
        return [call for item in value for call in _calls_in(item)]
    if not isinstance(value, dict):
        return []
    if isinstance(value.get("tool_calls"), list):
        return _calls_in(value["tool_calls"])
    if isinstance(value.get("function"), dict):  # {"type": "function", "function": {"name", "arguments"}}
        return _calls_in(value["function"])
    name = next((value[k] for k in _NAME_KEYS if isinstance(value.get(k), str)), None)
    if name is None:
        return []
    raw: Any = next((value[k] for k in _ARGUMENT_KEYS if k in value), {})
    if isinstance(raw, str):  # arguments as a JSON string, as the OpenAI wire format has them
        try:
            decoded = json.loads(raw)
        except ValueError:
            return [TextCall(name, None, raw)]
        raw = decoded
    if not isinstance(raw, dict):
        return [TextCall(name, None, json.dumps(raw))]
    return [TextCall(name, raw, None)]


def _looks_like_call(text: str, tool_names: set[str]) -> bool:
    """A JSON-ish fragment naming one of our tools with an arguments key: a failed attempt at a call."""
    if not re.search('"(?:' + "|".join(_ARGUMENT_KEYS) + ')"\\s*:', text):
        return False
    return any(f'"{name}"' in text for name in tool_names)
