"""Message templates of a triage: mined from the scroll's records (or the aggregations' top messages),
then checked against the baseline by the detail request, which counts each one exactly per bucket.

Templates come from the project's miner (`cm_mcp.summarize.group_messages`): the same templates a
`logs_scroll` shows, so a follow-up call speaks the same language.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Final

from cm_mcp.summarize import group_messages
from cm_mcp.summarize.text import truncate
from cm_mcp.triage.sampling import Record
from cm_mcp.triage.series import Scope

#: A message repeated this often in the aggregations' top messages is mined as if seen this often
#: (the miner needs shapes, not exact counts; the detail request counts exactly).
MAX_REPEAT: Final = 20
EXAMPLE_CHARS: Final = 300


@dataclass(frozen=True)
class Mined:
    """A template of one series (scope + split value, None when the source did not say)."""

    scope: Scope
    split: str | None
    template: str
    #: records (or message counts) it covered where it was mined
    count: int
    example: str
    #: sample times (epoch ms) of its records, when mined from the scroll
    times: tuple[int, ...] = ()


def mine(scope: Scope, split: str | None, messages: Sequence[tuple[str, int, int | None]]) -> list[Mined]:
    """Templates of (message, count, time) in one series, most frequent first."""
    if not messages:
        return []
    texts: list[str] = []
    owners: list[int] = []
    for position, (message, count, _) in enumerate(messages):
        for _ in range(max(1, min(count, MAX_REPEAT))):
            texts.append(message)
            owners.append(position)
    groups = group_messages(texts)
    counts: dict[int, int] = {}
    examples: dict[int, str] = {}
    times: dict[int, list[int]] = {}
    seen_owner: set[int] = set()
    for index, group in enumerate(groups.assignments):
        owner = owners[index]
        if owner in seen_owner:
            continue
        seen_owner.add(owner)
        message, count, ms = messages[owner]
        counts[group] = counts.get(group, 0) + count
        examples.setdefault(group, message)
        if ms is not None:
            times.setdefault(group, []).append(ms)
    mined = [
        Mined(
            scope=scope,
            split=split,
            template=groups.templates[group],
            count=count,
            example=truncate(examples[group], EXAMPLE_CHARS)[0],
            times=tuple(sorted(times.get(group, ()))),
        )
        for group, count in counts.items()
    ]
    mined.sort(key=lambda one: one.count, reverse=True)
    return mined


def mine_records(records: Iterable[Record]) -> dict[tuple[Scope, str | None], list[Mined]]:
    """Templates per series of the scroll's records."""
    by_series: dict[tuple[Scope, str | None], list[tuple[str, int, int | None]]] = {}
    for record in records:
        if record.message:
            by_series.setdefault((record.scope, record.split), []).append((record.message, 1, record.ms))
    return {key: mine(key[0], key[1], messages) for key, messages in by_series.items()}


def mine_terms(scope: Scope, split: str | None, terms: Sequence[tuple[str, int]]) -> list[Mined]:
    """Templates of an aggregation's top messages (exact messages with their counts)."""
    return mine(scope, split, [(message, count, None) for message, count in terms if message])
