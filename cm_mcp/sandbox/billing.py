"""Billing summaries (`/v1/query`) for every domain in the data, scenario-only domains included.

Each domain's static facts (client, WBS, contact, ticket rate...) come from an RNG seeded with the data
seed *and the domain's name*, so a domain's summary never changes when a scenarios file adds others.
"""

from __future__ import annotations

import random
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any, Final

_WBS_LETTERS: Final = "ABCDEFGHJKLMNPQRSTUVWXYZ"
_CLIENTS: Final = ("CMClient", "Northwind Traders", "Contoso Ltd", "Fabrikam Inc", "Globex Corp")
#: One retired domain keeps billing interesting (and queryable): no tickets, live_status inactive.
INACTIVE_DOMAINS: Final = frozenset({"reports.example.com"})
_SUMMARY_FACTS: Final = ("client", "live_status", "WBS", "created", "infra_type", "billing_type")


def billing_profile(domain: str, application: str, infra_type: str, seed: int = 42) -> dict[str, Any]:
    """The static billing facts of one domain (the `summary` fields but ticket_count and time_range)."""
    rng = random.Random(f"{seed}:billing:{domain}")
    created = datetime(2024, 1, 1, 12, tzinfo=UTC) + timedelta(days=rng.randrange(0, 600))
    team = domain.split(".")[0]
    return {
        "domain": domain,
        "client": rng.choice(_CLIENTS),
        "live_status": "inactive" if domain in INACTIVE_DOMAINS else "active",
        "WBS": f"{rng.randrange(1000, 9999)}{''.join(rng.choices(_WBS_LETTERS, k=4))}",
        "created": created.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "infra_type": "EC2" if infra_type == "ec2" else "KUBERNETES",
        "billing_type": rng.choice(("monthly", "monthly", "annual", "usage")),
        "point_of_contact": f"{team}-team@example.com",
        "application": application,
        "tickets_per_day": round(5 + rng.random() * 40, 2),
    }


def billing_profiles(domains: Mapping[str, tuple[str, str]], seed: int = 42) -> dict[str, dict[str, Any]]:
    """Profiles of `domains` (name -> (application, infra_type)), e.g. `data.billed_domains(spec)`."""
    return {name: billing_profile(name, app, infra, seed) for name, (app, infra) in domains.items()}


def billing_summary(
    profile: Mapping[str, Any], time_range: str, start: datetime, end: datetime
) -> dict[str, Any]:
    """The `/v1/query` `summary` of a domain over [start, end).

    ticket_count is the domain's ticket rate times the range length (deterministic; inactive domains
    have none); the echoed `time_range` is the request's expression.
    """
    days = max((end - start).total_seconds(), 0.0) / 86400
    rate = profile["tickets_per_day"] if profile["live_status"] == "active" else 0.0
    return {
        "ticket_count": int(rate * days + 0.5),
        "domain": profile["domain"],
        "time_range": time_range,
        **{key: profile[key] for key in _SUMMARY_FACTS},
        "point_of_contact": profile["point_of_contact"],
    }
