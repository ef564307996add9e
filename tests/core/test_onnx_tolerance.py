"""ONNX re-execution on other hardware: bit-identical, or within a policy's tolerance.

A node on another machine gets float outputs that differ in the last bits. The node
here signs such outputs with its real key (the outputs moved by a few ULP, as another
CPU's kernels would), so the receipt is genuine and only the tolerance decides.
"""

from __future__ import annotations

import base64
import json

import numpy as np
import pytest

from inferproof import LocalNode
from inferproof._canonical import canonical_json
from inferproof.errors import InputError
from inferproof.proofs import OnnxTolerance
from inferproof.proofs.reexec import _ulps, output_error
from inferproof.receipts import Bundle, sign_envelope
from inferproof.runtime import decode_tensors, encode_tensors, tensors_digest
from inferproof.verify import CheckStatus, Material, Policy, parse_policy

from ..conftest import mlp_input

CHECK = "output.reexecution"


def _check(node: LocalNode, bundle: Bundle, model: bytes, policy: Policy) -> tuple:
    report = node.verifier(policy).check(bundle, Material(model_bytes=model))
    c = next(c for c in report.checks if c.name == CHECK)
    return c.status, c.detail


def _resign(node: LocalNode, bundle: Bundle, move) -> Bundle:
    """The node's outputs changed by ``move`` and signed again with the node's key."""
    outputs = {k: move(v) for k, v in decode_tensors(bundle.outputs, "outputs").items()}
    obj = json.loads(bundle.dumps())
    stmt = json.loads(base64.b64decode(obj["dsseEnvelope"]["payload"]))
    stmt["subject"][0]["digest"]["sha256"] = tensors_digest(outputs).split(":", 1)[1]
    obj["dsseEnvelope"] = sign_envelope(canonical_json(stmt), node.issuer._key)
    obj["outputs"] = encode_tensors(outputs)
    obj.pop("tlogEntry", None)
    return Bundle.from_json(obj)


def _ulp_step(n: int):
    def move(a: np.ndarray) -> np.ndarray:
        out = a.copy()
        for _ in range(n):
            out = np.nextafter(out, np.float32(np.inf)).astype(a.dtype)
        return out

    return move


@pytest.fixture()
def honest(node: LocalNode, mlp_bytes: bytes) -> Bundle:
    node.push(mlp_bytes, name="mlp")
    return node.infer("mlp", mlp_input()).bundle


def test_same_machine_is_bit_identical(node, honest, mlp_bytes) -> None:
    status, detail = _check(node, honest, mlp_bytes, Policy())
    assert status is CheckStatus.PASSED and detail.startswith("re-executed: bit-identical output")


def test_a_few_ulp_fail_by_default_and_pass_within_the_policys_tolerance(
    node, honest, mlp_bytes
) -> None:
    other = _resign(node, honest, _ulp_step(3))
    status, detail = _check(node, other, mlp_bytes, Policy())
    assert status is CheckStatus.FAILED
    assert "max 3 ULP (policy: bit-identical" in detail
    ok = Policy(onnx_tolerance=OnnxTolerance(max_ulp=4))
    status, detail = _check(node, other, mlp_bytes, ok)
    assert status is CheckStatus.PASSED
    assert (
        detail.startswith("re-executed: within tolerance, max abs error") and "max 3 ULP" in detail
    )
    tight = Policy(onnx_tolerance=OnnxTolerance(max_abs=1e-12, max_ulp=2))
    assert _check(node, other, mlp_bytes, tight)[0] is CheckStatus.FAILED


def test_an_absolute_tolerance_accepts_small_errors_only(node, honest, mlp_bytes) -> None:
    near = _resign(node, honest, lambda a: (a + np.float32(1e-6)).astype(a.dtype))
    far = _resign(node, honest, lambda a: (a + np.float32(1e-2)).astype(a.dtype))
    policy = Policy(onnx_tolerance=OnnxTolerance(max_abs=1e-5, max_ulp=64))
    assert _check(node, near, mlp_bytes, policy)[0] is CheckStatus.PASSED
    status, detail = _check(node, far, mlp_bytes, policy)
    assert status is CheckStatus.FAILED and "max abs error 0.01" in detail


