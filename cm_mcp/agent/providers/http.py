"""The httpx2 client both provider SDKs are handed: our one HTTP stack, with a notice on retries.

The SDKs retry 429 and 5xx themselves (honouring Retry-After); the response hook only makes those
waits visible on stderr, so a throttled model does not look like a frozen agent.
"""

from __future__ import annotations

from collections.abc import Callable

import httpx2

#: Connect fast, but let a long streamed answer (or a slow local model) take its time between chunks.
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 600.0

Notice = Callable[[str], None]


def provider_http_client(notice: Notice | None = None, *, max_retries: int = 0) -> httpx2.AsyncClient:
    async def on_response(response: httpx2.Response) -> None:
        if notice is None or (response.status_code != 429 and response.status_code < 500):
            return
        retry_after = response.headers.get("retry-after-ms")
        wait = f"{float(retry_after) / 1000:g} s" if retry_after else response.headers.get("retry-after")
        after = f", Retry-After {wait}" if wait else ""
        # the SDKs number their retries in this header (0 on the first attempt)
        attempt = int(response.request.headers.get("x-stainless-retry-count", "0") or 0)
        then = "retrying" if attempt < max_retries else "giving up"
        notice(f"provider answered {response.status_code}{after}; {then}")

    return httpx2.AsyncClient(
        timeout=httpx2.Timeout(READ_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS),
        follow_redirects=True,
        event_hooks={"response": [on_response]},
    )
