"""Embeddings with receipts: OpenAI-shaped vectors, signed and logged, re-executed to
identical bytes; every tampering named by its check; every refusal named by its field."""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rfc8785

from inferproof import LocalNode
from inferproof._checks import CheckStatus
from inferproof.engine._embed import _Computed, _sign
from inferproof.errors import InputError
from inferproof.proofs import embedding_checks, is_chat_receipt, is_embedding_receipt
from inferproof.receipts import Bundle
from inferproof.runtime import (
    EmbeddingMode,
    EmbeddingOpening,
    EmbeddingOutput,
    EmbeddingRequest,
    LlamaEmbedder,
    parse_embedding_request,
)
from inferproof.testing import TinyLlamaConfig, smollm2_gguf, tiny_llama_gguf
from inferproof.verify import Material, Policy

TEXTS = ["What is the capital of France?", "The capital of France is Paris.", "A receipt."]
STRICT = Policy(require_input=True, require_reexecution=True, require_nonce=True, require_log=True)


def _status(checks: list[Any]) -> dict[str, tuple[CheckStatus, str]]:
    return {c.name: (c.status, c.detail) for c in checks}


def _jcs(obj: Any) -> str:
    return "sha256:" + hashlib.sha256(rfc8785.dumps(obj)).hexdigest()


@pytest.fixture()
def embed_node(home: Path, gguf_path: Path):
    node = LocalNode(home)
    node.push(gguf_path, name="tiny")
    yield node
    node.close()


# -- the answer and its receipt -------------------------------------------------------------
def test_embeddings_have_openai_shape_and_a_receipt(embed_node, gguf_bytes: bytes) -> None:
    result = embed_node.embed("tiny", {"input": TEXTS}, nonce="n-1")
    resp = result.response
    assert resp["object"] == "list" and resp["model"] == "tiny"
    assert [d["index"] for d in resp["data"]] == [0, 1, 2]
    assert all(d["object"] == "embedding" and len(d["embedding"]) == 64 for d in resp["data"])
    vectors = np.array([d["embedding"] for d in resp["data"]], dtype=np.float32)
    assert vectors.tobytes() == result.output.vectors.tobytes()  # JSON numbers are exact
    for row in vectors:  # unit length, as OpenAI's
        assert math.isclose(float(np.linalg.norm(row.astype(np.float64))), 1.0, rel_tol=1e-6)
    n = result.output.prompt_tokens
    assert resp["usage"] == {"prompt_tokens": n, "total_tokens": n} and n > len(TEXTS)
    assert resp["inferproof"]["bundle"] == result.bundle.to_json()

    r = result.bundle.receipt
    assert is_embedding_receipt(r) and not is_chat_receipt(r)
    assert r.model_digest == "sha256:" + hashlib.sha256(gguf_bytes).hexdigest()
    assert r.model["format"] == "gguf" and r.model["dimensions"] == 64
    assert result.bundle.inputs == {"task": "embedding", "model": r.model_digest, "input": TEXTS}
    assert r.input_digest == _jcs(result.bundle.inputs)
    assert r.output_digest == _jcs(result.bundle.outputs)
    raw = base64.b64decode(result.bundle.outputs["embeddings"]["b64"])
    assert raw == vectors.astype("<f4").tobytes()
    assert r.parameters == {
        "task": "embedding", "mode": "vanilla", "count": 3, "dimensions": 64,
        "usage": {"prompt_tokens": n},
    }  # fmt: skip
    assert r.runtime["embedding"] == {"pooling": "mean", "normalize": "l2", "inputs_per_decode": 1}
    settings = r.runtime["settings"]
    assert settings["n_ctx"] == settings["n_batch"] == settings["n_ubatch"] == 512
    assert [p["type"] for p in r.proofs] == ["signature", "reexecution"]
    assert r.nonce == "n-1" and result.bundle.tlog_entry is not None


def test_base64_encoding_carries_the_same_bytes(embed_node) -> None:
    floats = embed_node.embed("tiny", {"input": "hello"}).response["data"][0]["embedding"]
    b64 = embed_node.embed("tiny", {"input": "hello", "encoding_format": "base64"})
    raw = base64.b64decode(b64.response["data"][0]["embedding"])
    assert np.frombuffer(raw, "<f4").tolist() == floats
    # encoding_format is how vectors travel, not what they are: the same request digest.
    assert b64.request == embed_node.embed("tiny", {"input": ["hello"]}).request


