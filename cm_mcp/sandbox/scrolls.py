"""Scroll contexts: what `/v2/*/scroll` and `/v1/logs/scroll` continue from.

A context stores the query descriptor, the total, the page size and the engine's opaque cursor
(search-after state). Ids are opaque base64url strings that stay the same for the whole scroll.
A context expires after `idle_seconds` without use (default 5 minutes, like OpenSearch's usual
``scroll=5m``); an expired or unknown id raises ScrollUnknown.
"""

from __future__ import annotations

import base64
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Final

DEFAULT_IDLE_SECONDS: Final = 300.0


class ScrollUnknown(Exception):
    """Unknown or expired scroll id."""


@dataclass
class ScrollContext:
    scroll_id: str
    query: Any
    total: int
    page_size: int
    cursor: Any = None  # engine-provided, stored as is
    returned: int = 0
    last_used: float = 0.0

    @property
    def exhausted(self) -> bool:
        return self.returned >= self.total


def new_scroll_id() -> str:
    # A prefix like OpenSearch's ("DXF1ZXJ5...") is pure decoration; the random part is what counts.
    return base64.urlsafe_b64encode(b"sbx:" + secrets.token_bytes(24)).decode().rstrip("=")


class ScrollRegistry:
    def __init__(self, idle_seconds: float = DEFAULT_IDLE_SECONDS, max_contexts: int = 10_000) -> None:
        self.idle_seconds = idle_seconds
        self.max_contexts = max_contexts
        self._contexts: dict[str, ScrollContext] = {}
        self._lock = threading.Lock()

    def open(
        self,
        query: Any,
        total: int,
        page_size: int,
        cursor: Any = None,
        now: float | None = None,
        *,
        returned: int = 0,
    ) -> str:
        """A new context; `cursor` and `returned` describe the page already served, if any."""
        if page_size <= 0:
            raise ValueError("page_size must be > 0")
        t = now if now is not None else time.time()
        with self._lock:
            self._purge(t)
            if len(self._contexts) >= self.max_contexts:  # drop the least recently used
                oldest = min(self._contexts.values(), key=lambda c: c.last_used)
                del self._contexts[oldest.scroll_id]
            sid = new_scroll_id()
            self._contexts[sid] = ScrollContext(sid, query, total, page_size, cursor, returned, t)
        return sid

    def next(self, scroll_id: str, now: float | None = None) -> ScrollContext:
        """The live context of `scroll_id` (touching it); raises ScrollUnknown."""
        t = now if now is not None else time.time()
        with self._lock:
            ctx = self._contexts.get(scroll_id.strip())
            if ctx is None or t - ctx.last_used > self.idle_seconds:
                self._contexts.pop(scroll_id.strip(), None)
                raise ScrollUnknown("No search context found for this scroll_id (unknown or expired)")
            ctx.last_used = t
            return ctx

    def advance(self, scroll_id: str, cursor: Any, returned: int, now: float | None = None) -> ScrollContext:
        """Record a served page: the new cursor and how many records it held."""
        ctx = self.next(scroll_id, now)
        with self._lock:
            ctx.cursor = cursor
            ctx.returned += returned
        return ctx

    def close(self, scroll_id: str) -> None:
        with self._lock:
            self._contexts.pop(scroll_id, None)

    def _purge(self, now: float) -> None:
        for sid in [s for s, c in self._contexts.items() if now - c.last_used > self.idle_seconds]:
            del self._contexts[sid]

    def __len__(self) -> int:
        return len(self._contexts)
