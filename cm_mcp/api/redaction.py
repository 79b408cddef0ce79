"""Secrets out of every log record, ours and the libraries' (httpx2, uvicorn, the mcp SDK).

What is hidden, in any record at any level:
- the query string of any URL or request path (`…/part.gz?X-Amz-Signature=…` -> `…/part.gz?[REDACTED]`):
  a presigned URL's query *is* its credential, and httpx2 logs every request URL at INFO;
- every JWT-shaped string and every `Bearer <value>` (`auth.redact`);
- every secret registered here: the API token and the HTTP transport's bearer token, which may be
  opaque strings that no pattern recognises (Settings registers them as it reads them).

Why a log-record factory rather than a handler filter: a filter sees only the records of the handlers
it is attached to, and libraries bring their own (uvicorn's default config installs handlers on its
loggers with `propagate: False`). The factory runs when any logger in the process creates a record,
before any handler or formatter sees it, so no configuration done later can route around it.
"""

from __future__ import annotations

import logging
import re
import threading
from typing import Any, Final

from cm_mcp.api.auth import REDACTED, redact

#: `?` then at least one `key=value` pair, up to whitespace, a quote, `<`/`>` or a fragment: the query of
#: a URL (`https://h/p?a=b`) or of a request line in an access log (`"GET /p?a=b HTTP/1.1"`). A query
#: without `=` (`/p?x`) carries no parameter, hence no signature.
_QUERY: Final = re.compile(r"\?[^\s\"'<>#?]*=[^\s\"'<>#]*")

#: Registered secrets, longest first (one may contain another); replaced whole, never mutated, so
#: readers need no lock.
_known_secrets: tuple[str, ...] = ()
_lock = threading.Lock()
_installed = False


def register_secret(value: str | None) -> None:
    """Hide `value` from every log record from now on (too-short values are ignored, see auth.redact)."""
    global _known_secrets
    if not value or not value.strip():
        return
    with _lock:
        if value.strip() not in _known_secrets:
            _known_secrets = tuple(sorted({*_known_secrets, value.strip()}, key=len, reverse=True))


def redact_text(text: str) -> str:
    """`text` without URL query strings, JWTs, `Bearer` values or registered secrets."""
    return _QUERY.sub(f"?{REDACTED}", redact(text, _known_secrets))


def redact_record(record: logging.LogRecord) -> logging.LogRecord:
    """`record`, changed in place so that nothing formatted from it can show a secret."""
    try:
        message = record.getMessage()
    except Exception:  # a bad format string: logging reports it later, with msg and args, so clean both
        record.msg = redact_text(str(record.msg))
        if isinstance(record.args, tuple):
            record.args = tuple(redact_text(str(arg)) for arg in record.args)
        return record
    clean = redact_text(message)
    if clean != message:
        record.msg, record.args = _redacted_msg_and_args(record, clean)
    if record.exc_info and record.exc_info[0] is not None:
        # Formatters reuse `exc_text` when it is set, so the traceback is formatted (and cleaned) once here.
        record.exc_text = redact_text(logging.Formatter().formatException(record.exc_info))
    if record.exc_text:
        record.exc_text = redact_text(record.exc_text)
    if record.stack_info:
        record.stack_info = redact_text(record.stack_info)
    return record


def _redacted_msg_and_args(record: logging.LogRecord, clean: str) -> tuple[Any, Any]:
    # Keep the (msg, args) shape when cleaning the string arguments is enough: some formatters read
    # `record.args` themselves (uvicorn's access formatter unpacks them). Otherwise: the clean message.
    if isinstance(record.args, tuple) and record.args:
        args = tuple(redact_text(arg) if isinstance(arg, str) else arg for arg in record.args)
        try:
            if str(record.msg) % args == clean:
                return record.msg, args
        except Exception:
            pass
    return clean, ()


def install_log_redaction() -> None:
    """Wrap the process's log-record factory (idempotent): every record is cleaned as it is created."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
    previous = logging.getLogRecordFactory()

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        return redact_record(previous(*args, **kwargs))

    logging.setLogRecordFactory(factory)
