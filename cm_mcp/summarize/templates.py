"""Group log messages into templates ("upstream connect error to <IP> after <DUR>").

Three stages, each answering one question with one general rule (no per-data-set settings):

1. Which parts of a message are values? Anything with a digit, paths, URLs, addresses, dotted names
   (masking.py). Messages are reduced to *keys* (their masked tokens); a message whose shape was seen
   before costs one regex pass and one dict lookup, so this stage runs at hundreds of thousands of
   messages a second. Only distinct keys go on to the next stages.
2. Which keys belong to one event? Keys of one length are clustered greedily (most frequent first)
   by how many of their *words* agree with a cluster's first key (`SIMILARITY`); positions where both
   hold a value say nothing either way, so two events made mostly of values do not merge because of
   them, and no position (the first, say) is special. Then every position where a cluster's keys
   differ is judged on its own evidence: it is a value if it ever holds a masked value, or holds many
   distinct words (`MANY_WORDS`), or several words most of which occur once (an open-ended set such
   as user names). Otherwise the few words it holds are part of the events ("VM Stopped" / "VM
   Started", GET / POST, true / false), and the cluster is split by them. So a one-word difference
   never becomes a variable just because it is one word (Drain's failure), and a variable word never
   splits an event just because it is a word.
3. Which templates are one event written at different lengths? Templates that are equal once
   placeholder types are ignored, runs of values (lists, stack frames, multi-word values) count as
   one, and bracketed values ("(1.2 KB)") count as optional are merged (the post-merge).

drain3 was the miner before (with one big masking regex per message in front of it). Its prefix tree
routes a message by its first tokens (a leading variable word splits an event), its similarity
threshold turns any one-word difference into a variable, and it keeps no per-position statistics from
which to tell the two apart. Measured on the ten shared Loghub-2k systems (bench/loghub_accuracy.py),
mean grouping accuracy: drain3 default 0.817, drain3 fed our masked messages 0.847 (worst system
0.571), this miner 0.968 (worst 0.873); on six public Loghub-2k systems never tuned on: 0.589, 0.638
and 0.955. Mining alone it is 1.3x (1,000 varied messages) to 3.6x (a million) as fast as drain3
(bench/summarize.py).
"""

from __future__ import annotations

import gc
from array import array
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import partial

from .masking import (
    MAX_CACHED_SHAPE,
    PLACEHOLDER_RE,
    SHAPE_RE,
    WILDCARD,
    canonical,
    key_of,
    mask_message,
    merge_key,
)

__all__ = ["WILDCARD", "TemplateGrouper", "TemplateGroups", "group_messages", "mask_message"]

#: A key joins a cluster when at least this share of the positions where either holds a word agree.
#: Low on purpose: stage 2 splits a cluster again wherever a differing word turns out to be constant.
SIMILARITY = 0.5
#: A position holding this many distinct words is a value whatever their counts: constant alternatives
#: in one slot come in twos and threes (start/stop, true/false, GET/POST/PUT); user names, hosts and
#: file names come in more. Mean GA on the ten shared systems is flat for 4..6 (0.962-0.968) and drops
#: from 8 on (0.932: user names split into one template each).
MANY_WORDS = 4
#: A position holding at least this many distinct words is a value when at least half of them occur
#: once (an open set being sampled); fewer than this is too little evidence: the words split.
FEW_WORDS = 3
#: Bounds that keep memory constant for any number of messages: distinct shapes cached, distinct keys
#: held before they are compacted into the templates mined so far (which keep counting as keys).
SHAPE_CACHE_LIMIT = 50_000
KEY_LIMIT = 50_000
#: A word that starts this many clusters at one position identifies none of them: it is no longer
#: used to find candidates (other words of a message still are). Keeps clustering near-linear.
_POSTING_LIMIT = 64

_LEFT_CUT = "=:([{\"'/@#"  # a prefix shared by a value column is kept up to one of these ...
_RIGHT_CUT = ")]}\"',;:."  # ... and a shared suffix from one of these: "rhost=<*>", "(<*>),"


#: `masking.shape_of` without the Python call around it: `add` is on the summariser's hot path.
_shape = partial(SHAPE_RE.sub, "0")


