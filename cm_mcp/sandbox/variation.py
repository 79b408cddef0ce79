"""The ordinary variation of the sandbox's background data: what makes finding an incident a real test.

Real monitoring data is never flat, so neither is the sandbox's. Every stream (a domain of atr, klewer or
quasar; a log group x tenant x stage of EventOps; a workflow of atr workloads) has:

- a daily and a weekly shape (`Shape`): the UTC hour its traffic peaks, how wide the busy part of the
  day is, how quiet its night is, and how busy its weekend is relative to a weekday. Nightly ETL peaks
  at 02:00, the shop in the evening and at weekends, office tools at 10:00 on weekdays only;
- a level mix of its own (`Profile.levels`: multipliers on the catalogue's weights of a level), so some
  streams are naturally noisy (notify.example.com logs ~10 % ERROR where pay.example.com logs ~3.5 %);
- benign episodes (bursts.py): deploys, cron jobs, retry blips, error flaps, login-failure storms,
  listed with their exact times and counts by ``GET /_sandbox/episodes``;
- for workloads, per-workflow schedules, failure mixes and duration spreads, slower runs in busy hours,
  a long tail of slow runs and small clusters of benign failures (`WORKFLOW_PROFILES`,
  `WORKLOAD_FAILURE_CLUSTERS`).

Everything is drawn from RNGs seeded by the data seed.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache
from typing import Final

# ---------------------------------------------------------------------------------------------------------
# Shapes and profiles
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Shape:
    """Relative traffic over a week: a bell around `peak_hour` (UTC) on a night `floor`, times `weekend`."""

    peak_hour: float
    width: float  # hours; the bell is exp(-(distance / width)^2)
    floor: float  # the quietest hour's traffic relative to the peak
    weekend: float = 1.0  # Saturday/Sunday relative to a weekday

    def at(self, hour: float, weekday: int) -> float:
        distance = (hour - self.peak_hour + 12) % 24 - 12  # circular: 23:00 is 3 h from a 02:00 peak
        day = self.floor + (1 - self.floor) * math.exp(-((distance / self.width) ** 2))
        return day * (self.weekend if weekday >= 5 else 1.0)

    @cache  # noqa: B019 - a few dozen frozen instances, cached for the life of the process
    def week(self) -> tuple[float, ...]:
        """Traffic in each hour of the week (Monday 00:00 first), divided by the week's mean."""
        values = [self.at(hour + 0.5, day) for day in range(7) for hour in range(24)]
        mean = sum(values) / len(values)
        return tuple(value / mean for value in values)


#: Constant traffic (the shape of a stage that only scales its tenant's).
FLAT: Final = Shape(12, 12, 1.0)
#: Office hours: what most of the traffic of a business follows (also the load that slows workloads).
OFFICE: Final = Shape(13, 4.5, 0.22, 0.55)


@dataclass(frozen=True)
class Profile:
    shape: Shape = OFFICE
    #: multipliers on the catalogue's template weights per level (ERROR 3.0 = three times the errors)
    levels: Mapping[str, float] = field(default_factory=dict)


#: ec2/kubernetes domains. Error shares below are of the domain's ordinary traffic at these settings.
DOMAIN_PROFILES: Final[dict[str, Profile]] = {
    # atr: payments around the clock, an office console, morning logins, a flaky notifier
    "pay.example.com": Profile(Shape(13, 5, 0.3, 0.8)),  # ~3.5 % ERROR
    "ops.example.com": Profile(Shape(10, 3.5, 0.12, 0.3), {"WARN": 1.3}),
    "identity.example.com": Profile(Shape(8.5, 3.5, 0.15, 0.5), {"WARN": 1.8}),  # failed logins
    "notify.example.com": Profile(Shape(15, 4.5, 0.3, 0.7), {"ERROR": 3.0, "WARN": 1.5}),  # ~9 % ERROR
    "legacy.example.com": Profile(Shape(12, 3, 0.05, 0.1), {"ERROR": 2.0}),
    # klewer: evening and weekend shopping, a WARN-heavy search cluster, an office CMS
    "shop.example.com": Profile(Shape(19, 4, 0.2, 1.3)),
    "search.example.com": Profile(Shape(19, 4.5, 0.25, 1.2), {"WARN": 2.0}),
    "cms.example.com": Profile(Shape(10, 3, 0.1, 0.2)),
    "labs.example.com": Profile(Shape(14, 3, 0.05, 0.1), {"ERROR": 2.5, "DEBUG": 3.0}),
    # quasar: interactive queries by day, ETL by night, reports early morning on weekdays
    "data.example.com": Profile(Shape(14, 4, 0.2, 0.4)),
    "etl.example.com": Profile(Shape(2, 2.5, 0.35, 1.0)),
    "reports.example.com": Profile(Shape(7, 2, 0.08, 0.15)),
}
DEFAULT_PROFILE: Final = Profile()

