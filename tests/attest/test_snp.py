"""AMD SEV-SNP on the real go-sev-guest report, VCEK and Milan ASK/ARK."""

from __future__ import annotations

import warnings
from datetime import timedelta

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from inferproof._checks import CheckStatus
from inferproof.attest import AttestationError, AttestationPolicy, verify_snp
from inferproof.errors import InputError

from .conftest import failed_check, flip, needs_vectors, utc, vector

pytestmark = needs_vectors

AT = utc("2022-09-24T01:00:00")  # SOURCES.md
ALLOW_DEBUG = AttestationPolicy(allow_debug=True)
# google/go-sev-guest tools/check/check_test.go: the "good" measurement and chip id of
# verify/testdata/attestation.bin, and goodPolicy {Debug: true, SMT: true}.
MEASUREMENT = "b07af9620f3b839b47996422ddec6058338951d984e312115131ea82705eaf5b6bdf8a9ece31a5a608eb0cf2e4872b01"
CHIP_ID = (
    "3ac3fe21e13fb0990eb28a802e3fb6a29483a6b0753590c951bdd3b8e5378618"
    "4ca39e359669a2b76a1936776b564ea464cdce40c05f63c9b610c5068b006b5d"
)
REPORT_DATA = bytes([1, 2, 3, 4, 5]).ljust(64, b"\0")  # SOURCES.md: "01 02 03 04 05 ..."
# ATTESTATION_REPORT offsets (AMD pub. 56860 Table 23).
OFF_REPORT_DATA, OFF_MEASUREMENT, OFF_CHIP_ID, OFF_RESERVED, OFF_SIG = (
    0x50,
    0x90,
    0x1A0,
    0x200,
    0x2A0,
)


def certs() -> list[bytes]:
    return [vector("snp/vcek.der"), vector("snp/ask_ark_milan.pem")]


def test_report_verifies_inside_window() -> None:
    report_bytes = vector("snp/attestation.bin")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the VCEK's non-positive serial warns nowhere
        report = verify_snp(report_bytes, certs(), at=AT, policy=ALLOW_DEBUG)
    assert report.platform == "snp" and report.debug
    assert report.measurements["MEASUREMENT"] == MEASUREMENT
    assert report.report_data == REPORT_DATA
    assert report.details["chip_id"] == CHIP_ID
    assert report_bytes[OFF_MEASUREMENT : OFF_MEASUREMENT + 48].hex() == MEASUREMENT
    statuses = {c.name: c.status for c in report.checks}
    for name in (
        "attestation.root",
        "attestation.chain",
        "attestation.validity",
        "attestation.tcb_binding",
        "attestation.signature",
    ):
        assert statuses[name] is CheckStatus.PASSED, name
    assert statuses["attestation.revocation"] is CheckStatus.NOT_CHECKED


def test_certificate_order_does_not_matter() -> None:
    ask, ark = x509.load_pem_x509_certificates(vector("snp/ask_ark_milan.pem"))
    pem = serialization.Encoding.PEM
    files = [ark.public_bytes(pem), vector("snp/vcek.der"), ask.public_bytes(pem)]
    assert verify_snp(vector("snp/attestation.bin"), files, at=AT, policy=ALLOW_DEBUG).ok


def test_debug_guest_rejected_by_default() -> None:
    with pytest.raises(AttestationError) as exc:
        verify_snp(vector("snp/attestation.bin"), certs(), at=AT)
    assert failed_check(exc.value) == "attestation.debug"


@pytest.mark.parametrize("at", ["2022-09-24T00:55:27", "2029-09-24T00:55:29"])
def test_outside_vcek_window_fails_validity(at: str) -> None:
    # SOURCES.md: VCEK valid 2022-09-24 to 2029-09-24 (00:55:28 both ends).
    with pytest.raises(AttestationError) as exc:
        verify_snp(vector("snp/attestation.bin"), certs(), at=utc(at), policy=ALLOW_DEBUG)
    assert failed_check(exc.value) == "attestation.validity"