def _generic(token: str) -> str:
    """`token` with every placeholder made generic: "<IP>:<NUM>" -> "<*>:<*>"."""
    return PLACEHOLDER_RE.sub(WILDCARD, token) if "<" in token else token


def _has_value(token: str) -> bool:
    return "<" in token and PLACEHOLDER_RE.search(token) is not None


@dataclass
class TemplateGroups:
    """Result of grouping: `assignments[i]` is the index into `templates` of message i."""

    templates: list[str]
    counts: list[int]
    assignments: list[int] = field(repr=False)


@dataclass
class _Options:
    similarity: float = SIMILARITY
    post_merge: bool = True


def _similarity(key: tuple[str, ...], rep: tuple[str, ...]) -> float:
    """Share of agreeing positions among those where either side holds a word (see module doc)."""
    agree = differ = 0
    for mine, theirs in zip(key, rep, strict=True):
        if mine == theirs:
            if not _has_value(mine):
                agree += 1
        elif not (_has_value(mine) and _has_value(theirs) and _generic(mine) == _generic(theirs)):
            differ += 1
    return 1.0 if agree + differ == 0 else agree / (agree + differ)


def _words(key: tuple[str, ...]) -> tuple[tuple[int, str], ...]:
    """(position, word) of the tokens of `key` that hold no value; cached, as keys recur."""
    words = _WORDS.get(key)
    if words is None:
        words = tuple((pos, tok) for pos, tok in enumerate(key) if not _has_value(tok))
        if len(_WORDS) >= _WORDS_LIMIT:
            _WORDS.clear()
        _WORDS[key] = words
    return words


_WORDS: dict[tuple[str, ...], tuple[tuple[int, str], ...]] = {}
_WORDS_LIMIT = 50_000


def _cluster_by_length(
    keys: Sequence[tuple[str, ...]], counts: Sequence[int], similarity: float
) -> list[list[int]]:
    """Greedy clusters of key indexes, most frequent keys first; each compared with clusters' first
    keys found through a (length, position, word) index."""
    order = sorted(range(len(keys)), key=lambda i: -counts[i])
    clusters: list[list[int]] = []
    index: dict[tuple[int, int, str], list[int]] = {}
    for key_index in order:
        key = keys[key_index]
        length = len(key)
        words = _words(key)
        hits: dict[int, int] = {}
        for pos, tok in words:
            posting = index.get((length, pos, tok))
            if posting is not None and len(posting) < _POSTING_LIMIT:
                for cluster in posting:
                    hits[cluster] = hits.get(cluster, 0) + 1
        best, best_score = -1, similarity
        for cluster, agreeing in hits.items():
            if agreeing < similarity * len(words):  # cannot reach the threshold: skip the exact check
                continue
            score = _similarity(key, keys[clusters[cluster][0]])
            if score >= best_score and (best < 0 or score > best_score or cluster < best):
                best, best_score = cluster, score
        if best >= 0:
            clusters[best].append(key_index)
            continue
        clusters.append([key_index])
        for pos, tok in words:
            posting = index.setdefault((length, pos, tok), [])
            if len(posting) <= _POSTING_LIMIT:  # one past the limit marks the word as saturated
                posting.append(len(clusters) - 1)
    return clusters


def _kv_key(token: str) -> str:
    """The key of a key=value token ("rhost=" of "rhost=<IP>"); "" for other tokens."""
    cut = token.find("=")
    return token[: cut + 1] if cut > 0 else ""


def _is_value_column(values: dict[str, int]) -> bool:
    """Whether a position whose distinct tokens (with message counts) are `values` holds a value."""
    if any(_has_value(token) for token in values):
        return True
    distinct = len(values)
    if distinct >= MANY_WORDS:
        return True
    if distinct >= FEW_WORDS:
        once = sum(1 for count in values.values() if count == 1)
        return 2 * once >= distinct
    return False