#: EventOps tenants live in different time zones.
TENANT_SHAPES: Final[dict[str, Shape]] = {
    "acme": Shape(14, 5, 0.25, 0.6),
    "globex": Shape(3, 4, 0.2, 0.6),  # APAC
    "initech": Shape(16, 4, 0.2, 0.5),
    "umbrella": Shape(20, 4, 0.25, 0.7),
    "stark": Shape(13, 5, 0.3, 0.8),
    "wayne": Shape(22, 3, 0.1, 0.5),
}
#: Stages scale their tenant's shape: developers test in office hours and break things on dev.
STAGE_PROFILES: Final[dict[str, Profile]] = {
    "prod": Profile(FLAT),
    "staging": Profile(Shape(13, 3.5, 0.05, 0.1), {"ERROR": 1.6, "WARN": 1.3}),
    "dev": Profile(Shape(13, 3.5, 0.03, 0.05), {"ERROR": 3.0, "DEBUG": 4.0}),
}
LOG_GROUP_LEVELS: Final[dict[str, Mapping[str, float]]] = {
    "/aws/lambda/authorizer": {"WARN": 2.0},  # denied tokens
    "/aws/lambda/enrich": {"ERROR": 1.5},
}


def route_profile(log_group: str, tenant: str, stage: str) -> tuple[Shape, Shape, Mapping[str, float]]:
    """An EventOps route's two shapes (tenant, stage: traffic is their product) and level multipliers."""
    stage_profile = STAGE_PROFILES.get(stage, STAGE_PROFILES["prod"])
    levels = dict(LOG_GROUP_LEVELS.get(log_group, {}))
    for level, factor in stage_profile.levels.items():
        levels[level] = levels.get(level, 1.0) * factor
    return TENANT_SHAPES.get(tenant, OFFICE), stage_profile.shape, levels


# ---------------------------------------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WorkflowProfile:
    shape: Shape
    median_seconds: float
    sigma: float  # log-normal spread of durations
    #: final states of finished runs (RUNNING is decided by elapsed time)
    states: Mapping[str, float]


_STATES: Final = {"COMPLETED": 90, "FAILED": 5, "CANCELLED": 3, "TIMED_OUT": 2}
WORKFLOW_PROFILES: Final[dict[str, WorkflowProfile]] = {
    "Incident_Response_Workflow": WorkflowProfile(
        Shape(13, 6, 0.35, 0.7), 240, 0.6, {"COMPLETED": 92, "FAILED": 4, "CANCELLED": 3, "TIMED_OUT": 1}
    ),
    "Scheduled_Maintenance_Workflow": WorkflowProfile(Shape(3, 2, 0.05, 2.0), 900, 0.5, _STATES),
    "Data_Enrichment_Workflow": WorkflowProfile(Shape(12, 5, 0.2, 0.5), 45, 0.7, _STATES),
    "Data_Processing_Workflow": WorkflowProfile(
        Shape(1, 4, 0.3, 1.0), 600, 0.8, {"COMPLETED": 88, "FAILED": 4, "CANCELLED": 2, "TIMED_OUT": 6}
    ),
    "Patch_Deployment_Workflow": WorkflowProfile(
        Shape(21, 2, 0.05, 1.5), 1500, 0.5, {"COMPLETED": 84, "FAILED": 8, "CANCELLED": 3, "TIMED_OUT": 5}
    ),
    "Access_Request_Workflow": WorkflowProfile(
        Shape(10, 3, 0.05, 0.1), 30, 0.9, {"COMPLETED": 88, "FAILED": 2, "CANCELLED": 9, "TIMED_OUT": 1}
    ),
    "Backup_Verification_Workflow": WorkflowProfile(
        Shape(1, 1, 0.02, 1.0), 1200, 0.4, {"COMPLETED": 94, "FAILED": 3, "CANCELLED": 1, "TIMED_OUT": 2}
    ),
    "Certificate_Renewal_Workflow": WorkflowProfile(
        Shape(4, 1.5, 0.05, 1.0), 120, 0.6, {"COMPLETED": 91, "FAILED": 6, "CANCELLED": 1, "TIMED_OUT": 2}
    ),
}
DEFAULT_WORKFLOW: Final = WorkflowProfile(OFFICE, 300, 0.6, _STATES)
#: Runs on some domains are slower (older ec2 hosts) or faster than the workflow's median.
DOMAIN_SPEED: Final[dict[str, float]] = {
    "pay.example.com": 0.9,
    "ops.example.com": 1.2,
    "identity.example.com": 0.8,
    "legacy.example.com": 1.8,
}
#: Busy hours slow runs down: duration x (BUSY_BASE + BUSY_EXTRA x office load in [0, 1]).
BUSY_BASE: Final = 0.85
BUSY_EXTRA: Final = 0.35
#: A few runs take several times their usual duration (big tickets, cold caches).
LONG_TAIL_SHARE: Final = 0.03
LONG_TAIL_FACTOR: Final = (3.0, 8.0)


@dataclass(frozen=True)
class FailureClusters:
    """Small clusters of benign failures: one flaky dependency fails a few runs of one workflow."""

    per_day: float
    runs: tuple[int, int]
    minutes: tuple[float, float]
    states: Mapping[str, float]
    messages: tuple[str, ...]


WORKLOAD_FAILURE_CLUSTERS: Final = FailureClusters(
    per_day=1.2,
    runs=(3, 6),
    minutes=(8, 25),
    states={"FAILED": 3, "TIMED_OUT": 1},
    messages=(
        "Transient error talking to CMDB: connection reset (retry scheduled)",
        "Lock wait timeout exceeded on ticket {int}",
        "Upstream API returned 503, run will be retried",
    ),
)
