"""Workflows through a node (``/v1/workflows``), every run verified before it is handed over.

Defining, listing, pausing and deleting are plain requests. What a node says a run
did is never taken on its word: a history is fetched and verified here with the
client's own trust root (:func:`~inferproof.workflows.verify_history`), and each run
of a subscription (the node's server-sent events) or of ``run_workflow`` is checked
before it is yielded:

- its signed entry: a receipt through the client's :class:`~inferproof.verify.Verifier`
  (with an audit's policy: log inclusion required, no nonce or input of this client's
  to compare), or a failure statement's signature and log inclusion; and the
  checkpoint's consistency with every one this client saw (``log.consistency``);
- it belongs to this workflow (``workflow.name``) and to the definition shown by the
  node, whose digest is computed here (``workflow.definition``);
- the chain (``workflow.chain``): run numbers follow one another without gap or
  repeat, and each names the digest of the run before as ``previous`` (with
  ``after=N``, run N's entry comes from the history first);
- the event's own fields agree with the signed entry (``workflow.event``): run,
  status, receipt digest, outputs, and the alerts, evaluated here on the signed
  outputs (``workflow.alerts``).

A run that fails a check raises :class:`~inferproof.errors.VerificationError` naming
the check, and is never yielded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from .._canonical import parse_json
from .._checks import Check, CheckStatus, failed, not_checked, passed
from ..errors import InputError, VerificationError
from ..receipts import verify_envelope
from ..runtime import TensorSpec, decode_tensors
from ..verify import Material, Verifier, log_checks_of
from ..workflows import (
    AlertSpec,
    Definition,
    FeedSpec,
    History,
    HistoryEntry,
    HistoryReport,
    Query,
    Schedule,
    WorkflowInfo,
    check_name,
    parse_alert,
    verify_history,
)
from ._core import ClientCore, Flow, Req, body_of, check_ref
from ._stream import Emit, SseParser, StreamFlow, pull

__all__ = ["VerifiedRun", "WorkflowFlows"]

# One event is one run: a bundle (at most 64 MiB) and a few fields.
MAX_EVENT_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class VerifiedRun:
    """A run of a workflow that passed every check (module docs).

    ``status`` is ``ok`` or ``failed``; ``outputs`` are the receipt's (None for a
    failed run), ``alerts`` those that fire on them as evaluated here (a failed run:
    ``failed: REASON``), ``reason`` a failure's signed reason; ``entry`` the signed
    history entry and ``report`` every check made, and not made.
    """

    workflow: str
    run: int
    status: str
    outputs: dict[str, np.ndarray] | None
    alerts: tuple[str, ...]
    reason: str | None
    entry: HistoryEntry
    report: HistoryReport


@dataclass
class _Chain:
    """Where a stream of runs stands: the definition, and the run due next with the
    digest it must link to (``due`` None: a lone run, whose link is not checked)."""

    name: str
    definition: Definition
    previous: str | None = None
    due: int | None = 1


@dataclass(frozen=True)
class _Signed:
    envelope: dict[str, Any]
    tlog_entry: str | None


def info_of(obj: Any) -> WorkflowInfo:
    """A node's workflow answer, its digest recomputed from the definition sent."""
    try:
        d = Definition.from_json(obj["definition"])
        info = WorkflowInfo(d, str(obj["state"]), float(obj["created"]), int(obj["runs"]),
                            obj["last_status"], obj["next_run"])  # fmt: skip
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"the node sent a malformed workflow: {exc}") from None
    if obj.get("digest") != d.digest or obj.get("name") != d.name:
        raise InputError("the node's workflow digest or name is not its definition's")
    return info


def _require(check: Check) -> Check:
    if check.status is CheckStatus.FAILED:
        raise VerificationError(check.name, check.detail)
    return check


