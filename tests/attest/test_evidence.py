"""Evidence decoding, platform detection and dispatch; the policy's dict form; key binding."""

from __future__ import annotations

import base64
import hashlib
from datetime import datetime

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from inferproof._checks import CheckStatus
from inferproof.attest import (
    AttestationPolicy,
    AttestationReport,
    check_key_binding,
    decode_evidence,
    detect_platform,
    expected_report_data,
    verify_evidence,
)
from inferproof.attest._evidence import MAX_EVIDENCE_BYTES
from inferproof.errors import InputError

from .conftest import ATTESTATION, needs_vectors, utc, vector

# --- decoding -------------------------------------------------------------------------

RAW = bytes(range(256)) * 3


def test_decode_raw_hex_and_base64() -> None:
    assert decode_evidence(RAW) == RAW
    assert decode_evidence(RAW.hex().encode()) == RAW
    assert decode_evidence("0x" + RAW.hex().upper()) == RAW
    wrapped = base64.encodebytes(RAW)  # with line breaks every 76 characters
    assert b"\n" in wrapped and decode_evidence(wrapped) == RAW
    assert decode_evidence(base64.urlsafe_b64encode(RAW)) == RAW


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        (b"", "empty"),
        (b"abc", "odd number"),
        (b"QUJD*", None),
        ("héllo wörld", "neither hex nor base64"),
        (b"QUJDR", "multiple of 4"),
        (b"A" * (MAX_EVIDENCE_BYTES + 1), "cap"),
    ],
)
def test_decode_rejects_bad_text(data: bytes | str, needle: str | None) -> None:
    if needle is None:  # not text at all: passed through as raw bytes
        assert decode_evidence(data) == data
        return
    with pytest.raises(InputError, match=needle):
        decode_evidence(data)


@needs_vectors
@pytest.mark.parametrize(
    ("name", "platform"),
    [
        ("nitro/nitrite_valid.b64", "nitro"),
        ("nitro/evervault_beta_valid.cbor", "nitro"),
        ("tdx/tdx_quote", "tdx"),
        ("tdx/near_quote.hex", "tdx"),
        ("sgx/sgx_quote", "sgx"),
        ("snp/attestation.bin", "snp"),
    ],
)
def test_detect_platform_on_real_vectors(name: str, platform: str) -> None:
    assert detect_platform(decode_evidence((ATTESTATION / name).read_bytes())) == platform


def test_detect_platform_rejects_unknown() -> None:
    for data in (b"\x00" * 2000, b"\x02\x00\x00\x00" + bytes(100), b"hello"):
        with pytest.raises(InputError, match="platform"):
            detect_platform(data)


@needs_vectors
def test_dispatch_errors() -> None:
    nitro = (ATTESTATION / "nitro/nitrite_valid.b64").read_bytes()
    at = utc("2024-09-07T14:37:40")
    assert verify_evidence(nitro, at=at).platform == "nitro"
    with pytest.raises(InputError, match="timezone"):
        verify_evidence(nitro, at=datetime(2024, 9, 7, 14, 37, 40))
    with pytest.raises(InputError, match="unknown platform"):
        verify_evidence(nitro, "tpm", at=at)
    with pytest.raises(InputError, match="no collateral"):
        verify_evidence(nitro, None, [b"{}"], at=at)
    with pytest.raises(InputError, match="exactly one"):
        verify_evidence(vector("tdx/tdx_quote"), at=at)
    with pytest.raises(InputError, match="VCEK"):
        verify_evidence(vector("snp/attestation.bin"), at=at)


# --- policy ---------------------------------------------------------------------------


def test_policy_round_trip_and_defaults() -> None:
    default = AttestationPolicy.from_dict({})
    assert default.tcb_statuses == ("UpToDate",) and not default.allow_debug
    data = {
        "platforms": ["tdx", "nitro"],
        "measurements": {"tdx": {"MRTD": ["AB" * 48]}, "nitro": {"PCR0": ["00" * 48]}},
        "allow_debug": True,
        "tcb_statuses": ["UpToDate", "SWHardeningNeeded"],
        "advisories": ["INTEL-SA-00615"],
        "max_age_seconds": 300,
        "report_data": "11" * 64,
        "nonce": "2233",
    }
    policy = AttestationPolicy.from_dict(data)
    assert policy.measurements["tdx"]["MRTD"] == ("ab" * 48,)  # normalised to lowercase
    assert AttestationPolicy.from_dict(policy.to_dict()) == policy
    assert policy.nonce == b"\x22\x33" and policy.report_data == b"\x11" * 64


