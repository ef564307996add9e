"""Build the hostile inputs of issue 11's low parser findings (the 500s and tracebacks).

Run from the repository root: ``python tests/security/assets/make_parser_assets.py``.
Every byte is fixed (a key derived from a constant, zip entries dated 1980-01-01),
so running it again rewrites the same files.

- ``review-tensor-shape-overflow.input.json``: an input tensor of shape
  ``[2**32, 2**32]`` with no data. ``np.prod`` wrapped the element count to 0, so
  the cap let it through and the reshape raised: an HTTP 500 from ``/v1/infer``.
- ``review-tensor-shape-overflow.bundle.json``: a signed bundle whose output is
  that tensor: a traceback from ``inferproof verify``.
- ``review-npz-declared-size.npz``: an ``.npz`` whose one member declares 2**33
  float64 values (64 GiB) and holds none: ``np.load`` allocated before reading,
  a ``MemoryError`` traceback from ``inferproof infer``.
- ``review-model-signing-list-predicate.sig.json``: a model-signing (Sigstore)
  bundle whose statement's ``predicate`` is a list: an ``AttributeError``, an
  HTTP 500 from a model push with this signature and a traceback from verify.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import zipfile
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from numpy.lib import format as npy_format

from inferproof._canonical import canonical_json
from inferproof.receipts import BUNDLE_MEDIA_TYPE, build_statement, sign_envelope

HERE = Path(__file__).parent
WRAPPING_SHAPE = [2**32, 2**32]
# 2**33 float64 values: 64 GiB declared by a header of about a hundred bytes.
DECLARED_SHAPE = (2**33,)
_KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"issue 11 review assets").digest())


def _digest(label: str) -> str:
    return "sha256:" + hashlib.sha256(label.encode()).hexdigest()


def wrapping_tensor() -> dict[str, object]:
    return {"dtype": "float32", "shape": WRAPPING_SHAPE, "data": []}


def shape_overflow_input() -> bytes:
    return json.dumps({"x": wrapping_tensor()}, indent=2).encode() + b"\n"


def shape_overflow_bundle() -> bytes:
    statement = build_statement(
        output_digest=_digest("outputs"),
        model={"digest": _digest("model"), "name": "mlp", "version": "1", "format": "onnx"},
        input_block={"digest": _digest("inputs")},
        runtime={"engine": "onnxruntime", "settings": {}},
        environment={"type": "software", "digest": _digest("env"), "measurement": {}},
        proofs=[{"type": "signature"}],
        node_id="sha256:" + "0" * 64,
        nonce=None,
        started="2025-01-01T00:00:00Z",
        finished="2025-01-01T00:00:01Z",
    )
    bundle = {
        "mediaType": BUNDLE_MEDIA_TYPE,
        "dsseEnvelope": sign_envelope(canonical_json(statement), _KEY),
        "outputs": {"y": wrapping_tensor()},
    }
    return json.dumps(bundle, indent=2, sort_keys=True).encode() + b"\n"


def npz_declared_size() -> bytes:
    member = io.BytesIO()
    header = {"descr": "<f8", "fortran_order": False, "shape": DECLARED_SHAPE}
    npy_format.write_array_header_1_0(member, header)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as archive:
        archive.writestr(
            zipfile.ZipInfo("x.npy", date_time=(1980, 1, 1, 0, 0, 0)), member.getvalue()
        )
    return out.getvalue()


def model_signing_list_predicate() -> bytes:
    statement = {
        "_type": "https://in-toto.io/Statement/v1",
        "subject": [{"name": "model", "digest": {"sha256": "0" * 64}}],
        "predicateType": "https://model_signing/signature/v1.0",
        "predicate": [],
    }
    bundle = {
        "mediaType": "application/vnd.dev.sigstore.bundle.v0.3+json",
        "verificationMaterial": {"publicKey": {"hint": "0" * 64}},
        "dsseEnvelope": {
            "payload": base64.b64encode(canonical_json(statement)).decode(),
            "payloadType": "application/vnd.in-toto+json",
            "signatures": [{"sig": base64.b64encode(bytes(64)).decode()}],
        },
    }
    return json.dumps(bundle, indent=2).encode() + b"\n"


ASSETS = {
    "review-tensor-shape-overflow.input.json": shape_overflow_input,
    "review-tensor-shape-overflow.bundle.json": shape_overflow_bundle,
    "review-npz-declared-size.npz": npz_declared_size,
    "review-model-signing-list-predicate.sig.json": model_signing_list_predicate,
}


def main() -> None:
    for name, make in ASSETS.items():
        (HERE / name).write_bytes(make())
        print(f"wrote {HERE / name}")


if __name__ == "__main__":
    main()
