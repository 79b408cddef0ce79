"""Group log messages into templates ("upstream connect error to <IP> after <DUR>").

drain3's `Drain` does the clustering, configured entirely in code (no `TemplateMiner`, ini file or
persistence). Out of the box it only splits on whitespace and leaves every variable to its similarity
threshold, so messages whose numbers, addresses or ids vary end up in many clusters. Four things fix
that, all tuned for logs in general (one setting, never per data set):

1. Masking: one compiled alternation replaces variable-looking substrings (timestamps, UUIDs, IPs, hex,
   paths, URLs, numbers with or without units, key=value values, quoted strings) with typed
   placeholders before drain sees the message. One pass over the string is much cheaper than drain3's
   default of one regex pass per masking instruction.
2. Caching: identical masked messages map to the same cluster, so repeated lines skip drain entirely.
3. Drain tweak: messages of 4+ tokens may always differ in one token (one unmasked variable).
4. Post-merge: after mining, clusters whose templates are equal once placeholder types are ignored are
   merged ("<IP>" in one, "<*>" in the other): drain routes them apart because the tokens differ.
   (Collapsing runs of placeholders to merge different lengths was measured too: it over-merges, e.g.
   "rhost=<*>" with "rhost=<*> user=<*>", and lowered the Loghub mean from 0.925 to 0.900.)
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from drain3.drain import Drain

#: The generic placeholder drain uses for positions it learned are variable.
WILDCARD = "<*>"

# Drain settings. sim_th is a little above drain3's 0.4: masking already turns the variable tokens into
# equal placeholders, so the remaining differences between messages are mostly real template words.
SIM_TH = 0.85
#: Messages with at least this many tokens may always differ in one token (one unmasked variable, e.g. a
#: user name): without it a fixed threshold splits "User alice logged in" per user. Measured on Loghub it
#: also makes the result insensitive to SIM_TH between 0.8 and 0.9 (a fixed threshold has cliffs there).
ONE_VARIABLE_MIN_TOKENS = 4
DEPTH = 4
MAX_CHILDREN = 100

# Each alternative is a named group; the group name becomes the placeholder ("<IP>"). Order matters:
# at a given position the first alternative that matches wins, so the specific shapes come first.
_B = r"(?<![A-Za-z0-9])"  # left boundary: not glued to a word (but "core.42", "blk_-7" mask)
_E = r"(?![A-Za-z0-9])"  # right boundary
_NUM = r"[-+]?\d+(?:[.,]\d+)*"
_TIME_UNITS = r"(?:ns|us|µs|ms|s|sec|secs|seconds|m|min|mins|h|hrs|d)"
# Sizes are often written with a space ("9.2 KB"); times rarely are, and "5 s" would eat words.
_SIZE_UNITS = r"(?: ?(?:[kKMGTP]i?[bB]|B|bytes)|[kKMGTP]|%)"
_PATTERNS: tuple[tuple[str, str], ...] = (
    ("URL", r"\b[a-zA-Z][a-zA-Z0-9+.\-]*://[^\s\"'<>)\]]+"),
    (
        "TS",
        r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?(?:Z|[+-]\d{2}:?\d{2})?"
        r"|\b(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (?:Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
        r" +\d{1,2} \d{2}:\d{2}:\d{2}(?: \d{4})?"
        r"|\b\d{4}[-/]\d{2}[-/]\d{2}\b|\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b",
    ),
    ("UUID", r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b"),
    ("MAC", r"\b[0-9a-fA-F]{2}(?::[0-9a-fA-F]{2}){5}\b"),
    ("IP", r"(?<![\w.])\d{1,3}(?:\.\d{1,3}){3}(?::\d{1,5})?(?![\w.]\w)"),
    ("EMAIL", r"\b[\w.+\-]+@[\w\-]+(?:\.[\w\-]+)+\b"),
    ("PATH", r"(?<![\w.:/\\])(?:/[\w.\-@%+~:]+){2,}/?|\b[A-Za-z]:\\[^\s,;\"'\]]+"),
    (
        "HEX",
        r"\b0[xX][0-9a-fA-F]+\b|\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{6,}\b|\b[0-9a-fA-F]{8,}\b",
    ),
    # Dotted names with 3+ parts: hostnames, Java packages/classes, metric names. Inside a message
    # (rather than a logger field) they are far more often the subject than the constant text.
    ("NAME", r"(?<![\w.\-])[A-Za-z_][\w\-$]*(?:\.[A-Za-z_$][\w\-$]*){2,}(?:[/:][\w.\-$/]+)?(?![\w])"),
    ("DUR", _B + _NUM + _TIME_UNITS + _E),
    ("SIZE", _B + _NUM + _SIZE_UNITS + _E),
    ("NUM", _B + _NUM + _E),
)
_MASK_RE = re.compile("|".join(f"(?P<{name}>{pattern})" for name, pattern in _PATTERNS))
# key=value and quoted strings only mask their value part, so they run as a second, separate pass.
_KV_RE = re.compile(r"(?<=\w=)(?!<[A-Z]+>)[^\s,;&)\]}\"']*\d[^\s,;&)\]}\"']*")
_QUOTED_RE = re.compile(r"\"[^\"\n]{0,200}\"|(?<!\w)'[^'\n]{0,200}'(?!\w)")
_PLACEHOLDER_RE = re.compile(r"<[A-Z]+>|<\*>")


def _placeholder(match: re.Match[str]) -> str:
    return f"<{match.lastgroup}>"


def _quoted(match: re.Match[str]) -> str:
    quote = match.group(0)[0]
    return f"{quote}<*>{quote}"


def mask_message(message: str) -> str:
    """Replace variable-looking parts of `message` with typed placeholders ("<IP>", "<NUM>", ...)."""
    masked = _MASK_RE.sub(_placeholder, message)
    if "=" in masked:
        masked = _KV_RE.sub("<*>", masked)
    if '"' in masked or "'" in masked:
        masked = _QUOTED_RE.sub(_quoted, masked)
    return masked


class _Drain(Drain):  # type: ignore[misc]
    """drain3's `Drain` with a length-aware threshold (see ONE_VARIABLE_MIN_TOKENS)."""

    def fast_match(self, cluster_ids, tokens, sim_th, include_params):  # type: ignore[no-untyped-def]
        n = len(tokens)
        if n >= ONE_VARIABLE_MIN_TOKENS:
            sim_th = min(sim_th, (n - 1) / n - 1e-9)
        return super().fast_match(cluster_ids, tokens, sim_th, include_params)