def test_a_vector_does_not_depend_on_the_other_inputs(embed_node) -> None:
    together = embed_node.embed("tiny", {"input": TEXTS}).output.vectors
    alone = [embed_node.embed("tiny", {"input": t}).output.vectors[0] for t in TEXTS]
    reversed_ = embed_node.embed("tiny", {"input": TEXTS[::-1]}).output.vectors[::-1]
    assert together.tobytes() == np.stack(alone).tobytes() == reversed_.tobytes()


def test_the_whole_receipt_verifies_by_re_execution(embed_node, gguf_bytes: bytes) -> None:
    result = embed_node.embed("tiny", {"input": TEXTS}, nonce="n-2")
    report = embed_node.verifier(STRICT).check(
        Bundle.loads(result.bundle.dumps()), Material(model_bytes=gguf_bytes, nonce="n-2")
    )
    checks = _status(list(report.checks))
    assert report.verified, checks
    assert checks["output.reexecution"] == (
        CheckStatus.PASSED, "re-executed: identical bytes (3 vectors x 64)",
    )  # fmt: skip
    verified = embed_node.verifier(STRICT).verify(
        result.bundle, Material(model_bytes=gguf_bytes, nonce="n-2")
    )
    assert verified.outputs["embeddings"].tobytes() == result.output.vectors.tobytes()


def test_checks_without_the_model(embed_node) -> None:
    result = embed_node.embed("tiny", {"input": "x"})
    assert _status(embedding_checks(result.bundle))["output.reexecution"][0] is (
        CheckStatus.NOT_CHECKED
    )
    required = _status(embedding_checks(result.bundle, require_reexecution=True))
    assert required["output.reexecution"][0] is CheckStatus.FAILED


def test_another_model_file_is_refused_by_digest(embed_node, tmp_path: Path) -> None:
    result = embed_node.embed("tiny", {"input": "x"})
    other = tiny_llama_gguf(TinyLlamaConfig(seed=3))
    status, detail = _status(embedding_checks(result.bundle, model=other))["output.reexecution"]
    assert status is CheckStatus.FAILED and detail.startswith("the given model is sha256:")


# -- tampering ------------------------------------------------------------------------------
def _tamper(bundle: Bundle, edit) -> Bundle:
    obj = copy.deepcopy(bundle.to_json())
    edit(obj)
    return Bundle.from_json(obj)


def _flip_value(obj: dict[str, Any], index: int = 5) -> None:
    """Change one float32 of the vectors: flip its lowest mantissa bit."""
    emb = obj["outputs"]["embeddings"]
    arr = np.frombuffer(base64.b64decode(emb["b64"]), "<u4").copy()
    arr[index] ^= 1
    emb["b64"] = base64.b64encode(arr.tobytes()).decode()


@pytest.mark.parametrize(
    ("edit", "check"),
    [
        (_flip_value, "output.digest"),
        (lambda o: o["outputs"]["usage"].update(prompt_tokens=1), "output.digest"),
        (lambda o: o["outputs"]["embeddings"].update(shape=[1, 192]), "output.digest"),
        (lambda o: o["outputs"]["embeddings"].update(dtype="float64"), "output.digest"),
        (lambda o: o["outputs"].update(text="x"), "output.digest"),
        (lambda o: o["inputs"]["input"].__setitem__(0, "Hello"), "input"),
        (lambda o: o["inputs"]["input"].append("more"), "input"),
        (lambda o: o["inputs"].update(model="sha256:" + "0" * 64), "input"),
        (lambda o: o["inputs"].update(task="chat"), "input"),
        (lambda o: o.pop("inputs"), "input"),
    ],
)
def test_tampering_fails_naming_the_check(embed_node, gguf_bytes: bytes, edit, check) -> None:
    result = embed_node.embed("tiny", {"input": TEXTS[:2]})
    checks = _status(
        embedding_checks(
            _tamper(result.bundle, edit), model=gguf_bytes, require_input=True,
            require_reexecution=True,
        )
    )  # fmt: skip
    assert checks[check][0] is CheckStatus.FAILED, checks[check]
    # Nothing to re-run, and the reason is the failed check, not a missing opening.
    assert checks["output.reexecution"] == (
        CheckStatus.FAILED, f"required by the policy, but not re-executed: {check} failed",
    )  # fmt: skip


