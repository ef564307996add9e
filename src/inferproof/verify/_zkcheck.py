"""The ``zk.*`` checks of a bundle whose receipt carries a zero-knowledge proof.

What a ZK receipt vouches for is its answer: the bundle's outputs, which the
signed subject digest covers, must be the circuit's outputs that the proof's
public instances hold (review finding 11.2). Anyone can check a ZK bundle: it
carries the setup record (whose digest the receipt signs) and the settings and
verifying key that record names by digest, each accepted only when its bytes
hash to that digest; the SRS comes from the verifier (its hub, or a file it
trusts), never from the bundle (review finding 11.4). Whether the receipt's SRS
kind is acceptable is checked from the signed receipt, setup or no setup.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._canonical import canonical_json, sha256_digest
from .._checks import Check, failed, not_checked, passed
from ..errors import InputError
from ..receipts import Bundle
from ..runtime import decode_tensors

if TYPE_CHECKING:
    from ..hub import BlobStore
    from ..proofs.zk import ZkSetup

__all__ = ["ZkResolver", "zk_checks", "zk_setup_of"]

# Setup record digest -> (the record, the store holding its verifying key), or None.
ZkResolver = Callable[[str], "tuple[ZkSetup, BlobStore] | None"]
# Artifacts a bundle may carry: the settings and the verifying key (a few KiB to a
# few MiB for the circuits EZKL proves on one machine); the bundle's own 64 MiB cap
# bounds them too.
MAX_CARRIED_ARTIFACTS = 2


def _entry(bundle: Bundle) -> dict[str, Any] | None:
    return next((p for p in bundle.receipt.proofs if p.get("type") == "zk"), None)


def _srs_claim(entry: Mapping[str, Any], allow_dev_srs: bool) -> Check:
    """``zk.srs`` from the signed receipt alone: a dev SRS lets its maker forge proofs."""
    kind = entry.get("srs")
    if kind == "public":
        # Only the setup record's SRS digest can show it is the ceremony's (checked
        # when the setup is at hand): on the receipt's word alone, not checked.
        return not_checked("zk.srs", "the receipt names a public ceremony SRS (no setup here)")
    if kind != "dev":
        return failed("zk.srs", f"the receipt names an unknown SRS kind {kind!r:.40}")
    warning = "the receipt names a dev SRS generated locally: whoever made it can forge proofs"
    if allow_dev_srs:
        return passed("zk.srs", f"{warning}; allowed by policy for this run")
    return failed("zk.srs", f"{warning}; not allowed by policy (allow_dev_srs)")


class _CarriedBlobs:
    """The artifacts a bundle carries, each checked against its digest, then the
    verifier's own store (for the SRS). Read-only: a :class:`BlobStore` for EZKL."""

    def __init__(self, carried: Mapping[str, bytes], fallback: BlobStore | None) -> None:
        self._carried = dict(carried)
        self._fallback = fallback

    def put(self, data: bytes) -> str:
        raise InputError("carried ZK artifacts are read-only")

    def get(self, digest: str) -> bytes:
        if digest in self._carried:
            return self._carried[digest]
        if self._fallback is not None and self._fallback.has(digest):
            return self._fallback.get(digest)
        raise InputError(f"no ZK artifact {digest} here")

    def has(self, digest: str) -> bool:
        in_fallback = self._fallback is not None and self._fallback.has(digest)
        return digest in self._carried or in_fallback

    def path(self, digest: str) -> Path | None:
        if digest in self._carried or self._fallback is None:
            return None
        return self._fallback.path(digest)


def _carried(
    part: Mapping[str, Any], setup_digest: str, srs: BlobStore | None
) -> tuple[ZkSetup, BlobStore] | Check:
    """The setup and artifacts a bundle carries, or the check saying why not."""
    from ..proofs.zk import ZkSetup

    record, artifacts = part.get("setup_record"), part.get("artifacts")
    if record is None:
        return not_checked(
            "zk.proof",
            f"setup {setup_digest} is neither in this verifier's hub nor carried by the bundle",
        )
    try:
        setup = ZkSetup.from_json(record)
    except InputError as exc:
        return failed("zk.setup", f"the bundle's setup record is malformed: {exc}")
    if setup.digest() != setup_digest:
        return failed("zk.setup", "the bundle's setup record is not the one the receipt signs")
    if not isinstance(artifacts, dict) or len(artifacts) > MAX_CARRIED_ARTIFACTS:
        return failed("zk.setup", "the bundle's ZK artifacts must be {digest: base64}")
    carried: dict[str, bytes] = {}
    for digest in (setup.settings_digest, setup.vk_digest):
        try:
            data = base64.b64decode(str(artifacts.get(digest)), validate=True)
        except (binascii.Error, ValueError):
            return failed("zk.setup", f"the bundle lacks the artifact {digest} or it is not base64")
        if sha256_digest(data) != digest:
            return failed("zk.setup", f"the bundle's artifact {digest} hashes to another digest")
        carried[digest] = data
    store = _CarriedBlobs(carried, srs)
    if not store.has(setup.srs_digest):
        return not_checked(
            "zk.proof",
            f"the {setup.srs_kind} SRS {setup.srs_digest} (logrows {setup.srs_logrows}) is not "
            "available to this verifier: give the SRS file (`verify --srs FILE`)",
        )
    return setup, store


