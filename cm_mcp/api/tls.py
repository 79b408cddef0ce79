"""The one TLS context of the process, shared by the API client and the download client."""

from __future__ import annotations

import functools
import ssl

import httpx2


@functools.cache
def default_ssl_context() -> ssl.SSLContext:
    """httpx2's default verification (system trust store, SSL_CERT_FILE/SSL_CERT_DIR honoured), built
    once: loading the trust store costs ~30 ms, which every client (one per export) paid again.
    An SSLContext is safe to share between clients and connections."""
    return httpx2.create_ssl_context()
