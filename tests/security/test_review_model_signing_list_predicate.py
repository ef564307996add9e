"""Issue 11, low: a model-signing bundle with a list ``predicate`` gave an HTTP 500.

The parser took ``statement.get("predicate") or {}`` for an object and called
``.get`` on it, so ``"predicate": []`` (or a list anywhere an object belongs)
was an ``AttributeError``: a 500 from a model push carrying the signature, and
a traceback from ``inferproof verify`` on a bundle recording it. Every level of
the parsed bundle is now type-checked, and the manifest digest must be hex. The
hostile signature is built by ``assets/make_parser_assets.py``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferproof import LocalNode
from inferproof._canonical import canonical_json, sha256_digest
from inferproof.engine import Claim, utc_now
from inferproof.errors import InputError
from inferproof.hub import parse_model_signature, verify_model_signature
from inferproof.receipts import Bundle
from inferproof.runtime import encode_tensors, tensors_digest
from inferproof.testing import mlp_model

from ..node.conftest import MLP_SIZES
from ._parsers import ASSETS, asset, cli, node_with_mlp

SIG = "review-model-signing-list-predicate.sig.json"


_RESOURCE = {"name": ".", "algorithm": "sha256", "digest": "ab" * 32}


def _variant(
    predicate: Any = None, edit: Callable[[dict[str, Any]], None] = lambda b: None
) -> bytes:
    """The asset with a well-formed predicate (or ``predicate``), then ``edit`` applied."""
    bundle = json.loads(asset(SIG))
    statement = json.loads(base64.b64decode(bundle["dsseEnvelope"]["payload"]))
    statement["predicate"] = {"resources": [_RESOURCE]} if predicate is None else predicate
    bundle["dsseEnvelope"]["payload"] = base64.b64encode(canonical_json(statement)).decode()
    edit(bundle)
    return json.dumps(bundle).encode()


TYPE_CONFUSED = [
    pytest.param(asset(SIG), "predicate must be an object", id="list-predicate"),
    pytest.param(_variant("x"), "predicate must be an object", id="str-predicate"),
    pytest.param(
        _variant({"resources": {"0": _RESOURCE}}),
        "not over a single-file model",
        id="resources-object",
    ),
    pytest.param(
        _variant({"resources": [dict(_RESOURCE, digest="zz" * 32)]}),
        "no sha256 digest",
        id="digest-not-hex",
    ),
    pytest.param(
        _variant(edit=lambda b: b["verificationMaterial"].update(publicKey=[{"hint": "0"}])),
        "publicKey must be an object",
        id="list-public-key",
    ),
    pytest.param(
        _variant(edit=lambda b: b.update(verificationMaterial=[])),
        "verificationMaterial must be an object",
        id="list-material",
    ),
]


def test_the_well_formed_variant_parses() -> None:
    """The rows above differ from a signature the parser takes in one place each."""
    assert parse_model_signature(_variant()).model_digest == "sha256:" + "ab" * 32


@pytest.mark.parametrize(("data", "why"), TYPE_CONFUSED)
def test_type_confused_bundles_are_input_errors(data: bytes, why: str) -> None:
    with pytest.raises(InputError, match=why):
        parse_model_signature(data)
    with pytest.raises(InputError, match=why):
        verify_model_signature(data, "sha256:" + "ab" * 32, {})


def _receipt_recording(node: LocalNode, signature: bytes) -> Bundle:
    """A receipt a node signs naming the hostile signature as the model's."""
    model = mlp_model(MLP_SIZES)
    x = {"x": np.zeros((1, MLP_SIZES[0]), np.float32)}
    out = {"y": np.zeros((1, MLP_SIZES[-1]), np.float32)}
    claim = Claim(
        output_digest=tensors_digest(out),
        model={
            "digest": sha256_digest(model),
            "name": "mlp",
            "version": "1",
            "format": "onnx",
            "signature": sha256_digest(signature),
        },
        input_block={"digest": tensors_digest(x)},
        runtime={"engine": "onnxruntime", "settings": {}},
        nonce=None,
        started=utc_now(),
        finished=utc_now(),
        parameters={"mode": "vanilla"},
    )
    return node.issuer.issue(
        claim, outputs=encode_tensors(out), inputs=encode_tensors(x), model_signature=signature
    )


def test_the_verifier_reports_a_failed_check(tmp_path: Path) -> None:
    node = LocalNode(tmp_path / "home")
    report = node.verifier().check(_receipt_recording(node, asset(SIG)))
    check = next(c for c in report.checks if c.name == "model.signature")
    assert not report.verified and check.status.value == "failed"
    assert "predicate must be an object" in check.detail


def test_cli_verify_reports_a_failed_check(home: Path, tmp_path: Path) -> None:
    bundle = tmp_path / "b.json"
    _receipt_recording(LocalNode(home), asset(SIG)).write(bundle)
    code, out, err = cli("verify", str(bundle), "--json")
    assert code == 1 and "Traceback" not in out + err
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert checks["model.signature"]["status"] == "failed"
    assert "predicate must be an object" in checks["model.signature"]["detail"]


def test_local_push_is_refused(tmp_path: Path) -> None:
    node = LocalNode(tmp_path / "home")
    with pytest.raises(InputError, match="predicate must be an object"):
        node.push(mlp_model(MLP_SIZES), name="signed", signature=asset(SIG))
    assert node.hub.list() == []


def test_http_push_is_a_400(tmp_path: Path) -> None:
    model = mlp_model(MLP_SIZES)
    files = {"model": ("m.onnx", model), "signature": ("m.sig", asset(SIG))}
    with node_with_mlp(tmp_path / "node") as running, running.http() as http:
        answer = http.post("/v1/models", params={"name": "signed"}, files=files)
        listed = [m["name"] for m in http.get("/v1/models").json()["models"]]
    assert answer.status_code == 400, answer.text
    assert "predicate must be an object" in answer.json()["error"]["message"]
    assert "signed" not in listed


def test_the_asset_is_what_its_name_says() -> None:
    statement = json.loads(base64.b64decode(json.loads(asset(SIG))["dsseEnvelope"]["payload"]))
    assert statement["predicate"] == [] and (ASSETS / SIG).stat().st_size < 1024
    assert statement["predicateType"] == "https://model_signing/signature/v1.0"
