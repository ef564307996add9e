"""AWS Nitro Enclaves attestation documents.

A document is a COSE_Sign1 (RFC 9052 §4.2) signed with ES384 over a CBOR map
(module_id, digest, timestamp, pcrs, certificate, cabundle, public_key,
user_data, nonce). The signing certificate chains through ``cabundle`` to the
AWS Nitro Enclaves root, which is pinned by fingerprint. The syntactic rules
below follow aws-nitro-enclaves-nsm-api docs/attestation_process.md §3.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import cbor2
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature

from ..errors import InputError, VerificationError
from ._policy import AttestationPolicy, Facts, default_policy, finish
from ._types import (
    CHECK_CHAIN,
    CHECK_FORMAT,
    CHECK_REVOCATION,
    CHECK_ROOT,
    CHECK_SIGNATURE,
    CHECK_VALIDITY,
    AttestationReport,
    CheckList,
)
from ._x509 import check_validity, fingerprint, load_der, verify_chain

# SHA-256 of the DER AWS Nitro Enclaves Root-G1 certificate, as published in the AWS
# Nitro Enclaves User Guide, "Verifying the root of trust"
# (docs.aws.amazon.com/enclaves/latest/user/verify-root.html).
AWS_NITRO_ROOT_G1_SHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"

# COSE_Sign1 is CBOR tag 18 (RFC 9052 §4.2); the protected header must be exactly
# {1: -35}: alg = ES384 (RFC 9053 §2.1), attestation_process.md §3.1.
COSE_SIGN1_TAG = 18
ES384 = -35
# Payload: "bstr .size (1..16384)" (attestation_process.md §3.1). The whole document
# adds the header and a 96-byte signature; 32 KiB leaves ample room.
MAX_PAYLOAD_BYTES = 16384
MAX_DOCUMENT_BYTES = 32 * 1024
# ES384 signature: r || s, 48 bytes each (RFC 9053 §2.1).
SIGNATURE_BYTES = 96
# Field caps, attestation_process.md §2.2 CDDL: cert 1..1024 bytes; user_data, nonce and
# public_key 0..1024 bytes. (§3.2.2.2 says 512 for user_data and nonce, but real documents
# from the NSM carry 1024-byte values: the nitrite test vector does.)
MAX_CERT_BYTES = 1024
MAX_USER_BYTES = 1024
MAX_PCRS = 32
PCR_SIZES = (32, 48, 64)
# A debug-mode enclave's image measurements PCR0-2 are all zeros (AWS Nitro Enclaves User
# Guide, "Enclave measurements": "in debug mode ... the PCRs are made up entirely of zeros").
DEBUG_ZERO_PCRS = (0, 1, 2)

_REQUIRED = ("module_id", "digest", "timestamp", "pcrs", "certificate", "cabundle")
_OPTIONAL = ("public_key", "user_data", "nonce")


def _strict_cbor(data: bytes, what: str) -> Any:
    """Decode CBOR and insist it re-encodes to the same bytes.

    The re-encoding check rejects indefinite lengths, non-minimal integer heads,
    duplicate map keys and trailing bytes: one document has one encoding.
    """
    try:
        value = cbor2.loads(data)
        again = cbor2.dumps(value)
    except (cbor2.CBORError, ValueError, TypeError, RecursionError, OverflowError) as exc:
        raise InputError(f"{what} is not valid CBOR: {exc}") from exc
    if again != data:
        raise InputError(f"{what} is not in its one canonical CBOR encoding")
    return value


def _sign1(data: bytes) -> tuple[bytes, bytes, bytes]:
    """Split a COSE_Sign1 into (protected header bytes, payload, signature)."""
    if len(data) > MAX_DOCUMENT_BYTES:
        raise InputError(f"Nitro document is {len(data)} bytes, over {MAX_DOCUMENT_BYTES}")
    obj = _strict_cbor(data, "Nitro document")
    if isinstance(obj, cbor2.CBORTag):
        if obj.tag != COSE_SIGN1_TAG:
            raise InputError(f"Nitro document has CBOR tag {obj.tag}, not COSE_Sign1 (18)")
        obj = obj.value  # cbor2 decodes a tag's content immutably: a tuple here
    if not isinstance(obj, list | tuple) or len(obj) != 4:
        raise InputError("Nitro document is not a COSE_Sign1 array of 4 items")
    protected, unprotected, payload, signature = obj
    if not isinstance(protected, bytes) or _strict_cbor(protected, "protected header") != {
        1: ES384
    }:
        raise InputError("Nitro document's protected header is not {alg: ES384}")
    if not isinstance(unprotected, Mapping) or unprotected:
        raise InputError("Nitro document's unprotected header is not empty")
    if not isinstance(payload, bytes) or not 1 <= len(payload) <= MAX_PAYLOAD_BYTES:
        raise InputError("Nitro document's payload is not a 1..16384-byte string")
    if not isinstance(signature, bytes) or len(signature) != SIGNATURE_BYTES:
        raise InputError("Nitro document's signature is not 96 bytes (ES384)")
    return protected, payload, signature


def _bytes_field(doc: dict[str, Any], key: str, low: int, high: int) -> bytes | None:
    value = doc.get(key)
    if value is None:
        if key in _REQUIRED:
            raise InputError(f"Nitro document lacks {key}")
        return None
    if not isinstance(value, bytes) or not low <= len(value) <= high:
        raise InputError(f"Nitro document's {key} is not a {low}..{high}-byte string")
    return value


def _parse_payload(payload: bytes) -> dict[str, Any]:
    doc = _strict_cbor(payload, "Nitro document payload")
    if not isinstance(doc, dict) or not all(isinstance(k, str) for k in doc):
        raise InputError("Nitro document payload is not a map with text keys")
    unknown = set(doc) - set(_REQUIRED) - set(_OPTIONAL)
    missing = [k for k in _REQUIRED if k not in doc]
    if unknown or missing:
        raise InputError(f"Nitro document fields: unknown {sorted(unknown)}, missing {missing}")
    if not isinstance(doc["module_id"], str) or not doc["module_id"]:
        raise InputError("Nitro document's module_id is not a non-empty text string")
    if doc["digest"] != "SHA384":
        raise InputError("Nitro document's digest is not SHA384")
    ts = doc["timestamp"]
    if isinstance(ts, bool) or not isinstance(ts, int) or not 0 < ts < 2**64:
        raise InputError("Nitro document's timestamp is not a positive 64-bit integer")
    pcrs = doc["pcrs"]
    if not isinstance(pcrs, dict) or not 1 <= len(pcrs) <= MAX_PCRS:
        raise InputError("Nitro document's pcrs is not a map of 1..32 registers")
    for index, value in pcrs.items():
        if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < MAX_PCRS:
            raise InputError(f"Nitro document has PCR index {index!r}, not 0..31")
        if not isinstance(value, bytes) or len(value) not in PCR_SIZES:
            raise InputError(f"Nitro document's PCR{index} is not 32, 48 or 64 bytes")
    _bytes_field(doc, "certificate", 1, MAX_CERT_BYTES)
    bundle = doc["cabundle"]
    if not isinstance(bundle, list) or not bundle:
        raise InputError("Nitro document's cabundle is not a non-empty array")
    for cert in bundle:
        if not isinstance(cert, bytes) or not 1 <= len(cert) <= MAX_CERT_BYTES:
            raise InputError("Nitro document's cabundle holds an entry that is not 1..1024 bytes")
    for key in _OPTIONAL:
        _bytes_field(doc, key, 1 if key == "public_key" else 0, MAX_USER_BYTES)
    return doc


def _check_signature(leaf_der: bytes, protected: bytes, payload: bytes, sig: bytes) -> None:
    leaf = load_der(leaf_der, "Nitro signing certificate")
    key = leaf.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        raise VerificationError(CHECK_SIGNATURE, "the signing certificate's key is not P-384")
    # Sig_structure for COSE_Sign1 (RFC 9052 §4.4): context, protected, external_aad, payload.
    to_be_signed = cbor2.dumps(["Signature1", protected, b"", payload])
    der = encode_dss_signature(int.from_bytes(sig[:48], "big"), int.from_bytes(sig[48:], "big"))
    try:
        key.verify(der, to_be_signed, ec.ECDSA(hashes.SHA384()))
    except InvalidSignature as exc:
        raise VerificationError(
            CHECK_SIGNATURE, "the COSE_Sign1 ES384 signature is invalid"
        ) from exc


def verify_nitro(
    document: bytes, *, at: datetime, policy: AttestationPolicy | None = None
) -> AttestationReport:
    """Verify an AWS Nitro Enclaves attestation document at time ``at``.

    Checks the COSE_Sign1 ES384 signature, the certificate chain from the signing
    certificate through ``cabundle`` to the pinned AWS Nitro root, validity of every
    certificate at ``at``, then the policy (PCRs, debug mode, nonce, freshness).
    Raises AttestationError (a VerificationError) naming the failed check, or
    InputError for a malformed document.

    Example::

        report = verify_nitro(doc, at=datetime(2024, 9, 7, 14, 38, tzinfo=UTC))
        report.measurements["PCR0"]
    """
    policy = policy or default_policy()
    checks = CheckList()
    try:
        protected, payload, signature = _sign1(document)
        doc = _parse_payload(payload)
    except InputError as exc:
        checks.fail(CHECK_FORMAT, str(exc))
    checks.passed(
        CHECK_FORMAT, f"COSE_Sign1 over a well-formed attestation document ({doc['module_id']})"
    )
    try:
        _check_signature(doc["certificate"], protected, payload, signature)
    except (VerificationError, InputError) as exc:
        checks.fail(CHECK_SIGNATURE, getattr(exc, "detail", str(exc)))
    checks.passed(CHECK_SIGNATURE, "COSE_Sign1 ES384 signature by the document's certificate")
    # cabundle is root first (attestation_process.md §3.2.3); the chain is leaf first.
    try:
        chain = [load_der(doc["certificate"], "Nitro signing certificate")]
        chain += [load_der(c, "Nitro cabundle entry") for c in reversed(doc["cabundle"])]
    except InputError as exc:
        checks.fail(CHECK_FORMAT, str(exc))
    root_print = fingerprint(chain[-1])
    if root_print != AWS_NITRO_ROOT_G1_SHA256:
        checks.fail(CHECK_ROOT, f"the chain's root {root_print} is not the AWS Nitro root")
    checks.passed(CHECK_ROOT, "root is AWS Nitro Enclaves Root-G1 (pinned SHA-256 641a0321...)")
    _verify_chain(chain, at, checks)
    checks.not_checked(CHECK_REVOCATION, "the AWS Nitro PKI publishes no revocation lists")
    pcrs = {f"PCR{i}": v.hex() for i, v in sorted(doc["pcrs"].items())}
    debug = all(i in doc["pcrs"] and not any(doc["pcrs"][i]) for i in DEBUG_ZERO_PCRS)
    produced = datetime.fromtimestamp(doc["timestamp"] / 1000, tz=UTC)
    facts = Facts(
        platform="nitro",
        measurements=pcrs,
        report_data=doc.get("user_data") or b"",
        debug=debug,
        user_data=doc.get("user_data"),
        public_key=doc.get("public_key"),
        nonce=doc.get("nonce"),
        produced_at=produced,
        details={"module_id": doc["module_id"], "root_sha256": root_print},
    )
    return finish(facts, checks, policy, at)


def _verify_chain(chain: list[x509.Certificate], at: datetime, checks: CheckList) -> None:
    try:
        verify_chain(chain)
    except VerificationError as exc:
        checks.fail(exc.check, exc.detail)
    checks.passed(
        CHECK_CHAIN,
        f"signing certificate -> {len(chain) - 2} intermediate(s) -> root, all signatures valid",
    )
    try:
        check_validity(chain, at)
    except VerificationError as exc:
        checks.fail(exc.check, exc.detail)
    checks.passed(CHECK_VALIDITY, f"all {len(chain)} certificates valid at {at.isoformat()}")
