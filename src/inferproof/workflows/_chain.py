"""A workflow's history as a hash chain of signed runs, and its verification.

Run ``n`` of a workflow is one signed, logged entry: the inference receipt of a run
that succeeded (its parameters name ``{"workflow": {name, definition, run, previous}}``),
or, for a run that failed (the feed was down, its signature did not verify, the rows
did not fit the query), a *failure statement* of its own predicate type with the
same four fields and the reason. ``previous`` is the digest of run ``n - 1``'s
envelope (``None`` for run 1), so a run skipped, reordered, duplicated or forged in a
history breaks the chain at the place it happened, and failures keep the chain whole.

:func:`check_history` verifies a history: every entry's signature and log inclusion
(each receipt through the :class:`~inferproof.verify.Verifier`), the one definition
digest, run numbers 1, 2, 3... without gap or repeat, and every ``previous`` link.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from .._canonical import canonical_json, check_digest, parse_json, sha256_digest
from .._checks import Check, CheckStatus, failed, passed
from ..errors import InputError, VerificationError
from ..receipts import (
    STATEMENT_TYPE,
    Bundle,
    envelope_payload,
    statement_parts,
    verify_envelope,
)
from ..verify import Material, Verifier, log_checks_of

__all__ = [
    "FAILURE_PREDICATE_TYPE",
    "HistoryEntry",
    "HistoryReport",
    "check_history",
    "failure_statement",
]

FAILURE_PREDICATE_TYPE = "https://inferproof.dev/workflow-failure/v1"
MAX_REASON_CHARS = 500


def link_fields(name: str, definition: str, run: int, previous: str | None) -> dict[str, Any]:
    return {"name": name, "definition": definition, "run": run, "previous": previous}


def failure_statement(
    *, node_id: str, workflow: dict[str, Any], reason: str, planned: str, at: str
) -> dict[str, Any]:
    """The statement a node signs for a failed run (``workflow`` as :func:`link_fields`)."""
    body = {"workflow": workflow, "reason": reason[:MAX_REASON_CHARS],
            "time": {"planned": planned, "failed": at}, "node": {"id": node_id}}  # fmt: skip
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": f"workflow:{workflow['name']}#{workflow['run']}",
                     "digest": {"sha256": sha256_digest(canonical_json(body))[7:]}}],
        "predicateType": FAILURE_PREDICATE_TYPE,
        "predicate": body,
    }  # fmt: skip


@dataclass(frozen=True)
class HistoryEntry:
    """One run of a history: a receipt bundle, or a failure's envelope and log proof."""

    bundle: Bundle | None = None
    envelope: dict[str, Any] | None = None
    tlog_entry: str | None = None

    @property
    def digest(self) -> str:
        env = self.bundle.envelope if self.bundle is not None else self.envelope
        return sha256_digest(canonical_json(env))

    def workflow(self) -> tuple[dict[str, Any], str | None]:
        """The signed workflow fields, and a failure's reason (None for a receipt)."""
        if self.bundle is not None:
            fields = self.bundle.receipt.parameters.get("workflow")
            if not isinstance(fields, dict):
                raise InputError("the receipt names no workflow run")
            return fields, None
        st = parse_json(envelope_payload(self.envelope), "failure statement")
        _, pred = statement_parts(st, FAILURE_PREDICATE_TYPE, "workflow failure", "the run")
        fields = pred.get("workflow")
        if not isinstance(fields, dict):
            raise InputError("the failure statement names no workflow run")
        return fields, str(pred.get("reason"))

    def to_json(self) -> dict[str, Any]:
        if self.bundle is not None:
            return {"bundle": self.bundle.to_json()}
        return {"failure": {"dsseEnvelope": self.envelope, "tlogEntry": self.tlog_entry}}

    @classmethod
    def from_json(cls, obj: Any) -> HistoryEntry:
        if isinstance(obj, dict) and set(obj) == {"bundle"}:
            return cls(bundle=Bundle.from_json(obj["bundle"]))
        if isinstance(obj, dict) and set(obj) == {"failure"} and isinstance(obj["failure"], dict):
            f = obj["failure"]
            envelope_payload(f.get("dsseEnvelope"))
            return cls(envelope=f["dsseEnvelope"], tlog_entry=f.get("tlogEntry"))
        raise InputError("a history entry is {bundle} or {failure: {dsseEnvelope, tlogEntry}}")