class WorkflowFlows:
    """The workflow operations as flows over one client core (driven by ``Client``
    and ``AsyncClient``)."""

    def __init__(self, core: ClientCore) -> None:
        self.core = core

    # -- requests ---------------------------------------------------------------------------
    def create(
        self, name: str, model: str, feed: FeedSpec | str, query: Query, schedule: Schedule,
        alerts: Sequence[AlertSpec],
    ) -> Flow[WorkflowInfo]:  # fmt: skip
        spec = FeedSpec.parse(feed) if isinstance(feed, str) else feed
        body = {"name": check_name(name), "model": check_ref(model), "feed": spec.to_json(),
                "query": query.to_json(), "schedule": schedule.to_json(),
                "alerts": [a.to_json() for a in alerts]}  # fmt: skip
        return info_of(body_of((yield Req("POST", "/v1/workflows", True, {"json": body}))))

    def listing(self) -> Flow[list[WorkflowInfo]]:
        obj = body_of((yield Req("GET", "/v1/workflows")))
        if not isinstance(obj, dict) or not isinstance(obj.get("workflows"), list):
            raise InputError("the node sent a malformed workflow list")
        return [info_of(w) for w in obj["workflows"]]

    def show(self, name: str) -> Flow[WorkflowInfo]:
        path = f"/v1/workflows/{check_name(name)}"
        return info_of(body_of((yield Req("GET", path))))

    def change(self, name: str, action: str) -> Flow[WorkflowInfo]:
        path = f"/v1/workflows/{check_name(name)}/{action}"
        return info_of(body_of((yield Req("POST", path, True))))

    def delete(self, name: str) -> Flow[None]:
        yield Req("DELETE", f"/v1/workflows/{check_name(name)}", True)

    def history(self, name: str) -> Flow[History]:
        response = yield Req("GET", f"/v1/workflows/{check_name(name)}/history")
        history = History.parse(response.content)
        if history.name != name:
            raise VerificationError("workflow.name", f"asked for {name!r}, got {history.name!r}")
        return history

    # -- verification -----------------------------------------------------------------------
    def _audit(self) -> Flow[Verifier]:
        """The client's trust root and policy, as an audit after the fact needs them:
        log inclusion required; no nonce or input of this client's to compare."""
        verifier = yield from self.core._trust_flow()
        policy = replace(verifier.policy, require_nonce=False, require_input=False,
                         require_log=True)  # fmt: skip
        return Verifier(verifier.trust, policy, zk_srs=self.core._zk_srs)

    def verify(self, name: str) -> Flow[HistoryReport]:
        verifier = yield from self._audit()
        history = yield from self.history(name)
        return verify_history(history, verifier)

    def run_now(self, name: str) -> Flow[VerifiedRun]:
        verifier = yield from self._audit()
        info = yield from self.show(name)
        obj = body_of((yield Req("POST", f"/v1/workflows/{check_name(name)}/run", True)))
        chain = _Chain(name, info.definition, due=None)
        return (yield from self._event(verifier, chain, obj))

    def subscribe(self, name: str, after: int) -> StreamFlow[None]:
        if isinstance(after, bool) or not isinstance(after, int) or after < 0:
            raise InputError("after is a run number (0: from the first run)")
        verifier = yield from self._audit()
        chain = yield from self._start(verifier, check_name(name), after)
        path = f"/v1/workflows/{name}/events"
        response = yield Req("GET", path, False, {"params": {"after": after}}, stream=True)
        if not response.headers.get("content-type", "").startswith("text/event-stream"):
            raise InputError("the node's answer is not an event stream")
        parser = SseParser(MAX_EVENT_BYTES, per_event=True)
        while data := (yield from pull()):
            for payload in parser.feed(data):
                obj = parse_json(payload.encode(), "workflow event", MAX_EVENT_BYTES)
                yield Emit((yield from self._event(verifier, chain, obj)))

    def _start(self, verifier: Verifier, name: str, after: int) -> Flow[_Chain]:
        """The chain a stream continues: from run 1, or from run ``after``'s entry
        (taken from the history, and verified)."""
        if after == 0:
            return _Chain(name, (yield from self.show(name)).definition)
        history = yield from self.history(name)
        for entry in history.entries:
            try:
                fields, _ = entry.workflow()
            except InputError:
                continue
            if fields.get("run") == after:
                lone = _Chain(name, history.definition, due=None)
                yield from self._entry(verifier, lone, entry)
                return _Chain(name, history.definition, entry.digest, after + 1)
        raise InputError(f"workflow {name!r} has no run {after} on the node")

    def _event(self, verifier: Verifier, chain: _Chain, obj: Any) -> Flow[VerifiedRun]:
        """Verify one event body (module docs); on success, advance ``chain``."""
        data = obj.get("data") if isinstance(obj, dict) else None
        if not isinstance(data, dict) or obj.get("type") != "workflow.run":
            raise VerificationError("workflow.event", "the event is not a workflow.run body")
        if data.get("workflow") != chain.name:
            raise VerificationError("workflow.name", f"the event is of {data.get('workflow')!r}")
        try:
            entry = HistoryEntry.from_json(data.get("entry"))
        except InputError as exc:
            raise VerificationError("workflow.entry", f"the run's entry: {exc}") from None
        run, reason, checks = yield from self._entry(verifier, chain, entry)
        outputs, alerts = _results(chain.definition, entry, reason, run)
        checks.append(_agrees(data, run, entry, outputs, alerts))
        chain.previous, chain.due = entry.digest, (None if chain.due is None else run + 1)
        kind = "receipt" if entry.bundle is not None else "failure"
        report = HistoryReport(True, tuple(checks), ((run, kind, True, "verified"),))
        return VerifiedRun(chain.name, run, "ok" if reason is None else "failed", outputs,
                           alerts, reason, entry, report)  # fmt: skip

    def _entry(
        self, verifier: Verifier, chain: _Chain, entry: HistoryEntry
    ) -> Flow[tuple[int, str | None, list[Check]]]:
        """The signed run number, a failure's reason and the checks of ``entry``."""
        try:
            fields, reason = entry.workflow()
        except (InputError, VerificationError) as exc:
            raise VerificationError("workflow.entry", f"the run's entry: {exc}") from None
        run = fields.get("run")
        if isinstance(run, bool) or not isinstance(run, int) or run < 1:
            raise VerificationError("workflow.entry", f"the entry's run number is {run!r:.40}")
        checks = yield from self._signed(verifier, entry, run)
        return run, reason, checks + _links(chain, entry, fields, run)

    def _signed(self, verifier: Verifier, entry: HistoryEntry, run: int) -> Flow[list[Check]]:
        if entry.bundle is not None:
            report = yield from self.core._check_flow(entry.bundle, Material(), None, verifier)
            bad = report.first_failure
            if bad is not None:
                raise VerificationError(bad.name, f"run {run}: {bad.detail}")
            return list(report.checks)
        signed = _Signed(entry.envelope or {}, entry.tlog_entry)
        try:
            verify_envelope(signed.envelope, verifier.trust.node_keys)
        except VerificationError as exc:
            raise VerificationError(exc.check, f"run {run}: {exc.detail}") from None
        checks = [passed("signature", "the failure statement is signed by a trusted node key")]
        checks += [_require(c) for c in log_checks_of(verifier, signed)]
        included = any(c.name == "log.inclusion" and c.passed for c in checks)
        if signed.tlog_entry is not None and included:
            consistent = yield from self.core._logged_flow(verifier, signed.tlog_entry)
            checks.append(_require(consistent))
        return checks


