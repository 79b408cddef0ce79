"""Fetching one partition file from its presigned URL: checked, streamed, verified, renamed into place.

Rules, in the order they apply:
- The URL's host and port must match CM_DOWNLOAD_ALLOWED_HOSTS (`*.example.com` matches any
  subdomain; `host:9000` names a port, `host:*` any; no port means the scheme's default, 443 for https).
- https only; plain http only for a host listed *exactly* (not through a wildcard), such as the
  sandbox's `127.0.0.1`, so `*.amazonaws.com` never allows a downgrade to http.
- A separate HTTP client with no Authorization header and no redirects: the JWT must never reach
  a file host, and a redirect could lead off the allow-list.
- Streamed to `<name>.part-<random>` in chunks, parsed while it arrives (formats.RecordParser),
  stopped as soon as it exceeds the size limit, renamed into place only when fully verified; any
  failure or cancellation removes the temporary file.
- A complete file with no record at all (0 bytes, blank, or a gzip of nothing) is an empty
  partition, verified against a count of 0 like any other; a damaged one is still an error.
- Parsing and writing run in a worker thread, one chunk per hop: zlib inflates without the GIL, so
  the inflate of one partition overlaps the counting/id regex of another and the event loop stays
  free for the network. Given an `id_sink`, the parser adds the records' `_id`s to it as they
  arrive, so the export knows its distinct count when the last file is verified, without an index.
"""

from __future__ import annotations

import gzip
import os
import secrets
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, BinaryIO, Final, Self
from urllib.parse import urlsplit

import anyio
import httpx2

from cm_mcp import __version__
from cm_mcp.api.tls import default_ssl_context
from cm_mcp.batch.errors import (
    CountMismatchError,
    DownloadError,
    FileTooLargeError,
    HostNotAllowedError,
    InsecureURLError,
    URLExpiredError,
)
from cm_mcp.batch.limits import MAX_FILE_BYTES
from cm_mcp.store.errors import RecordFileError
from cm_mcp.store.files import count_file_records
from cm_mcp.store.formats import (
    CHUNK_BYTES,
    GZIP_MAGIC,
    MAX_DECOMPRESSED_BYTES,
    Compression,
    Layout,
    RecordParser,
)

if TYPE_CHECKING:
    from cm_mcp.api.settings import Settings

#: Connect quickly or fail; reads may be slow on a big object, but not silent for a minute.
CONNECT_TIMEOUT_SECONDS = 10.0
READ_TIMEOUT_SECONDS = 60.0
#: A file this small can be checked whole for being empty; a larger one never is (an empty
#: partition is a few bytes: an empty body, a newline, or a 20-byte gzip of nothing).
_EMPTY_FILE_MAX_BYTES = 64 * 1024


@dataclass(frozen=True)
class DownloadPolicy:
    allowed_hosts: tuple[str, ...] = ("*.amazonaws.com",)
    max_bytes: int = MAX_FILE_BYTES
    max_decompressed_bytes: int = MAX_DECOMPRESSED_BYTES
    chunk_size: int = CHUNK_BYTES

    @classmethod
    def from_settings(cls, settings: Settings) -> DownloadPolicy:
        return cls(
            allowed_hosts=tuple(settings.download_allowed_hosts), max_bytes=settings.max_download_bytes
        )


@dataclass(frozen=True)
class DownloadedFile:
    path: Path
    bytes: int
    records: int
    compression: Compression
    layout: Layout
    meta: dict[str, str] = field(default_factory=dict)

    @property
    def format(self) -> str:
        """`ndjson`, `ndjson.gz`, `json` or `json.gz`: also the file's extension."""
        return file_format(self.layout, self.compression)


def file_format(layout: Layout, compression: Compression) -> str:
    return layout + (".gz" if compression == "gzip" else "")


DEFAULT_PORTS: Final = {"https": 443, "http": 80}


