"""The node identity document: hardware evidence that binds the node's signing key.

A node in a TEE asks its hardware to sign report data that commits to its
Ed25519 public key (and a verifier's nonce, see :mod:`._binding`), and keeps the
evidence with the collateral a verifier needs offline (the DCAP collateral, the
SEV-SNP certificates). Receipts name the document by digest; bundles carry it.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._canonical import canonical_json, decode_b64, sha256_digest
from .._checks import Check, failed, passed
from ..errors import InputError, VerificationError
from ._binding import check_key_binding, expected_report_data
from ._evidence import verify_evidence
from ._policy import AttestationPolicy
from ._producers import EvidenceProducer
from ._types import PLATFORMS

IDENTITY_MEDIA_TYPE = "application/vnd.inferproof.node-identity.v1+json"
_FIELDS = {
    "mediaType",
    "platform",
    "provider",
    "node_key",
    "nonce",
    "evidence",
    "collateral",
    "produced_at",
}
_MAX_COLLATERAL = 8


@dataclass(frozen=True)
class NodeIdentity:
    """A parsed node identity document (see the module docs)."""

    doc: dict[str, Any]
    platform: str
    node_key: bytes
    nonce: bytes | None
    evidence: bytes
    collateral: tuple[bytes, ...]
    produced_at: datetime

    @property
    def digest(self) -> str:
        return sha256_digest(canonical_json(self.doc))

    @classmethod
    def from_json(cls, doc: Any) -> NodeIdentity:
        if not isinstance(doc, dict) or doc.get("mediaType") != IDENTITY_MEDIA_TYPE:
            raise InputError("not an inferproof node identity document")
        unknown = set(doc) - _FIELDS
        if unknown:
            raise InputError(f"node identity has unknown field(s) {sorted(unknown)}")
        platform = doc.get("platform")
        if platform not in PLATFORMS:
            raise InputError(f"node identity: unknown platform {platform!r}")
        collateral = doc.get("collateral", [])
        if not isinstance(collateral, list) or len(collateral) > _MAX_COLLATERAL:
            raise InputError("node identity: collateral must be a list of base64 files")
        try:
            produced = datetime.fromisoformat(str(doc.get("produced_at")).replace("Z", "+00:00"))
        except ValueError as exc:
            raise InputError("node identity: produced_at is not RFC 3339") from exc
        if produced.tzinfo is None:
            raise InputError("node identity: produced_at needs a time zone")
        key = decode_b64(doc.get("node_key"), "node identity: node_key")
        if len(key) != 32:
            raise InputError("node identity: node_key must be a 32-byte Ed25519 key")
        nonce = doc.get("nonce")
        return cls(
            doc=doc,
            platform=str(platform),
            node_key=key,
            nonce=None if nonce is None else decode_b64(nonce, "node identity: nonce"),
            evidence=decode_b64(doc.get("evidence"), "node identity: evidence"),
            collateral=tuple(decode_b64(c, "node identity: collateral") for c in collateral),
            produced_at=produced,
        )


def produce_identity(
    producer: EvidenceProducer,
    node_key: bytes,
    *,
    nonce: bytes | None = None,
    collateral: tuple[bytes, ...] = (),
    now: datetime | None = None,
) -> NodeIdentity:
    """Ask the TEE for evidence binding ``node_key`` and build the identity document."""
    evidence = producer.produce(expected_report_data(node_key, nonce))
    extra = (evidence.auxblob,) if evidence.auxblob else ()
    when = (now or datetime.now(UTC)).isoformat(timespec="seconds").replace("+00:00", "Z")
    doc = {
        "mediaType": IDENTITY_MEDIA_TYPE,
        "platform": evidence.platform,
        "provider": evidence.provider,
        "node_key": base64.b64encode(node_key).decode(),
        "nonce": None if nonce is None else base64.b64encode(nonce).decode(),
        "evidence": base64.b64encode(evidence.data).decode(),
        "collateral": [base64.b64encode(c).decode() for c in (*collateral, *extra)],
        "produced_at": when,
    }
    return NodeIdentity.from_json(doc)


def verify_identity(
    identity: NodeIdentity, signer_key: bytes, policy: AttestationPolicy | None
) -> Check:
    """Verify the identity's evidence at the time it was produced, under ``policy``,
    and that it binds ``signer_key``. Independent of any receipt, so a verifier can
    cache the result per identity and check each receipt's age against it."""
    name = "environment"
    if identity.node_key != signer_key:
        return failed(name, "the node identity document is for another key than the signer's")
    try:
        report = verify_evidence(
            identity.evidence,
            identity.platform,
            identity.collateral,
            at=identity.produced_at,
            policy=policy,
        )
    except VerificationError as exc:
        return failed(name, f"{identity.platform} attestation failed: {exc}")
    except InputError as exc:
        return failed(name, f"{identity.platform} evidence is unusable: {exc}")
    binding = check_key_binding(report, signer_key, identity.nonce)
    if not binding.passed:
        return failed(name, f"{identity.platform} evidence is valid but {binding.detail}")
    shown = ", ".join(f"{k}={v[:16]}…" for k, v in sorted(report.measurements.items())[:3])
    status = f", TCB {report.tcb_status}" if report.tcb_status else ""
    return passed(name, f"hardware-attested by {identity.platform}: {shown}{status}; key bound")


def identity_age_check(
    identity: NodeIdentity, receipt_time: datetime, max_age_seconds: float | None
) -> Check | None:
    """A failed check when the receipt is older than the identity allows, else None."""
    age = (receipt_time - identity.produced_at).total_seconds()
    if age < -300:  # the same clock-skew allowance as receipt freshness
        return failed("environment", "the receipt predates the node's attestation")
    if max_age_seconds is not None and age > max_age_seconds:
        return failed(
            "environment",
            f"the node's attestation is {age:.0f} s older than the receipt "
            f"(policy allows {max_age_seconds:.0f} s): the node must re-attest",
        )
    return None
