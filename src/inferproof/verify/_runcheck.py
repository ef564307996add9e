"""Verifying a run record: the node's signed chain, its log entry, and every call.

Record-level checks (each listed, as a bundle's are):

- ``run.signature``: the chain's DSSE envelope is signed by a node key the trust
  root holds, and names that node;
- ``run.chain``: every signed link is recomputed from the run id, the call's place,
  the link before and the call's receipt digest, and the subject is the last link;
- ``run.calls``: the record carries one bundle per signed call, in the signed order,
  each hashing to the signed receipt digest (a dropped, reordered, inserted or
  swapped call fails here, naming the first place it differs);
- ``run.log.*``: the chain's own inclusion in a trusted log, as a bundle's.

Then each call's bundle goes through the :class:`Verifier` (signature, digests,
re-execution where the policy asks, its own log inclusion). The run is verified only
when every record-level check and every call is.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from .._checks import Check, CheckStatus, failed, passed
from ..errors import VerificationError
from ..log import TlogProof
from ..receipts import RunRecord, RunStatement, chain, chain_head, receipt_digest, verify_envelope
from ._logcheck import Logged
from ._verifier import Material, VerificationReport, Verifier


@dataclass(frozen=True)
class CallReport:
    """One call of the run: where it stands in the chain and its bundle's report."""

    index: int
    tool: str
    receipt: str
    log_index: int | None
    report: VerificationReport | None  # None when the record has no bundle for it

    @property
    def verified(self) -> bool:
        return self.report is not None and self.report.verified

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "tool": self.tool,
            "receipt": self.receipt,
            "log_index": self.log_index,
            "verified": self.verified,
            "checks": [] if self.report is None else [c.to_json() for c in self.report.checks],
        }


@dataclass(frozen=True)
class RunReport:
    """The record-level checks and one :class:`CallReport` per signed call."""

    verified: bool
    checks: tuple[Check, ...]
    calls: tuple[CallReport, ...]
    statement: RunStatement

    @property
    def first_failure(self) -> Check | None:
        bad = next((c for c in self.checks if c.status is CheckStatus.FAILED), None)
        if bad is not None:
            return bad
        for call in self.calls:
            if call.report is not None and (c := call.report.first_failure) is not None:
                return Check(f"call[{call.index}].{c.name}", c.status, c.detail)
        return None

    def to_json(self) -> dict[str, Any]:
        return {
            "verified": self.verified,
            "run": self.statement.run_id,
            "checks": [c.to_json() for c in self.checks],
            "calls": [c.to_json() for c in self.calls],
        }


def log_checks_of(verifier: Verifier, logged: Logged) -> list[Check]:
    """The ``log.*`` checks of a signed statement other than a receipt (a run record, a
    workflow failure), with ``verifier``'s trusted logs, witnesses and policy."""
    return verifier._log_checks(logged, Material())