def _links(chain: _Chain, entry: HistoryEntry, fields: dict[str, Any], run: int) -> list[Check]:
    """The entry's place: this workflow, this definition, and (for a stream) the chain."""
    if fields.get("name") != chain.name:
        raise VerificationError("workflow.name", f"run {run} belongs to {fields.get('name')!r}")
    digest = chain.definition.digest
    if fields.get("definition") != digest:
        named = fields.get("definition")
        raise VerificationError("workflow.definition", f"run {run} names definition {named}, "
                                f"not the workflow's {digest}")  # fmt: skip
    checks = [passed("workflow.name", f"run {run} of {chain.name!r}"),
              passed("workflow.definition", f"run {run} names definition {digest}")]  # fmt: skip
    if chain.due is None:
        return [*checks, not_checked("workflow.chain", "a lone run: verify_workflow checks "
                                     "the whole chain")]  # fmt: skip
    if run != chain.due:
        why = "missing" if run > chain.due else "out of order or repeated"
        raise VerificationError("workflow.chain", f"run {run} came where run {chain.due} was "
                                f"due: run {chain.due} is {why}")  # fmt: skip
    previous = fields.get("previous")
    if previous != chain.previous:
        raise VerificationError("workflow.chain", f"run {run} links to {previous}, but run "
                                f"{run - 1} is {chain.previous}")  # fmt: skip
    return [*checks, passed("workflow.chain", f"run {run} links to run {run - 1}")]


def _results(
    d: Definition, entry: HistoryEntry, reason: str | None, run: int
) -> tuple[dict[str, np.ndarray] | None, tuple[str, ...]]:
    """The signed outputs, and the alerts that fire on them, evaluated here."""
    if entry.bundle is None:
        return None, (f"failed: {reason}",)
    try:
        outputs = decode_tensors(entry.bundle.outputs, "the receipt's outputs")
    except InputError as exc:
        raise VerificationError("workflow.entry", f"run {run}: {exc}") from None
    specs = [TensorSpec(k, str(v.dtype), tuple(v.shape)) for k, v in outputs.items()]
    try:
        fired = tuple(a.expr for a in d.alerts if parse_alert(a.expr, specs).fires(outputs))
    except InputError as exc:
        raise VerificationError("workflow.alerts", f"run {run}: {exc}") from None
    return outputs, fired


def _agrees(
    data: dict[str, Any], run: int, entry: HistoryEntry,
    outputs: dict[str, np.ndarray] | None, alerts: tuple[str, ...],
) -> Check:  # fmt: skip
    """The event's unsigned fields say what the signed entry says."""
    signed: dict[str, Any] = {"run": run, "receipt_digest": entry.digest,
                              "status": "ok" if outputs is not None else "failed"}  # fmt: skip
    if outputs is not None:
        signed |= {"outputs": {k: v.tolist() for k, v in outputs.items()}, "alerts": list(alerts)}
    wrong = [k for k, v in signed.items() if data.get(k) != v]
    if wrong:
        return _require(failed("workflow.event", f"the event's {', '.join(wrong)} disagree "
                               f"with run {run}'s signed entry"))  # fmt: skip
    return passed("workflow.event", f"the event says what run {run}'s signed entry says")
