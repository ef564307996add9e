"""The log and witness commands, through Typer's runner and a real subprocess."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from inferproof.cli._log import log_app
from inferproof.log import TileClient, VerifierKey, verify_tlog_proof

runner = CliRunner()


@pytest.fixture
def home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("INFERPROOF_HOME", str(tmp_path))
    return tmp_path


def test_info_append_proof_consistency_verify_export(home: Path, tmp_path: Path) -> None:
    info = runner.invoke(log_app, ["info"])
    assert info.exit_code == 0 and "size: 0" in info.output
    vkey = VerifierKey.parse(info.output.split("verifier key: ")[1].strip())
    for i in range(3):
        (tmp_path / f"e{i}").write_bytes(f"entry {i}".encode())
        out = runner.invoke(log_app, ["append", str(tmp_path / f"e{i}")])
        assert out.exit_code == 0, out.output
    proof = runner.invoke(log_app, ["proof", "1"])
    assert proof.exit_code == 0
    assert verify_tlog_proof(proof.output, b"entry 1", vkey).index == 1
    cons = runner.invoke(log_app, ["consistency", "1", "3"])
    assert cons.exit_code == 0 and len(cons.output.splitlines()) == 2
    audit = runner.invoke(log_app, ["verify"])
    assert audit.exit_code == 0 and "3 entries" in audit.output
    export = runner.invoke(log_app, ["export-tiles", str(tmp_path / "tiles")])
    assert export.exit_code == 0
    assert TileClient.from_directory(tmp_path / "tiles", vkey).entry(2).data == b"entry 2"


def test_bad_input_is_one_line_and_nonzero(home: Path) -> None:
    for args in (["proof", "5"], ["consistency", "3", "1"], ["cosign", "--witness", "nope"]):
        result = runner.invoke(log_app, args)
        assert result.exit_code == 2, args
        assert result.output.startswith("error: ") and result.output.count("\n") == 1


def test_witness_serve_runs_as_a_process(home: Path, tmp_path: Path) -> None:
    info = runner.invoke(log_app, ["info"])
    vkey = info.output.split("verifier key: ")[1].strip()
    code = "from inferproof.cli._log import witness_app; witness_app()"
    proc = subprocess.Popen(
        [sys.executable, "-c", code, "serve", "--port", "0", "--log-key", vkey],
        stderr=subprocess.PIPE,
        text=True,
        env={"INFERPROOF_HOME": str(home), "PATH": "/usr/bin:/bin"},
    )
    try:
        assert proc.stderr is not None
        witness_key = proc.stderr.readline().split("witness key: ")[1].strip()
        url = proc.stderr.readline().split("listening on ")[1].strip()
        url = url.removesuffix("/add-checkpoint")
        (tmp_path / "e").write_bytes(b"x")
        assert runner.invoke(log_app, ["append", str(tmp_path / "e")]).exit_code == 0
        deadline = time.monotonic() + 10
        result = runner.invoke(log_app, ["cosign", "--witness", f"{url}={witness_key}"])
        while result.exit_code != 0 and time.monotonic() < deadline:
            time.sleep(0.1)
            result = runner.invoke(log_app, ["cosign", "--witness", f"{url}={witness_key}"])
        assert result.exit_code == 0 and "cosigned by 1 of 1" in result.output
        proof = runner.invoke(log_app, ["proof", "0"]).output
        verify_tlog_proof(
            proof, b"x", VerifierKey.parse(vkey), [VerifierKey.parse(witness_key)], quorum=1
        )
    finally:
        proc.terminate()
        proc.wait(timeout=10)