class RunVerifier:
    """Verify run records with a :class:`Verifier`'s trust root and policy.

    Example::

        runs = RunVerifier(node.verifier())
        report = runs.check(RunRecord.read("run.json"))
        print(report.verified, [(c.index, c.tool, c.verified) for c in report.calls])
    """

    def __init__(self, verifier: Verifier) -> None:
        self.verifier = verifier

    @classmethod
    def for_audit(cls, verifier: Verifier) -> RunVerifier:
        """``verifier``'s trust root and policy for auditing a run after the fact: log
        inclusion required (of the chain and of every call), less the two requirements
        an audit cannot meet: the nonce and the input the asker compared each answer
        with when it arrived (each receipt still carries its nonce, and public inputs
        are in the bundles)."""
        policy = replace(
            verifier.policy, require_nonce=False, require_input=False, require_log=True
        )
        return cls(Verifier(verifier.trust, policy))

    def check(
        self, record: RunRecord, materials: Sequence[Material | None] | None = None
    ) -> RunReport:
        """Every check; never raises. ``materials[i]`` is what the caller supplies for
        call ``i`` (model bytes for re-execution, an opening)."""
        st = record.statement
        checks: list[Check] = []
        steps: list[tuple[str, Callable[[], Check | list[Check]]]] = [
            ("run.signature", lambda: self._signature(record)),
            ("run.chain", lambda: _chain(st)),
            ("run.calls", lambda: _calls(record)),
            ("run.log.inclusion", lambda: self._log(record)),
        ]
        for name, step in steps:
            try:
                made = step()
            except Exception as exc:  # as Verifier.check: a hostile record fails, never raises
                made = failed(name, f"malformed run record ({type(exc).__name__}): {exc}"[:500])
            checks.extend(made if isinstance(made, list) else [made])
        # Each signed call is checked with the bundle that hashes to its receipt, wherever
        # the record put it: a dropped call shows as the one without a bundle.
        carried = {receipt_digest(b): b for b in record.bundles}
        calls = []
        for i, call in enumerate(st.calls):
            bundle = carried.get(call.receipt)
            report = None
            if bundle is not None:
                given = materials[i] if materials is not None and i < len(materials) else None
                report = self.verifier.check(bundle, given)
            calls.append(CallReport(i, call.tool, call.receipt, _log_index(bundle), report))
        ok = all(c.status is not CheckStatus.FAILED for c in checks) and all(
            c.verified for c in calls
        )
        return RunReport(ok, tuple(checks), tuple(calls), st)

    def verify(
        self, record: RunRecord, materials: Sequence[Material | None] | None = None
    ) -> RunReport:
        """As :meth:`check`, raising :class:`VerificationError` naming the first failure."""
        report = self.check(record, materials)
        bad = report.first_failure
        if bad is not None:
            raise VerificationError(bad.name, bad.detail)
        if not report.verified:  # a signed call with no bundle has no failed check of its own
            raise VerificationError("run.calls", "the record lacks a bundle for a signed call")
        return report

    def _log(self, record: RunRecord) -> list[Check]:
        return [replace(c, name=f"run.{c.name}") for c in log_checks_of(self.verifier, record)]

    def _signature(self, record: RunRecord) -> Check:
        try:
            _, kid = verify_envelope(record.envelope, self.verifier.trust.node_keys)
        except VerificationError as exc:
            return failed("run.signature", exc.detail)
        if record.statement.node_id != kid:
            named = record.statement.node_id
            return failed("run.signature", f"run record names node {named}, signed by {kid}")
        return passed("run.signature", f"run chain signed by trusted node key {kid}")


def _chain(st: RunStatement) -> Check:
    links = chain(st.run_id, [c.receipt for c in st.calls])
    for call, link in zip(st.calls, links, strict=True):
        if call.link != link:
            return failed("run.chain", f"call {call.index}: the signed link is not the chain's")
    if st.subject != chain_head(st.run_id, links):
        return failed("run.chain", "the statement's subject is not the chain's last link")
    return passed("run.chain", f"{len(links)} call(s) linked from the first to the subject")


def _calls(record: RunRecord) -> Check:
    signed = [c.receipt for c in record.statement.calls]
    carried = [receipt_digest(b) for b in record.bundles]
    for i, (want, got) in enumerate(zip(signed, carried, strict=False)):
        if want != got:
            where = f"signed call {signed.index(got)}" if got in signed else "no signed call"
            return failed(
                "run.calls",
                f"call {i}: the record carries receipt {got} ({where}) where the signed chain "
                f"has {want}: a call was dropped, reordered, inserted or replaced",
            )
    if len(carried) != len(signed):
        return failed(
            "run.calls",
            f"the record carries {len(carried)} call bundle(s), the signed chain "
            f"{len(signed)}: a call was dropped or inserted",
        )
    return passed("run.calls", f"{len(signed)} bundle(s), each the signed receipt, in order")


def _log_index(bundle: Any) -> int | None:
    if bundle is None or bundle.tlog_entry is None:
        return None
    try:
        return TlogProof.parse(bundle.tlog_entry).index
    except Exception:
        return None  # the bundle's own log check reports why
