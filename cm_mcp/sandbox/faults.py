"""Fault injection for the sandbox: everything off by default, switchable at start-up or at runtime.

Start-up: ``--faults error_rate=0.2,latency_ms=50,expired_url`` (`parse_faults`); runtime:
``POST /_sandbox/faults`` with a JSON object of the fields to change (`merge_faults`). Decisions come
from RNGs seeded by `seed`, one per kind of decision (API requests, batch partitions, downloads), so a
fault run can be replayed: the partitions of the n-th batch fail the same way whatever the number and
order of the API requests and downloads around it (concurrency makes that order vary).

Where each fault acts: API requests (latency, error_rate, reset_rate, burst_429: middleware.py); batch
jobs at submission (partition_fail_rate, slow partitions: batchjobs.py); each presigned URL handed out
(expired_url); each download of a partition file (truncated_file_rate, corrupt_file_rate,
download_error_rate: downloads.py). The stored files are never damaged, so a retry can succeed.
"""

from __future__ import annotations

import random
import threading
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

Rate = float  # a probability in [0, 1]


class FaultConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    latency_ms: int = Field(0, ge=0, le=60_000, description="added latency on every API request")
    error_rate: float = Field(0.0, ge=0, le=1, description="fraction of API requests answered 502/503/504")
    reset_rate: float = Field(
        0.0, ge=0, le=1, description="fraction of API requests whose connection is reset"
    )
    burst_429: int = Field(0, ge=0, description="the next N API requests get 429")
    partition_fail_rate: float = Field(0.0, ge=0, le=1, description="fraction of batch partitions that fail")
    slow_partition_factor: float = Field(
        1.0, ge=1, le=1000, description="slow partitions take this many times longer (1 = off)"
    )
    slow_partition_rate: float = Field(0.25, ge=0, le=1, description="fraction of partitions that are slow")
    truncated_file_rate: float = Field(
        0.0, ge=0, le=1, description="fraction of downloads cut mid-transfer (the connection drops)"
    )
    corrupt_file_rate: float = Field(
        0.0, ge=0, le=1, description="fraction of downloads whose bytes arrive damaged"
    )
    download_error_rate: float = Field(
        0.0, ge=0, le=1, description="fraction of downloads answered 500/503 by the file host"
    )
    expired_url: bool = Field(False, description="hand out presigned URLs that have already expired")
    seed: int = 0

    @property
    def active(self) -> bool:
        return self != FaultConfig(seed=self.seed)


class FaultParseError(ValueError):
    pass


def _explain(err: ValidationError) -> str:
    return "; ".join(f"{'.'.join(map(str, e['loc'])) or 'faults'}: {e['msg']}" for e in err.errors())


def parse_faults(text: str | None) -> FaultConfig:
    """Parse ``key=value,key=value`` (a bare ``key`` means true, e.g. ``expired_url``)."""
    raw: dict[str, str] = {}
    for item in (text or "").split(","):
        item = item.strip()
        if not item:
            continue
        key, sep, value = item.partition("=")
        key = key.strip()
        if key not in FaultConfig.model_fields:
            known = ", ".join(FaultConfig.model_fields)
            raise FaultParseError(f"unknown fault {key!r}; known: {known}")
        raw[key] = value.strip() if sep else "true"
    try:
        return FaultConfig.model_validate(raw)
    except ValidationError as err:
        raise FaultParseError(_explain(err)) from None


def merge_faults(base: FaultConfig, body: Any) -> FaultConfig:
    """`base` with the fields of a JSON object replaced (runtime ``POST /_sandbox/faults``)."""
    if not isinstance(body, dict):
        raise FaultParseError("faults body must be a JSON object")
    try:
        return FaultConfig.model_validate({**base.model_dump(), **body})
    except ValidationError as err:
        raise FaultParseError(_explain(err)) from None


FileVariant = Literal["ok", "truncated", "corrupt"]
#: The kinds of decision, each with its own RNG (see the module docstring).
Decision = Literal["api", "partitions", "downloads"]
_DECISIONS: tuple[Decision, ...] = ("api", "partitions", "downloads")


class FaultInjector:
    """Seeded decisions for one FaultConfig; thread-safe (the app serves requests concurrently)."""

    def __init__(self, config: FaultConfig | None = None) -> None:
        self._lock = threading.Lock()
        self.configure(config or FaultConfig())

    def configure(self, config: FaultConfig) -> None:
        with self._lock:
            self.config = config
            self._rngs = {kind: random.Random(f"{config.seed}:{kind}") for kind in _DECISIONS}
            self._burst_left = config.burst_429

    def _chance(self, kind: Decision, rate: float) -> bool:
        if rate <= 0:
            return False
        with self._lock:
            return self._rngs[kind].random() < rate

    def _pick(self, kind: Decision, options: tuple[int, ...]) -> int:
        with self._lock:
            return self._rngs[kind].choice(options)

    def latency_seconds(self) -> float:
        return self.config.latency_ms / 1000

    def take_429(self) -> bool:
        """True while the burst lasts (each call uses one)."""
        with self._lock:
            if self._burst_left > 0:
                self._burst_left -= 1
                return True
            return False

    def connection_reset(self) -> bool:
        return self._chance("api", self.config.reset_rate)

    def api_error_status(self) -> int | None:
        """502, 503 or 504 for a failing request, None otherwise."""
        if not self._chance("api", self.config.error_rate):
            return None
        return self._pick("api", (502, 503, 504))

    def partition_fails(self) -> bool:
        return self._chance("partitions", self.config.partition_fail_rate)

    def partition_slowness(self) -> float:
        """Multiplier for one partition's processing time (1.0 unless it is a slow one)."""
        if self.config.slow_partition_factor <= 1:
            return 1.0
        slow = self._chance("partitions", self.config.slow_partition_rate)
        return self.config.slow_partition_factor if slow else 1.0

    def file_variant(self) -> FileVariant:
        """How one download of a partition file goes (decided per download, like a real network)."""
        if self._chance("downloads", self.config.truncated_file_rate):
            return "truncated"
        if self._chance("downloads", self.config.corrupt_file_rate):
            return "corrupt"
        return "ok"

    def download_error_status(self) -> int | None:
        """500 or 503 for a download the file host fails, None otherwise."""
        if not self._chance("downloads", self.config.download_error_rate):
            return None
        return self._pick("downloads", (500, 503))

    def expired_url(self) -> bool:
        return self.config.expired_url
