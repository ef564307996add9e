"""Oblivious HTTP (RFC 9458) against its worked example (Appendix A), HPKE against RFC
9180's vectors for the suite used, and every tampered byte refused."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from pyhpke import AEADId, CipherSuite, KDFId, KEMId

from inferproof.confidential import (
    Gateway,
    KeyConfig,
    decode_request,
    decode_response,
    encapsulate_request,
    parse_key_configs,
)
from inferproof.errors import InputError, VerificationError

HERE = Path(__file__).parent / "vectors"
A = {k: bytes.fromhex(v) for k, v in json.loads((HERE / "rfc9458.json").read_text()).items()
     if k != "source"}  # fmt: skip
HPKE = json.loads((HERE / "rfc9180.json").read_text())


def _x(name: str) -> bytes:
    return bytes.fromhex(HPKE[name])


def test_hpke_meets_rfc_9180_for_the_suite_used() -> None:
    """A.1.1: DHKEM(X25519, HKDF-SHA256), HKDF-SHA256, AES-128-GCM, base mode."""
    suite = CipherSuite.new(KEMId(HPKE["kem_id"]), KDFId(HPKE["kdf_id"]), AEADId(HPKE["aead_id"]))
    assert (HPKE["kem_id"], HPKE["kdf_id"], HPKE["aead_id"]) == (0x20, 1, 1)
    pair = suite.kem.derive_key_pair(_x("ikmE"))
    assert pair.private_key.to_private_bytes() == _x("skEm")
    assert suite.kem.derive_key_pair(_x("ikmR")).public_key.to_public_bytes() == _x("pkRm")
    pkr = suite.kem.deserialize_public_key(_x("pkRm"))
    enc, sender = suite.create_sender_context(pkr, _x("info"), eks=pair)
    assert enc == _x("enc")
    recipient = suite.create_recipient_context(
        enc, suite.kem.deserialize_private_key(_x("skRm")), _x("info")
    )
    for e in HPKE["encryptions"]:
        pt, aad = bytes.fromhex(e["plaintext"]), bytes.fromhex(e["aad"])
        assert sender.seal(pt, aad).hex() == e["ciphertext"]
        assert recipient.open(bytes.fromhex(e["ciphertext"]), aad) == pt
    for x in HPKE["exports"]:
        value = recipient.export(bytes.fromhex(x["exportContext"]), x["exportLength"])
        assert value.hex() == x["exportValue"]


def test_the_rfc_9458_example_byte_for_byte() -> None:
    gateway = Gateway(A["gateway_secret_key"], key_id=1)
    config = KeyConfig.parse(A["key_config"])
    assert config.encode() == A["key_config"]
    assert config.public_key == gateway.config.public_key and config.key_id == 1
    assert config.suites == ((1, 1), (1, 3))  # AES-128-GCM and ChaCha20-Poly1305 offered
    sealed = encapsulate_request(config, A["request"], ephemeral=A["ephemeral_secret_key"])
    assert sealed.encapsulated == A["encapsulated_request"]
    assert sealed.encapsulated[7:39] == A["ephemeral_public_key"]
    request, reply = gateway.open(sealed.encapsulated, nonce=A["response_nonce"])
    assert request == A["request"]
    assert decode_request(request).authority == "example.com"
    encapsulated = reply(A["response"])
    assert encapsulated == A["encapsulated_response"]
    assert sealed.open_response(encapsulated) == A["response"]
    assert decode_response(A["response"]).status == 200


def _pair() -> tuple[Gateway, bytes]:
    gateway = Gateway(os.urandom(32), key_id=7)
    return gateway, b"\x00\x03GET\x05https\x04node\x01/"


def test_every_flipped_bit_of_a_request_is_refused() -> None:
    gateway, request = _pair()
    wire = encapsulate_request(gateway.config, request).encapsulated
    for i in range(len(wire) * 8):
        bad = bytearray(wire)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(VerificationError) as caught:
            gateway.open(bytes(bad))
        assert caught.value.check == "ohttp.request"


def test_every_flipped_bit_of_a_response_is_refused() -> None:
    gateway, request = _pair()
    sealed = encapsulate_request(gateway.config, request)
    _, reply = gateway.open(sealed.encapsulated)
    wire = reply(b"\x01\x40\xc8")
    for i in range(len(wire) * 8):
        bad = bytearray(wire)
        bad[i // 8] ^= 1 << (i % 8)
        with pytest.raises(VerificationError, match=r"ohttp\.response"):
            sealed.open_response(bytes(bad))
    assert sealed.open_response(wire) == b"\x01\x40\xc8"


def test_a_response_to_another_request_is_refused() -> None:
    gateway, request = _pair()
    first = encapsulate_request(gateway.config, request)
    second = encapsulate_request(gateway.config, request)
    assert first.encapsulated != second.encapsulated  # a fresh ephemeral key each time
    _, reply_second = gateway.open(second.encapsulated)
    with pytest.raises(VerificationError, match="not the answer to this request"):
        first.open_response(reply_second(b"\x01\x40\xc8"))


def test_a_request_for_another_key_or_too_short_is_refused() -> None:
    gateway, request = _pair()
    other = Gateway(os.urandom(32), key_id=7)
    with pytest.raises(VerificationError, match="does not open with this gateway's key"):
        gateway.open(encapsulate_request(other.config, request).encapsulated)
    renumbered = Gateway(os.urandom(32), key_id=8)
    with pytest.raises(VerificationError, match="another key or suite"):
        gateway.open(encapsulate_request(renumbered.config, request).encapsulated)
    with pytest.raises(VerificationError, match="bad length"):
        gateway.open(b"\x07" * 20)


def test_key_configurations_are_parsed_strictly() -> None:
    config = A["key_config"]
    body = len(config).to_bytes(2, "big") + config
    assert parse_key_configs(body * 2) == [KeyConfig.parse(config)] * 2
    for bad, says in (
        (config[:-1], "algorithm list is malformed"),
        (config + b"\x00", "bytes after its end"),
        (config[:1] + b"\x00\x10" + config[3:], "not X25519"),
        (config[:10], "truncated"),
    ):
        with pytest.raises(InputError, match=says):
            KeyConfig.parse(bad)
    with pytest.raises(InputError, match="truncated"):
        parse_key_configs(body[:-1])
    only_chacha = KeyConfig(1, 0x20, bytes(32), ((1, 3),))
    with pytest.raises(InputError, match="offers no suite this client speaks"):
        encapsulate_request(only_chacha, b"x")


def test_a_gateway_key_must_be_x25519() -> None:
    with pytest.raises(InputError, match="32 bytes of X25519"):
        Gateway(b"short")
    with pytest.raises(InputError, match="one byte"):
        Gateway(os.urandom(32), key_id=256)
