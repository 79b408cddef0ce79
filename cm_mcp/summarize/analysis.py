"""The one pass over the hits behind a log or record summary: levels, timestamps, groups.

Split from logs.py (which builds and budgets the summary) because this loop is the summariser's hot
path: a million records take a few seconds, so per record it does only dictionary lookups and a few
comparisons. Timestamps are compared as text while they share one form, levels are normalised once
per distinct raw value, and template mining costs one regex pass per message (see templates.py).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from cm_mcp.api.fields import TIMESTAMP_FIELD

from .fields import get_field, normalize_level, parse_time, severity, source_of
from .templates import TemplateGrouper
from .text import to_text

#: Fields shown with sample records when the caller gives no projection, if present (first 3 found).
USEFUL_FIELDS = (
    "service.name",
    "service",
    "host.name",
    "host",
    "hostname",
    "kubernetes.pod_name",
    "kubernetes.pod.name",
    "pod",
    "container.name",
    "logger",
    "log_group",
    "tenant",
    "stage",
    "trace_id",
)
_DEFAULT_FIELD_COUNT = 3


class Group:
    """Running statistics of one template / group while hits stream in.

    Timestamps in the usual UTC form ("2024-05-01T10:00:00.000Z") order like their text when they
    have the same length, so per record only strings are compared (`lo`/`hi`, for the first such
    length seen); any other timestamp is parsed at once into `first`/`last`. `settle` folds the two.
    """

    __slots__ = ("count", "first", "hi", "last", "latest", "levels", "lo", "rep_severity", "representative")

    def __init__(self) -> None:
        self.count = 0
        self.levels: dict[str, int] = {}
        self.first: tuple[float, str] | None = None
        self.last: tuple[float, str] | None = None
        self.lo = self.hi = ""  # earliest / latest timestamp text of the usual form, "" while none
        self.representative = -1  # hit index of the most severe (then earliest) record
        self.rep_severity = -99
        self.latest = -1

    def add_time(self, raw: Any) -> None:
        """Fold one record's timestamp in (see the class doc)."""
        usual = type(raw) is str and len(raw) >= 17 and raw[-1] == "Z" and raw[10] == "T"
        if usual and len(raw) == len(self.lo):
            if raw < self.lo:
                self.lo = raw
            elif raw > self.hi:
                self.hi = raw
        elif usual and not self.lo:
            self.lo = self.hi = raw
        else:
            epoch = parse_time(raw)
            stamp = (epoch if epoch is not None else 0.0, to_text(raw))
            self.first, self.last = _earlier(self.first, stamp), _later(self.last, stamp)

    def settle(self, *, parse: bool) -> None:
        """Fold the string-compared timestamps into `first`/`last`. Without `parse` the epoch is left
        0.0 and stamps order by their text: right when every timestamp seen has one form and length."""
        for raw in (self.lo, self.hi) if self.lo else ():
            epoch = parse_time(raw) if parse else 0.0
            stamp = (epoch if epoch is not None else 0.0, to_text(raw))
            self.first, self.last = _earlier(self.first, stamp), _later(self.last, stamp)
        self.lo = self.hi = ""

    def absorb(self, part: Group) -> None:
        """Fold another group's statistics into this one."""
        if part.lo:
            if not self.lo:
                self.lo, self.hi = part.lo, part.hi
            elif len(part.lo) == len(self.lo):
                self.lo, self.hi = min(self.lo, part.lo), max(self.hi, part.hi)
            else:
                part.settle(parse=True)
        self.count += part.count
        for level, count in part.levels.items():
            self.levels[level] = self.levels.get(level, 0) + count
        self.first, self.last = _earlier(self.first, part.first), _later(self.last, part.last)
        if (part.rep_severity, -part.representative) > (self.rep_severity, -self.representative):
            self.rep_severity, self.representative = part.rep_severity, part.representative
        self.latest = max(self.latest, part.latest)


@dataclass
class Analysis:
    hits: Sequence[Mapping[str, Any]]
    texts: list[str]
    groups: list[Group]
    levels: Counter[str]
    record_levels: list[str]
    record_groups: list[int]
    first: tuple[float, str] | None
    last: tuple[float, str] | None
    field_names: list[str]
    message_of: Callable[[Mapping[str, Any]], str]
    #: (field, value as stored) of a record's level: the log level, or a workload's state
    level_source: LevelSource
    #: "logs" or "workloads": what the records are, and whether "level" reads "state"
    kind: str
    #: Group indexes ranked most severe, then most frequent (the same for every budget shape).
    order: list[int]
    #: `rank[group]` is the group's position in `order`.
    rank: list[int]
    #: `levels` most severe first, then most frequent.
    ranked_levels: list[tuple[str, int]]


#: A record's level as (field, value as stored), or None when it has none.
LevelSource = Callable[[Mapping[str, Any]], tuple[str, Any] | None]


def _earlier(a: tuple[float, str] | None, b: tuple[float, str] | None) -> tuple[float, str] | None:
    return b if a is None or (b is not None and b < a) else a


