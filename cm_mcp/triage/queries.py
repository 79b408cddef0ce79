"""The aggregations and the scroll filter a triage sends, as plain request bodies (no HTTP here).

Request 1, the shape: per scope, a histogram of all its records and one per severe level (or failed
state), over baseline + window on one grid; the window's most frequent messages per scope and level;
for workloads, the usual durations per domain x workflow. Request 2, the detail: for each candidate,
its records by the fields that may sharpen the scope (in the window and in the baseline), its onset at
a finer resolution, its messages; for each message template found, its count per bucket over both
periods (new against the baseline or not, and where); for workloads, runs slower than usual.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Final

from cm_mcp.api.buckets import bucket_limit_issues
from cm_mcp.api.fields import TIMESTAMP_FIELD
from cm_mcp.summarize.masking import PLACEHOLDER_RE, WILDCARD
from cm_mcp.triage.grid import Grid, coarser, from_ms, interval_name
from cm_mcp.triage.series import Scope, scope_filters
from cm_mcp.triage.target import DURATION_FIELD, SPLIT_SIZE, Target

#: Level spellings (and workload states) a triage scans: WARN and worse. Log levels come in several
#: spellings (the reference shows ERROR, WARN; other systems write WARNING, FATAL, CRITICAL...).
SEVERE_LEVELS: Final = (
    "FATAL", "CRITICAL", "SEVERE", "EMERGENCY", "ALERT", "ERROR", "ERR", "WARN", "WARNING",
    "fatal", "critical", "error", "err", "warn", "warning", "Fatal", "Critical", "Error", "Warn", "Warning",
)  # fmt: skip
#: The error-level ones among them (severity ERROR and worse): what new messages are looked for in.
ERROR_LEVELS: Final = tuple(level for level in SEVERE_LEVELS if level.upper() not in ("WARN", "WARNING"))
FAILED_STATES: Final = ("FAILED", "TIMED_OUT")
#: Most frequent messages of the window per scope and level, read with the shape (a template source
#: when no scroll is spent, and a cheap look at what is being said everywhere).
SHAPE_MESSAGES: Final = 10
#: Messages of a candidate's window (in the detail) when no scroll is spent.
DETAIL_MESSAGES: Final = 25
#: Values of a sharpening field per candidate.
SHARPEN_SIZE: Final = 5
#: Percentiles of a workflow's durations: the median describes it, the 95th bounds "usual".
DURATION_PERCENTILES: Final = (50.0, 95.0)


def time_range(start_ms: int, end_ms: int) -> dict[str, Any]:
    from cm_mcp.api.times import format_utc

    return {
        "range": {TIMESTAMP_FIELD: {"gte": format_utc(from_ms(start_ms)), "lt": format_utc(from_ms(end_ms))}}
    }


def _all(*filters: dict[str, Any]) -> dict[str, Any]:
    return {"bool": {"filter": list(filters)}}


def _histogram(interval_ms: int) -> dict[str, Any]:
    return {"date_histogram": {"field": TIMESTAMP_FIELD, "fixed_interval": interval_name(interval_ms)}}


def keyword(field: str) -> str:
    """The exact-value sub-field of a text field (terms aggregations need it in OpenSearch)."""
    return f"{field}.keyword"


def severe_values(target: Target) -> tuple[str, ...]:
    return FAILED_STATES if target.kind == "workloads" else SEVERE_LEVELS


def error_values(target: Target) -> tuple[str, ...]:
    return FAILED_STATES if target.kind == "workloads" else ERROR_LEVELS


def _nest(target: Target, inner: dict[str, Any]) -> dict[str, Any]:
    """`inner` under the scope's nested terms (s0 > s1 > ...)."""
    aggs = inner
    for depth in reversed(range(len(target.scope_fields))):
        terms = {"field": target.scope_fields[depth], "size": target.scope_sizes[depth]}
        aggs = {f"s{depth}": {"terms": terms, "aggs": aggs}}
    return aggs


SCOPE_NAMES: Final = ("s0", "s1", "s2")


def shape_aggs(target: Target, grid: Grid) -> dict[str, Any]:
    """The shape request (see the module doc). The level (or state) is the outermost split so that no
    path nests more than five aggregations deep (level, three scope fields, the histogram); a scope's
    total traffic is the sum of its levels."""
    errors = {"terms": {target.split_field: list(error_values(target))}}
    histograms = {
        "lv": {
            "terms": {"field": target.split_field, "size": SPLIT_SIZE},
            "aggs": _nest(target, {"t": _histogram(grid.interval_ms)}),
        }
    }
    messages = {"m": {"terms": {"field": keyword(target.message_field), "size": SHAPE_MESSAGES}}}
    aggs: dict[str, Any] = {
        **histograms,
        "wm": {
            "filter": _all(time_range(grid.window_start_ms, grid.end_ms), errors),
            "aggs": _nest(target, messages),
        },
    }
    if target.kind == "workloads":
        durations = {"d": {"percentiles": {"field": DURATION_FIELD, "percents": list(DURATION_PERCENTILES)}}}
        aggs["bd"] = {
            "filter": time_range(grid.baseline_start_ms, grid.baseline_end_ms),
            "aggs": _nest(target, durations),
        }
        aggs["wd"] = {
            "filter": time_range(grid.window_start_ms, grid.end_ms),
            "aggs": _nest(target, durations),
        }
    return aggs


def fit_shape(target: Target, grid: Grid) -> tuple[Grid, dict[str, Any]]:
    """The shape aggregation on the finest grid (from `grid`'s interval up) within the bucket limit."""
    current: Grid | None = grid
    while current is not None:
        aggs = shape_aggs(target, current)
        if not bucket_limit_issues(aggs, from_ms(current.first_ms), from_ms(current.end_ms)):
            return current, aggs
        bigger = coarser(current.interval_ms)
        current = None if bigger is None else rebuild(current, bigger)
    raise ValueError("no histogram interval fits the bucket limit")  # the day interval always fits


