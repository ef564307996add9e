"""`inferproof chat`: the answer on stdout, the bundle written, one-line errors."""

from __future__ import annotations

import stat
from pathlib import Path

import typer
from typer.testing import CliRunner

from inferproof import LocalNode
from inferproof.cli._chat import chat
from inferproof.proofs.llm_reexec import chat_checks
from inferproof.receipts import Bundle
from inferproof.runtime._llm_output import ChatOpening

from .conftest import ask

app = typer.Typer()
app.command("chat")(chat)


def _exact(bundle, **kwargs):
    """The chat checks with exact regeneration (this file tests that path; the
    fingerprint's are in test_fingerprint.py)."""
    return chat_checks(bundle, mode="exact", **kwargs)


@app.command("noop")
def _noop() -> None:  # a second command, so `chat` is a subcommand as in the real CLI
    pass


runner = CliRunner()


def _run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_chat_prints_the_answer_and_writes_the_bundle(
    home: Path, gguf_path: Path, tmp_path: Path
) -> None:
    out_file = tmp_path / "answer.json"
    code, out, err = _run(
        "chat",
        str(gguf_path),
        "What is the capital of France?",
        "--system",
        "Be brief.",
        "--temperature",
        "0",
        "--max-tokens",
        "20",
        "--seed",
        "3",
        "-o",
        str(out_file),
    )
    assert code == 0, err
    bundle = Bundle.read(out_file)
    assert bundle.inputs is not None
    assert bundle.inputs["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "What is the capital of France?"},
    ]
    assert bundle.inputs["max_tokens"] == 20 and bundle.inputs["sampling"]["seed"] == 3
    assert out == bundle.outputs["text"] + "\n"
    assert f"bundle written to {out_file}" in err
    by_name = {c.name: c for c in _exact(bundle, model=gguf_path)}
    assert by_name["output.reexecution"].detail == "re-executed: identical (20 tokens)"
    fingerprint = {c.name: c for c in chat_checks(bundle, model=gguf_path)}["output.fingerprint"]
    assert fingerprint.passed and fingerprint.detail.startswith("bit-identical: prefill of 20")
    # The same request through the library gives the same answer.
    with LocalNode(home) as node:
        body = ask("What is the capital of France?", max_tokens=20, seed=3)
        body["messages"] = [{"role": "system", "content": "Be brief."}, *body["messages"]]
        assert node.chat(gguf_path, body).text == bundle.outputs["text"]


def test_private_chat_writes_an_opening(home: Path, gguf_path: Path, tmp_path: Path) -> None:
    out_file = tmp_path / "p.json"
    code, _, err = _run(
        "chat",
        str(gguf_path),
        "secret",
        "--temperature",
        "0",
        "--max-tokens",
        "5",
        "--private",
        "-o",
        str(out_file),
    )
    assert code == 0, err
    opening_file = tmp_path / "p.json.opening"
    assert stat.S_IMODE(opening_file.stat().st_mode) == 0o600
    checks = chat_checks(
        Bundle.read(out_file), model=gguf_path, opening=ChatOpening.load(opening_file)
    )
    assert [c.name for c in checks if not c.passed] == ["output.reexecution"], checks


def test_default_bundle_name(home: Path, gguf_path: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, _, err = _run("chat", str(gguf_path), "hi", "--max-tokens", "3")
    assert code == 0, err
    written = list(tmp_path.glob("chat-*.bundle.json"))
    assert len(written) == 1 and written[0].name in err


def _one_line_error(code: int, err: str, needle: str) -> None:
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and needle in lines[0], err


def test_errors_are_one_line(home: Path, gguf_path: Path) -> None:
    _one_line_error(*_run("chat", "nope", "hi")[::2], "no model 'nope' in the hub")
    _one_line_error(
        *_run("chat", str(gguf_path), "hi", "--max-tokens", "99999")[::2], "over this node's cap"
    )
    _one_line_error(*_run("chat", str(gguf_path), "word " * 600)[::2], "context overflow")
    _one_line_error(
        *_run("chat", str(gguf_path), "hi", "--temperature", "3")[::2],
        "temperature must be between",
    )
