"""How a request model reports what is wrong: every problem at once, each with its JSON path.

Pydantic stops at the field level: when a field fails its own check, the model's cross-field rules
never run, so a model would learn of a missing `app_type` only after fixing `aggs`, one round trip
per problem. `parse_request` therefore runs the rules a second time, on the raw arguments, when
fields failed (a failed field counts as present but unknown, so no rule guesses at its value), and
reports the union, each field once. Rules and DSL checks report every problem too, never the first.

Rules see the request's values as a mapping: a field's validated value (raw when some other field
failed), INVALID when it failed its own check, absent or None when it was not given.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Final, TypeVar

from pydantic import ValidationError
from pydantic_core import InitErrorDetails, PydanticCustomError

from cm_mcp.api.errors import RequestValidationError, ValidationIssue

if TYPE_CHECKING:
    from cm_mcp.api.requests import APIRequest


class _Invalid:
    """A field that was given but failed its own check."""

    def __repr__(self) -> str:
        return "INVALID"


INVALID: Final = _Invalid()
#: The message of a required field left out.
MISSING: Final = "required field is missing"

Values = Mapping[str, Any]
#: (path relative to a field, message), as the DSL checks in querydsl.py report them
Issue = tuple[str, str]

Request = TypeVar("Request", bound="APIRequest")


def known(value: Any) -> bool:
    """True when a rule may look at `value`: given, and valid on its own."""
    return value is not None and value is not INVALID


def parse_request(
    model: type[Request],
    args: Mapping[str, Any],
    *,
    now: datetime | None = None,
) -> Request:
    """Validate `args` against `model`; raise `RequestValidationError` naming every field at fault."""
    try:
        return model.model_validate(dict(args), context={"now": now} if now else None)
    except ValidationError as exc:
        errors = exc.errors(include_url=False)
        issues = [_issue(error, model) for error in errors]
        if not any(error["type"] == "rule" for error in errors):  # the rules did not run: run them now
            failed = {str(error["loc"][0]) for error in errors if error["loc"]}
            values = {
                name: INVALID if name in failed else args[name] for name in model.model_fields if name in args
            }
            issues += model.rule_issues(values, now or datetime.now(UTC))
        raise RequestValidationError(_ordered(issues, model), model.__name__, example=model.EXAMPLE) from None


def rules_error(model: type[Any], issues: Sequence[ValidationIssue]) -> ValidationError:
    """The error a model validator raises for broken cross-field rules: one line per issue."""
    return ValidationError.from_exception_data(
        model.__name__,
        [
            InitErrorDetails(
                type=PydanticCustomError("rule", "{message}", {"message": issue.message, "path": issue.path}),
                loc=(),
                input=None,
            )
            for issue in issues
        ],
    )


def dsl_error(title: str, issues: Iterable[Issue], value: Any) -> ValidationError:
    """The error a field validator raises for DSL problems: one line per problem, its path joined to
    the field's (`filters` + `[0].bool.must[1]`)."""
    return ValidationError.from_exception_data(
        title,
        [
            InitErrorDetails(
                type=PydanticCustomError("dsl", "{message}", {"message": message}),
                loc=_split_path(subpath),
                input=value,
            )
            for subpath, message in issues
        ],
    )


# --- turning pydantic's errors into issues -----------------------------------------------------------

#: Messages for pydantic's own error types, where its wording would not help a model.
_FIELD_MESSAGES: Final = {
    "list_type": 'must be a list of strings, e.g. ["*"] or ["pay.example.com"]',
    "string_type": "must be a string",
    "dict_type": "must be a JSON object",
}


def _issue(error: Mapping[str, Any], model: type[APIRequest]) -> ValidationIssue:
    ctx = error.get("ctx") or {}
    if error["type"] == "rule":
        return ValidationIssue(path=str(ctx["path"]), message=str(ctx["message"]))
    loc = list(error["loc"])
    path = _json_path(loc) or "(request)"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "extra_forbidden":
        message = _unknown_field_message(str(loc[-1]), model)
    elif error["type"] == "missing":
        message = model.required_message(str(loc[0])) if len(loc) == 1 else MISSING
    elif error["type"] in _FIELD_MESSAGES:
        message = _FIELD_MESSAGES[error["type"]]
    else:
        message = model.field_message(str(loc[0]) if loc else "", str(error["type"]), message)
    return ValidationIssue(path=path, message=message)


def _ordered(issues: list[ValidationIssue], model: type[APIRequest]) -> list[ValidationIssue]:
    """Each path once (the first report wins), in the schema's field order."""
    seen: dict[str, ValidationIssue] = {}
    for issue in issues:
        seen.setdefault(issue.path, issue)
    order = {name: index for index, name in enumerate(model.model_fields)}

    def position(issue: ValidationIssue) -> int:
        head = issue.path.replace("[", ".").split(".", 1)[0]
        return order.get(head, len(order))

    return sorted(seen.values(), key=position)


def _unknown_field_message(name: str, model: type[APIRequest]) -> str:
    if name in model.NOT_ACCEPTED:
        return f"not accepted: {model.NOT_ACCEPTED[name]}"
    valid = list(model.model_fields)
    if not valid:
        return "unknown field; this tool takes no arguments"
    close = difflib.get_close_matches(name, valid, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown field{hint}; valid fields: {', '.join(valid)}"


def _json_path(loc: list[Any]) -> str:
    path = ""
    for part in loc:
        if isinstance(part, int):
            path += f"[{part}]"
        elif isinstance(part, str) and part.startswith(("[", ".")):
            path += part
        else:
            path += f".{part}" if path else str(part)
    return path


def _split_path(subpath: str) -> tuple[str, ...]:
    """`[0].bool.must[1]` -> ('[0]', '.bool', '.must', '[1]') so _json_path can join it to a field."""
    parts: list[str] = []
    token = ""
    for char in subpath:
        if char in ".[" and token:
            parts.append(token)
            token = ""
        token += char
    if token:
        parts.append(token)
    return tuple(part if part.startswith(("[", ".")) else f".{part}" for part in parts)
