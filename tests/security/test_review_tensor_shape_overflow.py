"""Issue 11, low: a tensor shape ``[2**32, 2**32]`` wrapped ``np.prod`` to 0.

The element count was computed with numpy's 64-bit integers, so
``2**32 * 2**32`` counted 0 elements, passed the 16 Mi element cap, matched an
empty ``data`` list and failed in ``reshape``: HTTP 500 from ``/v1/infer`` and a
traceback from ``inferproof verify`` (``Verifier.check`` must never raise for a
malformed bundle). Counts are now Python integers, every dimension and the
number of dimensions are capped too, and the count is refused before anything
is allocated. The hostile input and bundle are built by
``assets/make_parser_assets.py``.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from inferproof import LocalNode
from inferproof.errors import InputError
from inferproof.receipts import Bundle
from inferproof.runtime import decode_tensors, parse_json_tensors
from inferproof.runtime._tensors import MAX_DIMS, MAX_ELEMENTS, checked_shape
from inferproof.testing import mlp_model

from ._parsers import ASSETS, assert_one_line_error, asset, cli, node_with_mlp

INPUT = "review-tensor-shape-overflow.input.json"
BUNDLE = "review-tensor-shape-overflow.bundle.json"

REFUSED = [
    ([2**32, 2**32], "a dimension is over the cap"),
    ([2**16, 2**16, 2**16, 2**16], "elements, over the cap"),  # 2**64: wraps to 0 too
    ([0, 2**70], "a dimension is over the cap"),  # 0 elements, but no numpy can hold it
    ([MAX_ELEMENTS + 1], "a dimension is over the cap"),
    ([4097, 4097], "elements, over the cap"),
    ([1] * (MAX_DIMS + 1), "dimensions, over the cap"),
    ([-1], "non-negative integers"),
    ([True], "non-negative integers"),
    ([2.0], "non-negative integers"),
    ("[2]", "non-negative integers"),
    (None, "non-negative integers"),
]
ACCEPTED = [([], 1), ([0], 0), ([2, 3], 6), ([1] * MAX_DIMS, 1), ([MAX_ELEMENTS], MAX_ELEMENTS)]


@pytest.mark.parametrize(("shape", "why"), REFUSED)
def test_bad_shapes_are_refused(shape: object, why: str) -> None:
    with pytest.raises(InputError, match=why):
        checked_shape(shape, "x")


@pytest.mark.parametrize(("shape", "count"), ACCEPTED)
def test_good_shapes_count_exactly(shape: list[int], count: int) -> None:
    assert checked_shape(shape, "x") == (tuple(shape), count)


def test_the_library_refuses_the_input_and_the_output() -> None:
    with pytest.raises(InputError, match="over the cap"):
        parse_json_tensors(asset(INPUT))
    with pytest.raises(InputError, match="over the cap"):
        decode_tensors(json.loads(asset(INPUT)), "outputs")


def test_the_verifier_reports_instead_of_raising(tmp_path: Path) -> None:
    node = LocalNode(tmp_path / "home")
    report = node.verifier().check(Bundle.loads(asset(BUNDLE)))
    checks = {c.name: c for c in report.checks}
    assert not report.verified
    assert checks["output.digest"].status.value == "failed"
    assert "over the cap" in checks["output.digest"].detail


def test_cli_verify_reports_a_failed_check(home: Path) -> None:
    code, out, err = cli("verify", str(ASSETS / BUNDLE), "--json")
    assert code == 1 and "Traceback" not in out + err
    checks = {c["name"]: c for c in json.loads(out)["checks"]}
    assert checks["output.digest"]["status"] == "failed"
    assert "over the cap" in checks["output.digest"]["detail"]


def test_cli_infer_is_a_one_line_error(home: Path, tmp_path: Path) -> None:
    model = tmp_path / "mlp.onnx"
    model.write_bytes(mlp_model((8, 16, 2)))
    code, out, err = cli(
        "infer", str(model), "--input", str(ASSETS / INPUT), "-o", str(tmp_path / "b")
    )
    assert_one_line_error(code, out, err, "over the cap")


def test_http_infer_is_a_400(tmp_path: Path) -> None:
    inputs = json.loads(asset(INPUT))
    with node_with_mlp(tmp_path / "node") as running, running.http() as http:
        single = http.post("/v1/infer", json={"model": "mlp:1", "inputs": inputs})
        batch = http.post("/v1/infer/batch", json={"model": "mlp:1", "items": [{"inputs": inputs}]})
    for answer in (single, batch):
        assert answer.status_code == 400, answer.text
        assert "over the cap" in answer.json()["error"]["message"]
