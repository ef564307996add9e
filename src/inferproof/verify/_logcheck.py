"""Log checks for a bundle: inclusion under a trusted checkpoint, witnesses, consistency.

The leaf is the RFC 8785 canonical JSON of the bundle's DSSE envelope, so anyone
can recompute it from the bundle alone.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .._canonical import canonical_json
from .._checks import Check, failed, not_checked
from ..errors import InputError, VerificationError
from ..log import (
    Checkpoint,
    CheckpointMemory,
    Note,
    SignedCheckpoint,
    TlogProof,
    VerifierKey,
    verify_tlog_proof,
)
from ..receipts import Bundle

# Given (old size, new size), return the RFC 9162 consistency proof between them.
ConsistencySource = Callable[[str, int, int], Sequence[bytes]]


def _origin(proof_text: str) -> str:
    proof = TlogProof.parse(proof_text)
    return Checkpoint.parse(Note.parse(proof.checkpoint).text).origin


def log_checks(
    bundle: Bundle,
    log_keys: dict[str, VerifierKey],
    witness_keys: Sequence[VerifierKey],
    quorum: int,
    required: bool,
    memory: Callable[[VerifierKey], CheckpointMemory] | None,
    consistency: ConsistencySource | None,
) -> list[Check]:
    """The ``log.*`` checks of one bundle (see docs/log.md)."""
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
        result = verify_tlog_proof(text, leaf, key, witness_keys, quorum)
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
    try:
        sizes = memory.needs_proof(signed)
        proof = None
        if sizes is not None:
            if consistency is None:
                return not_checked(
                    name, f"no source for a consistency proof from size {sizes[0]} to {sizes[1]}"
                )
            proof = consistency(signed.origin, *sizes)
        return memory.observe(signed, proof)
    except (InputError, VerificationError) as exc:
        return failed(name, str(exc))
