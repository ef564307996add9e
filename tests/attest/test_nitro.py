"""AWS Nitro Enclaves documents: real vectors inside and outside their windows, tampering,
policies, strict CBOR, and a forged chain that must not pass the root pin."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import cbor2
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.x509.oid import NameOID

from inferproof._checks import CheckStatus
from inferproof.attest import (
    AWS_NITRO_ROOT_G1_SHA256,
    AttestationError,
    AttestationPolicy,
    verify_nitro,
)

from .conftest import failed_check, flip, needs_vectors, utc, vector

pytestmark = needs_vectors

# (file, a time inside the window, first second after the leaf expires, a second before it
# starts), from SOURCES.md "document time" and "chain valid".
WINDOWS = {
    "nitro/nitrite_valid.b64": (
        "2024-09-07T14:37:40",
        "2024-09-07T17:37:40",
        "2024-09-07T14:37:35",
    ),
    "nitro/nitrite_debug.b64": (
        "2024-09-07T14:38:07",
        "2024-09-07T17:38:07",
        "2024-09-07T14:38:02",
    ),
    "nitro/evervault_beta_valid.cbor": (
        "2022-10-13T08:58:03",
        "2022-10-13T11:58:03",
        "2022-10-13T08:57:58",
    ),
    "nitro/evervault_beta_debug.cbor": (
        "2022-10-12T13:50:07",
        "2022-10-12T16:49:55",
        "2022-10-12T13:49:50",
    ),
    "nitro/evervault_keybound.b64": (
        "2023-09-18T15:03:31",
        "2023-09-18T17:37:13",
        "2023-09-18T14:37:08",
    ),
    "nitro/blindai_valid.cbor": (
        "2023-03-22T14:28:28",
        "2023-03-22T17:28:28",
        "2023-03-22T14:28:23",
    ),
}
ALLOW_DEBUG = AttestationPolicy(allow_debug=True)
# PCRs of evervault_beta_valid as pinned by evervault/attestation-doc-validation's own
# tests (validate_valid_attestation_doc_time_sensitive, test-data/beta).
EVERVAULT_PCRS = {
    "PCR0": "f4d48b81a460c9916d1e685119074bf24660afd3e34fae9fca0a0d28d9d5599936332687e6f66fc890ac8cf150142d8b",
    "PCR1": "bcdf05fefccaa8e55bf2c8d6dee9e79bbff31e34bf28a99aa19e6b29c37ee80b214a414b7607236edf26fcb78654e63f",
    "PCR2": "d8f114da658de5481f8d9ec73907feb553560787522f705c92d7d96beed8e15e2aa611984e098c576832c292e8dc469a",
    "PCR8": "8790eb3cce6c83d07e84b126dc61ca923333d6f66615c4a79157de48c5ab2418bdc60746ea7b7afbff03a1c6210201cb",
}


def _failed_check(exc: pytest.ExceptionInfo[AttestationError]) -> str:
    return failed_check(exc.value)


@pytest.mark.parametrize("name", sorted(WINDOWS))
def test_inside_window_passes_and_outside_fails(name: str) -> None:
    inside, after, before = (utc(t) for t in WINDOWS[name])
    report = verify_nitro(vector(name), at=inside, policy=ALLOW_DEBUG)
    assert report.platform == "nitro" and report.ok
    statuses = {c.name: c.status for c in report.checks}
    for check in ("attestation.signature", "attestation.root", "attestation.chain"):
        assert statuses[check] is CheckStatus.PASSED
    assert report.details["root_sha256"] == AWS_NITRO_ROOT_G1_SHA256
    for outside in (after, before):
        with pytest.raises(AttestationError) as exc:
            verify_nitro(vector(name), at=outside, policy=ALLOW_DEBUG)
        assert _failed_check(exc) == "attestation.validity"


def test_nitrite_fields_match_sources() -> None:
    # SOURCES.md: production mode; nonce, user_data, public_key each 1024 bytes of 0x01;
    # document time 2024-09-07T14:37:39.545Z.
    report = verify_nitro(vector("nitro/nitrite_valid.b64"), at=utc("2024-09-07T14:37:40"))
    assert not report.debug
    assert report.nonce == report.user_data == report.public_key == b"\x01" * 1024
    assert report.produced_at == utc("2024-09-07T14:37:39.545000")
    assert report.measurements["PCR0"] != "00" * 48


def test_evervault_pcrs_match_published_values() -> None:
    policy = AttestationPolicy.from_dict(
        {"measurements": {"nitro": {k: [v] for k, v in EVERVAULT_PCRS.items()}}}
    )
    report = verify_nitro(
        vector("nitro/evervault_beta_valid.cbor"), at=utc("2022-10-13T08:58:03"), policy=policy
    )
    for name, value in EVERVAULT_PCRS.items():
        assert report.measurements[name] == value
    assert {c.name: c.status for c in report.checks}["attestation.measurements"] is (
        CheckStatus.PASSED
    )
    assert len(report.nonce or b"") == 256  # SOURCES.md: 256-byte nonce


def test_allow_list_without_the_measurement_fails() -> None:
    other = EVERVAULT_PCRS["PCR1"]  # a real value, but not this document's PCR0
    policy = AttestationPolicy.from_dict({"measurements": {"nitro": {"PCR0": [other]}}})
    with pytest.raises(AttestationError) as exc:
        verify_nitro(
            vector("nitro/evervault_beta_valid.cbor"), at=utc("2022-10-13T08:58:03"), policy=policy
        )
    assert _failed_check(exc) == "attestation.measurements"
    assert "PCR0" in exc.value.detail and "allow-list" in exc.value.detail


@pytest.mark.parametrize(
    ("name", "at"),
    [
        ("nitro/nitrite_debug.b64", "2024-09-07T14:38:07"),
        ("nitro/evervault_beta_debug.cbor", "2022-10-12T13:50:07"),
        ("nitro/evervault_keybound.b64", "2023-09-18T15:03:31"),
        ("nitro/blindai_valid.cbor", "2023-03-22T14:28:28"),
    ],
)
def test_debug_documents_rejected_unless_policy_allows(name: str, at: str) -> None:
    with pytest.raises(AttestationError) as exc:
        verify_nitro(vector(name), at=utc(at))
    assert _failed_check(exc) == "attestation.debug"
    report = verify_nitro(vector(name), at=utc(at), policy=ALLOW_DEBUG)
    assert report.debug
    assert all(report.measurements[f"PCR{i}"] == "00" * 48 for i in range(3))


def test_keybound_user_data_is_a_p256_key() -> None:
    # SOURCES.md: user_data is a 91-byte P-256 SubjectPublicKeyInfo.
    report = verify_nitro(
        vector("nitro/evervault_keybound.b64"), at=utc("2023-09-18T15:03:31"), policy=ALLOW_DEBUG
    )
    assert report.user_data is not None and len(report.user_data) == 91
    key = serialization.load_der_public_key(report.user_data)
    assert isinstance(key, ec.EllipticCurvePublicKey) and key.curve.name == "secp256r1"


def _pcr0_offset(document: bytes) -> int:
    payload = cbor2.loads(cbor2.loads(document)[2])
    return document.index(payload["pcrs"][0]) + 5


@pytest.mark.parametrize("where", ["pcr0", "signature", "timestamp"])
def test_one_flipped_byte_fails(where: str) -> None:
    doc = vector("nitro/nitrite_valid.b64")
    if where == "pcr0":
        offset = _pcr0_offset(doc)
    elif where == "signature":
        offset = len(doc) - 10
    else:
        stamp = (1725719859545).to_bytes(8, "big")  # SOURCES.md: 2024-09-07T14:37:39.545Z
        offset = doc.index(stamp) + 7
    with pytest.raises(AttestationError) as exc:
        verify_nitro(flip(doc, offset), at=utc("2024-09-07T14:37:40"))
    assert _failed_check(exc) == "attestation.signature"


def test_freshness_and_nonce_policies() -> None:
    doc = vector("nitro/nitrite_valid.b64")
    fresh = AttestationPolicy.from_dict({"max_age_seconds": 60, "nonce": "01" * 1024})
    report = verify_nitro(doc, at=utc("2024-09-07T14:37:40"), policy=fresh)
    statuses = {c.name: c.status for c in report.checks}
    assert statuses["attestation.freshness"] is statuses["attestation.nonce"] is CheckStatus.PASSED
    with pytest.raises(AttestationError) as exc:
        verify_nitro(doc, at=utc("2024-09-07T14:40:00"), policy=fresh)
    assert _failed_check(exc) == "attestation.freshness"
    with pytest.raises(AttestationError) as exc:  # inside the chain window, before the document
        verify_nitro(doc, at=utc("2024-09-07T14:37:37"), policy=fresh)
    assert _failed_check(exc) == "attestation.freshness" and "after" in exc.value.detail
    other_nonce = AttestationPolicy.from_dict({"nonce": "02" * 32})
    with pytest.raises(AttestationError) as exc:
        verify_nitro(doc, at=utc("2024-09-07T14:37:40"), policy=other_nonce)
    assert _failed_check(exc) == "attestation.nonce"


def test_platform_not_in_policy_fails() -> None:
    policy = AttestationPolicy.from_dict({"platforms": ["tdx", "snp"]})
    with pytest.raises(AttestationError) as exc:
        verify_nitro(
            vector("nitro/nitrite_valid.b64"), at=utc("2024-09-07T14:37:40"), policy=policy
        )
    assert _failed_check(exc) == "attestation.platform"


def _indefinite_array(doc: bytes) -> bytes:
    # 0x84 (array of 4) -> 0x9F ... 0xFF (indefinite length): same value, other encoding.
    assert doc[0] == 0x84
    return b"\x9f" + doc[1:] + b"\xff"


@pytest.mark.parametrize(
    "mangle",
    [
        pytest.param(_indefinite_array, id="indefinite-length"),
        pytest.param(lambda d: d + b"\x00", id="trailing-byte"),
        pytest.param(lambda d: d[:-40], id="truncated"),
        pytest.param(lambda d: cbor2.dumps(cbor2.CBORTag(17, cbor2.loads(d))), id="wrong-tag"),
        pytest.param(lambda d: b"\xa0", id="not-an-array"),
    ],
)
def test_malformed_cbor_fails_format(mangle: object) -> None:
    doc = vector("nitro/nitrite_valid.b64")
    with pytest.raises(AttestationError) as exc:
        verify_nitro(mangle(doc), at=utc("2024-09-07T14:37:40"))  # type: ignore[operator]
    assert _failed_check(exc) == "attestation.format"


def test_tagged_cose_sign1_is_accepted() -> None:
    doc = vector("nitro/nitrite_valid.b64")
    tagged = cbor2.dumps(cbor2.CBORTag(18, cbor2.loads(doc)))
    assert verify_nitro(tagged, at=utc("2024-09-07T14:37:40")).ok


def test_unknown_payload_field_fails_format() -> None:
    doc = vector("nitro/nitrite_valid.b64")
    sign1 = cbor2.loads(doc)
    payload = cbor2.loads(sign1[2])
    payload["extra"] = b"x"
    sign1[2] = cbor2.dumps(payload)
    with pytest.raises(AttestationError) as exc:
        verify_nitro(cbor2.dumps(sign1), at=utc("2024-09-07T14:37:40"))
    assert _failed_check(exc) == "attestation.format" and "extra" in exc.value.detail


def _self_made_chain() -> tuple[ec.EllipticCurvePrivateKey, bytes, bytes]:
    """An attacker's root and leaf (P-384), not the AWS root."""
    now = utc("2024-09-07T00:00:00")
    root_key = ec.generate_private_key(ec.SECP384R1())
    leaf_key = ec.generate_private_key(ec.SECP384R1())
    root_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "aws.nitro-enclaves")])
    leaf_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "forged leaf")])

    def build(subject: x509.Name, key: ec.EllipticCurvePrivateKey, ca: bool) -> x509.Certificate:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(root_name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
            .sign(root_key, hashes.SHA384())
        )

    root = build(root_name, root_key, True)
    leaf = build(leaf_name, leaf_key, False)
    der = serialization.Encoding.DER
    return leaf_key, leaf.public_bytes(der), root.public_bytes(der)


def test_forged_chain_fails_the_root_pin() -> None:
    leaf_key, leaf_der, root_der = _self_made_chain()
    payload = cbor2.loads(cbor2.loads(vector("nitro/nitrite_valid.b64"))[2])
    payload["certificate"], payload["cabundle"] = leaf_der, [root_der]
    protected, body = cbor2.dumps({1: -35}), cbor2.dumps(payload)
    der_sig = leaf_key.sign(
        cbor2.dumps(["Signature1", protected, b"", body]), ec.ECDSA(hashes.SHA384())
    )
    r, s = decode_dss_signature(der_sig)
    forged = cbor2.dumps([protected, {}, body, r.to_bytes(48, "big") + s.to_bytes(48, "big")])
    with pytest.raises(AttestationError) as exc:
        verify_nitro(forged, at=utc("2024-09-07T14:37:40"))
    # The forger's signature is valid; only the pinned root stops it.
    assert [c.name for c in exc.value.checks if c.passed] == [
        "attestation.format",
        "attestation.signature",
    ]
    assert _failed_check(exc) == "attestation.root"
    assert hashlib.sha256(root_der).hexdigest() in exc.value.detail
