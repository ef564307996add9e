"""`inferproof receipt show`: a receipt in human form, then its checks; and what `infer`
prints of the receipt it wrote."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from inferproof import LocalNode
from inferproof.cli import app
from inferproof.engine import receipt_digest
from inferproof.log import TlogProof
from inferproof.receipts import Bundle
from inferproof.testing import tiny_llama_gguf

from .test_cli import assert_one_line_error

runner = CliRunner()


def squash(text: str) -> str:
    """Text without whitespace: tables wrap long values (digests) at any character."""
    return "".join(text.split())


def run(*args: str) -> tuple[int, str, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture()
def tensor_bundle(home: Path, credit_files: tuple[Path, Path], tmp_path: Path) -> Path:
    model, inp = credit_files
    assert run("model", "push", str(model), "--name", "risk", "--version", "1")[0] == 0
    bundle = tmp_path / "b.json"
    code, _, err = run("infer", "risk:1", "--input", str(inp), "--nonce", "n-1", "-o", str(bundle))
    assert code == 0, err
    return bundle


def _chat_bundle(home: Path, tmp_path: Path, private: bool = False) -> tuple[Path, Path]:
    gguf = tmp_path / "tiny.gguf"
    gguf.write_bytes(tiny_llama_gguf())
    body = {"messages": [{"role": "system", "content": "Be brief."},
                         {"role": "user", "content": "hello there"}],
            "max_tokens": 6, "temperature": 0}  # fmt: skip
    with LocalNode(home) as node:
        node.push(gguf, name="tiny", version="2")
        result = node.chat("tiny:2", body, private=private, nonce="chat-nonce")
    path = tmp_path / "chat.json"
    result.bundle.write(path)
    return path, gguf


def test_infer_prints_receipt_digest_log_index_and_nonce(tensor_bundle: Path) -> None:
    bundle = Bundle.read(tensor_bundle)
    # The fixture's own run: run again to read what infer printed.
    code, out, _ = run(
        "infer", "risk:1", "--input", str(tensor_bundle.parent / "input.json"),
        "--nonce", "n-2", "-o", str(tensor_bundle.parent / "c.json"),
    )  # fmt: skip
    assert code == 0
    again = Bundle.read(tensor_bundle.parent / "c.json")
    line = next(x for x in out.splitlines() if x.startswith("receipt "))
    index = TlogProof.parse(again.tlog_entry or "").index
    assert line == f"receipt {receipt_digest(again)}, log index {index}, nonce n-2"
    assert index == TlogProof.parse(bundle.tlog_entry or "").index + 1


def test_tensor_receipt_in_human_form(tensor_bundle: Path, credit_files: tuple[Path, Path]) -> None:
    code, out, err = run("receipt", "show", str(tensor_bundle), "--model", str(credit_files[0]))
    assert code == 0, err
    bundle = Bundle.read(tensor_bundle)
    flat = squash(out)
    for needle in (
        f"receipt {receipt_digest(bundle)}",
        "model risk:1 (onnx)",
        f"model digest {bundle.receipt.model_digest}",
        "publisher unsigned",
        "input X float32[1, 4] [52, 0.41, 34, 2]",
        "output label int64[1] [1]",
        "output probabilities float32[1, 2]",
        "kind tensor, mode vanilla",
        "nonce n-1",
        f"node {bundle.receipt.node_id}",
        "runtime onnxruntime",
        "environment software, not hardware-backed",
        "proofs signature, reexecution",
        "log entry index 0 in inferproof.local/",
        "checkpoint size 1",
        "output.reexecution", "log.inclusion",  # then the checks, as verify prints them
        "VERIFIED: the policy is satisfied",
    ):  # fmt: skip
        assert squash(needle) in flat, needle


def test_json_holds_the_summary_and_the_report(tensor_bundle: Path) -> None:
    code, out, _ = run("receipt", "show", str(tensor_bundle), "--json", "--nonce", "n-1")
    assert code == 0
    doc = json.loads(out)
    receipt, report = doc["receipt"], doc["report"]
    assert receipt["model"]["name"] == "risk" and receipt["model"]["version"] == "1"
    assert receipt["input"]["tensors"]["X"]["shape"] == [1, 4]
    assert receipt["output"]["tensors"]["label"]["data"] == [1]
    assert receipt["log"]["index"] == 0 and receipt["log"]["checkpoint_size"] == 1
    assert receipt["nonce"] == "n-1" and receipt["kind"] == "tensor"
    assert report["verified"] is True
    checks = {c["name"]: c["status"] for c in report["checks"]}
    assert checks["nonce"] == "passed"  # --nonce reached the checks


def test_private_input_is_shown_committed(
    home: Path, credit_files: tuple[Path, Path], tmp_path: Path
) -> None:
    model, inp = credit_files
    bundle = tmp_path / "p.json"
    run("infer", str(model), "--input", str(inp), "--private-input", "-o", str(bundle))
    code, out, _ = run("receipt", "show", str(bundle), "--json")
    doc = json.loads(out)["receipt"]
    assert code == 0
    assert doc["input"] == {
        "private": True,
        "commitment": Bundle.read(bundle).receipt.input_commitment,
    }
    assert doc["output"]["private"] is True and "tensors" not in doc["output"]
    code, out, _ = run("receipt", "show", str(bundle))
    assert squash(out).count("private:committed") == 2


def test_chat_receipt_shows_messages_and_answer(home: Path, tmp_path: Path) -> None:
    path, gguf = _chat_bundle(home, tmp_path)
    bundle = Bundle.read(path)
    code, out, err = run("receipt", "show", str(path), "--model", str(gguf))
    assert code == 0, err
    flat = squash(out)
    needles = ("model tiny:2 (gguf)", "request system Be brief.", "request user hello there",
               f"answer {bundle.outputs['text']}", "kind chat, mode vanilla", "nonce chat-nonce",
               "architecture llama", "bit-identical: prefill of")  # fmt: skip
    for needle in needles:
        assert squash(needle) in flat, needle
    code, out, _ = run("receipt", "show", str(path), "--json", "--model", str(gguf))
    doc = json.loads(out)["receipt"]
    assert doc["input"]["messages"][1] == {"role": "user", "content": "hello there"}
    assert doc["output"]["text"] == bundle.outputs["text"]
    assert doc["output"]["finish_reason"] == bundle.outputs["finish_reason"]


def test_private_chat_receipt_is_shown_committed(home: Path, tmp_path: Path) -> None:
    path, _ = _chat_bundle(home, tmp_path, private=True)
    code, out, _ = run("receipt", "show", str(path))
    flat = squash(out)
    assert code == 0 and "hellothere" not in flat
    assert "requestprivate:committed" in flat and "answerprivate:committed" in flat


def test_a_tampered_bundle_is_shown_and_exits_1(tensor_bundle: Path, tmp_path: Path) -> None:
    doc = json.loads(tensor_bundle.read_text())
    doc["outputs"]["label"]["data"][0] ^= 1
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(doc))
    code, out, _ = run("receipt", "show", str(bad))
    assert code == 1
    assert "modelrisk:1" in squash(out) and "NOT VERIFIED (output.digest" in out


def _with_nonce(tensor_bundle: Path, nonce: str) -> Path:
    """A bundle whose receipt carries a hostile nonce (signed by the local node)."""
    out = tensor_bundle.parent / "hostile.json"
    code, _, err = run(
        "infer", "risk:1", "--input", str(tensor_bundle.parent / "input.json"),
        "--nonce", nonce, "-o", str(out),
    )  # fmt: skip
    assert code == 0, err
    return out


def test_hostile_text_is_shown_inert(tensor_bundle: Path) -> None:
    """A nonce (any text the caller chose) holding Rich markup and a terminal escape:
    `verify` raised Rich's MarkupError on "[/]" (a traceback), and an escape sequence
    would have reached the terminal."""
    bundle = _with_nonce(tensor_bundle, "[/][bold]x\x1b[2J")
    for command in (("receipt", "show"), ("verify",)):
        code, out, err = run(*command, str(bundle))
        assert code == 0, err
        assert "\x1b" not in out and "\\x1b[2J" in out and "[/][bold]x" in out


@pytest.mark.parametrize(
    "args,needle",
    [
        (["{tmp}/missing.json"], "does not exist"),
        (["{tmp}/notjson.json"], "bundle"),
        (["{bundle}", "--input", "{tmp}/in.json"], "--input applies to tensor receipts"),
        (["{bundle}", "--policy", "{tmp}/missing-policy.json"], "missing-policy.json"),
        (["{bundle}", "--srs", "{tmp}/srs", "--node", "http://127.0.0.1:9"], "--srs applies"),
    ],
)
def test_bad_input_is_one_line(home: Path, tmp_path: Path, args: list[str], needle: str) -> None:
    (tmp_path / "notjson.json").write_text("{not json")
    (tmp_path / "in.json").write_text(json.dumps({"X": [[1.0, 2.0, 3.0, 4.0]]}))
    path, _ = _chat_bundle(home, tmp_path)
    values: dict[str, Any] = {"tmp": tmp_path, "bundle": path}
    code, _, err = run("receipt", "show", *[a.format(**values) for a in args])
    assert code == 2
    assert_one_line_error(code, err, needle)


def test_summary_of_a_log_entry_has_only_digests(tensor_bundle: Path) -> None:
    code, out, _ = run("log", "get", "0", "--json")
    assert code == 0
    receipt = json.loads(out)["receipt"]
    assert receipt["input"] == {
        "private": False,
        "digest": Bundle.read(tensor_bundle).receipt.input_digest,
    }
    assert re.fullmatch(r"sha256:[0-9a-f]{64}", receipt["output"]["digest"])
