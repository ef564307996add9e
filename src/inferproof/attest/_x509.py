"""X.509 chain checks shared by the Nitro and SEV-SNP verifiers.

The chains are short and fixed (leaf, one to three CAs, a pinned root), so the
checks are spelled out rather than delegated to a web-PKI path builder whose
profile (SANs, EKUs) these vendor PKIs do not follow. Each check follows
RFC 5280 §6.1.3-6.1.4 for the parts that apply: signature by the next
certificate, validity at the given time, CA basic constraints, path length,
key usage, and no unknown critical extension.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives.serialization import Encoding

from ..errors import InputError, VerificationError
from ._types import CHECK_CHAIN, CHECK_VALIDITY

# One certificate of these PKIs is under 2 KiB (the Nitro CDDL caps each at 1024 bytes,
# attestation_process.md §2.2; AMD's RSA-4096 ARK/ASK are about 1.6 KiB).
MAX_CERT_BYTES = 16 * 1024
# A collateral file of PEM certificates (an ASK+ARK bundle is about 4.6 KiB).
MAX_PEM_BYTES = 256 * 1024


def fingerprint(cert: x509.Certificate) -> str:
    """SHA-256 of the certificate's DER encoding, lowercase hex."""
    return hashlib.sha256(cert.public_bytes(Encoding.DER)).hexdigest()


def load_der(data: bytes, what: str) -> x509.Certificate:
    """Parse one DER certificate, or raise InputError naming ``what``."""
    if not data or len(data) > MAX_CERT_BYTES:
        raise InputError(f"{what} is {len(data)} bytes, not a certificate")
    try:
        return x509.load_der_x509_certificate(data)
    except ValueError as exc:
        raise InputError(f"{what} is not a DER X.509 certificate: {exc}") from exc


def load_any(data: bytes, what: str) -> list[x509.Certificate]:
    """Parse PEM (one or more certificates) or a single DER certificate."""
    if len(data) > MAX_PEM_BYTES:
        raise InputError(f"{what} is {len(data)} bytes, over the {MAX_PEM_BYTES}-byte cap")
    if b"-----BEGIN CERTIFICATE-----" in data:
        try:
            return x509.load_pem_x509_certificates(data)
        except ValueError as exc:
            raise InputError(f"{what} holds a malformed PEM certificate: {exc}") from exc
    return [load_der(data, what)]


def _describe(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def check_validity(chain: Sequence[x509.Certificate], at: datetime) -> None:
    """Every certificate must be valid at ``at`` (RFC 5280 §6.1.3 (a)(2)), bounds included."""
    for cert in chain:
        start, end = cert.not_valid_before_utc, cert.not_valid_after_utc
        if not start <= at <= end:
            raise VerificationError(
                CHECK_VALIDITY,
                f"{_describe(cert)} is valid from {start.isoformat()} to {end.isoformat()},"
                f" not at {at.isoformat()}",
            )


def _check_signed_by(child: x509.Certificate, issuer: x509.Certificate) -> None:
    try:
        child.verify_directly_issued_by(issuer)
    except (ValueError, TypeError, InvalidSignature, UnsupportedAlgorithm) as exc:
        raise VerificationError(
            CHECK_CHAIN,
            f"{_describe(child)} is not signed by {_describe(issuer)}: {exc or 'bad signature'}",
        ) from exc


def _check_ca(cert: x509.Certificate, cas_below: int) -> None:
    try:
        bc = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound as exc:
        raise VerificationError(
            CHECK_CHAIN, f"{_describe(cert)} issues certificates but has no basic constraints"
        ) from exc
    if not bc.ca:
        raise VerificationError(CHECK_CHAIN, f"{_describe(cert)} is not a CA certificate")
    if bc.path_length is not None and cas_below > bc.path_length:
        raise VerificationError(
            CHECK_CHAIN,
            f"{_describe(cert)} allows {bc.path_length} CA(s) below it, the chain has {cas_below}",
        )
    usage = _key_usage(cert)
    if usage is not None and not usage.key_cert_sign:
        raise VerificationError(CHECK_CHAIN, f"{_describe(cert)} may not sign certificates")


def _key_usage(cert: x509.Certificate) -> x509.KeyUsage | None:
    try:
        return cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None


def _check_critical(cert: x509.Certificate) -> None:
    for ext in cert.extensions:
        if ext.critical and isinstance(ext.value, x509.UnrecognizedExtension):
            raise VerificationError(
                CHECK_CHAIN,
                f"{_describe(cert)} has an unknown critical extension {ext.oid.dotted_string}",
            )


def verify_chain(chain: Sequence[x509.Certificate], *, leaf_signs: bool = True) -> None:
    """Check the signatures and CA constraints of ``chain`` (leaf first, root last).

    The caller pins the root and checks validity times (:func:`check_validity`);
    this checks that each certificate is signed by the next, that the root is
    self-signed, that every issuer is a CA within its path length, and that the
    leaf may sign (``leaf_signs``: digitalSignature, when the leaf states its key
    usage). Raises VerificationError naming ``attestation.chain``.
    """
    if len(chain) < 2:
        raise VerificationError(CHECK_CHAIN, "the chain needs a leaf and a root")
    root = chain[-1]
    _check_signed_by(root, root)
    for index, cert in enumerate(chain):
        _check_critical(cert)
        if index + 1 < len(chain):
            _check_signed_by(cert, chain[index + 1])
        if index > 0:
            # CAs strictly between this one and the leaf (RFC 5280 §4.2.1.9).
            _check_ca(cert, cas_below=index - 1)
    usage = _key_usage(chain[0])
    if leaf_signs and usage is not None and not usage.digital_signature:
        raise VerificationError(CHECK_CHAIN, f"{_describe(chain[0])} may not sign documents")