def test_a_flipped_value_fails_the_verifier(embed_node, gguf_bytes: bytes) -> None:
    result = embed_node.embed("tiny", {"input": TEXTS})
    report = embed_node.verifier(STRICT).check(
        _tamper(result.bundle, _flip_value), Material(model_bytes=gguf_bytes)
    )
    assert not report.verified
    bad = report.first_failure
    assert bad is not None and bad.name == "output.digest"
    assert bad.detail.startswith("the vectors hash to sha256:")


def _dishonest(node: LocalNode, result: Any, vectors: np.ndarray) -> Bundle:
    """The node signs (and logs) vectors the model did not give."""
    r = result.bundle.receipt
    block = {k: v for k, v in r.model.items() if k not in ("format", "signature", "publisher")}
    output = EmbeddingOutput(vectors, result.output.prompt_tokens)
    computed = _Computed(None, block, r.runtime, result.request, output, r.started, r.finished)
    return _sign(node.issuer, node.hub, computed, private=False, nonce=None)[0]


def test_signed_but_wrong_vectors_are_named_by_the_first_difference(
    embed_node, gguf_bytes: bytes
) -> None:
    result = embed_node.embed("tiny", {"input": TEXTS})
    forged = result.output.vectors.copy()
    forged[1, 7] = np.nextafter(forged[1, 7], np.float32(2))
    forged[2, 0] = 0.5
    checks = _status(embedding_checks(_dishonest(embed_node, result, forged), model=gguf_bytes))
    assert checks["output.digest"][0] is CheckStatus.PASSED  # the node did sign it
    status, detail = checks["output.reexecution"]
    assert status is CheckStatus.FAILED
    expected, got = float(forged[1, 7]), float(result.output.vectors[1, 7])
    assert detail.startswith(
        f"re-executed: vector 1 differs first at component 7 (expected {expected!r}, "
        f"got {got!r}); 2 of 3 vectors differ"
    ), detail
    assert detail.endswith("(same llama.cpp build and CPU features as the node)")


# -- private requests -----------------------------------------------------------------------
def test_private_embeddings_commit_and_open(embed_node, gguf_bytes: bytes, tmp_path: Path) -> None:
    result = embed_node.embed("tiny", {"input": TEXTS}, private=True)
    assert result.bundle.inputs is None and result.bundle.outputs == {}
    assert result.response["inferproof"]["opening"] == result.opening.to_json()
    assert _status(embedding_checks(result.bundle))["output.digest"][0] is CheckStatus.NOT_CHECKED
    path = tmp_path / "e.opening"
    result.opening.save(path)
    assert path.stat().st_mode & 0o777 == 0o600
    opening = EmbeddingOpening.load(path)
    checks = _status(embedding_checks(result.bundle, model=gguf_bytes, opening=opening))
    assert {name: s for name, (s, _) in checks.items()} == {
        "output.digest": CheckStatus.PASSED, "input": CheckStatus.PASSED,
        "output.reexecution": CheckStatus.PASSED,
    }  # fmt: skip
    report = embed_node.verifier(Policy(require_input=True, require_reexecution=True)).check(
        result.bundle, Material(model_bytes=gguf_bytes, embedding_opening=opening)
    )
    assert report.verified


@pytest.mark.parametrize(
    ("edit", "check"),
    [
        (lambda o: o["output"]["usage"].update(prompt_tokens=2), "output.digest"),
        (lambda o: o["request"]["input"].__setitem__(0, "other"), "input"),
        (lambda o: o.update(salt="00" * 32), "output.digest"),
    ],
)
def test_a_tampered_opening_fails(embed_node, edit, check: str) -> None:
    result = embed_node.embed("tiny", {"input": TEXTS}, private=True)
    obj = copy.deepcopy(result.opening.to_json())
    edit(obj)
    checks = _status(embedding_checks(result.bundle, opening=EmbeddingOpening.from_json(obj)))
    assert checks[check][0] is CheckStatus.FAILED, checks


