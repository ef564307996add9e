"""Wrong-format use says what to do instead (issue 12): a GGUF given to `infer`, and a
publisher key model-signing cannot sign with (both were INVALID_PROTOBUF or a traceback)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
from typer.testing import CliRunner

from inferproof import LocalNode
from inferproof.cli import app
from inferproof.errors import InputError
from inferproof.hub import sign_model
from inferproof.testing import tiny_llama_gguf

from .test_cli import assert_one_line_error

runner = CliRunner()


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture()
def gguf(home: Path, tmp_path: Path) -> Path:
    path = tmp_path / "tiny.gguf"
    path.write_bytes(tiny_llama_gguf())
    assert run("model", "push", str(path), "--name", "tiny")[0] == 0
    return path


@pytest.mark.parametrize("ref", ["tiny", "tiny:latest", "{file}", "{digest}"])
def test_infer_on_a_gguf_points_to_chat(
    gguf: Path, credit_files: tuple[Path, Path], tmp_path: Path, ref: str
) -> None:
    digest = LocalNode().hub.resolve("tiny").digest
    model = ref.format(file=gguf, digest=digest)
    code, _, err = run("infer", model, "--input", str(credit_files[1]), "-o", str(tmp_path / "o"))
    assert code == 2
    assert_one_line_error(code, err, "is a GGUF model, not ONNX")
    assert "inferproof chat" in err and "INVALID_PROTOBUF" not in err
    assert not (tmp_path / "o").exists()


def test_the_library_refuses_before_parsing(gguf: Path) -> None:
    node = LocalNode()
    for ref in ("tiny", gguf):
        with pytest.raises(InputError, match="GGUF model, not ONNX: chat with it"):
            node.infer(ref, {"X": np.zeros((1, 4), np.float32)})
    assert node.log.size == 0  # nothing was signed or logged


def test_push_help_names_both_formats() -> None:
    code, out, _ = run("model", "push", "--help")
    assert code == 0 and "ONNX" in out and "GGUF" in out


def _pem(key: object, password: bytes | None = None) -> bytes:
    encryption = (
        serialization.BestAvailableEncryption(password)
        if password
        else serialization.NoEncryption()
    )
    return key.private_bytes(  # type: ignore[attr-defined, no-any-return]
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, encryption
    )


@pytest.mark.parametrize(
    "make,needle",
    [
        (lambda: _pem(ed25519.Ed25519PrivateKey.generate()), "is an Ed25519 key"),
        (lambda: _pem(rsa.generate_private_key(65537, 2048)), "is an RSA key"),
        (lambda: _pem(ec.generate_private_key(ec.SECP521R1())), "is an ECDSA secp521r1 key"),
        (lambda: _pem(ec.generate_private_key(ec.SECP256R1()), b"pw"), "is encrypted"),
        (lambda: b"not a key", "is not a PEM private key"),
    ],
)
def test_sign_keys_model_signing_cannot_use(
    home: Path, credit_files: tuple[Path, Path], tmp_path: Path, make: object, needle: str
) -> None:
    key = tmp_path / "publisher.pem"
    key.write_bytes(make())  # type: ignore[operator]
    model = credit_files[0]
    code, _, err = run("model", "push", str(model), "--name", "signed", "--sign-key", str(key))
    assert_one_line_error(code, err, needle)
    assert code == 2 and "inferproof key generate" in err
    assert [r.name for r in LocalNode().hub.list()] == []  # nothing was stored
    with pytest.raises(InputError, match=needle):
        sign_model(model.read_bytes(), key)


def test_a_p256_key_still_signs(
    home: Path, credit_files: tuple[Path, Path], tmp_path: Path
) -> None:
    key = tmp_path / "publisher.pem"
    key.write_bytes(_pem(ec.generate_private_key(ec.SECP256R1())))
    code, _, err = run(
        "model", "push", str(credit_files[0]), "--name", "signed", "--sign-key", str(key)
    )
    assert code == 0, err
    assert LocalNode().hub.resolve("signed").publisher is not None
