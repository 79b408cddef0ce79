"""Names the whole project agrees on: applications, app types and the document field names.

The reference documents these only by example (items 4 and 16 of its open questions); this module is
the one place that states what cm-mcp assumes. The sandbox generates data with exactly these fields
and the summaries look for levels and timestamps here.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Final


class Application(StrEnum):
    ATR = "atr"
    KLEWER = "klewer"
    EVENTOPS = "eventops"
    QUASAR = "quasar"


class AppTypeV1(StrEnum):
    EC2 = "ec2"
    CAAS = "caas"


class AppType(StrEnum):
    """V2 logs app types; workloads accept only ec2 and kubernetes."""

    EC2 = "ec2"
    KUBERNETES = "kubernetes"
    SERVERLESS = "serverless"


WORKLOAD_APPLICATIONS: Final = (Application.ATR,)
WORKLOAD_APP_TYPES: Final = (AppType.EC2, AppType.KUBERNETES)
#: serverless if and only if eventops (reference item 7, applied to every V2 logs endpoint)
SERVERLESS_APPLICATION: Final = Application.EVENTOPS

TIMESTAMP_FIELD: Final = "@timestamp"
MESSAGE_FIELD: Final = "message"

#: Where a document's log level lives, in the order we look (item 16: three spellings exist).
LEVEL_FIELDS: Final = ("regex.extractions.logLevel", "logLevel", "level", "log.level")

#: Serverless (EventOps) routing fields, each a list in V2 requests.
SERVERLESS_FIELDS: Final = ("log_group", "tenant", "stage")

#: Workload fields (the reference's "Common Fields for Workloads" plus the ones its filters use).
WORKLOAD_STATE_FIELD: Final = "workload.state"
WORKFLOW_NAME_FIELD: Final = "workflow.name"


def domain_field(application: str) -> str:
    """The `_source` field holding the domain for ec2/kubernetes documents of `application`.

    The reference shows `atr.domain_name` only; cm-mcp (and its sandbox) put the same shape under each
    application's own name (`klewer.domain_name`, `quasar.domain_name`). Workloads are atr-only.
    """
    return f"{application}.domain_name"


def infra_type_field(application: str) -> str:
    """The `_source` field holding ec2/kubernetes for `application` (see `domain_field`)."""
    return f"{application}.infra_type"