# -- refusals -------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("body", "says"),
    [
        ([], "request body must be a JSON object"),
        ({"input": "x"}, "model must be a non-empty string"),
        ({"model": "tiny"}, "input is required"),
        ({"model": "tiny", "input": ""}, r"input\[0\] is empty"),
        ({"model": "tiny", "input": []}, "input must be a string or a non-empty list"),
        ({"model": "tiny", "input": [1, 2, 3]}, "input: token arrays are not supported"),
        ({"model": "tiny", "input": [[1, 2]]}, r"input\[0\]: token arrays are not supported"),
        ({"model": "tiny", "input": ["a", None]}, r"input\[1\] must be a string"),
        ({"model": "tiny", "input": ["a", 5]}, r"input\[1\] must be a string"),
        ({"model": "tiny", "input": [True]}, r"input\[0\] must be a string"),
        ({"model": "tiny", "input": {"a": 1}}, "input must be a string or a non-empty list"),
        ({"model": "tiny", "input": ["a"] * 2049}, "2049 inputs, over the cap of 2048"),
        ({"model": "tiny", "input": ["x" * 600_000] * 2}, "over the cap of 1048576 characters"),
        (
            {"model": "tiny", "input": "a", "dimensions": 8},
            r"unsupported parameter\(s\) \['dimensions'\]",
        ),
        (
            {"model": "tiny", "input": "a", "encoding_format": "int8"},
            "encoding_format must be one of float, base64",
        ),
        ({"model": "tiny", "input": "a", "user": 5}, "user must be a string"),
    ],
)
def test_bad_requests_are_refused_by_name(body: Any, says: str) -> None:
    with pytest.raises(InputError, match=says):
        parse_embedding_request(body)


def test_the_engine_refuses_before_any_work(embed_node, home: Path) -> None:
    with pytest.raises(InputError, match="request names model 'other', not 'tiny'"):
        embed_node.embed("tiny", {"model": "other", "input": "x"})
    with pytest.raises(InputError, match="nonce must be 1 to"):
        embed_node.embed("tiny", {"input": "x"}, nonce="")
    with pytest.raises(InputError, match=r"context overflow: input\[1\] is \d+ tokens, over"):
        embed_node.embed("tiny", {"input": ["short", "word " * 600]})
    with pytest.raises(InputError, match="request must be a JSON object"):
        embed_node.embed("tiny", ["x"])  # type: ignore[arg-type]
    assert embed_node.log.size == 0  # nothing was signed


def test_a_reranker_is_refused(embed_node, tmp_path: Path) -> None:
    path = tmp_path / "rank.gguf"
    path.write_bytes(tiny_llama_gguf(TinyLlamaConfig(pooling_type=4)))
    with pytest.raises(InputError, match=r"reranker \(pooling 'rank'\)"):
        embed_node.embed(path, {"input": "x"})


@pytest.mark.parametrize(("code", "name"), [(1, "mean"), (2, "cls"), (3, "last"), (0, "mean")])
def test_the_model_s_own_pooling_is_used_and_recorded(
    embed_node, tmp_path: Path, code, name
) -> None:
    path = tmp_path / "pooled.gguf"
    path.write_bytes(tiny_llama_gguf(TinyLlamaConfig(pooling_type=code)))
    result = embed_node.embed(path, {"input": TEXTS[:2]})
    assert result.bundle.receipt.runtime["embedding"]["pooling"] == name
    checks = _status(embedding_checks(result.bundle, model=path))
    assert checks["output.reexecution"][0] is CheckStatus.PASSED


def test_cls_and_mean_pooling_give_other_vectors() -> None:
    request = EmbeddingRequest("sha256:" + "0" * 64, ("hello there",))
    data = tiny_llama_gguf()
    vectors = []
    for mode in (EmbeddingMode("mean"), EmbeddingMode("cls")):
        embedder = LlamaEmbedder(data, mode=mode)
        vectors.append(embedder.embed(request).vectors.tobytes())
        embedder.close()
    assert vectors[0] != vectors[1]