def _answer(bundle: Bundle, entry: Mapping[str, Any]) -> list[np.ndarray] | Check:
    """The bundle's outputs (the answer the signed subject covers), in circuit order."""
    names = entry.get("output_names")
    if not isinstance(names, list) or not all(isinstance(n, str) for n in names):
        return failed("zk.output", "the receipt does not name the circuit's outputs")
    try:
        outputs = decode_tensors(bundle.outputs, "bundle outputs")
    except InputError as exc:
        return failed("zk.output", str(exc))
    if sorted(names) != sorted(outputs):
        return failed(
            "zk.output", f"the bundle's outputs {sorted(outputs)} are not the proven {names}"
        )
    return [outputs[n] for n in names]


def _proof_part(bundle: Bundle, entry: Mapping[str, Any]) -> dict[str, Any] | Check:
    part = bundle.proofs.get("zk")
    if not isinstance(part, dict) or not isinstance(part.get("proof"), dict):
        return failed("zk.proof", "the receipt records a zk proof that the bundle lacks")
    if sha256_digest(canonical_json(part["proof"])) != entry.get("proof"):
        return failed("zk.proof", "the bundle's proof is not the one the receipt records")
    return part


def zk_setup_of(
    bundle: Bundle, resolver: ZkResolver | None, srs: BlobStore | None
) -> tuple[ZkSetup, BlobStore]:
    """The setup a ZK bundle's proof was made for and a store holding its artifacts
    and SRS: from the verifier's hub (``resolver``), else carried by the bundle (each
    artifact checked against its digest) with the SRS from ``srs``. VerificationError
    naming the check when the bundle has no such proof or its setup is not at hand.

    Example::

        setup, store = zk_setup_of(bundle, node.zk.resolver, node.hub.blobs)
    """
    from ..errors import VerificationError

    entry = _entry(bundle)
    if entry is None:
        raise VerificationError("zk.proof", "the receipt has no zk proof")
    part = _proof_part(bundle, entry)
    if isinstance(part, Check):
        raise VerificationError(part.name, part.detail)
    setup_digest = str(entry.get("setup"))
    resolved = resolver(setup_digest) if resolver else None
    found = resolved if resolved is not None else _carried(part, setup_digest, srs)
    if isinstance(found, Check):
        raise VerificationError(found.name, found.detail)
    return found


def zk_checks(
    bundle: Bundle,
    inputs: dict[str, np.ndarray] | None,
    model_bytes: bytes | None,
    *,
    required: bool,
    allow_dev_srs: bool,
    resolver: ZkResolver | None,
    srs: BlobStore | None = None,
) -> list[Check]:
    """Check the proof named in the receipt; [] when there is none and none is required.

    ``resolver`` finds a setup in the verifier's own hub; without one there, the
    bundle's carried setup is used, with the SRS from ``srs``."""
    entry = _entry(bundle)
    if entry is None:
        return (
            [failed("zk.proof", "required by the policy: the receipt has no zk proof")]
            if required
            else []
        )
    from ..proofs.zk import ZkProof, verify

    srs_claim = _srs_claim(entry, allow_dev_srs)
    part = _proof_part(bundle, entry)
    if isinstance(part, Check):
        return [srs_claim, part]
    answer = _answer(bundle, entry)
    try:
        proof = ZkProof.from_json(part["proof"])
    except InputError as exc:
        return [srs_claim, failed("zk.proof", f"malformed zk proof: {exc}")]
    setup_digest = str(entry.get("setup"))
    if proof.setup_digest != setup_digest or part.get("setup") != setup_digest:
        return [srs_claim, failed("zk.setup", "the proof names another setup than the receipt")]
    resolved = resolver(setup_digest) if resolver else None
    found = resolved if resolved is not None else _carried(part, setup_digest, srs)
    if isinstance(found, Check):
        if required and not found.passed:
            found = failed(found.name, f"required by the policy: {found.detail}")
        return [srs_claim, found]
    setup, store = found
    if setup.srs_kind != entry.get("srs"):
        return [failed("zk.srs", f"the receipt names a {entry.get('srs')!r:.20} SRS, the "
                       f"setup a {setup.srs_kind} one")]  # fmt: skip
    checks = list(
        verify(
            setup,
            proof,
            store,
            model_digest=bundle.receipt.model_digest,
            output_values=None if isinstance(answer, Check) else answer,
            input_tensors=inputs,
            allow_dev_srs=allow_dev_srs,
            model_bytes=model_bytes,
        )
    )
    if isinstance(answer, Check):
        checks = [c if c.name != "zk.output" else answer for c in checks]
    return checks
