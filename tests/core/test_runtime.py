from __future__ import annotations

import io
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from inferproof.errors import InputError
from inferproof.runtime import (
    OnnxModel,
    _tensors,
    decode_tensors,
    encode_tensors,
    load_tensors,
    parse_json_tensors,
    parse_npz_tensors,
    tensors_digest,
)
from inferproof.testing import mlp_model


def test_tensor_digest_is_exact() -> None:
    a = {"x": np.array([[1.0, 2.0]], dtype=np.float32)}
    # The digest is sha256 over JCS {"x":{"dtype","shape","sha256"}}; computed here by hand.
    import hashlib

    raw = np.array([1.0, 2.0], dtype="<f4").tobytes()
    hexd = hashlib.sha256(raw).hexdigest()
    manifest = '{"x":{"dtype":"float32","sha256":"' + hexd + '","shape":[1,2]}}'
    assert tensors_digest(a) == "sha256:" + hashlib.sha256(manifest.encode()).hexdigest()
    assert tensors_digest({"x": a["x"].astype(np.float64)}) != tensors_digest(a)
    assert tensors_digest({"x": a["x"].reshape(2, 1)}) != tensors_digest(a)
    assert tensors_digest({"y": a["x"]}) != tensors_digest(a)


def test_encode_decode_roundtrip_including_nan() -> None:
    t = {"a": np.array([[1.5, np.nan]], np.float32), "b": np.array([3, 4], np.int64)}
    back = decode_tensors(json.loads(json.dumps(encode_tensors(t))), "x")
    assert tensors_digest(back) == tensors_digest(t)


def test_json_forms(credit_model) -> None:  # type: ignore[no-untyped-def]
    model = OnnxModel(credit_model[0])
    plain = parse_json_tensors(b'{"X": [[52, 0.41, 34, 2]]}')
    explicit = parse_json_tensors(
        b'{"X": {"dtype": "float32", "shape": [1, 4], "data": [52, 0.41, 34, 2]}}'
    )
    a = model.conform(plain.tensors, plain.untyped)
    b = model.conform(explicit.tensors, explicit.untyped)
    assert tensors_digest(a) == tensors_digest(b)
    assert a["X"].dtype == np.float32


def test_npz_input(tmp_path: Path, credit_model) -> None:  # type: ignore[no-untyped-def]
    buf = io.BytesIO()
    np.savez(buf, X=np.array([[52, 0.41, 34, 2]], np.float32))
    path = tmp_path / "in.npz"
    path.write_bytes(buf.getvalue())
    named = load_tensors(path)
    out = OnnxModel(credit_model[0]).conform(named.tensors, named.untyped)
    assert out["X"].shape == (1, 4)


@pytest.mark.parametrize(
    "payload,message",
    [
        (
            b'{"Y": [[1, 2, 3, 4]]}',
            "missing input\\(s\\) \\['X'\\]; unknown input\\(s\\) \\['Y'\\]",
        ),
        (b'{"X": [[1, 2, 3]]}', "shape \\[1, 3\\], the model expects \\['\\?', 4\\]"),
        (b'{"X": [1, 2, 3, 4]}', "shape \\[4\\]"),
        (b'{"X": {"dtype": "float64", "shape": [1, 4], "data": [1, 2, 3, 4]}}', "dtype float64"),
        (b'{"X": [[1, 2, 3, 1e300]]}', "overflow float32"),
        (b'{"X": [[1, "a", 3, 4]]}', "numbers"),
        (b'{"X": [[1, 2], [3]]}', "rectangular"),
        (b'{"X": [[NaN, 2, 3, 4]]}', "non-finite"),
        (b'{"X": {"dtype": "float32", "shape": [1, 4], "data": [1, 2]}}', "do not fill"),
        (b'{"X": {"dtype": "complex64", "shape": [1], "data": [1]}}', "unsupported dtype"),
        (b"[1, 2]", "object of named tensors"),
    ],
)
def test_bad_inputs(payload: bytes, message: str, credit_model) -> None:  # type: ignore[no-untyped-def]
    model = OnnxModel(credit_model[0])
    with pytest.raises(InputError, match=message):
        named = parse_json_tensors(payload)
        model.conform(named.tensors, named.untyped)


def test_int_input_rejects_fractions() -> None:
    from inferproof.runtime import conform
    from inferproof.runtime._spec import TensorSpec

    named = parse_json_tensors(b'{"k": [1.5]}')
    with pytest.raises(InputError, match="non-integer"):
        conform(named.tensors, (TensorSpec("k", "int64", (1,)),), named.untyped)


def test_element_cap(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_tensors, "MAX_ELEMENTS", 10)
    with pytest.raises(InputError, match="over the cap of 10"):
        parse_json_tensors(json.dumps({"x": list(range(11))}).encode())
    with pytest.raises(InputError, match="over the cap"):
        parse_json_tensors(b'{"x": {"dtype": "float32", "shape": [11], "data": []}}')


def test_bad_npz() -> None:
    with pytest.raises(InputError, match="npz"):
        parse_npz_tensors(b"PK\x03\x04 broken")


_RUN = """
import sys, json, numpy as np
from inferproof.testing import credit_risk_model, mlp_model
from inferproof.runtime import OnnxModel, tensors_digest
rng = np.random.default_rng(3)
cases = {
    "credit": (credit_risk_model()[0], {"X": rng.normal(50, 10, (16, 4)).astype(np.float32)}),
    "mlp": (mlp_model((8, 32, 16, 2)), {"x": rng.standard_normal((16, 8)).astype(np.float32)}),
    "mlp1m": (mlp_model((256, 1024, 512, 64)), {"x": rng.standard_normal((4, 256)).astype(np.float32)}),
}
print(json.dumps({k: tensors_digest(OnnxModel(m).run(x)) for k, (m, x) in cases.items()}))
"""


def test_two_processes_give_identical_output_digests() -> None:
    runs = [
        json.loads(
            subprocess.run(
                [sys.executable, "-c", _RUN], check=True, capture_output=True, text=True
            ).stdout
        )
        for _ in range(2)
    ]
    assert runs[0] == runs[1]
    assert set(runs[0]) == {"credit", "mlp", "mlp1m"}
    assert len(set(runs[0].values())) == 3


def test_session_options_are_pinned() -> None:
    model = OnnxModel(mlp_model((4, 4)))
    opts = model._session.get_session_options()
    assert (opts.intra_op_num_threads, opts.inter_op_num_threads) == (1, 1)
    assert str(opts.graph_optimization_level).endswith("ORT_ENABLE_BASIC")
