"""`key generate`, `--version`, and `model list` / `model show` in human form and --json."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from typer.testing import CliRunner

from inferproof import __version__
from inferproof.cli import app
from inferproof.hub import load_publisher_key, publisher_id, sign_model, verify_model_signature
from inferproof.runtime import gguf_signature
from inferproof.testing import tiny_llama_gguf

from .test_cli import assert_one_line_error

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.mark.parametrize("kind,curve", [("ecdsa-p256", "secp256r1"), ("ecdsa-p384", "secp384r1")])
def test_key_generate_makes_a_key_model_signing_accepts(
    tmp_path: Path, kind: str, curve: str
) -> None:
    import model_signing

    key = tmp_path / "publisher.pem"
    code, out, err = run("key", "generate", "--type", kind, "-o", str(key))
    assert code == 0, err
    pub_file = tmp_path / "publisher.pem.pub"
    assert key.stat().st_mode & 0o777 == 0o600
    assert pub_file.stat().st_mode & 0o777 == 0o644
    private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    assert isinstance(private, ec.EllipticCurvePrivateKey) and private.curve.name == curve
    public = load_publisher_key(pub_file.read_bytes())
    assert public.public_numbers() == private.public_key().public_numbers()
    assert out.strip() == publisher_id(public)  # the id a policy and the hub name it by
    model = tmp_path / "m.onnx"
    model.write_bytes(b"\x08\x07model bytes")
    signature = sign_model(model.read_bytes(), key)
    assert verify_model_signature(signature, _digest(model), {out.strip(): public})
    (tmp_path / "m.sig").write_bytes(signature)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        verifier = model_signing.verifying.Config()  # type: ignore[no-untyped-call]
        verifier.use_elliptic_key_verifier(public_key=pub_file).verify(model, tmp_path / "m.sig")


def _digest(path: Path) -> str:
    import hashlib

    return "sha256:" + hashlib.sha256(path.read_bytes()).hexdigest()


def test_a_generated_key_signs_a_push(
    home: Path, tmp_path: Path, credit_files: tuple[Path, Path]
) -> None:
    key = tmp_path / "k.pem"
    code, pid, _ = run("key", "generate", "-o", str(key))
    assert code == 0
    code, _, err = run(
        "model", "push", str(credit_files[0]), "--name", "risk", "--sign-key", str(key)
    )
    assert code == 0, err
    (listed,) = json.loads(run("model", "list", "--json")[1])
    assert listed["signature_digest"] and listed["publisher"] == pid.strip()
    assert "verified" in run("model", "list")[1]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["--type", "rsa"], "--type must be one of ecdsa-p256, ecdsa-p384"),
        (["--type", "ed25519"], "--type must be one of"),
        (["-o", "{tmp}/exists.pem"], "exists: a key is never overwritten"),
        (["-o", "{tmp}/pubexists.pem"], "pubexists.pem.pub exists"),
        (["-o", "{tmp}"], "exists: a key is never overwritten"),
    ],
)
def test_key_generate_bad_input(tmp_path: Path, args: list[str], needle: str) -> None:
    (tmp_path / "exists.pem").write_text("keep me")
    (tmp_path / "pubexists.pem.pub").write_text("keep me")
    argv = [a.format(tmp=tmp_path) for a in args]
    if "-o" not in argv:
        argv += ["-o", str(tmp_path / "new.pem")]
    code, _, err = run("key", "generate", *argv)
    assert code == 2
    assert_one_line_error(code, err, needle)
    assert (tmp_path / "exists.pem").read_text() == "keep me"
    assert not (tmp_path / "new.pem").exists() and not (tmp_path / "pubexists.pem").exists()


def test_version() -> None:
    code, out, _ = run("--version")
    assert code == 0 and out.strip() == f"inferproof {__version__}"


@pytest.fixture()
def two_models(home: Path, tmp_path: Path, credit_files: tuple[Path, Path]) -> Path:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(tiny_llama_gguf())
    assert run("model", "push", str(gguf), "--name", "tiny", "--version", "3")[0] == 0
    assert run("model", "push", str(credit_files[0]), "--name", "risk", "--version", "1")[0] == 0
    return gguf


def test_model_list_human_and_json(two_models: Path) -> None:
    code, out, _ = run("model", "list")
    assert code == 0
    header, *rows = out.strip().splitlines()
    assert header.split() == ["name", "version", "format", "size", "created", "signed", "digest"]
    by_name = {tuple(row.split()[:2]): row.split() for row in rows}
    size_mb = f"{two_models.stat().st_size / 1_000_000:.1f}"
    assert by_name["tiny", "3"][2] == "gguf" and by_name["risk", "1"][2] == "onnx"
    assert f"{two_models.stat().st_size / 1000:.1f} kB" in out or f"{size_mb} MB" in out
    assert by_name["tiny", "3"][-2] == "no" and by_name["tiny", "3"][-1].startswith("sha256:")
    listed = json.loads(run("model", "list", "--json")[1])
    assert {(r["name"], r["version"], r["format"]) for r in listed} >= {
        ("tiny", "3", "gguf"),
        ("risk", "1", "onnx"),
    }


def test_model_show_gguf_reads_the_header(two_models: Path) -> None:
    header = gguf_signature(two_models.read_bytes())
    code, out, _ = run("model", "show", "tiny:3")
    flat = "".join(out.split())
    assert code == 0
    for needle in ("formatgguf", "architecturellama", f"contextlength{header['context_length']}",
                   f"chattemplate{header['chat_template']}", "publishernone"):  # fmt: skip
        assert needle in flat, needle
    doc = json.loads(run("model", "show", "tiny:3", "--json")[1])
    assert doc["format"] == "gguf" and doc["gguf"] == header


def test_model_show_onnx_lists_tensors(two_models: Path) -> None:
    code, out, _ = run("model", "show", "risk:1")
    flat = "".join(out.split())
    assert code == 0 and "inputXfloat32[?,4]" in flat and "outputlabelint64[?]" in flat
    doc = json.loads(run("model", "show", "risk:1", "--json")[1])
    assert doc["inputs"][0]["name"] == "X" and "gguf" not in doc


@pytest.mark.parametrize(
    "args,needle",
    [
        (["model", "show", "nope"], "no model 'nope'"),
        (["model", "show", "sha256:12"], "not a sha256"),
        (["model", "list", "--node", "ftp://x"], "must start with http"),
    ],
)
def test_model_commands_bad_input(home: Path, args: list[str], needle: str) -> None:
    code, _, err = run(*args)
    assert code == 2
    assert_one_line_error(code, err, needle)
