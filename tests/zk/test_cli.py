"""``inferproof zk setup``: steps shown, idempotent, one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inferproof.cli._zk import zk_app
from inferproof.hub._blobs import LocalBlobStore
from inferproof.proofs import zk

from .conftest import make_model

runner = CliRunner()


@pytest.fixture()
def files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path, Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("INFERPROOF_HOME", str(home))
    model = make_model(seed=11)
    model_file = tmp_path / "m.onnx"
    model_file.write_bytes(model.data)
    sample = tmp_path / "x.json"
    sample.write_text(json.dumps({"x": model.samples[0]["x"].tolist()}))
    return home, model_file, sample


@pytest.mark.zk_heavy
def test_setup_then_again(files: tuple[Path, Path, Path]) -> None:
    home, model_file, sample = files
    args = ["setup", str(model_file), "--sample-input", str(sample), "--dev-srs",
            "--param-visibility", "fixed", "--target", "resources"]  # fmt: skip
    first = runner.invoke(zk_app, args)
    assert first.exit_code == 0, first.stderr
    for n in range(1, len(zk.SETUP_STEPS) + 1):
        assert f"step {n}/{len(zk.SETUP_STEPS)}" in first.stderr
    assert "can forge proofs" in first.stderr
    digest = first.stdout.strip().splitlines()[-1]
    record = zk.ZkSetup.from_bytes(LocalBlobStore(home / "blobs").get(digest))
    assert record.param_visibility == "fixed" and record.srs_kind == "dev"
    assert (home / "zk" / "index.json").is_file()
    second = runner.invoke(zk_app, args)
    assert second.exit_code == 0
    assert "already set up" in second.stderr
    assert "step 1" not in second.stderr
    assert second.stdout.strip().splitlines()[-1] == digest


@pytest.mark.parametrize(
    ("extra", "needle"),
    [
        ([], "exactly one SRS"),
        (["--dev-srs", "--srs", "/nonexistent/kzg.srs"], "exactly one SRS"),
    ],
)
def test_setup_errors_are_one_line(
    files: tuple[Path, Path, Path], extra: list[str], needle: str
) -> None:
    _, model_file, sample = files
    result = runner.invoke(zk_app, ["setup", str(model_file), "--sample-input", str(sample),
                                    *extra])  # fmt: skip
    assert result.exit_code == 2
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0]


def test_bad_sample_and_model_files(files: tuple[Path, Path, Path], tmp_path: Path) -> None:
    _, model_file, sample = files
    bad = tmp_path / "bad.json"
    bad.write_text('{"x": [[1, 2]]}')
    result = runner.invoke(zk_app, ["setup", str(model_file), "--sample-input", str(bad),
                                    "--dev-srs"])  # fmt: skip
    assert result.exit_code == 2 and "shape" in result.stderr
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"not onnx")
    result = runner.invoke(zk_app, ["setup", str(junk), "--sample-input", str(sample),
                                    "--dev-srs"])  # fmt: skip
    assert result.exit_code == 2 and "ONNX" in result.stderr
