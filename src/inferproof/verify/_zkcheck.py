"""The ``zk.*`` checks of a bundle whose receipt carries a zero-knowledge proof."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np

from .._canonical import canonical_json, sha256_digest
from .._checks import Check, failed, not_checked
from ..errors import InputError
from ..receipts import Bundle
from ..runtime import decode_tensors

if TYPE_CHECKING:
    from ..hub import BlobStore
    from ..proofs.zk import ZkSetup

# Setup record digest -> (the record, the store holding its verifying key), or None.
ZkResolver = Callable[[str], "tuple[ZkSetup, BlobStore] | None"]


def _entry(bundle: Bundle) -> dict[str, Any] | None:
    return next((p for p in bundle.receipt.proofs if p.get("type") == "zk"), None)


def zk_checks(
    bundle: Bundle,
    inputs: dict[str, np.ndarray] | None,
    model_bytes: bytes | None,
    *,
    required: bool,
    allow_dev_srs: bool,
    resolver: ZkResolver | None,
) -> list[Check]:
    """Check the proof named in the receipt; [] when there is none and none is required."""
    entry = _entry(bundle)
    if entry is None:
        return (
            [failed("zk.proof", "required by the policy: the receipt has no zk proof")]
            if required
            else []
        )
    from ..proofs.zk import ZkProof, verify

    part = bundle.proofs.get("zk")
    if not isinstance(part, dict) or not isinstance(part.get("proof"), dict):
        return [failed("zk.proof", "the receipt records a zk proof that the bundle lacks")]
    if sha256_digest(canonical_json(part["proof"])) != entry.get("proof"):
        return [failed("zk.proof", "the bundle's proof is not the one the receipt records")]
    try:
        proof = ZkProof.from_json(part["proof"])
        outputs = list(decode_tensors(entry.get("circuit_outputs"), "circuit outputs").values())
    except InputError as exc:
        return [failed("zk.proof", f"malformed zk proof: {exc}")]
    setup_digest = str(entry.get("setup"))
    if proof.setup_digest != setup_digest:
        return [failed("zk.setup", "the proof names another setup than the receipt")]
    resolved = resolver(setup_digest) if resolver else None
    if resolved is None:
        why = (
            f"setup {setup_digest} (verifying key) is not in this verifier's hub; "
            "fetch it from the node or set the model up here"
        )
        return [
            failed("zk.proof", f"required by the policy: {why}")
            if required
            else not_checked("zk.proof", why)
        ]
    setup, store = resolved
    return list(
        verify(
            setup,
            proof,
            store,
            model_digest=bundle.receipt.model_digest,
            output_values=outputs,
            input_tensors=inputs,
            allow_dev_srs=allow_dev_srs,
            model_bytes=model_bytes,
        )
    )
