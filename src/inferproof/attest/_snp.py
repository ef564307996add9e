"""AMD SEV-SNP attestation reports.

The report (AMD SEV-SNP Firmware ABI Specification, pub. 56860, Table 23
"ATTESTATION_REPORT Structure") is signed with the chip's VCEK (or a cloud
provider's VLEK), ECDSA P-384 with SHA-384 over bytes 0x000..0x29F. The VCEK is
certified by the product's ASK, itself certified by the self-signed ARK, both
RSA-PSS (AMD "Versioned Chip Endorsement Key (VCEK) Certificate and KDS
Interface Specification", pub. 57230). The ARK is pinned by fingerprint.
"""

from __future__ import annotations

import struct
import warnings
from collections.abc import Sequence
from datetime import datetime

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.utils import CryptographyDeprecationWarning

from ..errors import VerificationError
from ._policy import AttestationPolicy, Facts, default_policy, finish
from ._types import (
    CHECK_CHAIN,
    CHECK_FORMAT,
    CHECK_REVOCATION,
    CHECK_ROOT,
    CHECK_SIGNATURE,
    CHECK_TCB_BINDING,
    CHECK_VALIDITY,
    AttestationReport,
    CheckList,
)
from ._x509 import check_validity, fingerprint, load_any, verify_chain

# ATTESTATION_REPORT layout, pub. 56860 Table 23 (offsets in bytes).
REPORT_BYTES = 0x4A0
SIGNED_BYTES = 0x2A0  # the signature covers bytes 0x000..0x29F
REPORT_VERSIONS = (2, 3, 4, 5)
SIG_ALGO_ECDSA_P384_SHA384 = 1
OFF_POLICY = 0x08
OFF_FAMILY_ID, OFF_IMAGE_ID = 0x10, 0x20
OFF_VMPL, OFF_SIG_ALGO = 0x30, 0x34
OFF_FLAGS = 0x48  # bits 4:2 SIGNING_KEY: 0 = VCEK, 1 = VLEK
OFF_REPORT_DATA, OFF_MEASUREMENT, OFF_HOST_DATA = 0x50, 0x90, 0xC0
OFF_ID_KEY_DIGEST, OFF_AUTHOR_KEY_DIGEST = 0xE0, 0x110
OFF_REPORTED_TCB, OFF_CHIP_ID = 0x180, 0x1A0
OFF_SIG_R, OFF_SIG_S, SIG_COMPONENT_BYTES = 0x2A0, 0x2E8, 72  # little-endian, zero-padded
# GUEST_POLICY bit 19 = DEBUG (pub. 56860 Table 9 "Guest Policy Structure").
POLICY_DEBUG_BIT = 19

# SHA-256 of the DER ARK certificates AMD's Key Distribution Service serves at
# kdsintf.amd.com/vcek/v1/{Milan,Genoa,Turin}/cert_chain (the same certificates
# google/go-sev-guest ships in verify/trust/). The ARK is self-signed and valid 25 years.
AMD_ARK_SHA256 = {
    "69d063b45344d26a2e94e1f4210de49ef555308287d4c174445c95639a540bcd": "Milan",
    "4c6598d19c18719c5dfd4a7d335f674e5bfe1d8f800cea2cf270c10d103db2f1": "Genoa",
    "1f084161a44bb6d93778a904877d4819cafa5d05ef4193b2ded9dd9c73dd3f6a": "Turin",
}

# VCEK extensions (pub. 57230 §3.1, Table 8): TCB security patch levels and the chip id.
OID_PRODUCT_NAME = "1.3.6.1.4.1.3704.1.2"
OID_BL_SPL = "1.3.6.1.4.1.3704.1.3.1"
OID_TEE_SPL = "1.3.6.1.4.1.3704.1.3.2"
OID_SNP_SPL = "1.3.6.1.4.1.3704.1.3.3"
OID_UCODE_SPL = "1.3.6.1.4.1.3704.1.3.8"
OID_HWID = "1.3.6.1.4.1.3704.1.4"
# TCB_VERSION byte positions for Milan and Genoa (pub. 56860 Table 3): boot loader,
# TEE, SNP, microcode. Turin uses another layout, which is not checked here.
MILAN_GENOA_TCB = {OID_BL_SPL: 0, OID_TEE_SPL: 1, OID_SNP_SPL: 6, OID_UCODE_SPL: 7}