def _later(a: tuple[float, str] | None, b: tuple[float, str] | None) -> tuple[float, str] | None:
    return b if a is None or (b is not None and b > a) else a


def analyse(
    hits: Sequence[Mapping[str, Any]],
    message_of: Callable[[Mapping[str, Any]], str],
    fields: Sequence[str] | None,
    use_templates: bool,
    level_source: LevelSource,
    kind: str,
) -> Analysis:
    """One pass over the hits; `message_of` is both the grouping key and the text shown.

    This loop is the summariser's hot path (a million records take seconds): per record it does only
    dictionary lookups and a few comparisons; levels are normalised once per distinct raw value.
    """
    stats: dict[int, Group] = {}  # provisional group -> its statistics

    def fold(moves: list[tuple[int, int]]) -> None:
        """The grouper compacted its keys: fold their statistics into the keys they became."""
        for old, new in moves:
            part = stats.pop(old, None)
            if part is not None:
                target = stats.get(new)
                if target is None:
                    target = stats[new] = Group()
                target.absorb(part)

    grouper = TemplateGrouper(on_compact=fold) if use_templates else None
    group_of = grouper.add if grouper is not None else None
    keys: dict[str, int] = {}
    provisional: list[int] = []
    record_levels: list[str] = []
    level_names: dict[Any, tuple[str, int]] = {}  # raw level value -> (level, severity)
    add_level, add_group = record_levels.append, provisional.append
    for index, hit in enumerate(hits):
        doc = source_of(hit)
        found = level_source(doc)
        raw = found[1] if found else None
        try:
            level, sev = level_names[raw]
        except KeyError:
            level = normalize_level(raw)
            level, sev = level_names[raw] = (level, severity(level))
        except TypeError:  # an unhashable level value (a list, say): normalised every time
            level = normalize_level(raw)
            sev = severity(level)
        add_level(level)
        key = message_of(doc)
        gid = group_of(key) if group_of is not None else keys.setdefault(key, len(keys))
        add_group(gid)
        group = stats.get(gid)
        if group is None:
            group = stats[gid] = Group()
        group.count += 1
        group.levels[level] = group.levels.get(level, 0) + 1
        raw_ts = doc.get(TIMESTAMP_FIELD)
        if raw_ts is None:
            raw_ts = get_field(doc, TIMESTAMP_FIELD)  # a nested or dotted spelling
        if raw_ts is not None:
            lo = group.lo
            if (
                type(raw_ts) is str
                and len(raw_ts) == len(lo)
                and lo
                and raw_ts[-1] == "Z"
                and raw_ts[10] == "T"
            ):
                if raw_ts < lo:  # the common case of `add_time`, inline
                    group.lo = raw_ts
                elif raw_ts > group.hi:
                    group.hi = raw_ts
            else:
                group.add_time(raw_ts)
        if sev > group.rep_severity:
            group.rep_severity, group.representative = sev, index
        group.latest = index

    # Map provisional groups (distinct keys) to final templates, folding their statistics.
    if grouper is not None:
        mapping, texts, _ = grouper.finish()
    else:
        mapping = list(range(len(keys)))
        texts = list(keys)
    groups = [Group() for _ in texts]
    for gid, part in stats.items():
        groups[mapping[gid]].absorb(part)
    # One timestamp form and length throughout (the usual case): their text orders them, no parsing.
    parse = any(group.first is not None for group in groups) or len({len(g.lo) for g in groups if g.lo}) > 1
    for group in groups:
        group.settle(parse=parse)
    levels: Counter[str] = Counter()
    first = last = None
    for group in groups:
        levels.update(group.levels)
        first, last = _earlier(first, group.first), _later(last, group.last)
    field_names = list(fields) if fields is not None else default_fields(hits)
    order = sorted(range(len(groups)), key=lambda i: (-groups[i].rep_severity, -groups[i].count, i))
    rank = [0] * len(order)
    for position, gid in enumerate(order):
        rank[gid] = position
    return Analysis(
        hits=hits,
        texts=[to_text(t) for t in texts],
        groups=groups,
        levels=levels,
        record_levels=record_levels,
        record_groups=[mapping[g] for g in provisional],
        first=first,
        last=last,
        field_names=field_names,
        message_of=message_of,
        level_source=level_source,
        kind=kind,
        order=order,
        rank=rank,
        ranked_levels=sorted(levels.items(), key=lambda kv: (-severity(kv[0]), -kv[1])),
    )


def default_fields(hits: Sequence[Mapping[str, Any]]) -> list[str]:
    found: list[str] = []
    for hit in hits[:50]:  # a peek is enough: the projection is only a hint
        doc = source_of(hit)
        for name in USEFUL_FIELDS:
            if name in found:
                continue
            value = get_field(doc, name)
            if value not in (None, "") and not isinstance(value, Mapping | list):
                found.append(name)
        extra = [k for k in doc if k.endswith("domain_name")] + [
            f"{k}.domain_name" for k, v in doc.items() if isinstance(v, Mapping) and "domain_name" in v
        ]
        found.extend(name for name in extra if name not in found)
    return found[:_DEFAULT_FIELD_COUNT]