@pytest.mark.parametrize(
    ("offset", "check"),
    [
        (OFF_REPORT_DATA, "attestation.signature"),
        (OFF_MEASUREMENT + 7, "attestation.signature"),
        (OFF_RESERVED + 1, "attestation.signature"),
        (OFF_SIG + 3, "attestation.signature"),
        (OFF_CHIP_ID, "attestation.tcb_binding"),
    ],
)
def test_flipped_byte_fails(offset: int, check: str) -> None:
    tampered = flip(vector("snp/attestation.bin"), offset)
    with pytest.raises(AttestationError) as exc:
        verify_snp(tampered, certs(), at=AT, policy=ALLOW_DEBUG)
    assert failed_check(exc.value) == check


def test_allow_list_without_the_measurement_fails() -> None:
    good = AttestationPolicy.from_dict(
        {"allow_debug": True, "measurements": {"snp": {"MEASUREMENT": [MEASUREMENT]}}}
    )
    assert verify_snp(vector("snp/attestation.bin"), certs(), at=AT, policy=good).ok
    bad = AttestationPolicy.from_dict(
        {"allow_debug": True, "measurements": {"snp": {"MEASUREMENT": ["00" * 48]}}}
    )
    with pytest.raises(AttestationError) as exc:
        verify_snp(vector("snp/attestation.bin"), certs(), at=AT, policy=bad)
    assert failed_check(exc.value) == "attestation.measurements"
    assert "MEASUREMENT" in exc.value.detail


def test_report_data_and_nonce_policies() -> None:
    ok = AttestationPolicy(allow_debug=True, report_data=REPORT_DATA)
    assert verify_snp(vector("snp/attestation.bin"), certs(), at=AT, policy=ok).ok
    with pytest.raises(AttestationError) as exc:
        verify_snp(
            vector("snp/attestation.bin"),
            certs(),
            at=AT,
            policy=AttestationPolicy(allow_debug=True, nonce=b"challenge"),
        )
    assert failed_check(exc.value) == "attestation.nonce"


def _self_signed_ark() -> bytes:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ARK-Milan")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(1)
        .not_valid_before(AT - timedelta(days=1))
        .not_valid_after(AT + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA384())
    )
    return cert.public_bytes(serialization.Encoding.PEM)


def test_chain_problems_fail() -> None:
    ask, _ark = x509.load_pem_x509_certificates(vector("snp/ask_ark_milan.pem"))
    ask_pem = ask.public_bytes(serialization.Encoding.PEM)
    report = vector("snp/attestation.bin")
    cases = [
        ([vector("snp/vcek.der"), ask_pem], "attestation.root"),  # no ARK at all
        ([vector("snp/vcek.der"), ask_pem, _self_signed_ark()], "attestation.root"),
        ([vector("snp/ask_ark_milan.pem")], "attestation.chain"),  # no VCEK
    ]
    for files, check in cases:
        with pytest.raises(AttestationError) as exc:
            verify_snp(report, files, at=AT, policy=ALLOW_DEBUG)
        assert failed_check(exc.value) == check


def test_bad_inputs() -> None:
    with pytest.raises(AttestationError) as exc:
        verify_snp(vector("snp/attestation.bin")[:-1], certs(), at=AT)
    assert failed_check(exc.value) == "attestation.format"
    with pytest.raises(InputError):
        verify_snp(vector("snp/attestation.bin"), [b"not a certificate"], at=AT)
    with pytest.raises(InputError):
        verify_snp(vector("snp/attestation.bin"), [b"-----BEGIN CERTIFICATE-----\nxx\n"], at=AT)


def test_an_extra_self_signed_certificate_does_not_crowd_out_the_ark() -> None:
    files = [_self_signed_ark(), *certs()]
    assert verify_snp(vector("snp/attestation.bin"), files, at=AT, policy=ALLOW_DEBUG).ok
