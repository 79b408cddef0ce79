"""Settings of one sandbox run (CLI flags map 1:1 onto these fields)."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, field_validator

from cm_mcp.sandbox.batchjobs import FileFormat
from cm_mcp.sandbox.data import DEFAULT_VOLUME, DEFAULT_WORKLOADS_PER_DAY
from cm_mcp.sandbox.faults import FaultConfig
from cm_mcp.sandbox.quotas import DEFAULT_LIMITS
from cm_mcp.sandbox.scrolls import DEFAULT_IDLE_SECONDS


class SandboxConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    host: str = "127.0.0.1"
    port: int = Field(8766, ge=0, le=65535)
    seed: int = 42
    volume: int = Field(DEFAULT_VOLUME, ge=0, description="logs per day across all applications")
    workloads_per_day: int = Field(DEFAULT_WORKLOADS_PER_DAY, ge=0)
    window_days: int = Field(7, ge=1, le=90)
    builtin_incidents: bool = True
    scenarios_file: Path | None = None
    batch_seconds: float = Field(3.0, ge=0, description="time for a whole batch job to complete")
    file_format: FileFormat = "ndjson.gz"
    target_per_partition: int = Field(100_000, gt=0, description="records per batch partition (at least 1)")
    presign_expires_seconds: int = Field(900, ge=1, le=7 * 24 * 3600)
    faults: FaultConfig = Field(default_factory=FaultConfig)
    #: daily limit per endpoint family (endpoint name); families not listed keep their default
    quota_limits: dict[str, int | None] = Field(default_factory=lambda: dict(DEFAULT_LIMITS))
    token_ttl_hours: float = Field(2.0, gt=0, description="batch token lifetime")
    jwt_ttl_hours: float = Field(12.0, gt=0)
    scroll_idle_seconds: float = Field(DEFAULT_IDLE_SECONDS, gt=0)
    data_dir: Path | None = Field(None, description="index cache and batch files; None = platform cache dir")

    @field_validator("quota_limits")
    @classmethod
    def _known_families(cls, limits: dict[str, int | None]) -> dict[str, int | None]:
        unknown = sorted(set(limits) - set(DEFAULT_LIMITS))
        if unknown:
            raise ValueError(
                f"unknown quota families {', '.join(unknown)}; known: {', '.join(DEFAULT_LIMITS)}"
            )
        negative = sorted(name for name, limit in limits.items() if limit is not None and limit < 0)
        if negative:
            raise ValueError(f"daily limits must be >= 0 ({', '.join(negative)})")
        return limits