@pytest.mark.parametrize(
    ("edit", "says"),
    [
        (lambda o: o["embeddings"].update(b64=o["embeddings"]["b64"][:-4]), "canonical base64"),
        (
            lambda o: o["embeddings"].update(b64=o["embeddings"]["b64"].replace("=", "")),
            "canonical base64",
        ),
        (
            lambda o: o["embeddings"].update(b64="!" + o["embeddings"]["b64"][1:]),
            "canonical base64",
        ),
        (lambda o: o["embeddings"].update(shape=[2]), "float32 matrix"),
        (lambda o: o["embeddings"].update(shape=[0, 64]), "out of bounds"),
        (lambda o: o["embeddings"].update(shape=[2049, 1]), "out of bounds"),
        (lambda o: o["embeddings"].update(shape=[True, 64]), "rows must be a non-negative integer"),
        (lambda o: o["embeddings"].update(data=[1.0]), "must have dtype, shape, b64"),
        (lambda o: o["usage"].update(total_tokens=3), "prompt_tokens only"),
        (lambda o: o["usage"].update(prompt_tokens=-1), "prompt_tokens must be a non-negative"),
        (lambda o: o.update(extra=1), "exactly embeddings and usage"),
    ],
)
def test_malformed_outputs_are_refused(edit, says: str) -> None:
    good = EmbeddingOutput(np.ones((1, 4), np.float32) / 2, 3).to_json()
    assert EmbeddingOutput.from_json(good).to_json() == good
    obj = copy.deepcopy(good)
    edit(obj)
    with pytest.raises(InputError, match=says):
        EmbeddingOutput.from_json(obj)


@pytest.mark.parametrize(
    ("obj", "says"),
    [
        ({"pooling": "max", "normalize": "l2", "inputs_per_decode": 1}, "pooling must be one of"),
        ({"pooling": "mean", "normalize": "none", "inputs_per_decode": 1}, "normalize must be l2"),
        ({"pooling": "mean", "normalize": "l2", "inputs_per_decode": 8}, "inputs_per_decode 1"),
        ({"pooling": "mean"}, "must have exactly"),
        ("mean", "must have exactly"),
    ],
)
def test_recorded_embedding_modes_are_read_strictly(obj: Any, says: str) -> None:
    with pytest.raises(InputError, match=says):
        EmbeddingMode.from_json(obj)


@pytest.mark.parametrize(
    ("obj", "says"),
    [
        ({"task": "embedding", "model": "sha256:" + "0" * 64}, "exactly task, model, input"),
        (
            {"task": "chat", "model": "sha256:" + "0" * 64, "input": ["a"]},
            "task must be 'embedding'",
        ),
        ({"task": "embedding", "model": "tiny", "input": ["a"]}, "not a sha256"),
        ({"task": "embedding", "model": "sha256:" + "0" * 64, "input": "a"}, "must be a list"),
        ({"task": "embedding", "model": "sha256:" + "0" * 64, "input": [""]}, "is empty"),
    ],
)
def test_canonical_requests_are_read_strictly(obj: Any, says: str) -> None:
    with pytest.raises(InputError, match=says):
        EmbeddingRequest.from_json(obj)


# -- SmolLM2: a real model, across processes ------------------------------------------------
_SCRIPT = """
import json, sys
from pathlib import Path
from inferproof import LocalNode
from inferproof.testing import smollm2_gguf
with LocalNode(Path(sys.argv[1])) as node:
    r = node.embed(smollm2_gguf(), {"input": json.loads(sys.argv[2])})
print(json.dumps({"output": r.bundle.receipt.output_digest,
                  "bytes": r.output.vectors.tobytes().hex()[:64]}))
"""


def _in_a_process(home: Path) -> dict[str, str]:
    done = subprocess.run(
        [sys.executable, "-c", _SCRIPT, str(home), json.dumps(TEXTS)],
        capture_output=True, check=True, timeout=300,
    )  # fmt: skip
    return dict(json.loads(done.stdout))


def test_smollm2_embeddings_are_byte_identical_across_processes(tmp_path: Path) -> None:
    first, second = _in_a_process(tmp_path / "a"), _in_a_process(tmp_path / "b")
    assert first == second
    with LocalNode(tmp_path / "c") as node:
        here = node.embed(smollm2_gguf(), {"input": TEXTS})
        assert here.bundle.receipt.output_digest == first["output"]
        assert here.output.vectors.shape == (3, 576)
        checks = _status(embedding_checks(here.bundle, model=smollm2_gguf()))
    assert checks["output.reexecution"] == (
        CheckStatus.PASSED, "re-executed: identical bytes (3 vectors x 576)",
    )  # fmt: skip
