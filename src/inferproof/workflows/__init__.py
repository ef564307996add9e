"""Scheduled, verifiable inference on data feeds.

A workflow runs a model on a schedule over a window of a data feed. Each run records
where its input came from (the feed's provenance: source, fetched bytes' digest,
window, signature check) in a receipt whose input commitment covers both, and links
to the run before it, so a history is a hash chain anyone can verify.

Example::

    from inferproof import LocalNode
    from inferproof.workflows import FeedSpec, Query, Schedule, open_workflows

    with LocalNode() as node, open_workflows(node) as wf:
        wf.create("risk", "credit", FeedSpec.parse("https://feeds.example/applicants"),
                  Query("X", ("income", "debt", "age", "late"), 1), Schedule(every=60))
        wf.start()
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
from ._definition import NAME_PATTERN, AlertSpec, Definition, Schedule, check_name, parse_every
from ._feeds import MAX_FEED_BYTES, FeedSpec, Fetched, fetch
from ._history import HISTORY_MEDIA_TYPE, History, archive_reader, verify_history
from ._provenance import check_provenance
from ._query import Query
from ._runner import RunResult, provenance_of, run_once
from ._service import (
    FeedPolicy,
    WorkflowInfo,
    Workflows,
    audit_verifier,
    event_body,
    open_workflows,
)
from ._store import WorkflowStore
from ._webhooks import Delivery, WebhookSigner, deliver, new_message_id, verify_webhook

__all__ = [
    "FAILURE_PREDICATE_TYPE",
    "HISTORY_MEDIA_TYPE",
    "MAX_FEED_BYTES",
    "NAME_PATTERN",
    "Alert",
    "AlertSpec",
    "Definition",
    "Delivery",
    "FeedPolicy",
    "FeedSpec",
    "Fetched",
    "History",
    "HistoryEntry",
    "HistoryReport",
    "Query",
    "RunResult",
    "Schedule",
    "WebhookSigner",
    "WorkflowInfo",
    "WorkflowStore",
    "Workflows",
    "archive_reader",
    "audit_verifier",
    "check_history",
    "check_name",
    "check_provenance",
    "deliver",
    "event_body",
    "failure_statement",
    "fetch",
    "new_message_id",
    "open_workflows",
    "parse_alert",
    "parse_every",
    "provenance_of",
    "run_once",
    "verify_history",
    "verify_webhook",
]
