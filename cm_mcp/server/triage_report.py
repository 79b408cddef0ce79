"""`cm-mcp triage`: the triage tools as a ten-second terminal report.

The command is an MCP client like `cm-mcp call`: it calls `logs_triage` / `workloads_triage` through a
real session on this server (the sandbox with --sandbox), so a person sees exactly what a model gets,
spent the same way, and prints a rich table with a sparkline per finding (or the structured result
with --json). The report goes to stdout, everything else (sandbox start, the spinner) to stderr.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import anyio
from rich.console import Console, Group
from rich.table import Table
from rich.text import Text

from cm_mcp.api.budget import MAX_TOKENS
from cm_mcp.server import names
from cm_mcp.triage.models import Finding, TriageResult
from cm_mcp.triage.render import sparkline

#: Characters of a finding's top template in the table (the --json output has them whole).
TEMPLATE_WIDTH = 90
#: Points of a finding's sparkline in the table.
SPARK_WIDTH = 12


def arguments_of(args: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """The tool and its arguments for the command line's options."""
    arguments: dict[str, Any] = {
        "application": args.application,
        "app_type": args.app_type,
        "start_time": args.since,
        "end_time": args.until,
        "max_findings": args.max_findings,
        "max_tokens": MAX_TOKENS,  # a terminal shows every template and follow-up the triage found
    }
    if args.app_type == "serverless":
        for name in ("log_group", "tenant", "stage"):
            arguments[name] = getattr(args, name) or ["*"]
    else:
        arguments["domain"] = args.domain or ["*"]
    if args.baseline_start or args.baseline_end:
        arguments["baseline"] = {"start_time": args.baseline_start, "end_time": args.baseline_end}
    tool = names.WORKLOADS_TRIAGE if args.workloads else names.LOGS_TRIAGE
    return tool, arguments


def run_triage(args: argparse.Namespace) -> int:
    return anyio.run(_run, args)


async def _run(args: argparse.Namespace) -> int:
    from mcp import Client

    from cm_mcp.server.app import build_server
    from cm_mcp.server.runtime import backend, block_text

    tool, arguments = arguments_of(args)
    status = Console(file=sys.stderr)
    async with backend(args) as settings, Client(build_server(settings)) as client:
        with status.status(f"{tool}: 2 aggregations, at most 1 scroll..."):
            result = await client.call_tool(tool, arguments)
    if result.is_error or result.structured_content is None:
        for block in result.content:
            print(block_text(block), file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(result.structured_content, indent=2))
        return 0
    triage = TriageResult.model_validate(result.structured_content)
    Console().print(report(triage))
    return 0


def report(result: TriageResult) -> Group:
    """The header (what, when, what it cost), the findings table or the quiet verdict, the next steps."""
    scope = " ".join(f"{name}={','.join(values)}" for name, values in result.scope.items())
    header = Text.assemble(
        (f"{result.application}/{result.app_type} {scope}", "bold"),
        f"  {_short(result.window['start'])} .. {_short(result.window['end'])}",
        f" vs {_short(result.baseline['start'])} .. {_short(result.baseline['end'])}",
        f"  ({result.interval} buckets)",
    )
    spent = Text(
        "spent: "
        + (", ".join(f"{count} {name}" for name, count in result.spent.requests.items()) or "nothing")
        + f" ({result.spent.scroll})",
        style="dim",
    )
    parts: list[Any] = [header, spent]
    if not result.findings:
        parts.append(Text(result.summary, style="green"))
    else:
        parts.append(_table(result.findings))
        parts += [_top_template(finding) for finding in result.findings]
        first = result.findings[0]
        for call in first.follow_up[:2]:
            arguments = json.dumps(call.arguments, separators=(",", ":"))
            parts.append(Text(f"next (#1): {call.tool} {arguments}", style="cyan"))
    parts += [Text(f"note: {note}", style="yellow") for note in result.notes]
    return Group(*parts)


def _table(findings: list[Finding]) -> Table:
    table = Table(header_style="bold", pad_edge=False)
    table.add_column("#", justify="right")
    table.add_column("score", justify="right")
    table.add_column("scope")
    table.add_column("level")
    table.add_column("window (UTC)")
    table.add_column("count vs expected", justify="right")
    table.add_column("activity", no_wrap=True)
    for finding in findings:
        table.add_row(
            str(finding.rank),
            f"{finding.score:.1f}",
            "\n".join(finding.scope.values()),
            finding.level or finding.kind,
            _window(finding),
            _count(finding),
            Text(sparkline(_squeeze(finding.series, SPARK_WIDTH)), style="red"),
        )
    return table


def _squeeze(series: list[int], width: int) -> list[int]:
    """`series` summed into at most `width` points (the table has room for a small sparkline)."""
    step = max(1, -(-len(series) // width))
    return [sum(series[index : index + step]) for index in range(0, len(series), step)]


def _window(finding: Finding) -> str:
    start, end = _short(finding.start), _short(finding.end)
    return f"{start[5:10]} {start[11:16]}-{end[11:16] if end[:10] == start[:10] else end[5:10] + ' ' + end[11:16]}"


def _count(finding: Finding) -> str:
    ratio = f" x{finding.ratio:,.0f}" if finding.ratio is not None else " (new)"
    return f"{finding.count:,} vs {finding.expected:,.0f}{ratio}"


def _top_template(finding: Finding) -> Text:
    """`#1 NEW 197x <example>`: the finding's most frequent message (cut to one line)."""
    text = Text(f"#{finding.rank} ", style="bold", no_wrap=True, overflow="ellipsis")
    if not finding.templates:
        return text.append(finding.evidence[:TEMPLATE_WIDTH])
    line = finding.templates[0]
    if line.new:
        text.append("NEW ", style="bold magenta")
    shown = line.example or line.template
    if len(shown) > TEMPLATE_WIDTH:
        shown = shown[: TEMPLATE_WIDTH - 1] + "…"
    text.append(f"{line.count:,}x {shown}")
    return text


def _short(iso: str) -> str:
    """2026-12-06T04:00:00.000Z -> 2026-12-06T04:00Z."""
    return iso[:16] + "Z" if len(iso) >= 16 else iso
