"""What EZKL can prove: the README's credit-risk model, and a clear refusal otherwise."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from inferproof import LocalNode
from inferproof.cli import app
from inferproof.errors import InputError
from inferproof.runtime import NamedInputs
from inferproof.testing import credit_risk_model
from inferproof.verify import Policy


def _sklearn_onnx() -> bytes:
    from skl2onnx import to_onnx
    from sklearn.linear_model import LogisticRegression

    x = np.random.default_rng(0).normal(size=(64, 4)).astype(np.float32)
    fitted = LogisticRegression().fit(x, (x[:, 0] > 0).astype(np.int64))
    return bytes(
        to_onnx(fitted, x[:1], options={id(fitted): {"zipmap": False}}).SerializeToString()
    )


def test_scikit_learn_operators_are_refused_with_what_to_do(tmp_path: Path) -> None:
    with LocalNode(tmp_path / "n") as node:
        node.push(_sklearn_onnx(), name="sk")
        sample = NamedInputs({"X": np.zeros((1, 4), np.float32)})
        with pytest.raises(InputError) as exc:
            node.zk_setup("sk", [sample], dev_srs=True)
    message = str(exc.value)
    assert "ai.onnx.ml.LinearClassifier" in message
    assert "standard ONNX operators" in message and "credit_risk_model" in message


def test_a_missing_srs_file_says_where_srs_files_come_from(tmp_path: Path) -> None:
    model, sample = credit_risk_model()
    with LocalNode(tmp_path / "n") as node:
        node.push(model, name="credit")
        with pytest.raises(InputError, match=r"ezkl get-srs.*--online-srs.*--dev-srs"):
            node.zk_setup("credit", [NamedInputs({"X": np.array(sample["X"], np.float32)})],
                          srs_path=tmp_path / "kzg15.srs")  # fmt: skip


def test_the_credit_risk_model_is_provable(tmp_path: Path) -> None:
    """The README's ZK tour, through the library: set up, prove, verify."""
    model, sample = credit_risk_model()
    x = {"X": np.array(sample["X"], np.float32)}
    with LocalNode(tmp_path / "n") as node:
        node.push(model, name="credit-risk", version="1")
        float_answer = node.infer("credit-risk:1", x).outputs
        node.zk_setup("credit-risk:1", [NamedInputs(x)], dev_srs=True)
        proven = node.infer("credit-risk:1", x, mode="zk")
        report = node.verifier(Policy(allow_dev_srs=True, require_zk=True)).check(proven.bundle)
    assert report.verified, [c for c in report.checks if not c.passed]
    assert proven.outputs["label"].dtype == np.int64
    assert proven.outputs["label"].tolist() == float_answer["label"].tolist()
    assert np.allclose(proven.outputs["probabilities"], float_answer["probabilities"], atol=0.01)


def test_cli_zk_setup_with_a_missing_srs_is_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERPROOF_HOME", str(tmp_path / "home"))
    model = tmp_path / "credit.onnx"
    model.write_bytes(credit_risk_model()[0])
    inp = tmp_path / "x.json"
    inp.write_text('{"X": [[52.0, 0.41, 34.0, 2.0]]}')
    got = CliRunner().invoke(app, ["zk", "setup", str(model), "--sample-input", str(inp),
                                   "--srs", str(tmp_path / "kzg15.srs")])  # fmt: skip
    assert got.exit_code == 2
    lines = [line for line in got.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: SRS file") and "ezkl get-srs" in lines[0]
