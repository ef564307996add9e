"""Log checks for a bundle: inclusion under a trusted checkpoint, witnesses, consistency.

The leaf is the RFC 8785 canonical JSON of the bundle's DSSE envelope, so anyone
can recompute it from the bundle alone.

A consistency check that cannot be made is reported not checked, never passed and
never failed: a bundle older than the checkpoint this verifier remembers needs a
proof, and a proof source that holds no proofs for that log (another node's log on
this machine, or none) is no evidence against it. A source that does hold the log but
cannot link two sizes the log signed is: that is a rollback (issue 11, low).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

from .._canonical import canonical_json
from .._checks import Check, failed, not_checked
from ..errors import InputError, VerificationError
from ..log import (
    COSIGNATURE_CLOCK_SKEW,
    Checkpoint,
    CheckpointMemory,
    Note,
    SignedCheckpoint,
    TlogProof,
    VerifierKey,
    verify_tlog_proof,
)

# Given (origin, old size, new size), return the RFC 9162 consistency proof between
# them; raise InputError when it cannot. The source speaks for the logs it holds (the
# node's own log): one that holds the log but cannot link two sizes the log signed is
# evidence of a rollback or fork. One that does not hold the log at all (it refuses
# even the empty proof from size 0) is no evidence: the check is not made.
ConsistencySource = Callable[[str, int, int], Sequence[bytes]]


class Logged(Protocol):
    """What a log entry is checked from: a signed envelope (the leaf is its RFC 8785
    bytes) and the tlog-proof carried beside it (a bundle, a run record)."""

    @property
    def envelope(self) -> dict[str, Any]: ...

    @property
    def tlog_entry(self) -> str | None: ...


class _NoProofSource(Exception):
    """The proof source holds no proofs for this log: the check cannot be made."""


def _origin(proof_text: str) -> str:
    proof = TlogProof.parse(proof_text)
    return Checkpoint.parse(Note.parse(proof.checkpoint).text).origin


def log_checks(
    bundle: Logged,
    log_keys: dict[str, VerifierKey],
    witness_keys: Sequence[VerifierKey],
    quorum: int,
    required: bool,
    memory: Callable[[VerifierKey], CheckpointMemory] | None,
    consistency: ConsistencySource | None,
    *,
    now: int | None = None,
) -> list[Check]:
    """The ``log.*`` checks of one bundle (see docs/log.md).

    ``now`` is the verification time (POSIX seconds): witness cosignatures dated in
    the future beyond the clock-skew allowance do not count toward ``quorum``."""
    text = bundle.tlog_entry
    if text is None:
        why = "the bundle carries no log entry"
        if required:
            return [failed("log.inclusion", f"required by the policy: {why}")]
        return [not_checked("log.inclusion", why)]
    try:
        origin = _origin(text)
    except InputError as exc:
        return [failed("log.inclusion", f"malformed tlog-proof: {exc}")]
    key = log_keys.get(origin)
    if key is None:
        return [failed("log.inclusion", f"log {origin!r} is not a log the policy trusts")]
    leaf = canonical_json(bundle.envelope)
    try:
        result = verify_tlog_proof(
            text, leaf, key, witness_keys, quorum, now, clock_skew=COSIGNATURE_CLOCK_SKEW
        )
    except VerificationError as exc:
        return [failed(exc.check, exc.detail)]
    except InputError as exc:
        return [failed("log.inclusion", str(exc))]
    checks = list(result.checks)
    checks.append(_consistency(result.checkpoint, memory(key) if memory else None, consistency))
    return checks


def _consistency(
    signed: SignedCheckpoint,
    memory: CheckpointMemory | None,
    consistency: ConsistencySource | None,
) -> Check:
    name = "log.consistency"
    if memory is None:
        return not_checked(name, "no checkpoint memory kept by this verifier")
    prove = _prover(consistency, signed) if consistency is not None else None
    try:
        return memory.check(signed, prove)
    except _NoProofSource as exc:
        return not_checked(name, str(exc))
    except (InputError, VerificationError) as exc:
        return failed(name, str(exc))


def _prover(
    source: ConsistencySource, signed: SignedCheckpoint
) -> Callable[[int, int], Sequence[bytes]]:
    """``source`` for ``signed``'s log; a failure is evidence only if the source holds the log."""

    def prove(old: int, new: int) -> Sequence[bytes]:
        try:
            return source(signed.origin, old, new)
        except InputError as exc:
            if not _holds(source, signed):
                raise _NoProofSource(
                    f"no proof from size {old} to {new}: the proof source holds no"
                    f" proofs for {signed.origin} ({exc})"
                ) from exc
            raise InputError(f"the log cannot link sizes {old} and {new} it signed: {exc}") from exc

    return prove


def _holds(source: ConsistencySource, signed: SignedCheckpoint) -> bool:
    """Whether ``source`` holds ``signed``'s log at all: it answers the empty proof
    from size 0 (RFC 9162 2.1.4.1: nothing to prove), which any log can."""
    try:
        source(signed.origin, 0, 0)
    except InputError:
        return False
    return True
