"""The placeholder machinery of the sandbox data: value pools and compiled message templates.

Templates are compiled once into a ``%``-format string plus a tuple of value pools, so filling one
costs one tuple build and one ``%`` (the generator's hot loop runs this hundreds of thousands of
times at start-up). Pools are pre-drawn from a seeded RNG, which keeps the output deterministic.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Final

from cm_mcp.sandbox.catalogue import EVENT_ORIGINS, Template

# ---------------------------------------------------------------------------------------------------------
# Placeholders
# ---------------------------------------------------------------------------------------------------------

_WORDS: Final = [
    "customer_id",
    "order_id",
    "tenant",
    "region",
    "amount",
    "currency",
    "sku",
    "payload",
    "user_id",
    "event_type",
    "source",
    "account",
    "invoice",
    "shipment",
    "profile",
    "catalog",
    "pricing",
    "inventory",
    "session",
    "billing",
    "metrics",
    "audit",
    "alerts",
    "device",
    "channel",
    "campaign",
    "segment",
    "ledger",
    "refund",
]
_PATH_STEMS: Final = [
    "/api/v1/orders",
    "/api/v1/users",
    "/api/v1/payments",
    "/api/v2/accounts",
    "/health",
    "/api/v1/search",
    "/api/v1/cart",
    "/api/v1/tickets",
    "/api/v2/reports",
    "/api/v1/sessions",
    "/internal/metrics",
    "/api/v1/refunds",
]
_TABLES: Final = [
    "orders",
    "customers",
    "events_daily",
    "sessions",
    "invoices",
    "shipments",
    "page_views",
    "ledger_entries",
]
_JAVA_FRAMES: Final = (
    "com.example.pay.PaymentService.capture(PaymentService.java:{n})",
    "com.example.cart.CartController.update(CartController.java:{n})",
    "com.example.core.RetryTemplate.execute(RetryTemplate.java:{n})",
    "com.example.auth.TokenFilter.doFilter(TokenFilter.java:{n})",
)


def _hexs(rng: random.Random, bits: int) -> str:
    return f"{rng.getrandbits(bits):0{bits // 4}x}"


def _uuid(rng: random.Random) -> str:
    h = _hexs(rng, 128)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-{'89ab'[int(h[16], 16) & 3]}{h[17:20]}-{h[20:]}"


def _ip(rng: random.Random) -> str:
    r = rng.random()
    if r < 0.6:
        return f"10.{rng.randrange(0, 8)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
    if r < 0.8:
        return f"172.{rng.randrange(16, 32)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"
    return f"{rng.randrange(20, 223)}.{rng.randrange(0, 256)}.{rng.randrange(0, 256)}.{rng.randrange(1, 255)}"


def _lognormal_int(rng: random.Random, median: float, sigma: float) -> str:
    return str(max(1, int(rng.lognormvariate(0, sigma) * median)))


def _user(rng: random.Random) -> str:
    first = rng.choice(
        [
            "alice",
            "bob",
            "carol",
            "dave",
            "erin",
            "frank",
            "grace",
            "heidi",
            "ivan",
            "judy",
            "mallory",
            "niaj",
            "olivia",
            "peggy",
        ]
    )
    return f"{first}.{rng.choice(['smith', 'jones', 'brown', 'lee', 'garcia', 'miller', 'davis', 'wilson', 'moore', 'taylor'])}"


#: Placeholder kind -> function drawing one value from an RNG. The first six are the documented ones
#: for scenario files ({int} {ip} {hex} {uuid} {word} {path}); the rest feed the built-in catalogues.
GENERATORS: Final[dict[str, Callable[[random.Random], str]]] = {
    "int": lambda r: str(r.randrange(1, 100_000)),
    "ip": _ip,
    "hex": lambda r: _hexs(r, 32),
    "uuid": _uuid,
    "word": lambda r: r.choice(_WORDS),
    "path": lambda r: r.choice(_PATH_STEMS) + (f"/{r.randrange(1, 99_999)}" if r.random() < 0.5 else ""),
    "ms": lambda r: _lognormal_int(r, 40, 0.8),
    "slow_ms": lambda r: str(r.randrange(1_000, 30_000)),
    "lambda_ms": lambda r: f"{r.lognormvariate(0, 0.9) * 80:.2f}",
    "sec": lambda r: f"{r.lognormvariate(0, 0.7) * 20:.1f}",
    "count": lambda r: str(r.randrange(1, 64)),
    "attempt": lambda r: str(r.randrange(1, 4)),
    "big": lambda r: str(r.randrange(1_000_000, 900_000_000)),
    "bytes": lambda r: str(int(r.lognormvariate(0, 1.2) * 200_000)),
    "pct": lambda r: str(r.randrange(50, 100)),
    "port": lambda r: r.choice(("443", "8080", "5432", "6379", "9092", "8443", "3306")),
    "host": lambda r: f"ip-10-{r.randrange(0, 8)}-{r.randrange(0, 256)}-{r.randrange(1, 255)}.ec2.internal",
    "method": lambda r: r.choices(("GET", "POST", "PUT", "DELETE", "PATCH"), (60, 25, 8, 4, 3))[0],
    "status_ok": lambda r: r.choices(("200", "201", "204", "304"), (80, 8, 7, 5))[0],
    "status_4xx": lambda r: r.choices(("400", "401", "403", "404", "409", "429"), (30, 15, 10, 30, 5, 10))[0],
    "status_5xx": lambda r: r.choices(("500", "502", "503", "504"), (40, 25, 20, 15))[0],
    "user": _user,
    "email": lambda r: f"{_user(r)}@example.org",
    "txn": lambda r: f"txn_{_hexs(r, 48)}",
    "order": lambda r: f"ORD-{r.randrange(100_000, 999_999)}",
    "ticket": lambda r: r.choice(("INC", "SR", "CHG")) + str(r.randrange(1_000_000, 9_999_999)),
    "wl": lambda r: f"wl-{_hexs(r, 48)}",
    "qid": lambda r: f"q_{_hexs(r, 32)}",
    "sku": lambda r: f"SKU-{r.randrange(10_000, 99_999)}",
    "account": lambda r: f"ACC{r.randrange(10_000_000, 99_999_999)}",
    "amount": lambda r: f"{r.lognormvariate(0, 1) * 40:.2f}",
    "currency": lambda r: r.choices(("EUR", "USD", "GBP", "CHF"), (5, 4, 2, 1))[0],
    "channel": lambda r: r.choice(("email", "sms", "push", "webhook")),
    "bool": lambda r: r.choice(("true", "false")),
    "hitmiss": lambda r: r.choices(("hit", "miss"), (4, 1))[0],
    "table": lambda r: r.choice(_TABLES),
    "date": lambda r: f"2026-{r.randrange(1, 13):02d}-{r.randrange(1, 29):02d}",
    "origin": lambda r: r.choice(tuple(EVENT_ORIGINS)),
    "s3err": lambda r: r.choice(
        ("SlowDown: Please reduce your request rate", "RequestTimeout", "503 Service Unavailable")
    ),
    "java_frame": lambda r: r.choice(_JAVA_FRAMES).replace("{n}", str(r.randrange(20, 900))),
}
#: The placeholders a scenario file may use (documented in the README); the catalogues may use all.
SCENARIO_PLACEHOLDERS: Final = ("int", "ip", "hex", "uuid", "word", "path")

_PLACEHOLDER_RE: Final = re.compile(r"\{\{|\}\}|\{([a-z_][a-z0-9_]*)\}")
POOL_BITS: Final = 12  # 4096 pre-drawn values per kind: plenty of variety, cheap to build


def placeholders_in(template: str) -> list[str]:
    """The placeholder kinds `template` uses, in order (``{{``/``}}`` are literal braces)."""
    return [m.group(1) for m in _PLACEHOLDER_RE.finditer(template) if m.group(1)]


def unknown_placeholders(template: str) -> list[str]:
    return [k for k in placeholders_in(template) if k not in GENERATORS]


class Pools:
    """Pre-drawn values per placeholder kind (deterministic for a seed).

    `pick(kind)` draws with `getrandbits`, the cheapest call on `random.Random`.
    """

    def __init__(self, seed: int | str) -> None:
        self._seed = seed
        self._pools: dict[str, list[str]] = {}

    def pool(self, kind: str) -> list[str]:
        p = self._pools.get(kind)
        if p is None:
            # One RNG per kind: adding a kind never shifts the values of the others.
            rng = random.Random(f"{self._seed}:{kind}")
            gen = GENERATORS[kind]
            p = [gen(rng) for _ in range(1 << POOL_BITS)]
            self._pools[kind] = p
        return p


@dataclass(frozen=True)
class CompiledTemplate:
    """A template as a `%`-format string and the pools for its `%s` slots."""

    fmt: str
    pools: tuple[list[str], ...]

    def render(self, rng: random.Random) -> str:
        if not self.pools:
            return self.fmt
        bits = rng.getrandbits
        return self.fmt % tuple([p[bits(POOL_BITS)] for p in self.pools])


def compile_template(template: str, pools: Pools) -> CompiledTemplate:
    """Compile `template`; unknown ``{kind}`` raise KeyError (validate scenario input beforehand)."""
    out: list[str] = []
    kinds: list[list[str]] = []
    pos = 0
    for m in _PLACEHOLDER_RE.finditer(template):
        out.append(template[pos : m.start()].replace("%", "%%"))
        tok = m.group(0)
        if tok == "{{":
            out.append("{")
        elif tok == "}}":
            out.append("}")
        else:
            out.append("%s")
            kinds.append(pools.pool(m.group(1)))
        pos = m.end()
    out.append(template[pos:].replace("%", "%%"))
    fmt = "".join(out)
    if not kinds:
        fmt = fmt.replace("%%", "%")  # rendered verbatim, without `%`
    return CompiledTemplate(fmt, tuple(kinds))


def stream_template_table(
    catalogue: Sequence[Template],
    stem: str,
    rng: random.Random,
    levels: Mapping[str, float] | None = None,
    size: int = 1 << POOL_BITS,
) -> list[int]:
    """`size` template indexes drawn by weight among the templates allowed for `stem`.

    Picking ``table[getrandbits(12)]`` per record is far cheaper than a weighted draw per record,
    and per-stream tables keep domain-specific messages on their own domain. `levels` multiplies the
    weights of a level's templates (a noisy stream has more ERROR, see variation.py).
    """
    factor = levels or {}
    idx = [i for i, t in enumerate(catalogue) if not t[3] or stem in t[3]]
    return rng.choices(idx, weights=[catalogue[i][1] * factor.get(catalogue[i][0], 1.0) for i in idx], k=size)


def cumulative(weights: Sequence[float]) -> list[float]:
    """Cumulative weights for `random.choices(..., cum_weights=...)` (saves a pass per call)."""
    acc = 0.0
    out = []
    for w in weights:
        acc += w
        out.append(acc)
    return out


def pod_suffix(rng: random.Random) -> str:
    """A kubernetes-style replica-set + pod suffix, e.g. ``7d9f8c6b5-x2kqz``."""
    alnum = string.ascii_lowercase + string.digits
    return f"{_hexs(rng, 36)[:9]}-{''.join(rng.choice(alnum) for _ in range(5))}"
