"""Tool names: one place, so the server, the CLI, the demo and the tests agree."""

from __future__ import annotations

from typing import Final

LOGS_SCROLL: Final = "logs_scroll"
LOGS_AGGS: Final = "logs_aggs"
LOGS_BATCH: Final = "logs_batch"
LOGS_BATCH_STATUS: Final = "logs_batch_status"
WORKLOADS_SCROLL: Final = "workloads_scroll"
WORKLOADS_AGGS: Final = "workloads_aggs"
WORKLOADS_BATCH: Final = "workloads_batch"
WORKLOADS_BATCH_STATUS: Final = "workloads_batch_status"
BILLING_QUERY: Final = "billing_query"
QUOTA_STATUS: Final = "quota_status"
RESULTS_LIST: Final = "results_list"
RESULTS_SEARCH: Final = "results_search"
RESULTS_AGGS: Final = "results_aggs"
FIELDS: Final = "fields"
LOGS_TRIAGE: Final = "logs_triage"
WORKLOADS_TRIAGE: Final = "workloads_triage"

LOGS_SCROLL_V1: Final = "logs_scroll_v1"
LOGS_BATCH_V1: Final = "logs_batch_v1"
LOGS_BATCH_URLS_V1: Final = "logs_batch_urls_v1"

V1_TOOLS: Final = (LOGS_SCROLL_V1, LOGS_BATCH_V1, LOGS_BATCH_URLS_V1)