def host_matches(host: str, pattern: str, port: int | None = None, *, default_port: int = 443) -> bool:
    """Does the allow-list entry `pattern` admit `host` on `port` (None: the URL named no port)?

    An entry is `name[:port]`: `name` is a host (IPv6 in brackets) or `*.` + a domain, matching any of
    its subdomains (not the domain itself); `:port` names the one port allowed, `:*` any port, and no
    port means the scheme's default only (`default_port`: 443 for https, 80 for http). So
    `*.amazonaws.com` admits `https://bucket.s3.amazonaws.com/…` but not `…amazonaws.com:8443/…`, and
    `s3.local:9000` admits `http://s3.local:9000/…` only.
    """
    name, allowed_port = _split_entry(pattern)
    host = host.lower().strip("[]").rstrip(".")
    if name.startswith("*."):
        if not (host.endswith(name[1:]) and len(host) > len(name) - 1):
            return False
    elif host != name:
        return False
    wanted = default_port if port is None else port
    return allowed_port == "*" or (allowed_port or default_port) == wanted


def _split_entry(pattern: str) -> tuple[str, int | str | None]:
    """`name[:port|:*]` -> (lower-case name without brackets, port / "*" / None)."""
    pattern = pattern.lower().strip()
    if pattern.startswith("["):  # [v6]:port
        name, _, rest = pattern[1:].partition("]")
        port_text = rest.removeprefix(":") if rest.startswith(":") else ""
    elif pattern.count(":") == 1:
        name, _, port_text = pattern.partition(":")
    else:  # a name, or a bare IPv6 address (no port possible)
        name, port_text = pattern, ""
    name = name.rstrip(".")
    if port_text == "*":
        return name, "*"
    return name, int(port_text) if port_text.isdigit() else None


def check_url(url: str, policy: DownloadPolicy) -> str:
    """The URL's host if the policy allows fetching it; HostNotAllowedError / InsecureURLError if not."""
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not host:
        raise DownloadError(f"not an http(s) URL: {_redact_url(url)}")
    try:
        port = parts.port
    except ValueError:
        raise DownloadError(f"not a valid port in the URL: {_redact_url(url)}") from None
    default = DEFAULT_PORTS[scheme]
    matching = [
        pattern for pattern in policy.allowed_hosts if host_matches(host, pattern, port, default_port=default)
    ]
    if not matching:
        shown = host if port is None else f"{host}:{port}"
        raise HostNotAllowedError(shown, policy.allowed_hosts)
    if scheme == "http" and all(_split_entry(pattern)[0].startswith("*.") for pattern in matching):
        raise InsecureURLError(
            f"Refusing plain-http download from {host!r}: only https is allowed unless the host is "
            "listed exactly (not by a wildcard) in CM_DOWNLOAD_ALLOWED_HOSTS."
        )
    return host


def _redact_url(url: str) -> str:
    # The query string of a presigned URL is a credential: never log or report it.
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}{parts.path}"