def rebuild(grid: Grid, interval_ms: int) -> Grid:
    return Grid.build(
        window_start=from_ms(grid.window_start_ms),
        window_end=from_ms(grid.end_ms),
        baseline_start=from_ms(grid.baseline_start_ms),
        baseline_end=from_ms(grid.baseline_end_ms),
        interval_ms=interval_ms,
    )


# --- templates as filters ----------------------------------------------------------------------------


#: A quoted value ('customer_id', "GET /x"): quotes not inside a word, so "can't" is no quote.
_QUOTED = re.compile(r"(?<!\w)'[^'\n]+'(?!\w)|(?<!\w)\"[^\"\n]+\"(?!\w)")


def template_fragments(template: str, *, generalize: bool = False) -> list[str]:
    """The constant parts of a template that a phrase query can look for (those with a word in them).

    `generalize`: quoted values count as variable even where the miner kept one. A template mined
    from a handful of records may hold the one key or query those records happened to carry
    ("KeyError: 'foo'"); looked for as "KeyError", it is new only when its words are. (A value
    repeated across many records is part of the event: "KeyError: 'customer_id'" a hundred times.)"""
    generic = _QUOTED.sub(WILDCARD, template) if generalize else template
    parts = [part.strip(" \t:;,.=()[]{}'\"<>") for part in PLACEHOLDER_RE.split(generic)]
    return [part for part in parts if any(char.isalnum() for char in part)]


def template_filter(field: str, template: str, *, generalize: bool = False) -> dict[str, Any] | None:
    """A filter matching the messages of `template` (every constant part, as a phrase); None when the
    template has no constant word to look for."""
    fragments = template_fragments(template, generalize=generalize)
    if not fragments:
        return None
    phrases = [{"match_phrase": {field: fragment}} for fragment in fragments[:6]]
    return phrases[0] if len(phrases) == 1 else {"bool": {"filter": phrases}}


# --- the detail request ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A candidate's place: a series (scope + split value) and a window [start_ms, end_ms)."""

    scope: Scope
    split: str
    start_ms: int
    end_ms: int


@dataclass(frozen=True)
class TemplateCheck:
    """A template to count in both periods, in the whole application (is it new anywhere?) and in
    one scope; at one level (None: any error level, for templates of the shape's top messages)."""

    scope: Scope
    split: str | None
    template: str
    filter: dict[str, Any]


@dataclass(frozen=True)
class SlowCheck:
    """Runs of one domain x workflow slower than its baseline's usual bound."""

    scope: Scope
    above_ms: float


def detail_aggs(
    target: Target,
    grid: Grid,
    segments: Sequence[Segment],
    templates: Sequence[TemplateCheck],
    slow: Sequence[SlowCheck],
    *,
    fine_ms: int,
    messages: bool,
) -> dict[str, Any]:
    aggs: dict[str, Any] = {}
    baseline = time_range(grid.baseline_start_ms, grid.baseline_end_ms)
    for index, segment in enumerate(segments):
        series = [*scope_filters(segment.scope), {"term": {target.split_field: segment.split}}]
        inside: dict[str, Any] = {
            f"x{n}": {"terms": {"field": name, "size": SHARPEN_SIZE}}
            for n, name in enumerate(target.sharpen_fields)
        }
        before: dict[str, Any] = {
            f"x{n}": {"terms": {"field": name, "size": 2 * SHARPEN_SIZE}}
            for n, name in enumerate(target.sharpen_fields)
        }
        if messages:
            inside["m"] = {"terms": {"field": keyword(target.message_field), "size": DETAIL_MESSAGES}}
        aggs[f"c{index}"] = {
            "filter": _all(*series, time_range(segment.start_ms, segment.end_ms)),
            "aggs": inside,
        }
        aggs[f"c{index}b"] = {"filter": _all(*series, baseline), "aggs": before}
        padded = time_range(segment.start_ms - grid.interval_ms, segment.end_ms + grid.interval_ms)
        aggs[f"c{index}f"] = {"filter": _all(*series, padded), "aggs": {"t": _histogram(fine_ms)}}
    for index, check in enumerate(templates):
        level = (
            [{"terms": {target.split_field: list(error_values(target))}}]
            if check.split is None
            else [{"term": {target.split_field: check.split}}]
        )
        aggs[f"p{index}"] = {
            "filter": _all(*level, check.filter),
            "aggs": {
                "t": _histogram(grid.interval_ms),
                "s": {
                    "filter": _all(*scope_filters(check.scope)),
                    "aggs": {"t": _histogram(grid.interval_ms)},
                },
            },
        }
    for index, slow_check in enumerate(slow):
        slower = {"range": {DURATION_FIELD: {"gt": slow_check.above_ms}}}
        aggs[f"d{index}"] = {
            "filter": _all(*scope_filters(slow_check.scope), slower),
            "aggs": {"t": _histogram(grid.interval_ms)},
        }
    return aggs


def fine_interval(grid: Grid, segments: int, spare_buckets: int) -> int:
    """The finest interval (1 minute up, never coarser than the grid) whose histograms for `segments`
    candidates fit in `spare_buckets` (the limit counts each over the whole request window)."""
    from cm_mcp.triage.grid import INTERVALS

    span = grid.end_ms - grid.first_ms
    for _, millis in INTERVALS:
        if millis >= grid.interval_ms:
            return grid.interval_ms
        if segments * (span // millis + 2) <= spare_buckets:
            return millis
    return grid.interval_ms
