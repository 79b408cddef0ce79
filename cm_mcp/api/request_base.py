"""What every request model shares: the base class, the reusable field types, the time helpers.

`cm_mcp.api.requests` (V2) and `cm_mcp.api.requests_v1` (V1 and billing) build on these; the way a
model reports its problems (all at once, each with its path) is in `cm_mcp.api.validation`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Annotated, Any, ClassVar, Literal, Self

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationInfo, model_validator
from pydantic_core import PydanticCustomError

from cm_mcp.api.errors import ValidationIssue
from cm_mcp.api.times import TimeFormatError, format_utc, is_date_math, resolve_time
from cm_mcp.api.validation import Values, dsl_error, rules_error

MAX_PAGE_SIZE = 10_000  # OpenSearch's default max_result_window; the API publishes no maximum
WORKLOADS_DEFAULT_SIZE = 100  # sent explicitly: the reference gives no default (item 6)


# --- reusable field types -------------------------------------------------------------------


def _check_string_list(values: list[str]) -> list[str]:
    if not values:
        raise PydanticCustomError("empty_list", 'must not be empty; use ["*"] for all')
    if any(not value.strip() for value in values):
        raise PydanticCustomError("blank_item", "items must be non-empty strings")
    if "*" in values and len(values) > 1:
        raise PydanticCustomError(
            "wildcard_mixed", '"*" must be the only element: use ["*"] alone or list exact names'
        )
    return values


StringList = Annotated[list[str], AfterValidator(_check_string_list)]
PageSize = Annotated[int, Field(gt=0, le=MAX_PAGE_SIZE)]


def now_of(info: ValidationInfo) -> datetime:
    """The instant date math resolves against: the caller's (tests, the sandbox) or the clock."""
    context = info.context if isinstance(info.context, Mapping) else {}
    now = context.get("now")
    return now if isinstance(now, datetime) else datetime.now(UTC)


def normalise_time(value: str, info: ValidationInfo) -> str:
    rounding: Literal["down", "up"] = "up" if info.field_name == "end_time" else "down"
    try:
        return format_utc(resolve_time(value, now_of(info), rounding))
    except TimeFormatError as exc:
        raise PydanticCustomError("time_format", "{reason}", {"reason": str(exc)}) from exc


def instant(value: Any, now: datetime, rounding: Literal["down", "up"]) -> datetime | None:
    """A time value as an instant, for rules (None when it is not one)."""
    if not isinstance(value, str):
        return None
    try:
        return resolve_time(value, now, rounding)
    except TimeFormatError:
        return None


def _check_date_math(value: str) -> str:
    if not is_date_math(value):
        raise PydanticCustomError(
            "date_math",
            "must be OpenSearch date math such as 'now-15m/m', 'now-1d/d' or 'now-2h' (V1 takes no ISO times)",
        )
    return value.strip()


DateMath = Annotated[str, AfterValidator(_check_date_math)]


def _check_token(value: str) -> str:
    token = value.strip()
    if not token:
        raise PydanticCustomError("empty_token", "must be the non-empty token returned by the batch call")
    return token


BatchToken = Annotated[str, AfterValidator(_check_token)]


# --- base ---------------------------------------------------------------------------------------


def _publish_required(schema: dict[str, Any], model: type[BaseModel]) -> None:
    """The schema's `required`: the fields every call needs (REQUIRED) plus pydantic's own."""
    always = getattr(model, "REQUIRED", ())
    listed = set(schema.get("required", [])) | set(always)
    if listed:
        schema["required"] = [name for name in model.model_fields if name in listed]


class APIRequest(BaseModel):
    """Base of every request: unknown fields rejected, `to_body()` is exactly what is sent.

    Cross-field rules live in `rule_issues` (each class adds its own through `super()`), so they run
    both on a validated request and, by `parse_request`, on arguments where some field failed.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, json_schema_extra=_publish_required)

    #: Endpoint name in `cm_mcp.api.endpoints.ENDPOINTS`.
    ENDPOINT: ClassVar[str]
    #: A valid call, quoted in validation errors so a model can correct itself in one step.
    EXAMPLE: ClassVar[dict[str, Any]]
    #: What to do instead, for fields a caller is likely to send but this endpoint does not take.
    NOT_ACCEPTED: ClassVar[dict[str, str]] = {}
    #: Fields every call needs, whatever the others say (published as the schema's `required`).
    REQUIRED: ClassVar[tuple[str, ...]] = ()

    def to_body(self) -> dict[str, Any]:
        return self.model_dump(mode="json", exclude_none=True)

    @classmethod
    def rule_issues(cls, values: Values, now: datetime) -> list[ValidationIssue]:
        """Every broken cross-field rule of `values` (see cm_mcp.api.validation for what they hold)."""
        return [
            ValidationIssue(name, cls.required_message(name))
            for name in cls.REQUIRED
            if values.get(name) is None
        ]

    @classmethod
    def required_message(cls, name: str) -> str:
        """What a left-out required field is told: what it takes (its description)."""
        field = cls.model_fields.get(name)
        return (
            f"required: {field.description}" if field and field.description else "required field is missing"
        )

    @classmethod
    def field_message(cls, name: str, error_type: str, default: str) -> str:
        """A field's own error in words that help (pydantic's by default)."""
        if name == "size" and error_type == "greater_than":
            return f"must be at least 1 (a page holds 1-{MAX_PAGE_SIZE} records)"
        if name == "size" and error_type == "less_than_equal":
            return (
                f"must be at most {MAX_PAGE_SIZE} per page; for more, continue with the returned "
                "scroll_id, or export with the batch tool (over 100k records)"
            )
        return default

    @model_validator(mode="after")
    def _rules(self, info: ValidationInfo) -> Self:
        issues = type(self).rule_issues(
            {name: getattr(self, name) for name in type(self).model_fields}, now_of(info)
        )
        if issues:
            raise rules_error(type(self), issues)
        return self


def check_dsl(issues: list[tuple[str, str]], field: str, value: Any) -> None:
    if issues:
        raise dsl_error(field, issues, value)
