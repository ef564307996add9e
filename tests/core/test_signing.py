"""Publisher signatures: model-signing bundles verified by our offline checker."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519

from inferproof._canonical import sha256_digest
from inferproof.errors import InputError, VerificationError
from inferproof.hub import load_publisher_key, publisher_id, sign_model, verify_model_signature


def _key(
    tmp_path: Path, curve: ec.EllipticCurve, name: str = "k"
) -> tuple[Path, ec.EllipticCurvePublicKey]:
    key = ec.generate_private_key(curve)
    path = tmp_path / f"{name}.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return path, key.public_key()


@pytest.mark.parametrize("curve", [ec.SECP256R1(), ec.SECP384R1()])
def test_sign_and_verify(tmp_path: Path, curve: ec.EllipticCurve) -> None:
    model = b"model bytes " * 100
    path, pub = _key(tmp_path, curve)
    bundle = sign_model(model, path)
    pid = verify_model_signature(bundle, sha256_digest(model), {publisher_id(pub): pub})
    assert pid == publisher_id(pub)


def test_model_signing_library_agrees(tmp_path: Path) -> None:
    """The model-signing library's own verifier accepts the bundle and the model file."""
    import model_signing

    model = b"\x08\x07onnx-ish bytes"
    path, pub = _key(tmp_path, ec.SECP256R1())
    bundle = sign_model(model, path)
    (tmp_path / "m.onnx").write_bytes(model)
    (tmp_path / "m.sig").write_bytes(bundle)
    pem = tmp_path / "pub.pem"
    pem.write_bytes(
        pub.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )
    )
    model_signing.verifying.Config().use_elliptic_key_verifier(public_key=pem).verify(
        tmp_path / "m.onnx", tmp_path / "m.sig"
    )
    # and the identity we derive is the key hint model-signing wrote
    hint = json.loads(bundle)["verificationMaterial"]["publicKey"]["hint"]
    assert publisher_id(pub) == f"sha256:{hint}"


def test_untrusted_publisher_rejected(tmp_path: Path) -> None:
    model = b"m"
    path, _ = _key(tmp_path, ec.SECP256R1(), "a")
    _, other = _key(tmp_path, ec.SECP256R1(), "b")
    with pytest.raises(VerificationError, match="not a publisher the policy trusts"):
        verify_model_signature(
            sign_model(model, path), sha256_digest(model), {publisher_id(other): other}
        )


def test_signature_over_other_model_rejected(tmp_path: Path) -> None:
    path, pub = _key(tmp_path, ec.SECP256R1())
    bundle = sign_model(b"model A", path)
    with pytest.raises(VerificationError, match="not the receipt's model"):
        verify_model_signature(bundle, sha256_digest(b"model B"), {publisher_id(pub): pub})


def test_every_signature_bit_flip_rejected(tmp_path: Path) -> None:
    model = b"m"
    path, pub = _key(tmp_path, ec.SECP256R1())
    obj = json.loads(sign_model(model, path))
    sig = bytearray(base64.b64decode(obj["dsseEnvelope"]["signatures"][0]["sig"]))
    for i in range(len(sig) * 8):
        flipped = bytearray(sig)
        flipped[i // 8] ^= 1 << (i % 8)
        obj["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(flipped).decode()
        with pytest.raises((VerificationError, InputError)):
            verify_model_signature(
                json.dumps(obj).encode(), sha256_digest(model), {publisher_id(pub): pub}
            )


def test_payload_tamper_rejected(tmp_path: Path) -> None:
    model = b"m"
    path, pub = _key(tmp_path, ec.SECP256R1())
    obj = json.loads(sign_model(model, path))
    stmt = json.loads(base64.b64decode(obj["dsseEnvelope"]["payload"]))
    stmt["predicate"]["serialization"]["hash_type"] = "sha512"
    obj["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(stmt).encode()).decode()
    with pytest.raises(VerificationError, match="invalid"):
        verify_model_signature(
            json.dumps(obj).encode(), sha256_digest(model), {publisher_id(pub): pub}
        )


def test_ed25519_publisher_key_rejected() -> None:
    pem = (
        ed25519.Ed25519PrivateKey.generate()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    with pytest.raises(InputError, match="P-256 or P-384"):
        load_publisher_key(pem)


def test_malformed_signature_bundle(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="not a Sigstore bundle"):
        verify_model_signature(b'{"mediaType": "x"}', "sha256:" + "0" * 64, {})