def test_claimed_outputs_that_do_not_hash_to_the_receipt_are_not_compared(
    node, honest, mlp_bytes
) -> None:
    other = _resign(node, honest, _ulp_step(1))
    obj = json.loads(other.dumps())
    obj["outputs"] = honest.to_json()["outputs"]  # outputs of another receipt
    status, detail = _check(
        node, Bundle.from_json(obj), mlp_bytes, Policy(onnx_tolerance=OnnxTolerance(max_ulp=64))
    )
    assert status is CheckStatus.FAILED and "differs from the receipt's" in detail


def test_shapes_dtypes_and_integers_must_match_exactly() -> None:
    a = {"y": np.array([1.0, 2.0], dtype=np.float32), "label": np.array([1], dtype=np.int64)}
    tol = OnnxTolerance(max_abs=1.0, max_ulp=1 << 30)
    assert output_error(a, dict(a)).within(tol)
    assert not output_error(a, {**a, "label": np.array([2], dtype=np.int64)}).within(tol)
    assert not output_error(a, {**a, "y": a["y"].astype(np.float64)}).within(tol)
    assert not output_error(a, {**a, "y": a["y"][:1]}).within(tol)
    assert not output_error(a, {"y": a["y"]}).within(tol)


def test_ulp_distance() -> None:
    one = np.array([1.0], dtype=np.float32)
    assert _ulps(one, np.nextafter(one, np.float32(2))).tolist() == [1.0]
    zeros = np.array([0.0], dtype=np.float32), np.array([-0.0], dtype=np.float32)
    assert _ulps(*zeros).tolist() == [0.0]
    tiny = np.nextafter(np.float32(0), np.float32(1)), np.nextafter(np.float32(0), np.float32(-1))
    assert _ulps(np.array([tiny[0]]), np.array([tiny[1]])).tolist() == [2.0]
    nan = np.array([np.nan], dtype=np.float64)
    assert _ulps(nan, np.array([1.0])).tolist()[0] > 1e18
    assert _ulps(nan, nan).tolist() == [0.0]


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ({"onnx": {"max_abs": -1}}, "max_abs must be a number >= 0"),
        ({"onnx": {"max_ulp": 1.5}}, "max_ulp must be an integer"),
        ({"onnx": {"rtol": 1}}, "takes max_abs and/or max_ulp"),
        ({"onnx": {}}, "takes max_abs and/or max_ulp"),
        ({"fingerprint": {"max_abs": "big"}}, "must be a number >= 0"),
        ({"fingerprint": {"rtol": 1}}, "reexecution.fingerprint takes"),
        ({"other": 1}, "unknown key"),
    ],
)
def test_bad_tolerances_are_refused(node, section, message) -> None:
    with pytest.raises(InputError, match=message):
        parse_policy({"reexecution": section}, node.trust_root())


@pytest.mark.parametrize(
    ("value", "mode", "required"),
    [
        (True, "either", True),
        (False, "either", False),
        ("exact", "exact", True),
        ("fingerprint", "fingerprint", True),
        ("either", "either", True),
    ],
)
def test_reexecution_modes(node, value, mode, required) -> None:
    _, policy = parse_policy(
        {"require": {"reexecution": value}, "reexecution": {"onnx": {"max_ulp": 8}}},
        node.trust_root(),
    )
    assert (policy.reexecution_mode, policy.require_reexecution) == (mode, required)
    assert policy.onnx_tolerance == OnnxTolerance(0.0, 8)


def test_an_unknown_mode_is_refused(node) -> None:
    with pytest.raises(InputError, match=r"require\.reexecution must be true, false or one of"):
        parse_policy({"require": {"reexecution": "roughly"}}, node.trust_root())
