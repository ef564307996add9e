"""The verifier: every check, every rejection path, and tampering with every field."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferproof import LocalNode
from inferproof._canonical import canonical_json
from inferproof.errors import InputError, VerificationError
from inferproof.receipts import Bundle, sign_envelope
from inferproof.runtime import parse_json_tensors
from inferproof.verify import CheckStatus, Material, Policy, TrustRoot, parse_policy

from ..conftest import mlp_input


def status(report: Any, name: str) -> CheckStatus:
    return {c.name: c.status for c in report.checks}[name]


@pytest.fixture()
def signed(node: LocalNode, tmp_path: Path, credit_model) -> tuple[LocalNode, Bundle, bytes]:  # type: ignore[no-untyped-def]
    key = ec.generate_private_key(ec.SECP256R1())
    kp = tmp_path / "pub.key"
    kp.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    node.push(credit_model[0], name="risk", version="1", sign_key=kp)
    res = node.infer(
        "risk:1", parse_json_tensors(json.dumps(credit_model[1]).encode()), nonce="n-1"
    )
    return node, res.bundle, credit_model[0]


def _edit(bundle: Bundle, fn: Any) -> Bundle:
    obj = json.loads(bundle.dumps())
    fn(obj)
    return Bundle.from_json(obj)


def _edit_payload(bundle: Bundle, fn: Any, key: Ed25519PrivateKey | None = None) -> Bundle:
    obj = json.loads(bundle.dumps())
    stmt = json.loads(base64.b64decode(obj["dsseEnvelope"]["payload"]))
    fn(stmt)
    payload = canonical_json(stmt)
    if key is None:
        obj["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    else:
        obj["dsseEnvelope"] = sign_envelope(payload, key)
    return Bundle.from_json(obj)


def test_valid_bundle_default_policy(signed) -> None:  # type: ignore[no-untyped-def]
    node, bundle, model = signed
    report = node.verifier().check(bundle, Material(model_bytes=model))
    assert report.verified
    got = {c.name: c.status.value for c in report.checks}
    assert got == {
        "signature": "passed",
        "output.digest": "passed",
        "model.digest": "passed",
        "model.signature": "passed",
        "environment": "not_checked",
        "input": "passed",
        "output.reexecution": "passed",
        "nonce": "not_checked",
        "freshness": "not_checked",
        "log.checkpoint_signature": "passed",
        "log.inclusion": "passed",
        "log.witness_quorum": "not_checked",
        "log.consistency": "passed",
    }
    env = next(c for c in report.checks if c.name == "environment")
    assert "not hardware-backed" in env.detail


def test_missing_material_is_not_checked(signed) -> None:  # type: ignore[no-untyped-def]
    node, bundle, _ = signed
    bare = _edit(bundle, lambda o: o.pop("inputs"))
    report = node.verifier().check(bare)
    assert report.verified
    for name in ("model.digest", "input", "output.reexecution"):
        assert status(report, name) is CheckStatus.NOT_CHECKED


@pytest.mark.parametrize(
    "path,value",
    [
        (("model", "digest"), "sha256:" + "1" * 64),
        (("input", "digest"), "sha256:" + "2" * 64),
        (("nonce",), "n-2"),
        (("environment", "measurement", "python"), "cpython 9.9"),
        (("runtime", "version"), "0.0.1"),
        (("time", "finished"), "2020-01-01T00:00:00Z"),
    ],
)
def test_signed_field_tamper_breaks_signature(signed, path: tuple[str, ...], value: str) -> None:  # type: ignore[no-untyped-def]
    node, bundle, model = signed

    def set_field(stmt: dict[str, Any]) -> None:
        target = stmt["predicate"]
        for part in path[:-1]:
            target = target[part]
        target[path[-1]] = value

    report = node.verifier().check(_edit_payload(bundle, set_field), Material(model_bytes=model))
    assert not report.verified
    assert report.first_failure is not None and report.first_failure.name == "signature"


def test_subject_tamper_breaks_signature(signed) -> None:  # type: ignore[no-untyped-def]
    node, bundle, _ = signed
    forged = _edit_payload(bundle, lambda s: s["subject"][0]["digest"].update(sha256="3" * 64))
    assert status(node.verifier().check(forged), "signature") is CheckStatus.FAILED


def test_resigned_by_untrusted_key_fails(signed) -> None:  # type: ignore[no-untyped-def]
    node, bundle, _ = signed
    forged = _edit_payload(
        bundle, lambda s: s["predicate"].update(nonce="x"), Ed25519PrivateKey.generate()
    )
    report = node.verifier().check(forged)
    assert status(report, "signature") is CheckStatus.FAILED
    assert "not a node key the policy trusts" in report.first_failure.detail  # type: ignore[union-attr]


def test_every_signature_bit_flip_fails(signed) -> None:  # type: ignore[no-untyped-def]
    node, bundle, _ = signed
    sig = base64.b64decode(bundle.envelope["signatures"][0]["sig"])
    verifier = node.verifier()
    for i in range(len(sig) * 8):
        flipped = bytearray(sig)
        flipped[i // 8] ^= 1 << (i % 8)
        b = _edit(
            bundle,
            lambda o, f=flipped: o["dsseEnvelope"]["signatures"][0].update(
                sig=base64.b64encode(f).decode()
            ),
        )
        assert status(verifier.check(b), "signature") is CheckStatus.FAILED


def test_every_payload_bit_flip_fails(signed) -> None:  # type: ignore[no-untyped-def]
    node, bundle, _ = signed
    payload = base64.b64decode(bundle.envelope["payload"])
    verifier = node.verifier()
    step = 7  # every 7th bit keeps the test fast while touching every byte and bit position
    for i in range(0, len(payload) * 8, step):
        flipped = bytearray(payload)
        flipped[i // 8] ^= 1 << (i % 8)
        obj = json.loads(bundle.dumps())
        obj["dsseEnvelope"]["payload"] = base64.b64encode(bytes(flipped)).decode()
        try:
            b = Bundle.from_json(obj)
        except InputError:
            continue  # no longer parses as a canonical receipt: rejected
        assert status(verifier.check(b), "signature") is CheckStatus.FAILED


def test_output_tamper_fails_output_digest(signed) -> None:  # type: ignore[no-untyped-def]
    node, bundle, _ = signed
    b = _edit(bundle, lambda o: o["outputs"]["probabilities"]["data"].__setitem__(0, 0.5))
    report = node.verifier().check(b)
    assert report.first_failure is not None and report.first_failure.name == "output.digest"


def test_input_tamper_fails_input(signed) -> None:  # type: ignore[no-untyped-def]
    node, bundle, model = signed
    b = _edit(bundle, lambda o: o["inputs"]["X"]["data"].__setitem__(0, 1.0))
    report = node.verifier().check(b, Material(model_bytes=model))
    assert report.first_failure is not None and report.first_failure.name == "input"


def test_model_signature_swap_fails(signed, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    node, bundle, model = signed
    from inferproof.hub import sign_model

    key = ec.generate_private_key(ec.SECP256R1())
    kp = tmp_path / "other.key"
    kp.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    other = sign_model(model, kp).decode()
    report = node.verifier().check(_edit(bundle, lambda o: o.update(modelSignature=other)))
    assert report.first_failure is not None and report.first_failure.name == "model.signature"
    stripped = _edit(bundle, lambda o: o.pop("modelSignature"))
    assert status(node.verifier().check(stripped), "model.signature") is CheckStatus.FAILED


def test_wrong_model_file_fails_model_digest(signed, mlp_bytes) -> None:  # type: ignore[no-untyped-def]
    node, bundle, _ = signed
    report = node.verifier().check(bundle, Material(model_bytes=mlp_bytes))
    assert report.first_failure is not None and report.first_failure.name == "model.digest"


def test_untrusted_publisher_not_checked_unless_required(signed) -> None:  # type: ignore[no-untyped-def]
    node, bundle, _ = signed
    no_pubs = TrustRoot(node.trust_root().node_keys, {})
    from inferproof.verify import Verifier

    assert status(Verifier(no_pubs).check(bundle), "model.signature") is CheckStatus.NOT_CHECKED
    strict = Verifier(no_pubs, Policy(require_model_signature=True)).check(bundle)
    assert status(strict, "model.signature") is CheckStatus.FAILED


def test_unsigned_model_policy(node: LocalNode, mlp_bytes: bytes) -> None:
    node.push(mlp_bytes, name="mlp")
    bundle = node.infer("mlp", mlp_input()).bundle
    assert status(node.verifier().check(bundle), "model.signature") is CheckStatus.NOT_CHECKED
    report = node.verifier(Policy(require_model_signature=True)).check(bundle)
    assert not report.verified and status(report, "model.signature") is CheckStatus.FAILED


def test_nonce_checks(signed) -> None:  # type: ignore[no-untyped-def]
    node, bundle, _ = signed
    assert (
        status(node.verifier().check(bundle, Material(nonce="n-1")), "nonce") is CheckStatus.PASSED
    )
    assert (
        status(node.verifier().check(bundle, Material(nonce="n-9")), "nonce") is CheckStatus.FAILED
    )
    assert (
        status(node.verifier(Policy(require_nonce=True)).check(bundle), "nonce")
        is CheckStatus.FAILED
    )


def test_freshness(signed) -> None:  # type: ignore[no-untyped-def]
    node, bundle, _ = signed
    v = node.verifier(Policy(max_age_seconds=60))
    now = datetime.now(UTC)
    assert status(v.check(bundle, Material(now=now)), "freshness") is CheckStatus.PASSED
    assert (
        status(v.check(bundle, Material(now=now + timedelta(seconds=120))), "freshness")
        is CheckStatus.FAILED
    )
    assert (
        status(v.check(bundle, Material(now=now - timedelta(hours=1))), "freshness")
        is CheckStatus.FAILED
    )


def test_environment_allow_list(signed) -> None:  # type: ignore[no-untyped-def]
    node, bundle, _ = signed
    digest = bundle.receipt.environment["digest"]
    ok = node.verifier(Policy(allowed_environments=(digest,))).check(bundle)
    assert status(ok, "environment") is CheckStatus.PASSED
    bad = node.verifier(Policy(allowed_environments=("sha256:" + "0" * 64,))).check(bundle)
    assert status(bad, "environment") is CheckStatus.FAILED
    hw = node.verifier(Policy(require_hardware=True)).check(bundle)
    assert status(hw, "environment") is CheckStatus.FAILED


def test_private_input_opening(node: LocalNode, mlp_bytes: bytes) -> None:
    node.push(mlp_bytes, name="mlp")
    x = mlp_input()
    res = node.infer("mlp", x, private_input=True)
    assert res.bundle.inputs is None and res.salt is not None
    assert res.bundle.receipt.input_commitment and res.bundle.receipt.input_digest is None
    v = node.verifier(Policy(require_input=True, require_reexecution=True))
    assert not v.check(res.bundle).verified
    good = v.check(res.bundle, Material(model_bytes=mlp_bytes, inputs=x, salt=res.salt))
    assert good.verified
    wrong_salt = v.check(res.bundle, Material(inputs=x, salt=bytes(32)))
    assert status(wrong_salt, "input") is CheckStatus.FAILED
    other = v.check(res.bundle, Material(inputs=mlp_input(seed=9), salt=res.salt))
    assert status(other, "input") is CheckStatus.FAILED


def test_reexecution_detects_wrong_output(node: LocalNode, mlp_bytes: bytes) -> None:
    from inferproof.testing import mlp_model

    node.push(mlp_bytes, name="mlp")
    bundle = node.infer("mlp", mlp_input()).bundle
    # A model with the same signature but other weights, passed off as the receipt's:
    # model.digest catches the swap, and re-execution gives another output.
    other = mlp_model((8, 32, 16, 2), seed=5)
    report = node.verifier().check(bundle, Material(model_bytes=other))
    assert status(report, "model.digest") is CheckStatus.FAILED
    assert status(report, "output.reexecution") is CheckStatus.FAILED


def test_verify_raises_first_failure(signed) -> None:  # type: ignore[no-untyped-def]
    node, bundle, _ = signed
    b = _edit(bundle, lambda o: o["outputs"]["label"]["data"].__setitem__(0, 0))
    with pytest.raises(VerificationError, match=r"^output\.digest: "):
        node.verifier().verify(b)
    verified = node.verifier().verify(bundle)
    assert set(verified.outputs) == {"label", "probabilities"}


@pytest.mark.parametrize(
    "doc,message",
    [
        ({"requires": {}}, "unknown key"),
        ({"require": {"nonce": "yes"}}, "true or false"),
        ({"require": {"speed": True}}, "unknown key"),
        ({"freshness": {"max_age_seconds": -1}}, "positive"),
        ({"environment": {"allowed_measurements": ["md5:x"]}}, "sha256"),
        ({"trust": {"node_keys": ["AAAA"]}}, "32 bytes"),
        ({"trust": {"publisher_keys": ["junk"]}}, "PEM"),
        ({"version": 2}, "version 1"),
        ([], "JSON object"),
    ],
)
def test_bad_policies(doc: Any, message: str) -> None:
    with pytest.raises(InputError, match=message):
        parse_policy(doc, TrustRoot())


@pytest.mark.parametrize(
    "mutate,message",
    [
        (lambda o: o.update(mediaType="x"), "not an inferproof bundle"),
        (lambda o: o.update(extra=1), "unknown field"),
        (lambda o: o["dsseEnvelope"].update(payload="!!"), "base64"),
        (lambda o: o["dsseEnvelope"].update(payloadType="text/plain"), "payloadType"),
        (lambda o: o.update(outputs=[]), "outputs"),
    ],
)
def test_malformed_bundles(signed, mutate: Any, message: str) -> None:  # type: ignore[no-untyped-def]
    _, bundle, _ = signed
    obj = json.loads(bundle.dumps())
    mutate(obj)
    with pytest.raises(InputError, match=message):
        Bundle.from_json(obj)


def test_non_canonical_payload_rejected(signed) -> None:  # type: ignore[no-untyped-def]
    _, bundle, _ = signed
    obj = json.loads(bundle.dumps())
    stmt = json.loads(base64.b64decode(obj["dsseEnvelope"]["payload"]))
    obj["dsseEnvelope"]["payload"] = base64.b64encode(json.dumps(stmt, indent=1).encode()).decode()
    with pytest.raises(InputError, match="canonical"):
        Bundle.from_json(obj)


def test_dsse_pae_spec_vector() -> None:
    from inferproof.receipts import pae

    # The example in secure-systems-lab/dsse protocol.md.
    assert pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_keys_are_private(node: LocalNode, home: Path) -> None:
    mode = (home / "keys" / "node.key").stat().st_mode & 0o777
    assert mode == 0o600


def test_outputs_decode(node: LocalNode, mlp_bytes: bytes) -> None:
    node.push(mlp_bytes, name="mlp")
    res = node.infer("mlp", mlp_input(batch=3))
    assert res.outputs["y"].shape == (3, 2)
    verified = node.verifier().verify(res.bundle)
    np.testing.assert_array_equal(verified.outputs["y"], res.outputs["y"])