class Downloader:
    """One HTTP client for file hosts (no Authorization header ever), shared by concurrent fetches."""

    def __init__(self, policy: DownloadPolicy, *, transport: httpx2.AsyncBaseTransport | None = None) -> None:
        self.policy = policy
        self._http = httpx2.AsyncClient(
            timeout=httpx2.Timeout(READ_TIMEOUT_SECONDS, connect=CONNECT_TIMEOUT_SECONDS),
            follow_redirects=False,
            # identity: we store the object's bytes as they are and detect gzip from its magic bytes.
            headers={"User-Agent": f"cm-mcp/{__version__}", "Accept-Encoding": "identity"},
            verify=default_ssl_context(),
            transport=transport,
        )

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def fetch(
        self,
        url: str,
        directory: Path,
        stem: str,
        *,
        expected_records: int | None = None,
        id_sink: set[bytes] | None = None,
        on_bytes: Callable[[int], None] | None = None,
    ) -> DownloadedFile:
        """Download, verify and store `url` as `directory/stem.<format>`; the records' de-duplication
        keys (formats.record_key) go into `id_sink` while the file is parsed, so a file that then
        fails to verify may have added some. `on_bytes` gets the size of each chunk as it arrives
        (progress of a long download).

        Raises URLExpiredError (403), DownloadError, FileTooLargeError, RecordFileError (corrupt,
        truncated, unknown format) or CountMismatchError; the target never exists after a failure.
        An empty file is a DownloadedFile with 0 records.
        """
        host = check_url(url, self.policy)
        await anyio.Path(directory).mkdir(parents=True, exist_ok=True)
        temp = directory / f"{stem}.part-{secrets.token_hex(4)}"
        parser = RecordParser(id_sink=id_sink, max_decompressed=self.policy.max_decompressed_bytes)
        received = 0
        try:
            async with self._http.stream("GET", url) as response:
                self._check_status(response, host)
                declared = response.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > self.policy.max_bytes:
                    raise FileTooLargeError(
                        f"the file at {host} is {int(declared):,} bytes, above the limit of "
                        f"{self.policy.max_bytes:,} bytes"
                    )
                out = await anyio.to_thread.run_sync(open, temp, "wb")
                try:
                    async for chunk in response.aiter_raw(self.policy.chunk_size):
                        received += len(chunk)
                        if on_bytes is not None:
                            on_bytes(len(chunk))
                        if received > self.policy.max_bytes:
                            raise FileTooLargeError(
                                f"the file at {host} exceeded the limit of {self.policy.max_bytes:,} bytes "
                                "while downloading; the download was stopped"
                            )
                        await anyio.to_thread.run_sync(_consume, parser, out, chunk)
                    unreadable = await anyio.to_thread.run_sync(_finish, parser)
                finally:
                    with anyio.CancelScope(shield=True):
                        await anyio.to_thread.run_sync(out.close)
                headers = {
                    k: v for k, v in response.headers.items() if k in ("content-type", "content-encoding")
                }
            if unreadable is not None:
                # No record at all: an empty partition if the file is whole, else the parser's error.
                if parser.layout is not None or not await anyio.to_thread.run_sync(_is_blank_file, temp):
                    raise unreadable
                parser.layout = "ndjson"
            records = parser.records
            if expected_records is not None and records != expected_records and parser.approximate:
                # The fast newline count includes blank lines: count exactly before calling it short.
                exact = await anyio.to_thread.run_sync(lambda: count_file_records(temp, exact=True))
                records = exact.records
            if expected_records is not None and records != expected_records:
                raise CountMismatchError(expected_records, records)
            assert parser.compression is not None
            assert parser.layout is not None
            result = DownloadedFile(
                path=directory / f"{stem}.{file_format(parser.layout, parser.compression)}",
                bytes=received,
                records=records,
                compression=parser.compression,
                layout=parser.layout,
                meta=headers,
            )
            os.replace(temp, result.path)
            return result
        except httpx2.HTTPError as exc:
            raise DownloadError(f"downloading from {host} failed: {type(exc).__name__}: {exc}") from exc
        finally:
            # Also on cancellation: a half-written file must never be mistaken for a download.
            temp.unlink(missing_ok=True)

    @staticmethod
    def _check_status(response: httpx2.Response, host: str) -> None:
        status = response.status_code
        if status == 200:
            return
        if status == 403:
            raise URLExpiredError(f"HTTP 403 from {host}: the presigned URL has expired or is invalid")
        if 300 <= status < 400:
            raise DownloadError(f"HTTP {status} redirect from {host}: redirects are not followed")
        raise DownloadError(f"HTTP {status} from {host} while downloading a partition file")


def _finish(parser: RecordParser) -> RecordFileError | None:
    """End of the stream: the parser's complaint, if any (the caller decides whether a complaint
    about a file with no record means an empty partition)."""
    try:
        parser.finish()
    except RecordFileError as exc:
        return exc
    return None


def _is_blank_file(path: Path) -> bool:
    """True for a small, complete file with nothing but whitespace in it (gzip'd or not)."""
    if path.stat().st_size > _EMPTY_FILE_MAX_BYTES:
        return False
    data = path.read_bytes()
    if data[:2] == GZIP_MAGIC:
        try:
            data = gzip.decompress(data)  # raises on a truncated stream or a bad CRC
        except (OSError, EOFError, zlib.error):
            return False
    return not data.strip(b" \t\r\n")


def _consume(parser: RecordParser, out: BinaryIO, chunk: bytes) -> None:
    """One chunk, in a worker thread: verified (parsed/counted, `_id`s collected), then written."""
    parser.feed(chunk)
    out.write(chunk)
