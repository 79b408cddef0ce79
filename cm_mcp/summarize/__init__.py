"""Summaries shaped for an LLM context window: log templates, log/record summaries, aggregations.

Pure domain logic (no MCP, no HTTP). Everything renders within a token budget and says what it left out.
"""

from .aggs import summarize_aggs
from .budget import estimate_tokens
from .logs import summarize_logs, summarize_records
from .models import AggsSummary, LogSummary
from .render import render_aggs, render_logs
from .templates import group_messages, mask_message

__all__ = [
    "AggsSummary",
    "LogSummary",
    "estimate_tokens",
    "group_messages",
    "mask_message",
    "render_aggs",
    "render_logs",
    "summarize_aggs",
    "summarize_logs",
    "summarize_records",
]
