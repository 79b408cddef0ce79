"""The response cache: answers the API gave to requests over a settled window, so that asking the
same question again costs no quota (about 50 scroll and batch requests a day).

What "identical" means: the same API (base URL), the same endpoint, and the same request body once
normalised (`canonical_body`): the body exactly as it would be sent (relative times already resolved
to UTC instants by the request models, unset fields left out, workloads' page size 100 made
explicit), its object keys in any order, scope lists (domain, log_group, tenant, stage, fields) and
the ANDed filters in any order, and a `terms` aggregation's `size` 10 (OpenSearch's default) the
same as no size. `max_tokens` and `fresh` are server options, not part of the request: a cached
answer is summarised again for the call's own budget.

What is cached: `*_aggs` answers (the API's whole answer), the first page of a `*_scroll` (the page
itself is the stored scroll result; a continuation is never cached, its scroll context belongs to
one reader) and `*_batch` exports (the stored export). Never cached: a window that ended less than
the settle delay (CM_CACHE_SETTLE_SECONDS, default 10 minutes) before the API answered, since late
logs may still arrive in it; errors; billing and the batch status endpoints. `fresh: true` skips the
lookup (and replaces the entry with the new answer).

Layout under `<data_dir>/cache/`: `<sha256 of the key>.json` per answer (a `CachedAnswer`), kept as
long as the result store keeps results (7 days) and at most MAX_ENTRIES of them, oldest dropped
first; `saved.json` counts the requests answered here per UTC day and endpoint family (across
processes, under a file lock). No MCP here.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Final

from filelock import FileLock
from pydantic import BaseModel, ValidationError

from cm_mcp.api.times import TimeFormatError, parse_iso8601
from cm_mcp.store.fsutil import atomic_write

logger = logging.getLogger("cm_mcp.store")

#: Default settle delay: logs of the last minutes may still be ingested, so a window ending this
#: recently may change; the reference says nothing, 10 minutes covers common ingestion lags.
DEFAULT_SETTLE: Final = timedelta(minutes=10)
#: Entries kept at most: answers are small (an aggs answer is KBs; pages and exports are referenced).
MAX_ENTRIES: Final = 2000
#: How long an entry is kept: as long as the result store keeps what it references.
DEFAULT_MAX_AGE: Final = timedelta(days=7)
#: OpenSearch's `terms` size when none is given.
TERMS_DEFAULT_SIZE: Final = 10
#: Body fields that are sets: their order changes nothing in the answer.
_UNORDERED: Final = ("domain", "log_group", "tenant", "stage", "fields", "filters")
#: A bool query's clause lists: conditions ANDed (filter, must, must_not) or ORed (should).
_BOOL_CLAUSES: Final = ("filter", "must", "must_not", "should")
#: Days of saved-request counts kept.
_SAVED_DAYS: Final = 7


class CachedAnswer(BaseModel):
    """One cached answer. `response` for aggregations (the API's whole answer: data and meta);
    `result_id` for a scroll's first page or an export (the stored result holds the data)."""

    key: str
    endpoint: str
    request: dict[str, Any]
    #: when the API gave this answer
    answered_at: datetime
    request_id: str | None = None
    response: dict[str, Any] | None = None
    result_id: str | None = None
    #: a scroll page's meta and total match count (its hits are the stored result's first page)
    meta: dict[str, Any] | None = None
    total: int | None = None


def canonical_body(body: Mapping[str, Any]) -> Any:
    """The body with every order that carries no meaning removed (see the module docstring)."""
    normal = {key: _canonical(value) for key, value in body.items()}
    for name in _UNORDERED:
        if isinstance(normal.get(name), list):
            normal[name] = sorted(normal[name], key=_dump)
    return normal


def _canonical(value: Any) -> Any:
    if isinstance(value, Mapping):
        normal = {str(key): _canonical(item) for key, item in value.items()}
        for clause in _BOOL_CLAUSES:  # bool clauses are sets of conditions
            if isinstance(normal.get(clause), list):
                normal[clause] = sorted(normal[clause], key=_dump)
        terms = normal.get("terms")
        if isinstance(terms, dict) and "field" in terms and terms.get("size") == TERMS_DEFAULT_SIZE:
            normal["terms"] = {key: item for key, item in terms.items() if key != "size"}
        return normal
    if isinstance(value, list):
        return [_canonical(item) for item in value]
    return value


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def cache_key(api_url: str, endpoint: str, body: Mapping[str, Any]) -> str:
    return hashlib.sha256(_dump([api_url.rstrip("/"), endpoint, canonical_body(body)]).encode()).hexdigest()


def window_end(body: Mapping[str, Any]) -> datetime | None:
    """The body's `end_time` as an instant (None: no window, e.g. a scroll continuation)."""
    end = body.get("end_time")
    if not isinstance(end, str):
        return None
    try:
        return parse_iso8601(end)
    except TimeFormatError:
        return None


def is_settled(body: Mapping[str, Any], answered_at: datetime, settle: timedelta) -> bool:
    """True when the window ended at least `settle` before `answered_at`: the answer cannot change."""
    end = window_end(body)
    return end is not None and end + settle <= answered_at


class ResponseCache:
    """Cached answers of one API (`api_url`) under `<data_dir>/cache/`. Blocking file I/O: call it
    from a worker thread in async code."""

    def __init__(
        self,
        data_dir: str | Path,
        *,
        api_url: str,
        settle: timedelta = DEFAULT_SETTLE,
        max_age: timedelta = DEFAULT_MAX_AGE,
        max_entries: int = MAX_ENTRIES,
    ) -> None:
        self.root = Path(data_dir) / "cache"
        self.api_url = api_url
        self.settle = settle
        self.max_age = max_age
        self.max_entries = max_entries

    def key(self, endpoint: str, body: Mapping[str, Any]) -> str:
        return cache_key(self.api_url, endpoint, body)

    def lookup(
        self, endpoint: str, body: Mapping[str, Any], *, now: datetime | None = None
    ) -> CachedAnswer | None:
        """The cached answer to this request, or None (never cached, expired, or unreadable)."""
        path = self.root / f"{self.key(endpoint, body)}.json"
        try:
            entry = CachedAnswer.model_validate_json(path.read_bytes())
        except FileNotFoundError:
            return None
        except (OSError, ValidationError):
            logger.warning("unreadable cache entry %s: ignored", path.name)
            return None
        now = now or datetime.now(UTC)
        if entry.answered_at + self.max_age < now or not is_settled(body, entry.answered_at, self.settle):
            return None
        return entry

    def put(
        self,
        endpoint: str,
        body: Mapping[str, Any],
        *,
        answered_at: datetime,
        request_id: str | None = None,
        response: Mapping[str, Any] | None = None,
        result_id: str | None = None,
        meta: Mapping[str, Any] | None = None,
        total: int | None = None,
    ) -> CachedAnswer | None:
        """Keep an answer if its window had settled when it was given; returns the entry (None: not
        cacheable)."""
        if not is_settled(body, answered_at, self.settle):
            return None
        key = self.key(endpoint, body)
        entry = CachedAnswer(
            key=key,
            endpoint=endpoint,
            request=canonical_body(body),
            answered_at=answered_at,
            request_id=request_id,
            response=dict(response) if response is not None else None,
            result_id=result_id,
            meta=dict(meta) if meta is not None else None,
            total=total,
        )
        self.root.mkdir(parents=True, exist_ok=True)
        atomic_write(self.root / f"{key}.json", entry.model_dump_json().encode())
        self._prune()
        return entry

    def forget(self, endpoint: str, body: Mapping[str, Any]) -> None:
        """Drop the entry (its stored result is gone)."""
        (self.root / f"{self.key(endpoint, body)}.json").unlink(missing_ok=True)

    def _prune(self) -> None:
        entries = sorted(self.root.glob("*.json"), key=_mtime)
        entries = [path for path in entries if path.name != _SAVED]
        oldest = datetime.now(UTC) - self.max_age
        for index, path in enumerate(entries):
            too_many = len(entries) - index > self.max_entries
            if too_many or datetime.fromtimestamp(_mtime(path), UTC) < oldest:
                path.unlink(missing_ok=True)

    # --- requests saved --------------------------------------------------------------------------

    def count_saved(self, family: str, *, now: datetime | None = None) -> None:
        """One request of `family` answered from the cache."""
        day = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
        self.root.mkdir(parents=True, exist_ok=True)
        with FileLock(self.root / ".saved.lock"):
            counts = self._saved()
            counts.setdefault(day, {})
            counts[day][family] = counts[day].get(family, 0) + 1
            kept = dict(sorted(counts.items())[-_SAVED_DAYS:])
            atomic_write(self.root / _SAVED, json.dumps(kept).encode())

    def saved_today(self, *, now: datetime | None = None) -> dict[str, int]:
        """Requests answered from the cache today (UTC), per family."""
        day = (now or datetime.now(UTC)).strftime("%Y-%m-%d")
        return dict(sorted(self._saved().get(day, {}).items()))

    def _saved(self) -> dict[str, dict[str, int]]:
        try:
            counts = json.loads((self.root / _SAVED).read_bytes())
        except (OSError, ValueError):
            return {}
        return counts if isinstance(counts, dict) else {}


_SAVED: Final = "saved.json"


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0
