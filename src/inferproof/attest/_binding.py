"""Binding a node's signing key (and a verifier's nonce) into hardware report data.

Layout of the 64 bytes a node asks its TEE to sign (TDX/SGX/SNP ``report_data``,
Nitro ``user_data``), described in docs/attestation.md:

    bytes  0..31  SHA-256 of the node's raw 32-byte Ed25519 public key
    bytes 32..63  SHA-256 of the verifier's nonce, or 32 zero bytes without one
"""

from __future__ import annotations

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from .._checks import Check, failed, passed
from ..errors import InputError
from ._policy import MAX_NONCE_BYTES
from ._types import CHECK_KEY_BINDING, AttestationReport

ED25519_KEY_BYTES = 32  # RFC 8032 §5.1.5
REPORT_DATA_BYTES = 64


def _check_key(node_public_key: bytes) -> None:
    if not isinstance(node_public_key, bytes) or len(node_public_key) != ED25519_KEY_BYTES:
        raise InputError("the node public key must be the 32 raw bytes of an Ed25519 key")


def _check_nonce(nonce: bytes | None) -> None:
    if nonce is not None and not 1 <= len(nonce) <= MAX_NONCE_BYTES:
        raise InputError(f"a nonce must be 1 to {MAX_NONCE_BYTES} bytes")


def expected_report_data(node_public_key: bytes, nonce: bytes | None = None) -> bytes:
    """The 64 bytes that bind ``node_public_key`` (and ``nonce``) into a hardware report.

    Example::

        data = expected_report_data(node_key_raw, nonce=verifier_challenge)
        # a TDX node passes ``data`` as the quote's report_data
    """
    _check_key(node_public_key)
    _check_nonce(nonce)
    key_digest = hashlib.sha256(node_public_key).digest()
    nonce_digest = hashlib.sha256(nonce).digest() if nonce is not None else bytes(32)
    return key_digest + nonce_digest


def _ed25519_spki(node_public_key: bytes) -> bytes:
    key = Ed25519PublicKey.from_public_bytes(node_public_key)
    return key.public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)


def check_key_binding(
    report: AttestationReport, node_public_key: bytes, nonce: bytes | None = None
) -> Check:
    """Whether a verified ``report`` binds ``node_public_key`` (and ``nonce``).

    TDX, SGX and SEV-SNP: ``report_data`` must equal :func:`expected_report_data`.
    Nitro: ``user_data`` must equal it, or ``public_key`` must hold the node key
    (raw, or as a DER SubjectPublicKeyInfo) with ``nonce`` in the nonce field.
    Returns a passed or failed :class:`Check` named ``attestation.key_binding``.

    Example::

        check = check_key_binding(report, node_key_raw, nonce)
        if not check.passed:
            raise VerificationError(check.name, check.detail)
    """
    expected = expected_report_data(node_public_key, nonce)
    with_nonce = " and the verifier's nonce" if nonce is not None else ""
    field = "user_data" if report.platform == "nitro" else "report_data"
    if report.report_data == expected:
        return passed(CHECK_KEY_BINDING, f"{field} binds the node key{with_nonce}")
    if report.platform == "nitro" and report.public_key is not None:
        key_ok = report.public_key in (node_public_key, _ed25519_spki(node_public_key))
        nonce_ok = nonce is None or report.nonce == nonce
        if key_ok and nonce_ok:
            return passed(CHECK_KEY_BINDING, f"public_key is the node key{with_nonce}")
    return failed(CHECK_KEY_BINDING, f"the evidence does not bind the node key{with_nonce}")
