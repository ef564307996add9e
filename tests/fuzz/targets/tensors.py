"""Tensor inputs and outputs: JSON (plain lists, explicit dtype/shape with data or b64)
and ``.npz`` archives, then conforming them to the real MLP and running it.

Beyond "refuse or succeed": whatever decodes must re-encode to the same digest
(``encode_tensors`` and ``decode_tensors`` are inverse), as a verifier relies on.
"""

from __future__ import annotations

import io
import json

import numpy as np

from inferproof._canonical import parse_json
from inferproof.runtime import (
    NamedInputs,
    OnnxModel,
    decode_tensors,
    encode_tensors,
    parse_json_tensors,
    parse_npz_tensors,
    tensors_digest,
)

from .._harness import JSON_TOKENS, Target, must, parse
from .._material import Material

TOKENS = (
    b'"dtype"',
    b'"shape"',
    b'"data"',
    b'"b64"',
    b'"float16"',
    b'"float32"',
    b'"float64"',
    b'"int8"',
    b'"uint64"',
    b'"bool"',
    b"[4294967296, 4294967296]",
    b"PK\x03\x04",
    b"PK\x01\x02",
    b"PK\x05\x06",
    b".npy",
)
# Running the model on a decoded input is worth it only while the input is small.
_RUN_ELEMENTS = 4096


def _npz(compressed: bool) -> bytes:
    buf = io.BytesIO()
    save = np.savez_compressed if compressed else np.savez
    save(buf, x=np.array([[0.5, -1.0, 2.0, 0.25]], np.float32), flags=np.array([True, False]))
    return buf.getvalue()


def _seeds(m: Material) -> list[bytes]:
    outputs = json.loads(m.bundles["plain"])["outputs"]
    nonfinite = encode_tensors({"x": np.array([[np.inf, -np.inf, np.nan, 0.0]], np.float32)})
    plain = {"x": [[0.5, -1, 2, 0.25]], "k": [1, 2, 3]}
    explicit = {"x": {"dtype": "float32", "shape": [1, 4], "data": [0.5, -1.0, 2.0, 0.25]}}
    docs = [outputs, nonfinite, plain, explicit]
    return [*(json.dumps(d).encode() for d in docs), _npz(False), _npz(True)]


def _round_trip(tensors: dict[str, np.ndarray]) -> None:
    digest = tensors_digest(tensors)
    again = decode_tensors(json.loads(json.dumps(encode_tensors(tensors))), "again")
    must(tensors_digest(again) == digest, "encode_tensors/decode_tensors changed a tensor")


def target(m: Material) -> Target:
    model = OnnxModel(m.onnx)

    def conform_and_run(named: NamedInputs) -> None:
        conformed = parse(model.conform, named.tensors, named.untyped)
        if conformed is not None and sum(a.size for a in conformed.values()) <= _RUN_ELEMENTS:
            parse(model.run, conformed)

    def run(data: bytes) -> None:
        for parser in (parse_json_tensors, parse_npz_tensors):
            named = parse(parser, data)
            if named is not None:
                conform_and_run(named)
        obj = parse(parse_json, data)
        decoded = None if obj is None else parse(decode_tensors, obj, "outputs")
        if decoded is not None:
            _round_trip(decoded)

    def accepts(data: bytes) -> bool:
        return any(parse(p, data) is not None for p in (parse_json_tensors, parse_npz_tensors))

    return Target("tensors", run, tuple(_seeds(m)), JSON_TOKENS + TOKENS, accepts)
