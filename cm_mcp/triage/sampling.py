"""The one scroll a triage may spend: which records to ask for, so that one page says the most.

The shape aggregation gives the exact count of every series in every bucket, so the page can be
planned to the record: each candidate gets a share of the page (its onset first: buckets from its
start until the share is used; a first bucket bigger than the share is cut in time, assuming its
records spread evenly), and the rest sweeps the window's severe records of every scope (all of a
quiet series, evenly spaced slices of a busy one), so that a new message at an ordinary volume is
seen too. All of it goes out as one filter (a `bool` of `should` clauses) in one request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cm_mcp.summarize.fields import get_field, normalize_level, parse_time, severity, source_of
from cm_mcp.triage.analysis import Analysis, Candidate
from cm_mcp.triage.grid import Grid
from cm_mcp.triage.queries import time_range
from cm_mcp.triage.series import Scope, Series, scope_filters
from cm_mcp.triage.target import Target

#: Records asked for in the one scroll: enough to see every template of a few candidates and of
#: the window's errors (templates, not counts: the detail request counts them exactly), small enough
#: to summarise in a fraction of a second and to read in one response.
PAGE_SIZE: Final = 2000
#: Share of the page for the candidates; the rest sweeps the window's severe records.
CANDIDATE_SHARE: Final = 0.6
#: Candidates given a share of the page, best first.
SAMPLED_CANDIDATES: Final = 6
#: Buckets a busy series' sweep is spread over (so a message confined to an hour or two is still met).
SWEEP_SLICES: Final = 16
#: Clauses in the filter at most (the request body stays under ~50 KB).
MAX_CLAUSES: Final = 160


@dataclass(frozen=True)
class Clause:
    scope: Scope
    split_field: str
    split: str
    start_ms: int
    end_ms: int
    #: records the shape counted in it (exact for whole buckets, estimated for a cut bucket)
    records: float

    def filter(self) -> dict[str, Any]:
        return {
            "bool": {
                "filter": [
                    *scope_filters(self.scope),
                    {"term": {self.split_field: self.split}},
                    time_range(self.start_ms, self.end_ms),
                ]
            }
        }


@dataclass(frozen=True)
class ScrollPlan:
    clauses: list[Clause]
    size: int
    start_ms: int
    end_ms: int

    @property
    def filters(self) -> list[dict[str, Any]]:
        return [{"bool": {"should": [clause.filter() for clause in self.clauses], "minimum_should_match": 1}}]


def _onset(grid: Grid, series: Series, first: int, last: int, share: float) -> list[Clause]:
    """Buckets from `first` (grid index) on, until `share` records are covered."""
    clauses: list[Clause] = []
    covered = 0.0
    for index in range(first, last + 1):
        count = series.counts[index]
        start = grid.bucket_start(index)
        if count <= 0:
            continue
        if covered + count > share:
            # the part of the bucket (from its start) that holds about the records still wanted
            part = max(1, int(grid.interval_ms * (share - covered) / count))
            if part >= 1000:
                clauses.append(
                    Clause(
                        series.scope, series.split_field, series.split, start, start + part, share - covered
                    )
                )
            break
        clauses.append(
            Clause(series.scope, series.split_field, series.split, start, start + grid.interval_ms, count)
        )
        covered += count
    return _merged(clauses)


def _merged(clauses: list[Clause]) -> list[Clause]:
    out: list[Clause] = []
    for clause in clauses:
        if (
            out
            and out[-1].end_ms == clause.start_ms
            and out[-1].scope == clause.scope
            and out[-1].split == clause.split
        ):
            last = out.pop()
            clause = Clause(
                clause.scope,
                clause.split_field,
                clause.split,
                last.start_ms,
                clause.end_ms,
                last.records + clause.records,
            )
        out.append(clause)
    return out


def _sweep(grid: Grid, series: Series, share: float) -> list[Clause]:
    """All of a quiet series' window; of a busy one, evenly spaced buckets (each cut to its part of
    the share), so that the sample spans the whole window."""
    window = grid.window
    total = sum(series.counts[i] for i in window)
    if total <= 0:
        return []
    if total <= share:
        return _onset(grid, series, window.start, window.stop - 1, total)
    busy = [i for i in window if series.counts[i] > 0]
    picks = min(SWEEP_SLICES, len(busy))
    clauses: list[Clause] = []
    for number in range(picks):
        index = busy[(2 * number + 1) * len(busy) // (2 * picks)]
        clauses += _onset(grid, series, index, index, share / picks)
    return clauses


def plan_scroll(
    target: Target, analysis: Analysis, series: Sequence[Series], *, page: int = PAGE_SIZE
) -> ScrollPlan | None:
    """The records to scroll: candidates' onsets, then a sweep of the window's severe records."""
    grid = analysis.grid
    clauses: list[Clause] = []
    sampled = analysis.candidates[:SAMPLED_CANDIDATES]
    if sampled:
        share = page * CANDIDATE_SHARE / len(sampled)
        for candidate in sampled:
            first, last = candidate_buckets(grid, candidate)
            clauses += _onset(grid, candidate.series, first, last, share)
    used = sum(clause.records for clause in clauses)
    swept = [
        one
        for one in sorted(
            series, key=lambda s: (-severity(normalize_level(s.split)), sum(s.counts[i] for i in grid.window))
        )
        if any(one.counts[i] for i in grid.window)
    ]
    if swept:
        share = max(1.0, (page - used) / len(swept))
        for one in swept:
            # a candidate's series too: its candidate may be one burst, and another change elsewhere
            taken = [(c.start_ms, c.end_ms) for c in clauses if (c.scope, c.split) == one.key]
            clauses += [
                clause
                for clause in _sweep(grid, one, share)
                if not any(start < clause.end_ms and clause.start_ms < end for start, end in taken)
            ]
    clauses = [clause for clause in clauses if clause.records > 0][:MAX_CLAUSES]
    if not clauses:
        return None
    records = sum(clause.records for clause in clauses)
    return ScrollPlan(
        clauses=clauses,
        size=max(1, min(page, round(records) + 1)),
        start_ms=min(clause.start_ms for clause in clauses),
        end_ms=max(clause.end_ms for clause in clauses),
    )


def candidate_buckets(grid: Grid, candidate: Candidate) -> tuple[int, int]:
    """The grid indices of a candidate's first and last bucket."""
    return grid.window.start + candidate.scan.start, grid.window.start + candidate.scan.end


@dataclass(frozen=True)
class Record:
    scope: Scope
    split: str
    ms: int | None
    message: str


def read_records(target: Target, hits: Iterable[Mapping[str, Any]]) -> list[Record]:
    """The scroll's hits as (scope, split value, time, message)."""
    records = []
    for hit in hits:
        source = source_of(hit)
        scope = tuple((name, str(get_field(source, name))) for name in target.scope_fields)
        seconds = parse_time(get_field(source, "@timestamp"))
        message = get_field(source, target.message_field)
        records.append(
            Record(
                scope=scope,
                split=str(get_field(source, target.split_field)),
                ms=None if seconds is None else int(seconds * 1000),
                message="" if message is None else str(message),
            )
        )
    return records