@dataclass(frozen=True)
class _Signed:
    envelope: dict[str, Any]
    tlog_entry: str | None


@dataclass(frozen=True)
class HistoryReport:
    """The chain checks, and each run's: verified only when every one passed."""

    verified: bool
    checks: tuple[Check, ...]
    runs: tuple[tuple[int | None, str, bool, str], ...]  # (run, kind, verified, detail)

    @property
    def first_failure(self) -> Check | None:
        return next((c for c in self.checks if c.status is CheckStatus.FAILED), None)


def _entry_check(entry: HistoryEntry, verifier: Verifier) -> tuple[bool, str]:
    if entry.bundle is not None:
        report = verifier.check(entry.bundle, Material())
        bad = report.first_failure
        if bad is not None:
            return False, f"{bad.name}: {bad.detail}"
        # The receipt view's wording (cli/_render): a check not made may leave it unmet.
        met = "satisfied" if report.verified else "not satisfied"
        return report.verified, f"the policy is {met}"
    try:
        verify_envelope(entry.envelope, verifier.trust.node_keys)
    except VerificationError as exc:
        return False, f"signature: {exc.detail}"
    assert entry.envelope is not None  # a failure entry (from_json checked its shape)
    logged = log_checks_of(verifier, _Signed(entry.envelope, entry.tlog_entry))
    bad = next((c for c in logged if c.status is CheckStatus.FAILED), None)
    if bad is not None:
        return False, f"{bad.name}: {bad.detail}"
    return True, "failure statement signed and logged"


def check_history(name: str, entries: Sequence[HistoryEntry], verifier: Verifier) -> HistoryReport:
    """Verify a workflow's history (module docs); never raises for a bad entry."""
    checks: list[Check] = []
    runs: list[tuple[int | None, str, bool, str]] = []
    definitions: set[str] = set()
    previous: str | None = None
    expected = 1
    for i, entry in enumerate(entries):
        kind = "receipt" if entry.bundle is not None else "failure"
        try:
            fields, reason = entry.workflow()
            run, prev, definition = fields.get("run"), fields.get("previous"), fields.get(
                "definition")  # fmt: skip
            check_digest(definition, "workflow definition digest")
        except (InputError, VerificationError) as exc:
            checks.append(failed("workflow.entry", f"entry {i}: {exc}"))
            runs.append((None, kind, False, str(exc)))
            continue
        ok, detail = _entry_check(entry, verifier)
        runs.append((run, kind, ok, detail if reason is None else f"{detail}; failed: {reason}"))
        if not ok:
            checks.append(failed("workflow.run", f"run {run}: {detail}"))
        if fields.get("name") != name:
            checks.append(failed("workflow.name", f"run {run} belongs to {fields.get('name')!r}"))
        definitions.add(str(definition))
        if run != expected:
            why = (
                "missing" if isinstance(run, int) and run > expected else "out of order or repeated"
            )
            checks.append(failed("workflow.chain", f"entry {i} is run {run}, expected run "
                                 f"{expected}: run {expected} is {why}"))  # fmt: skip
        elif prev != previous:
            checks.append(failed("workflow.chain", f"run {run} links to {prev}, but run "
                                 f"{expected - 1} is {previous}"))  # fmt: skip
        previous, expected = entry.digest, (run + 1 if isinstance(run, int) else expected + 1)
    if len(definitions) > 1:
        checks.append(failed("workflow.definition", f"runs of {len(definitions)} definitions"))
    if not any(c.name == "workflow.chain" for c in checks):
        checks.append(passed("workflow.chain", f"{len(entries)} run(s), each linked to the one "
                             "before, numbered without gap"))  # fmt: skip
    ok = all(c.status is not CheckStatus.FAILED for c in checks)
    return HistoryReport(ok, tuple(checks), tuple(runs))