def _merge_key(tokens: Sequence[str]) -> tuple[str, ...]:
    """Template tokens with every placeholder made generic: "<IP>:<NUM>" and "<*>:<*>" compare equal."""
    return tuple(_PLACEHOLDER_RE.sub(WILDCARD, token) for token in tokens)


def _merge_texts(members: Sequence[tuple[str, ...]]) -> str:
    """Positional merge: a token kept where all members agree, else the generic wildcard."""
    merged = [tokens[0] if len(set(tokens)) == 1 else WILDCARD for tokens in zip(*members, strict=True)]
    return " ".join(merged)


@dataclass
class TemplateGroups:
    """Result of grouping: `assignments[i]` is the index into `templates` of message i."""

    templates: list[str]
    counts: list[int]
    assignments: list[int] = field(repr=False)


class TemplateGrouper:
    """Incremental grouping: `add` messages, then `finish` for the merged templates.

    `add` returns a provisional cluster id; `finish` maps those ids to final template indexes.
    """

    def __init__(self, *, sim_th: float = SIM_TH, depth: int = DEPTH, post_merge: bool = True) -> None:
        # In memory, fed already-masked text (`mask_message`): no TemplateMiner, ini file or persistence.
        self._drain = _Drain(sim_th=sim_th, depth=depth, max_children=MAX_CHILDREN, param_str=WILDCARD)
        self._post_merge = post_merge
        # Identical masked messages always land in the same cluster: the cache makes repeats O(1).
        self._cache: dict[str, int] = {}
        self._sizes: dict[int, int] = {}

    def add(self, message: str) -> int:
        masked = mask_message(message)
        cluster_id = self._cache.get(masked)
        if cluster_id is None:
            cluster, _ = self._drain.add_log_message(masked)
            cluster_id = cluster.cluster_id
            if len(self._cache) < 200_000:  # bound memory on very diverse inputs
                self._cache[masked] = cluster_id
        self._sizes[cluster_id] = self._sizes.get(cluster_id, 0) + 1
        return cluster_id

    def finish(self) -> tuple[dict[int, int], list[str], list[int]]:
        """(cluster id -> template index, template texts, counts per template)."""
        clusters = {c.cluster_id: tuple(c.log_template_tokens) for c in self._drain.clusters}
        groups: dict[tuple[str, ...], list[int]] = {}
        for cluster_id, tokens in clusters.items():
            key = _merge_key(tokens) if self._post_merge else (str(cluster_id),)
            groups.setdefault(key, []).append(cluster_id)
        mapping: dict[int, int] = {}
        texts: list[str] = []
        counts: list[int] = []
        for members in groups.values():
            members.sort(key=lambda cid: -self._sizes.get(cid, 0))
            index = len(texts)
            texts.append(_merge_texts([clusters[cid] for cid in members]))
            counts.append(sum(self._sizes.get(cid, 0) for cid in members))
            for cid in members:
                mapping[cid] = index
        return mapping, texts, counts


def group_messages(messages: Iterable[str], **options: float | bool) -> TemplateGroups:
    """Group `messages` into templates; see the module docstring for how."""
    grouper = TemplateGrouper(**options)  # type: ignore[arg-type]
    provisional = [grouper.add(message) for message in messages]
    mapping, texts, counts = grouper.finish()
    return TemplateGroups(templates=texts, counts=counts, assignments=[mapping[c] for c in provisional])
