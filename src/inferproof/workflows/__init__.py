"""Scheduled, verifiable inference on data feeds (issue 15; in progress).

Example::

    from inferproof.workflows import parse_alert
    alert = parse_alert("output.prob > 0.8", model_outputs)
"""

from __future__ import annotations

from ._alerts import Alert, parse_alert
from ._chain import (
    FAILURE_PREDICATE_TYPE,
    HistoryEntry,
    HistoryReport,
    check_history,
    failure_statement,
)
from ._definition import AlertSpec, Definition, Schedule, parse_every
from ._feeds import MAX_FEED_BYTES, FeedSpec, Fetched, fetch
from ._query import Query
from ._runner import RunResult, provenance_of, run_once

__all__ = [
    "FAILURE_PREDICATE_TYPE",
    "MAX_FEED_BYTES",
    "Alert",
    "AlertSpec",
    "Definition",
    "FeedSpec",
    "Fetched",
    "HistoryEntry",
    "HistoryReport",
    "Query",
    "RunResult",
    "Schedule",
    "check_history",
    "failure_statement",
    "fetch",
    "parse_alert",
    "parse_every",
    "provenance_of",
    "run_once",
]