def is_snp_report(data: bytes) -> bool:
    """True when ``data`` has the size, version and signature algorithm of an SNP report."""
    if len(data) != REPORT_BYTES:
        return False
    version, algo = struct.unpack_from("<I", data, 0)[0], struct.unpack_from("<I", data, 0x34)[0]
    return version in REPORT_VERSIONS and algo == SIG_ALGO_ECDSA_P384_SHA384


def load_certificates(files: Sequence[bytes]) -> list[x509.Certificate]:
    """Read the VCEK (DER or PEM) and ASK/ARK (PEM) from collateral files, in any order."""
    certs: list[x509.Certificate] = []
    with warnings.catch_warnings():
        # AMD KDS issues VCEKs whose serial number is zero or negative, which RFC 5280
        # §4.1.2.2 forbids and cryptography >= 42 warns about when loading. The serial
        # plays no part in these checks, so silence exactly that warning here.
        warnings.filterwarnings(
            "ignore",
            message="Parsed a serial number which wasn't positive",
            category=CryptographyDeprecationWarning,
        )
        for index, data in enumerate(files):
            certs += load_any(data, f"SEV-SNP collateral file {index + 1}")
    return certs


def _build_chain(certs: list[x509.Certificate], checks: CheckList) -> list[x509.Certificate]:
    """Order the certificates VCEK -> ASK -> ARK by subject and issuer."""
    roots = [c for c in certs if c.issuer == c.subject]
    if not roots:
        checks.fail(CHECK_ROOT, "no self-signed ARK among the supplied certificates")
    # Prefer a pinned root, so an extra self-signed certificate cannot crowd it out.
    ark = next((c for c in roots if fingerprint(c) in AMD_ARK_SHA256), roots[0])
    product = AMD_ARK_SHA256.get(fingerprint(ark))
    if product is None:
        checks.fail(CHECK_ROOT, f"ARK {fingerprint(ark)} is not a pinned AMD root")
    checks.passed(
        CHECK_ROOT, f"ARK is AMD's {product} root (pinned SHA-256 {fingerprint(ark)[:8]}...)"
    )
    chain = [ark]
    rest = [c for c in certs if c is not ark]
    while rest:
        child = next((c for c in rest if c.issuer == chain[0].subject), None)
        if child is None:
            break
        chain.insert(0, child)
        rest.remove(child)
    if len(chain) != 3:
        checks.fail(CHECK_CHAIN, f"expected VCEK -> ASK -> ARK, found a chain of {len(chain)}")
    return chain


def _ext_bytes(cert: x509.Certificate, oid: str) -> bytes | None:
    try:
        value = cert.extensions.get_extension_for_oid(x509.ObjectIdentifier(oid)).value
    except x509.ExtensionNotFound:
        return None
    return value.value if isinstance(value, x509.UnrecognizedExtension) else None


def _der_small_int(raw: bytes | None) -> int | None:
    # DER INTEGER (X.690 §8.3): tag 0x02, short length, big-endian two's complement.
    if raw is None or len(raw) < 3 or raw[0] != 0x02 or raw[1] != len(raw) - 2:
        return None
    return int.from_bytes(raw[2:], "big", signed=True)


def _check_tcb_binding(vcek: x509.Certificate, report: bytes, checks: CheckList) -> None:
    """The VCEK must be the one for this chip at this TCB (pub. 57230 §3.1)."""
    name_raw = _ext_bytes(vcek, OID_PRODUCT_NAME) or b""
    product = name_raw[2:].decode("ascii", "replace") if name_raw[:1] == b"\x16" else "?"
    hwid = _ext_bytes(vcek, OID_HWID)
    if hwid is None:
        checks.not_checked(CHECK_TCB_BINDING, "the signing key has no hwID (a VLEK)")
        return
    if hwid != report[OFF_CHIP_ID : OFF_CHIP_ID + 64]:
        checks.fail(CHECK_TCB_BINDING, "the VCEK's hwID differs from the report's CHIP_ID")
    if not product.startswith(("Milan", "Genoa")):
        checks.not_checked(
            CHECK_TCB_BINDING, f"TCB layout of {product} not checked; chip id matches"
        )
        return
    tcb = report[OFF_REPORTED_TCB : OFF_REPORTED_TCB + 8]
    for oid, position in MILAN_GENOA_TCB.items():
        if _der_small_int(_ext_bytes(vcek, oid)) != tcb[position]:
            checks.fail(CHECK_TCB_BINDING, f"the VCEK's TCB ({oid}) differs from REPORTED_TCB")
    checks.passed(CHECK_TCB_BINDING, f"VCEK is for this {product} chip at REPORTED_TCB {tcb.hex()}")