def _merge_column(values: Iterable[str]) -> str:
    """One token standing for a value column's `values`: shared prefix/suffix kept ("rhost=<*>")."""
    distinct = sorted(set(values))
    if len(distinct) == 1 and _has_value(distinct[0]):
        return distinct[0]
    first, last = distinct[0], distinct[-1]  # the common prefix of a sorted set is theirs
    size = 0
    while size < min(len(first), len(last)) and first[size] == last[size]:
        size += 1
    prefix = first[:size]
    while prefix and prefix[-1] not in _LEFT_CUT:
        prefix = prefix[:-1]
    rest = [value[len(prefix) :] for value in distinct]
    size = 0
    shortest = min(len(value) for value in rest)
    while size < shortest and len({value[len(value) - size - 1] for value in rest}) == 1:
        size += 1
    suffix = rest[0][len(rest[0]) - size :] if size else ""
    while suffix and suffix[0] not in _RIGHT_CUT:
        suffix = suffix[1:]
    return prefix + WILDCARD + suffix


def _split(
    members: list[int], keys: Sequence[tuple[str, ...]], counts: Sequence[int]
) -> list[tuple[list[int], tuple[str, ...]]]:
    """A cluster split by the positions that hold a few constant words; (members, template) each."""
    first = keys[members[0]]
    if len(members) == 1:
        return [(members, first)]
    columns: list[tuple[int, dict[str, int]]] = []
    for pos in range(len(first)):
        values: dict[str, int] = {}
        for member in members:
            token = keys[member][pos]
            values[token] = values.get(token, 0) + counts[member]
        if len(values) > 1:
            columns.append((pos, values))
    # Different keys in one position ("phoneId=<*>" / "retVal=true") are different structures: split
    # by them first, then judge each part's values on their own.
    keyed = [pos for pos, values in columns if len({_kv_key(token) for token in values}) > 1]
    if keyed:
        by_keys: dict[tuple[str, ...], list[int]] = {}
        for member in members:
            by_keys.setdefault(tuple(_kv_key(keys[member][pos]) for pos in keyed), []).append(member)
        if len(by_keys) > 1:
            return [out for part in by_keys.values() for out in _split(part, keys, counts)]
    constant: list[int] = []
    variable: list[int] = []
    for pos, values in columns:
        (variable if _is_value_column(values) else constant).append(pos)
    parts: dict[tuple[str, ...], list[int]] = {}
    for member in members:
        parts.setdefault(tuple(keys[member][pos] for pos in constant), []).append(member)
    out = []
    for part in parts.values():
        template = list(keys[part[0]])
        for pos in variable:
            template[pos] = _merge_column(keys[member][pos] for member in part)
        out.append((part, tuple(template)))
    return out


