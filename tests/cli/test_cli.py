"""The command line: happy paths and one-line errors with non-zero exits."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from inferproof.cli import app

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def assert_one_line_error(code: int, err: str, needle: str) -> None:
    assert code != 0
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert lines[0].startswith("error: ") and needle in lines[0], lines[0]


def test_push_list_show_infer_verify(
    home: Path, credit_files: tuple[Path, Path], tmp_path: Path
) -> None:
    model, inp = credit_files
    code, out, _ = run("model", "push", str(model), "--name", "risk", "--version", "1")
    assert code == 0
    digest = out.strip().splitlines()[-1]
    assert digest.startswith("sha256:") and len(digest) == 71
    code, out2, _ = run("model", "push", str(model), "--name", "risk", "--version", "1")
    assert out2.strip().splitlines()[-1] == digest
    code, out, _ = run("model", "list")
    assert code == 0 and "risk" in out
    code, out, _ = run("model", "show", "risk:1", "--json")
    assert json.loads(out)["digest"] == digest
    bundle = tmp_path / "b.json"
    for ref in ("risk:1", digest, str(model)):
        code, out, err = run("infer", ref, "--input", str(inp), "--nonce", "abc", "-o", str(bundle))
        assert code == 0, err
        code, out, err = run(
            "verify", str(bundle), "--json", "--nonce", "abc", "--model", str(model)
        )
        doc = json.loads(out)
        assert code == 0 and doc["verified"] is True
        assert {c["name"]: c["status"] for c in doc["checks"]}["nonce"] == "passed"
        assert set(doc["checks"][0]) == {"name", "status", "detail"}


def test_npz_and_private_input(home: Path, credit_files: tuple[Path, Path], tmp_path: Path) -> None:
    model, _ = credit_files
    buf = io.BytesIO()
    np.savez(buf, X=np.array([[40, 0.2, 50, 0]], np.float32))
    npz = tmp_path / "in.npz"
    npz.write_bytes(buf.getvalue())
    bundle = tmp_path / "p.json"
    code, _, err = run(
        "infer", str(model), "--input", str(npz), "--private-input", "-o", str(bundle)
    )
    assert code == 0, err
    opening = tmp_path / "p.json.opening"
    assert opening.stat().st_mode & 0o777 == 0o600
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"require": {"input": True, "reexecution": True}}))
    code, out, _ = run("verify", str(bundle), "--policy", str(policy), "--json")
    assert code == 1 and json.loads(out)["verified"] is False
    code, out, _ = run(
        "verify",
        str(bundle),
        "--policy",
        str(policy),
        "--input",
        str(npz),
        "--opening",
        str(opening),
        "--model",
        str(model),
        "--json",
    )
    assert code == 0, out
    assert {c["name"]: c["status"] for c in json.loads(out)["checks"]}["input"] == "passed"


def test_tampered_bundle_exit_1(
    home: Path, credit_files: tuple[Path, Path], tmp_path: Path
) -> None:
    model, inp = credit_files
    bundle = tmp_path / "b.json"
    assert run("infer", str(model), "--input", str(inp), "-o", str(bundle))[0] == 0
    doc = json.loads(bundle.read_text())
    doc["outputs"]["label"]["data"][0] ^= 1
    bundle.write_text(json.dumps(doc))
    code, out, _ = run("verify", str(bundle))
    assert code == 1 and "NOT VERIFIED (output.digest" in out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["infer", "nope", "--input", "{inp}", "-o", "{tmp}/o.json"], "no model 'nope'"),
        (
            ["infer", "{tmp}/missing.onnx", "--input", "{inp}", "-o", "{tmp}/o.json"],
            "does not exist",
        ),
        (["model", "push", "{tmp}/junk.onnx", "--name", "j"], "not a loadable ONNX model"),
        (["model", "push", "{tmp}/none.onnx", "--name", "j"], "does not exist"),
        (
            ["infer", "{model}", "--input", "{tmp}/names.json", "-o", "{tmp}/o.json"],
            "missing input(s) ['X']",
        ),
        (["infer", "{model}", "--input", "{tmp}/shape.json", "-o", "{tmp}/o.json"], "shape [1, 2]"),
        (["infer", "{model}", "--input", "{tmp}/dtype.json", "-o", "{tmp}/o.json"], "dtype int64"),
        (["infer", "{model}", "--input", "{tmp}/nan.json", "-o", "{tmp}/o.json"], "non-finite"),
        (
            ["infer", "{model}", "--input", "{tmp}/nope.json", "-o", "{tmp}/o.json"],
            "does not exist",
        ),
        (["verify", "{tmp}/junk.onnx"], "bundle is not valid JSON"),
        (["verify", "{tmp}/names.json"], "not an inferproof bundle"),
        (["verify", "{tmp}/b.json", "--policy", "{tmp}/names.json"], "policy: unknown key"),
        (["verify", "{tmp}/b.json", "--policy", "{tmp}/nan.json"], "non-finite"),
        (["model", "show", "sha256:1234"], "not a sha256"),
        (["model", "push", "{model}", "--name", "bad name!"], "model name"),
    ],
)
def test_bad_input_one_line_error(
    home: Path, credit_files: tuple[Path, Path], tmp_path: Path, args: list[str], needle: str
) -> None:
    model, inp = credit_files
    (tmp_path / "junk.onnx").write_bytes(b"\x00not onnx")
    (tmp_path / "names.json").write_text('{"Y": [[1, 2, 3, 4]]}')
    (tmp_path / "shape.json").write_text('{"X": [[1, 2]]}')
    (tmp_path / "dtype.json").write_text(
        '{"X": {"dtype": "int64", "shape": [1, 4], "data": [1, 2, 3, 4]}}'
    )
    (tmp_path / "nan.json").write_text('{"X": [[NaN, 1, 2, 3]]}')
    assert run("infer", str(model), "--input", str(inp), "-o", str(tmp_path / "b.json"))[0] == 0
    filled = [a.format(tmp=tmp_path, inp=inp, model=model) for a in args]
    code, _, err = run(*filled)
    assert_one_line_error(code, err, needle)


def test_input_over_cap(
    home: Path, credit_files: tuple[Path, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from inferproof.runtime import _tensors

    monkeypatch.setattr(_tensors, "MAX_INPUT_FILE_BYTES", 20)
    model, inp = credit_files
    code, _, err = run("infer", str(model), "--input", str(inp), "-o", str(tmp_path / "o.json"))
    assert_one_line_error(code, err, "over the cap")


def test_demo_end_to_end_in_a_real_process(tmp_path: Path) -> None:
    env = dict(os.environ, INFERPROOF_HOME=str(tmp_path / "home"), COLUMNS="200")
    proc = subprocess.run(
        [sys.executable, "-m", "inferproof", "demo", "--dir", str(tmp_path / "demo")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert proc.returncode == 0, proc.stderr
    assert "VERIFIED: the policy is satisfied" in proc.stdout
    assert "NOT VERIFIED (output.digest" in proc.stdout
    assert (tmp_path / "demo" / "bundle.json").is_file()
    # the bundle verifies again from the command line, and the tampered copy does not
    ok = subprocess.run(
        [sys.executable, "-m", "inferproof", "verify", str(tmp_path / "demo" / "bundle.json")],
        env=env,
        capture_output=True,
        text=True,
    )
    bad = subprocess.run(
        [
            sys.executable,
            "-m",
            "inferproof",
            "verify",
            str(tmp_path / "demo" / "bundle-tampered.json"),
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and bad.returncode == 1
