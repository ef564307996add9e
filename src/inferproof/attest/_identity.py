"""The node identity document: hardware evidence that binds the node's signing key.

A node in a TEE asks its hardware to sign report data that commits to its
Ed25519 public key (and a verifier's nonce, see :mod:`._binding`), and keeps the
evidence with the collateral a verifier needs offline (the DCAP collateral, the
SEV-SNP certificates). Receipts name the document by digest; bundles carry it.
"""

from __future__ import annotations

import base64
from collections.abc import Mapping
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
    # dstack TDX nodes: the RTMR event log (JSON text) and the app-compose.json (base64)
    # whose hash RTMR3 carries; what they say counts only once they replay to the
    # attested RTMR3 (inferproof.image._dstack).
    "event_log",
    "app_compose",
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
    event_log: str | None = None
    app_compose: bytes | None = None

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
        event_log = doc.get("event_log")
        if event_log is not None and not isinstance(event_log, str):
            raise InputError("node identity: event_log must be the event log's JSON text")
        compose = doc.get("app_compose")
        return cls(
            doc=doc,
            platform=str(platform),
            node_key=key,
            nonce=None if nonce is None else decode_b64(nonce, "node identity: nonce"),
            evidence=decode_b64(doc.get("evidence"), "node identity: evidence"),
            collateral=tuple(decode_b64(c, "node identity: collateral") for c in collateral),
            produced_at=produced,
            event_log=event_log,
            app_compose=None
            if compose is None
            else decode_b64(compose, "node identity: app_compose"),
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
    if evidence.event_log is not None:
        doc["event_log"] = evidence.event_log
    if evidence.app_compose is not None:
        doc["app_compose"] = base64.b64encode(evidence.app_compose).decode()
    return NodeIdentity.from_json(doc)


# How long a node identity vouches for the receipts signed after it, when the
# policy says nothing (review finding 11.3: a 17-month-old identity was accepted).
# The evidence is verified at the node-chosen produced_at, so this bounds how stale
# the collateral behind a receipt may be. TDX/SGX: Intel PCS TCB info and QE
# identity are issued with nextUpdate 30 days after issueDate (Intel SGX and TDX
# DCAP PCS API, "TCB Info" v3), so an identity older than that rests on collateral
# Intel has since replaced. SEV-SNP: the same 30 days, for the VCEK's TCB. Nitro:
# attestation documents are meant to be fetched per session (AWS Nitro Enclaves
# "attestation process"), so a day.
DEFAULT_MAX_AGE_SECONDS: dict[str, int] = {
    "nitro": 24 * 3600,
    "tdx": 30 * 24 * 3600,
    "sgx": 30 * 24 * 3600,
    "snp": 30 * 24 * 3600,
}


def max_identity_age(platform: str, policy: AttestationPolicy | None) -> int:
    """The policy's ``max_age_seconds``, else the platform's default."""
    if policy is not None and policy.max_age_seconds is not None:
        return policy.max_age_seconds
    return DEFAULT_MAX_AGE_SECONDS[platform]


def verify_identity(
    identity: NodeIdentity, signer_key: bytes, policy: AttestationPolicy | None
) -> Check:
    """Verify the identity's evidence (:func:`verify_identity_evidence`) and that the
    document is for ``signer_key``, the key that signed the receipt at hand."""
    check = verify_identity_evidence(identity, policy)
    if not check.passed:
        return check
    return identity_signer_check(identity, signer_key) or check


def identity_signer_check(identity: NodeIdentity, signer_key: bytes) -> Check | None:
    """A failed check when the identity binds another key than the receipt's signer.

    Made for every receipt, never cached: one genuine identity must not vouch for a
    receipt signed by any other key (review finding 11.3)."""
    if identity.node_key != signer_key:
        return failed(
            "environment",
            "the node identity document binds another key than the one that signed this receipt",
        )
    return None


def verify_identity_evidence(identity: NodeIdentity, policy: AttestationPolicy | None) -> Check:
    """Verify the identity's evidence at the time it was produced, under ``policy``,
    and that it binds the document's own ``node_key``. Independent of any receipt, so
    a verifier can cache it per identity; each receipt's signer and age are checked
    apart (:func:`identity_signer_check`, :func:`identity_age_check`)."""
    name = "environment"
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
    binding = check_key_binding(report, identity.node_key, identity.nonce)
    if not binding.passed:
        return failed(name, f"{identity.platform} evidence is valid but {binding.detail}")
    shown = ", ".join(f"{k}={v[:16]}…" for k, v in sorted(report.measurements.items())[:3])
    status = f", TCB {report.tcb_status}" if report.tcb_status else ""
    return passed(name, f"hardware-attested by {identity.platform}: {shown}{status}; key bound")


def attested_measurements(
    identity: NodeIdentity, policy: AttestationPolicy | None
) -> Mapping[str, str]:
    """The measurement registers of the identity's evidence, verified as
    :func:`verify_identity_evidence` does (raises :class:`VerificationError` when the
    evidence does not verify)."""
    report = verify_evidence(identity.evidence, identity.platform, identity.collateral,
                             at=identity.produced_at, policy=policy)  # fmt: skip
    return report.measurements


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
