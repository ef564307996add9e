"""`policy init` writes a policy that verifies what its node produces (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from inferproof.cli import app
from inferproof.testing import credit_risk_model

runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout + result.stderr


@pytest.fixture()
def tour(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INFERPROOF_HOME", str(tmp_path / "home"))
    model, sample = credit_risk_model()
    (tmp_path / "credit.onnx").write_bytes(model)
    (tmp_path / "input.json").write_text(json.dumps(sample))
    return tmp_path


def _key(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    path.write_bytes(key.private_bytes(serialization.Encoding.PEM,
                     serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))  # fmt: skip
    return path


def test_a_written_policy_verifies_a_signed_tour(tour: Path) -> None:
    code, out = _run("model", "push", str(tour / "credit.onnx"), "--name", "credit-risk",
                     "--version", "1", "--sign-key", str(_key(tour / "pub.key")))  # fmt: skip
    assert code == 0, out
    code, out = _run("infer", "credit-risk:1", "--input", str(tour / "input.json"),
                     "-o", str(tour / "b.json"))  # fmt: skip
    assert code == 0, out
    assert _run("policy", "init", "-o", str(tour / "policy.json"))[0] == 0
    doc = json.loads((tour / "policy.json").read_text())
    assert doc["require"]["model_signature"] is True and len(doc["trust"]["publisher_keys"]) == 1
    code, out = _run("verify", str(tour / "b.json"), "--policy", str(tour / "policy.json"))
    assert code == 0, out
    assert "model.signature" in out and "VERIFIED" in out


def test_without_a_trusted_publisher_it_says_what_to_add(tour: Path) -> None:
    assert _run("model", "push", str(tour / "credit.onnx"), "--name", "credit-risk")[0] == 0
    assert _run("infer", "credit-risk", "--input", str(tour / "input.json"),
                "-o", str(tour / "b.json"))[0] == 0  # fmt: skip
    assert _run("policy", "init", "-o", str(tour / "policy.json"))[0] == 0
    doc = json.loads((tour / "policy.json").read_text())
    assert doc["require"]["model_signature"] is False
    assert "add the PEM public keys" in doc["trust"]["$comment"]
    code, out = _run("verify", str(tour / "b.json"), "--policy", str(tour / "policy.json"))
    assert code == 0, out