def _check_report_signature(vcek: x509.Certificate, report: bytes, checks: CheckList) -> None:
    key = vcek.public_key()
    if not isinstance(key, ec.EllipticCurvePublicKey) or key.curve.name != "secp384r1":
        checks.fail(CHECK_SIGNATURE, "the VCEK's key is not ECDSA P-384")
    r = int.from_bytes(report[OFF_SIG_R : OFF_SIG_R + SIG_COMPONENT_BYTES], "little")
    s = int.from_bytes(report[OFF_SIG_S : OFF_SIG_S + SIG_COMPONENT_BYTES], "little")
    try:
        key.verify(encode_dss_signature(r, s), report[:SIGNED_BYTES], ec.ECDSA(hashes.SHA384()))
    except (InvalidSignature, ValueError) as exc:
        checks.fail(CHECK_SIGNATURE, f"the report's ECDSA P-384 signature is invalid ({exc})")
    checks.passed(CHECK_SIGNATURE, "report signed by the VCEK (ECDSA P-384, SHA-384)")


def _facts(report: bytes) -> Facts:
    def hexat(offset: int, size: int) -> str:
        return report[offset : offset + size].hex()

    policy_bits = struct.unpack_from("<Q", report, OFF_POLICY)[0]
    return Facts(
        platform="snp",
        measurements={
            "MEASUREMENT": hexat(OFF_MEASUREMENT, 48),
            "HOST_DATA": hexat(OFF_HOST_DATA, 32),
            "ID_KEY_DIGEST": hexat(OFF_ID_KEY_DIGEST, 48),
            "AUTHOR_KEY_DIGEST": hexat(OFF_AUTHOR_KEY_DIGEST, 48),
            "FAMILY_ID": hexat(OFF_FAMILY_ID, 16),
            "IMAGE_ID": hexat(OFF_IMAGE_ID, 16),
        },
        report_data=report[OFF_REPORT_DATA : OFF_REPORT_DATA + 64],
        debug=bool(policy_bits >> POLICY_DEBUG_BIT & 1),
        details={
            "version": str(struct.unpack_from("<I", report, 0)[0]),
            "guest_policy": f"{policy_bits:#x}",
            "vmpl": str(struct.unpack_from("<I", report, OFF_VMPL)[0]),
            "reported_tcb": hexat(OFF_REPORTED_TCB, 8),
            "chip_id": hexat(OFF_CHIP_ID, 64),
        },
    )


def verify_snp(
    report: bytes,
    certificates: Sequence[bytes],
    *,
    at: datetime,
    policy: AttestationPolicy | None = None,
) -> AttestationReport:
    """Verify an AMD SEV-SNP attestation report at time ``at``.

    ``certificates`` are the collateral files: the VCEK (DER or PEM) and the
    product's ASK and ARK (PEM, as AMD's KDS serves ``cert_chain``), in any order.
    Checks ARK (pinned) -> ASK -> VCEK, validity at ``at``, that the VCEK belongs to
    the report's chip and TCB, the report's signature, then the policy (measurement,
    debug bit of the guest policy, report data). Raises AttestationError naming the
    failed check, or InputError for bad input.

    Example::

        report = verify_snp(raw, [vcek_der, ask_ark_pem], at=datetime(2022, 9, 24, 1, tzinfo=UTC))
        report.measurements["MEASUREMENT"]
    """
    policy = policy or default_policy()
    checks = CheckList()
    if not is_snp_report(report):
        checks.fail(CHECK_FORMAT, f"not a {REPORT_BYTES}-byte SEV-SNP report with ECDSA P-384")
    checks.passed(
        CHECK_FORMAT, f"SEV-SNP attestation report v{struct.unpack_from('<I', report)[0]}"
    )
    chain = _build_chain(load_certificates(certificates), checks)
    try:
        verify_chain(chain)
    except VerificationError as exc:
        checks.fail(exc.check, exc.detail)
    checks.passed(CHECK_CHAIN, "VCEK -> ASK -> ARK, RSA-PSS signatures valid")
    try:
        check_validity(chain, at)
    except VerificationError as exc:
        checks.fail(exc.check, exc.detail)
    checks.passed(CHECK_VALIDITY, f"VCEK, ASK and ARK valid at {at.isoformat()}")
    checks.not_checked(CHECK_REVOCATION, "AMD KDS CRL not supplied")
    _check_tcb_binding(chain[0], report, checks)
    _check_report_signature(chain[0], report, checks)
    return finish(_facts(report), checks, policy, at)