class TemplateGrouper:
    """Incremental grouping: `add` messages, then `finish` for the templates.

    `add` returns a provisional id; `finish` maps every provisional id to a final template index.
    Memory stays bounded for any number of messages: the shape cache and the key table are capped; a
    full key table is compacted into the templates mined so far, which then count as keys (their ids
    are new; `on_compact` hears which old ids went into which new one, to fold its own statistics).
    All that grows with the input is one 8-byte forward pointer per distinct key.
    """

    def __init__(
        self,
        *,
        similarity: float = SIMILARITY,
        post_merge: bool = True,
        on_compact: Callable[[list[tuple[int, int]]], None] | None = None,
    ) -> None:
        self._options = _Options(similarity=similarity, post_merge=post_merge)
        self._on_compact = on_compact
        self._shapes: dict[str, int] = {}
        self._ids: dict[tuple[str, ...], int] = {}  # live key -> id
        self._counts: dict[int, int] = {}  # live id -> messages
        self._forward = array("q")  # id -> the id it was compacted into (itself while live)

    def add(self, message: str) -> int:
        shape = _shape(message)
        key_id = self._shapes.get(shape)
        if key_id is None:
            key_id = self._key_id(key_of(shape))
            if len(self._shapes) < SHAPE_CACHE_LIMIT and len(shape) <= MAX_CACHED_SHAPE:
                self._shapes[shape] = key_id
        self._counts[key_id] += 1
        return key_id

    def _key_id(self, tokens: tuple[str, ...]) -> int:
        key_id = self._ids.get(tokens)
        if key_id is None and len(self._ids) >= KEY_LIMIT:
            self._compact()
            key_id = self._ids.get(tokens)  # the key may be one of the templates just formed
        if key_id is None:
            key_id = self._new_id(tokens, 0)
        return key_id

    def _new_id(self, tokens: tuple[str, ...], count: int) -> int:
        key_id = len(self._forward)
        self._forward.append(key_id)
        self._ids[tokens] = key_id
        self._counts[key_id] = count
        return key_id

    def _compact(self) -> None:
        """Replace the live keys by the templates they form, which then count as keys themselves."""
        live = list(self._ids.items())
        assignment, templates, totals = self._mine(live)
        self._ids, self._counts, self._shapes = {}, {}, {}
        # If the messages really have this many templates, keep the most frequent ones and fold the
        # rest into one all-values key per length ("<*> <*> <*>"), rather than grow without bound.
        keep = set(sorted(range(len(templates)), key=lambda index: -totals[index])[: KEY_LIMIT // 4])
        fresh: list[int] = []
        for index, (template, total) in enumerate(zip(templates, totals, strict=True)):
            if index not in keep:
                template = (WILDCARD,) * len(template)
            target = self._ids.get(template)
            if target is None:
                target = self._new_id(template, 0)
            self._counts[target] += total
            fresh.append(target)
        moves = [(key_id, fresh[index]) for (_, key_id), index in zip(live, assignment, strict=True)]
        for key_id, target in moves:
            self._forward[key_id] = target
        if self._on_compact is not None:
            self._on_compact(moves)

    def _mine(
        self, live: list[tuple[tuple[str, ...], int]]
    ) -> tuple[list[int], list[tuple[str, ...]], list[int]]:
        """(template index per live key, template tokens, messages per template)."""
        with _cyclic_gc_paused():
            return self._mine_keys(live)

    def _mine_keys(
        self, live: list[tuple[tuple[str, ...], int]]
    ) -> tuple[list[int], list[tuple[str, ...]], list[int]]:
        keys = [key for key, _ in live]
        counts = [self._counts[key_id] for _, key_id in live]
        assignment = [0] * len(live)
        parts: list[tuple[list[int], tuple[str, ...]]] = []
        for members in _cluster_by_length(keys, counts, self._options.similarity):
            parts.extend(_split(members, keys, counts))
        merged: dict[tuple[str, ...], list[int]] = {}
        for index, (_, template) in enumerate(parts):
            merge = merge_key(template) if self._options.post_merge else (str(index),)
            merged.setdefault(merge, []).append(index)
        templates: list[tuple[str, ...]] = []
        totals: list[int] = []
        for group in merged.values():
            group.sort(key=lambda part: -sum(counts[member] for member in parts[part][0]))
            if len(group) == 1:
                text = parts[group[0]][1]
            else:
                shown = [canonical(parts[part][1])[1] for part in group]
                text = tuple(col[0] if len(set(col)) == 1 else WILDCARD for col in zip(*shown, strict=True))
            total = 0
            for part in group:
                for member in parts[part][0]:
                    assignment[member] = len(templates)
                    total += counts[member]
            templates.append(text)
            totals.append(total)
        return assignment, templates, totals

    def finish(self) -> tuple[list[int], list[str], list[int]]:
        """(provisional id -> template index, template texts, messages per template)."""
        live = list(self._ids.items())
        assignment, templates, counts = self._mine(live)
        final = [-1] * len(self._forward)
        for (_, key_id), template_index in zip(live, assignment, strict=True):
            final[key_id] = template_index
        forward = self._forward
        for key_id in range(len(final) - 1, -1, -1):  # compacted ids point to later ids
            if final[key_id] < 0:
                final[key_id] = final[forward[key_id]]
        return final, [" ".join(template) for template in templates], counts


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """No cyclic garbage collection while mining (it resumes after, if it was on).

    Mining up to KEY_LIMIT keys allocates hundreds of thousands of small tuples, lists and dicts that
    live until it ends and form no cycles. Each allocation burst triggers collections, and the oldest
    generation's walk covers every live object of the process, the whole page of hits included: with
    a million distinct messages that was about half of the summary's time, for nothing collected.
    Other threads may run meanwhile; all they lose is collection for that long, never memory.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def group_messages(messages: Iterable[str], **options: float | bool) -> TemplateGroups:
    """Group `messages` into templates; see the module docstring for how."""
    grouper = TemplateGrouper(**options)  # type: ignore[arg-type]
    provisional = [grouper.add(message) for message in messages]
    mapping, texts, counts = grouper.finish()
    return TemplateGroups(templates=texts, counts=counts, assignments=[mapping[c] for c in provisional])
