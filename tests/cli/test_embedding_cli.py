"""The CLI on embedding receipts: receipt show, verify with an opening (issue 12)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inferproof import LocalNode
from inferproof.cli import app
from inferproof.testing import smollm2_gguf

runner = CliRunner()


@pytest.fixture()
def embedded(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    monkeypatch.setenv("INFERPROOF_HOME", str(tmp_path / "home"))
    with LocalNode(tmp_path / "home") as node:
        node.push(smollm2_gguf(), name="smollm2")
        public = node.embed("smollm2", {"input": ["Paris", "Lyon"]})
        private = node.embed("smollm2", {"input": ["a secret"]}, private=True)
    public.bundle.write(tmp_path / "public.json")
    private.bundle.write(tmp_path / "private.json")
    assert private.opening is not None
    private.opening.save(tmp_path / "private.json.opening")
    return tmp_path / "public.json", tmp_path / "private.json", tmp_path / "private.json.opening"


def test_receipt_show_names_an_embedding(embedded: tuple[Path, Path, Path]) -> None:
    public, _, _ = embedded
    got = runner.invoke(app, ["receipt", "show", str(public), "--json"])
    assert got.exit_code == 0, got.stderr
    receipt = json.loads(got.stdout)["receipt"]
    assert receipt["kind"] == "embedding"
    assert receipt["input"]["texts"] == ["Paris", "Lyon"]
    assert receipt["output"]["vectors"] == "2 x 576 float32"


def test_verify_opens_a_private_embedding(embedded: tuple[Path, Path, Path]) -> None:
    _, private, opening = embedded
    shut = runner.invoke(app, ["verify", str(private), "--json"])
    opened = runner.invoke(app, ["verify", str(private), "--opening", str(opening), "--json"])

    def status(result: object) -> dict[str, str]:
        return {c["name"]: c["status"] for c in json.loads(result.stdout)["checks"]}  # type: ignore[attr-defined]

    assert status(shut)["output.digest"] != "passed"
    assert status(opened)["output.digest"] == "passed" and opened.exit_code == 0
    wrong = runner.invoke(app, ["verify", str(private), "--input", str(opening)])
    assert wrong.exit_code == 2 and "applies to tensor receipts" in wrong.stderr
