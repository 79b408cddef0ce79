"""The twelve Central Monitoring API endpoints, as one table.

Everything that needs to know about an endpoint (the client, the quota tracker, the sandbox's own quotas,
the error classifier) reads it from here, so adding or renaming an endpoint touches one place.

Quota families: the reference does not say how the daily quota is scoped (item 36) and its samples hint
at separate budgets (480 for V1, 47-49 for V2 scroll/batch, 999 for aggs), so every endpoint that
reports a remaining count is its own family. The batch status endpoints report no count (item 35) and
whether polling costs quota is unknown (item 30): their family is None, i.e. not tracked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Final, Literal

ApiVersion = Literal["v1", "v2"]

#: Where a successful response carries the remaining daily quota (item 35).
V1_QUOTA_FIELD: Final = "daily_requests_remaining"
V2_QUOTA_FIELD: Final = "meta.rate_limit.daily_remaining"


@dataclass(frozen=True)
class Endpoint:
    """One POST endpoint: `name` is the stable identifier used across cm-mcp (tools, quotas, logs)."""

    name: str
    path: str
    version: ApiVersion
    #: quota family (None: untracked, the batch status endpoints)
    family: str | None
    #: dotted path of the remaining-quota field in a 200 body, None when the endpoint reports none
    quota_field: str | None

    @property
    def is_batch_status(self) -> bool:
        """True for the endpoints that take a batch token (a 404 there means the token is unknown/expired)."""
        return self.name in _BATCH_STATUS_NAMES

    @property
    def is_deprecated(self) -> bool:
        """The V1 logs endpoints, retired on 2026-03-01 (items 1-2); billing (/v1/query) is not."""
        return self.path.startswith("/v1/logs/")


_BATCH_STATUS_NAMES: Final = frozenset({"logs_batch_status", "workloads_batch_status", "v1_logs_batch_urls"})


def _tracked(name: str, path: str, version: ApiVersion) -> Endpoint:
    quota_field = V1_QUOTA_FIELD if version == "v1" else V2_QUOTA_FIELD
    return Endpoint(name=name, path=path, version=version, family=name, quota_field=quota_field)


def _untracked(name: str, path: str, version: ApiVersion) -> Endpoint:
    return Endpoint(name=name, path=path, version=version, family=None, quota_field=None)


_TABLE: Final = (
    _tracked("logs_scroll", "/v2/logs/scroll", "v2"),
    _tracked("logs_batch", "/v2/logs/batch", "v2"),
    _untracked("logs_batch_status", "/v2/logs/batch/status", "v2"),
    _tracked("logs_aggs", "/v2/logs/aggs", "v2"),
    _tracked("workloads_scroll", "/v2/workloads/scroll", "v2"),
    _tracked("workloads_batch", "/v2/workloads/batch", "v2"),
    _untracked("workloads_batch_status", "/v2/workloads/batch/status", "v2"),
    _tracked("workloads_aggs", "/v2/workloads/aggs", "v2"),
    _tracked("v1_logs_scroll", "/v1/logs/scroll", "v1"),
    _tracked("v1_logs_batch", "/v1/logs/batch", "v1"),
    _untracked("v1_logs_batch_urls", "/v1/logs/batch/urls", "v1"),
    _tracked("billing_query", "/v1/query", "v1"),
)

#: Every endpoint by name, in the reference's order.
ENDPOINTS: Final[Mapping[str, Endpoint]] = MappingProxyType({endpoint.name: endpoint for endpoint in _TABLE})

#: Every endpoint by path (`/v2/logs/scroll`).
ENDPOINTS_BY_PATH: Final[Mapping[str, Endpoint]] = MappingProxyType(
    {endpoint.path: endpoint for endpoint in _TABLE}
)

#: The quota families, i.e. the names of the tracked endpoints.
QUOTA_FAMILIES: Final = tuple(endpoint.family for endpoint in _TABLE if endpoint.family is not None)


def get_endpoint(name_or_path: Endpoint | str) -> Endpoint:
    """Look an endpoint up by name (`logs_scroll`) or path (`/v2/logs/scroll`); KeyError when unknown."""
    if isinstance(name_or_path, Endpoint):
        return name_or_path
    found = ENDPOINTS.get(name_or_path) or ENDPOINTS_BY_PATH.get(name_or_path)
    if found is None:
        known = ", ".join(ENDPOINTS)
        raise KeyError(f"unknown endpoint {name_or_path!r}; known: {known}")
    return found
