"""One run of a workflow: fetch, record provenance, infer with a receipt, evaluate alerts.

A run that cannot produce an answer (the feed is down or too big, its signature does
not verify, its rows do not fit the query) still gets a signed, logged entry: a failure
statement with the reason (``_chain.py``), so the history stays one unbroken chain and
the failure is itself evidence. Alerts fire on a successful run's outputs; a failed
run fires the workflow's alerts with ``failed: REASON`` instead of an expression.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np

from ..engine import LocalNode
from ..errors import InputError, VerificationError
from ..receipts import utc_now
from ._alerts import parse_alert
from ._chain import HistoryEntry, failure_statement, link_fields
from ._definition import Definition
from ._feeds import Fetched, fetch

__all__ = ["RunResult", "provenance_of", "run_once"]


@dataclass(frozen=True)
class RunResult:
    """What a run left: its signed entry, when it was planned and ran, the outputs
    (None for a failure), the alerts that fired, and a failure's reason."""

    run: int
    entry: HistoryEntry
    planned: str
    started: str
    outputs: dict[str, np.ndarray] | None = None
    fired: tuple[str, ...] = ()
    reason: str | None = None
    webhooks: tuple[str, ...] = field(default=())
    # The fetched bytes (not part of the JSON form): for an archive that lets anyone
    # check the provenance again (check_provenance).
    payload: bytes | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.reason is None

    def to_json(self) -> dict[str, Any]:
        return {
            "run": self.run,
            "status": "ok" if self.ok else "failed",
            "planned": self.planned,
            "started": self.started,
            "reason": self.reason,
            "alerts": list(self.fired),
            "receipt_digest": self.entry.digest,
            "outputs": None if self.outputs is None else {
                k: np.asarray(v).tolist() for k, v in self.outputs.items()},
        }  # fmt: skip


def provenance_of(d: Definition, fetched: Fetched) -> dict[str, Any]:
    """The record the receipt's input block commits to: where the data came from,
    the fetched bytes' digest, when, the window taken, the signature check, the query."""
    n = len(fetched.rows)
    return {
        "feed": d.feed.to_json(),
        "digest": fetched.digest,
        "bytes": len(fetched.payload),
        "fetched_at": fetched.fetched_at,
        "window": {"rows": n, "first": n - d.query.window, "last": n - 1},
        "signature": fetched.signature,
        "query": d.query.to_json(),
    }


def run_once(
    node: LocalNode,
    d: Definition,
    run: int,
    previous: str | None,
    *,
    planned: str | None = None,
    root: Path | None = None,
    transport: httpx.BaseTransport | None = None,
) -> RunResult:
    """Run ``d`` once as run number ``run`` after the entry whose digest is ``previous``."""
    planned = planned or utc_now()
    started = utc_now()
    fields = link_fields(d.name, d.digest, run, previous)
    record = node.hub.resolve(d.model_digest)
    try:
        fetched = fetch(d.feed, root=root, transport=transport)
        spec = next(s for s in record.inputs if s.name == d.query.input)
        tensors = d.query.tensors(fetched.rows, spec)
        result = node.infer(
            d.model_digest, tensors, workflow=fields, provenance=provenance_of(d, fetched)
        )
    except (InputError, VerificationError) as exc:
        reason = str(exc)
        st = failure_statement(node_id=node.node_id, workflow=fields, reason=reason,
                               planned=planned, at=utc_now())  # fmt: skip
        envelope, entry = node.issuer.sign_statement(st)
        hooks = tuple(a.webhook for a in d.alerts if a.webhook)
        return RunResult(run, HistoryEntry(envelope=envelope, tlog_entry=entry), planned,
                         started, None, (f"failed: {reason}",), reason, hooks)  # fmt: skip
    fired = _fired(d, record.outputs, result.outputs)
    hooks = tuple(a.webhook for a in d.alerts if a.webhook and a.expr in fired)
    return RunResult(run, HistoryEntry(bundle=result.bundle), planned, started,
                     result.outputs, fired, None, hooks, fetched.payload)  # fmt: skip


def _fired(d: Definition, specs: Any, outputs: Mapping[str, np.ndarray]) -> tuple[str, ...]:
    return tuple(a.expr for a in d.alerts if parse_alert(a.expr, specs).fires(outputs))