@pytest.mark.parametrize(
    ("data", "needle"),
    [
        ([], "JSON object"),
        ({"allow_debugs": True}, "unknown attestation policy key"),
        ({"platforms": ["tpm"]}, "platforms"),
        ({"platforms": []}, "platforms"),
        ({"measurements": {"tpm": {}}}, "unknown platform"),
        ({"measurements": {"tdx": {"MRENCLAVE": ["00" * 32]}}}, "unknown tdx measurement"),
        ({"measurements": {"tdx": {"MRTD": ["00" * 32]}}}, "48 bytes"),
        ({"measurements": {"tdx": {"MRTD": []}}}, "empty"),
        ({"measurements": {"tdx": {"MRTD": "00"}}}, "list of strings"),
        ({"measurements": {"sgx": {"MRENCLAVE": ["zz" * 32]}}}, "hex"),
        ({"allow_debug": "yes"}, "true or false"),
        ({"tcb_statuses": ["Revoked"]}, "not an acceptable"),
        ({"tcb_statuses": ["uptodate"]}, "not an acceptable"),
        ({"advisories": ["SA-1"]}, "INTEL-SA"),
        ({"max_age_seconds": True}, "positive integer"),
        ({"max_age_seconds": 0}, "positive integer"),
        ({"report_data": "00" * 32}, "64 bytes"),
        ({"nonce": ""}, "1 to"),
    ],
)
def test_policy_rejects_bad_dicts(data: object, needle: str) -> None:
    with pytest.raises(InputError, match=needle):
        AttestationPolicy.from_dict(data)


# --- binding --------------------------------------------------------------------------

# SHA-256 known answers: of 32 zero bytes, and of "abc" (FIPS 180-2, Appendix B.1).
SHA256_ZERO32 = "66687aadf862bd776c8fc18b8e9f8e20089714856ee233b3902a591d0d5f2925"
SHA256_ABC = "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"


def test_expected_report_data_layout() -> None:
    assert expected_report_data(bytes(32)).hex() == SHA256_ZERO32 + "00" * 32
    assert expected_report_data(bytes(32), b"abc").hex() == SHA256_ZERO32 + SHA256_ABC
    for key in (bytes(31), bytes(33), b""):
        with pytest.raises(InputError, match="32 raw bytes"):
            expected_report_data(key)
    with pytest.raises(InputError, match="nonce"):
        expected_report_data(bytes(32), b"")


def _report(platform: str, report_data: bytes, **extra: object) -> AttestationReport:
    # A report as a verifier would return it; the binding check reads only these fields.
    return AttestationReport(
        platform=platform,  # type: ignore[arg-type]
        measurements={},
        report_data=report_data,
        debug=False,
        verified_at=utc("2025-01-01T00:00:00"),
        checks=(),
        **extra,  # type: ignore[arg-type]
    )


def test_key_binding_in_report_data() -> None:
    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    other = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    bound = _report("tdx", expected_report_data(key, b"n1"))
    assert check_key_binding(bound, key, b"n1").status is CheckStatus.PASSED
    assert check_key_binding(bound, key, b"n2").status is CheckStatus.FAILED
    assert check_key_binding(bound, key).status is CheckStatus.FAILED
    assert check_key_binding(bound, other, b"n1").status is CheckStatus.FAILED
    digest = hashlib.sha256(key).digest()
    assert _report("snp", digest + bytes(32)).report_data == expected_report_data(key)


def test_key_binding_in_nitro_public_key() -> None:
    private = Ed25519PrivateKey.generate()
    key = private.public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    spki = private.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    for form in (key, spki):
        doc = _report("nitro", b"", public_key=form, nonce=b"n1")
        assert check_key_binding(doc, key, b"n1").status is CheckStatus.PASSED
        assert check_key_binding(doc, key, b"n2").status is CheckStatus.FAILED
    # For TDX the public_key route does not exist.
    assert check_key_binding(_report("tdx", bytes(64), public_key=key), key).status is (
        CheckStatus.FAILED
    )


@needs_vectors
def test_real_reports_do_not_bind_a_random_key() -> None:
    key = Ed25519PrivateKey.generate().public_key().public_bytes(Encoding.Raw, PublicFormat.Raw)
    tdx = verify_evidence(
        vector("tdx/tdx_quote"),
        "tdx",
        [vector("tdx/tdx_quote_collateral.json")],
        at=utc("2025-07-01T00:00:00"),
    )
    nitro = verify_evidence(
        vector("nitro/evervault_keybound.b64"),
        at=utc("2023-09-18T15:03:31"),
        policy=AttestationPolicy(allow_debug=True),
    )
    for report in (tdx, nitro):
        check = check_key_binding(report, key)
        assert check.name == "attestation.key_binding" and check.status is CheckStatus.FAILED
