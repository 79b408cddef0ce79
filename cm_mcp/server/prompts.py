"""MCP prompts, rendered from the Jinja2 templates in `prompts/` (packaged as `cm_mcp/prompts`)."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from cm_mcp.api.fields import LEVEL_FIELDS, domain_field


def prompts_dir() -> Path:
    """`cm_mcp/prompts` in an installed wheel, the repository's `prompts/` in a checkout."""
    packaged = Path(__file__).resolve().parents[1] / "prompts"
    return packaged if packaged.is_dir() else Path(__file__).resolve().parents[2] / "prompts"


_ENV = Environment(
    loader=FileSystemLoader(prompts_dir()),
    undefined=StrictUndefined,  # a missing variable is a bug, not an empty string
    keep_trailing_newline=True,
    autoescape=False,  # plain text for a model, not HTML
)


def render_investigation(
    *,
    application: str,
    app_type: str,
    domain: str | None,
    start_time: str,
    end_time: str,
    question: str | None,
    serverless: dict[str, str | None] | None = None,
) -> str:
    """The plan; `serverless` holds the log_group/tenant/stage an eventops investigation names."""
    routing = {name: value for name, value in (serverless or {}).items() if value}
    return _ENV.get_template("investigate.md.j2").render(
        application=application,
        app_type=app_type,
        domain=domain,
        routing=routing,
        start_time=start_time,
        end_time=end_time,
        question=question,
        level_field="logLevel" if app_type == "serverless" else LEVEL_FIELDS[0],
        domain_field="tenant" if app_type == "serverless" else domain_field(application),
    )
