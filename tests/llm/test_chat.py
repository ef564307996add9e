"""The chat receipt flow: OpenAI-shaped answers, signed and logged receipts, verification."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
import rfc8785

from inferproof._checks import CheckStatus
from inferproof.engine import receipt_digest
from inferproof.engine._chatreceipt import ChatIssue, sign_chat
from inferproof.errors import InputError, VerificationError
from inferproof.proofs.llm_reexec import chat_checks, is_chat_receipt
from inferproof.receipts import Bundle
from inferproof.runtime._llm_output import ChatOpening

from .conftest import ask


def _exact(bundle, **kwargs):
    """The chat checks with exact regeneration (this file tests that path; the
    fingerprint's are in test_fingerprint.py)."""
    return chat_checks(bundle, mode="exact", **kwargs)


def _jcs_digest(obj: Any) -> str:
    return "sha256:" + hashlib.sha256(rfc8785.dumps(obj)).hexdigest()


def _status(checks: list[Any]) -> dict[str, tuple[CheckStatus, str]]:
    return {c.name: (c.status, c.detail) for c in checks}


def _reload(bundle: Bundle) -> Bundle:
    return Bundle.loads(bundle.dumps())


def test_chat_answer_has_openai_shape_and_a_receipt(chat_node, gguf_bytes: bytes) -> None:
    result = chat_node.chat("tiny", ask(), nonce="n-123")
    resp = result.response
    assert resp["object"] == "chat.completion" and resp["id"].startswith("chatcmpl-")
    assert resp["model"] == "tiny"
    choice = resp["choices"][0]
    assert choice["message"] == {"role": "assistant", "content": result.text}
    assert choice["finish_reason"] == "length"
    assert resp["usage"] == {"prompt_tokens": 17, "completion_tokens": 24, "total_tokens": 41}
    assert resp["inferproof"]["bundle"] == result.bundle.to_json()
    assert resp["inferproof"]["receipt_digest"] == _jcs_digest(result.bundle.envelope)
    assert "opening" not in resp["inferproof"]

    r = result.bundle.receipt
    assert is_chat_receipt(r)
    assert r.model_digest == "sha256:" + hashlib.sha256(gguf_bytes).hexdigest()
    assert r.model["format"] == "gguf" and r.model["architecture"] == "llama"
    assert r.input_digest == _jcs_digest(result.bundle.inputs)
    assert result.bundle.inputs is not None and result.bundle.inputs["model"] == r.model_digest
    assert result.bundle.inputs["max_tokens"] == 24
    assert r.output_digest == _jcs_digest(
        {
            "text": result.text,
            "finish_reason": "length",
            "usage": {"prompt_tokens": 17, "completion_tokens": 24},
        }
    )
    assert r.parameters == {
        "task": "chat",
        "mode": "vanilla",
        "finish_reason": "length",
        "usage": {"prompt_tokens": 17, "completion_tokens": 24},
    }
    assert r.runtime["engine"] == "llama.cpp" and r.runtime["settings"]["prompt_cache"] == "none"
    assert [p["type"] for p in r.proofs] == ["signature", "reexecution", "fingerprint"]
    assert r.nonce == "n-123"
    assert result.bundle.tlog_entry is not None


def _signature_and_log(node, bundle: Bundle) -> dict[str, tuple[CheckStatus, str]]:
    """The verifier's signature and log checks (they do not depend on the receipt kind)."""
    from inferproof.receipts import verify_envelope
    from inferproof.verify._logcheck import log_checks

    trust = node.trust_root()
    out = _status(log_checks(bundle, trust.log_keys, (), 0, True, None, None))
    try:
        _, kid = verify_envelope(bundle.envelope, trust.node_keys)
        out["signature"] = (CheckStatus.PASSED, kid)
    except VerificationError as exc:
        out["signature"] = (CheckStatus.FAILED, exc.detail)
    return out


def test_receipt_is_signed_and_logged(chat_node) -> None:
    result = chat_node.chat("tiny", ask())
    checks = _signature_and_log(chat_node, _reload(result.bundle))
    assert checks["signature"] == (CheckStatus.PASSED, chat_node.node_id)
    assert checks["log.inclusion"][0] is CheckStatus.PASSED
    second = chat_node.chat("tiny", ask())
    index = [json.loads(json.dumps(b.tlog_entry)) for b in (result.bundle, second.bundle)]
    assert index[0] != index[1]


def test_reexecution_verifies(chat_node, gguf_path: Path, gguf_bytes: bytes) -> None:
    result = chat_node.chat("tiny", ask(temperature=0.8, seed=5))
    for model in (gguf_path, gguf_bytes):
        checks = _status(_exact(_reload(result.bundle), model=model))
        assert checks["output.digest"][0] is CheckStatus.PASSED
        assert checks["input"][0] is CheckStatus.PASSED
        assert checks["output.reexecution"] == (
            CheckStatus.PASSED,
            "re-executed: identical (24 tokens)",
        )


def test_unseeded_sampling_records_a_seed_and_verifies(chat_node, gguf_path: Path) -> None:
    result = chat_node.chat("tiny", ask(temperature=1.0))
    seed = result.request.sampling.seed
    assert isinstance(seed, int) and result.bundle.inputs["sampling"]["seed"] == seed
    checks = _status(_exact(result.bundle, model=gguf_path))
    assert checks["output.reexecution"][0] is CheckStatus.PASSED


def test_checks_without_the_model(chat_node) -> None:
    result = chat_node.chat("tiny", ask())
    checks = _status(_exact(result.bundle))
    assert checks["output.reexecution"][0] is CheckStatus.NOT_CHECKED
    required = _status(_exact(result.bundle, require_reexecution=True))
    assert required["output.reexecution"][0] is CheckStatus.FAILED


def test_wrong_model_file(chat_node, tmp_path: Path) -> None:
    from .conftest import variant

    result = chat_node.chat("tiny", ask())
    checks = _status(_exact(result.bundle, model=variant(tmp_path, seed=3)))
    assert checks["output.reexecution"][0] is CheckStatus.FAILED
    assert "the given model is sha256:" in checks["output.reexecution"][1]


def _dishonest(node, result, text: str) -> Bundle:
    """The node signs (and logs) an answer the model did not give."""
    r = result.bundle.receipt
    block = {k: v for k, v in r.model.items() if k not in ("signature", "publisher")}
    proofs = [p for p in r.proofs if p["type"] != "signature"]
    issue = ChatIssue(None, block, r.runtime, proofs, "vanilla", r.started, r.finished)
    bundle, _ = sign_chat(
        node.issuer,
        node.hub,
        issue,
        result.request,
        replace(result.output, text=text),
        private=False,
        nonce=None,
    )
    return bundle


def _clean_cut(pieces: list[bytes], start: int) -> int:
    """A token index >= start where the text before it is whole UTF-8 and the token
    itself is a whole, non-empty UTF-8 piece (the random model emits raw bytes)."""
    for k in range(start, len(pieces)):
        try:
            b"".join(pieces[:k]).decode("utf-8")
            pieces[k].decode("utf-8")
        except UnicodeDecodeError:
            continue
        if pieces[k]:
            return k
    raise AssertionError("no clean token boundary")


def test_edited_answer_names_the_first_differing_token(chat_node, gguf_path: Path, llm) -> None:
    result = chat_node.chat("tiny", ask())
    gen = llm.generate(*llm.prepare(result.request))
    assert gen.text == result.text
    # Replace the text of token k onwards: the re-run must name token k.
    pieces = [llm.token_bytes(t) for t in gen.token_ids]
    k = _clean_cut(pieces, 3)
    offset = len(b"".join(pieces[:k]).decode("utf-8"))
    edited = result.text[:offset] + "Paris is the answer."
    bundle = _dishonest(chat_node, result, edited)
    checks = _status(_exact(_reload(bundle), model=gguf_path))
    assert checks["output.digest"][0] is CheckStatus.PASSED  # the node did sign it
    status, detail = checks["output.reexecution"]
    assert status is CheckStatus.FAILED
    expected = llm.token_text(llm.tokenize("Paris is the answer.")[0])
    got = pieces[k].decode("utf-8")
    assert detail.startswith(
        f"re-executed: first differing token at position {k} (expected {expected!r}, got {got!r})"
    )


def test_truncated_answer_is_named(chat_node, gguf_path: Path, llm) -> None:
    result = chat_node.chat("tiny", ask())
    gen = llm.generate(*llm.prepare(result.request))
    pieces = [llm.token_bytes(t) for t in gen.token_ids]
    k = _clean_cut(pieces, 4)
    keep = len(b"".join(pieces[:k]).decode("utf-8"))
    bundle = _dishonest(chat_node, result, result.text[:keep])
    detail = _status(_exact(bundle, model=gguf_path))["output.reexecution"][1]
    assert detail.startswith(
        f"re-executed: first differing token at position {k} (expected the end of the answer, "
        f"got {pieces[k].decode('utf-8')!r})"
    )


def _tamper_json(bundle: Bundle, edit) -> Bundle:
    obj = copy.deepcopy(bundle.to_json())
    edit(obj)
    return Bundle.from_json(obj)


@pytest.mark.parametrize(
    ("edit", "check"),
    [
        (lambda o: o["outputs"].update(text=o["outputs"]["text"] + "!"), "output.digest"),
        (lambda o: o["outputs"].update(finish_reason="stop"), "output.digest"),
        (lambda o: o["outputs"]["usage"].update(completion_tokens=23), "output.digest"),
        (lambda o: o["outputs"]["usage"].update(prompt_tokens=1), "output.digest"),
        (lambda o: o["inputs"]["messages"][0].update(content="Hello"), "input"),
        (lambda o: o["inputs"]["messages"][0].update(role="system"), "input"),
        (lambda o: o["inputs"]["sampling"].update(seed=1), "input"),
        (lambda o: o["inputs"]["sampling"].update(temperature=0.5), "input"),
        (lambda o: o["inputs"]["sampling"].update(top_p=0.5), "input"),
        (lambda o: o["inputs"].update(max_tokens=23), "input"),
        (lambda o: o["inputs"].update(stop=["x"]), "input"),
        (lambda o: o["inputs"].update(model="sha256:" + "0" * 64), "input"),
        (lambda o: o["inputs"].update(task="completion", prompt="x"), "input"),
    ],
)
def test_tampering_with_a_committed_field_fails(
    chat_node, gguf_path: Path, edit, check: str
) -> None:
    result = chat_node.chat("tiny", ask())
    checks = _status(_exact(_tamper_json(result.bundle, edit), model=gguf_path))
    assert checks[check][0] is CheckStatus.FAILED, checks[check]


def test_flipping_a_bit_of_the_signed_statement_fails(chat_node) -> None:
    result = chat_node.chat("tiny", ask())
    obj = copy.deepcopy(result.bundle.to_json())
    payload = json.loads(base64.b64decode(obj["dsseEnvelope"]["payload"]))
    payload["predicate"]["parameters"]["usage"]["completion_tokens"] = 25
    obj["dsseEnvelope"]["payload"] = base64.b64encode(rfc8785.dumps(payload)).decode()
    checks = _signature_and_log(chat_node, Bundle.from_json(obj))
    assert checks["signature"][0] is CheckStatus.FAILED


def test_private_request(chat_node, gguf_path: Path, tmp_path: Path) -> None:
    result = chat_node.chat("tiny", ask("my secret question"), private=True)
    bundle = _reload(result.bundle)
    assert bundle.inputs is None and bundle.outputs == {}
    assert "my secret" not in bundle.dumps() and result.text not in bundle.dumps()
    opening = result.opening
    assert opening is not None and result.response["inferproof"]["opening"] == opening.to_json()
    r = bundle.receipt
    assert r.input_commitment is not None and r.input_digest is None
    # The commitments, recomputed here from the published construction.
    req_digest = _jcs_digest(opening.request.to_json())
    out_digest = _jcs_digest(opening.output.to_json())
    assert (
        r.input_commitment
        == "sha256:"
        + hashlib.sha256(
            b"inferproof/input-commitment/v1\x00" + opening.salt + req_digest.encode()
        ).hexdigest()
    )
    assert (
        r.output_digest
        == "sha256:"
        + hashlib.sha256(
            b"inferproof/output-commitment/v1\x00" + opening.salt + out_digest.encode()
        ).hexdigest()
    )

    path = tmp_path / "answer.opening"
    opening.save(path)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    loaded = ChatOpening.load(path)
    assert loaded == opening
    checks = _status(_exact(bundle, model=gguf_path, opening=loaded))
    assert checks.pop("output.fingerprint")[0] is CheckStatus.NOT_CHECKED
    assert all(s is CheckStatus.PASSED for s, _ in checks.values()), checks
    # The fingerprint of a private answer travels in the opening, not the bundle.
    assert "fingerprint" not in bundle.proofs and loaded.fingerprint is not None
    checks = _status(chat_checks(bundle, model=gguf_path, opening=loaded))
    assert checks.pop("output.reexecution")[0] is CheckStatus.NOT_CHECKED
    assert all(s is CheckStatus.PASSED for s, _ in checks.values()), checks

    without = _status(_exact(bundle, model=gguf_path))
    assert {s for s, _ in without.values()} == {CheckStatus.NOT_CHECKED}
    assert _status(_exact(bundle, require_input=True))["input"][0] is CheckStatus.FAILED


@pytest.mark.parametrize(
    ("edit", "check"),
    [
        (
            lambda o: o.update(salt=("0" if o["salt"][0] != "0" else "1") + o["salt"][1:]),
            "output.digest",
        ),
        (lambda o: o["request"]["messages"][0].update(content="other"), "input"),
        (lambda o: o["request"]["sampling"].update(seed=9), "input"),
        (lambda o: o["output"].update(text="forged"), "output.digest"),
        (lambda o: o["output"]["usage"].update(completion_tokens=3), "output.digest"),
    ],
)
def test_tampered_opening_fails(chat_node, edit, check: str) -> None:
    result = chat_node.chat("tiny", ask(), private=True)
    obj = copy.deepcopy(result.opening.to_json())
    edit(obj)
    checks = _status(_exact(result.bundle, opening=ChatOpening.from_json(obj)))
    assert checks[check][0] is CheckStatus.FAILED


def test_opening_is_read_strictly(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="does not exist"):
        ChatOpening.load(tmp_path / "none")
    with pytest.raises(InputError, match="not a chat opening"):
        ChatOpening.from_json({"scheme": "salted-sha256-v1", "salt": "00" * 32})
    with pytest.raises(InputError, match="32 bytes in lowercase hex"):
        ChatOpening.from_json(
            {"scheme": "salted-sha256-v1", "salt": "AB" * 32, "request": {}, "output": {}}
        )


def test_streamed_chat_matches_and_carries_the_receipt(chat_node, gguf_path: Path) -> None:
    whole = chat_node.chat("tiny", ask())
    stream = chat_node.chat_stream(
        "tiny", {**ask(), "stream": True, "stream_options": {"include_usage": True}}
    )
    events = list(stream)
    assert events[0]["choices"][0]["delta"] == {"role": "assistant", "content": ""}
    text = "".join(e["choices"][0]["delta"].get("content", "") for e in events if e["choices"])
    assert text == whole.text
    assert events[-2]["choices"][0]["finish_reason"] == "length"
    assert events[-1]["choices"] == [] and events[-1]["usage"]["completion_tokens"] == 24
    assert len({e["id"] for e in events}) == 1
    assert all("inferproof" not in e for e in events[:-1])
    bundle = Bundle.from_json(events[-1]["inferproof"]["bundle"])
    assert stream.result is not None and bundle.to_json() == stream.result.bundle.to_json()
    assert bundle.receipt.output_digest == whole.bundle.receipt.output_digest
    assert _status(_exact(bundle, model=gguf_path))["output.reexecution"][0] is CheckStatus.PASSED


def test_text_completion(chat_node, gguf_path: Path) -> None:
    body = {"prompt": "The capital of France is", "temperature": 0, "max_tokens": 12}
    result = chat_node.complete("tiny", body)
    assert result.response["object"] == "text_completion"
    assert result.response["choices"][0]["text"] == result.text
    assert result.bundle.receipt.parameters["task"] == "completion"
    assert (
        _status(_exact(result.bundle, model=gguf_path))["output.reexecution"][0]
        is CheckStatus.PASSED
    )
    events = list(chat_node.complete_stream("tiny", {**body, "stream": True}))
    assert "".join(e["choices"][0]["text"] for e in events) == result.text
    assert events[-1]["choices"][0]["finish_reason"] == "length" and "inferproof" in events[-1]


def test_model_by_path_and_digest(chat_node, gguf_path: Path) -> None:
    by_name = chat_node.chat("tiny", ask())
    by_path = chat_node.chat(gguf_path, ask())
    by_digest = chat_node.chat(by_name.bundle.receipt.model_digest, ask())
    assert by_path.text == by_name.text == by_digest.text
    assert by_path.bundle.receipt.model["name"] == "tiny"  # the file's stem
    assert chat_node.chat_models()["data"][0]["id"] == "tiny"


@pytest.mark.parametrize(
    ("ref", "body", "message"),
    [
        ("nope", ask(), "no model 'nope' in the hub"),
        (Path("/no/such/model.gguf"), ask(), "does not exist"),
        # A str is a hub reference, never a path (review finding 11.5).
        ("/no/such/model.gguf", ask(), "is invalid: use 1-128 letters"),
        ("tiny", ask("word " * 600), "context overflow"),
        ("tiny", ask(max_tokens=500), "context overflow"),
        ("tiny", ask(max_tokens=5000), "max_tokens 5000 is over this node's cap of 4096"),
        ("tiny", {"messages": [{"role": "robot", "content": "hi"}]}, "role must be one of"),
        ("tiny", {"messages": [{"role": "user", "content": {"x": 1}}]}, "content must be a string"),
        ("tiny", {"messages": []}, "non-empty list"),
        ("tiny", {**ask(), "model": "other"}, "names model 'other', not 'tiny'"),
    ],
)
def test_bad_requests(chat_node, ref: str, body: dict[str, Any], message: str) -> None:
    with pytest.raises(InputError, match=message):
        chat_node.chat(ref, body)


def test_onnx_model_is_not_a_chat_model(chat_node, mlp_bytes: bytes) -> None:
    chat_node.push(mlp_bytes, name="mlp")
    with pytest.raises(InputError, match="is an onnx model, not a GGUF chat model"):
        chat_node.chat("mlp", ask())


def test_bad_nonce_is_refused_before_generation(chat_node) -> None:
    with pytest.raises(InputError, match="nonce must be 1 to 256"):
        chat_node.chat("tiny", ask(), nonce="x" * 257)
    with pytest.raises(InputError, match="nonce must be 1 to 256"):
        chat_node.chat_stream("tiny", ask(), nonce="")


def test_push_refuses_non_gguf(chat_node, mlp_bytes: bytes) -> None:
    from inferproof._chat import push_gguf

    with pytest.raises(InputError, match="not a GGUF file"):
        push_gguf(chat_node, mlp_bytes, name="x")


def test_receipt_digest_names_the_log_entry(chat_node) -> None:
    result = chat_node.chat("tiny", ask())
    assert result.receipt_digest == receipt_digest(result.bundle)
    assert result.receipt_digest == _jcs_digest(result.bundle.envelope)
