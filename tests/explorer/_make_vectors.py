"""Write the browser verifier's test corpus: ``python -m tests.explorer._make_vectors``.

Every bundle is made by the real library (a LocalNode in a temporary home, with node
and log keys derived from fixed seeds, so the pins never change), then tampered with
one field at a time. The expected status of each check comes from how the vector was
made (a good bundle passes; a tampered field fails the check that covers it), never
from the JavaScript under test; tests/explorer/test_browser_verifier.py checks these
expectations against both the Python verifier and verify.js.
"""

from __future__ import annotations

import base64
import copy
import hashlib
import json
import shutil
import struct
import sys
import tempfile
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferproof import LocalNode
from inferproof.log import SignerKey, TlogProof
from inferproof.log._note import ALG_ED25519
from inferproof.receipts import Bundle
from inferproof.receipts._dsse import pae
from inferproof.testing import credit_risk_model, write_tiny_llama

VECTORS = Path(__file__).parent / "vectors"
PAYLOAD_TYPE = "application/vnd.in-toto+json"

# What a good ONNX bundle shows without model bytes, policy or checkpoint memory.
GOOD = {
    "signature": "passed",
    "statement": "passed",
    "output.digest": "passed",
    "model.digest": "not_checked",
    "model.signature": "not_checked",
    "environment": "not_checked",
    "input": "passed",
    "output.reexecution": "not_checked",
    "nonce": "not_checked",
    "freshness": "not_checked",
    "log.checkpoint_signature": "passed",
    "log.inclusion": "passed",
    "log.witness_quorum": "not_checked",
    "log.consistency": "not_checked",
}


def _seed(label: str) -> bytes:
    return hashlib.sha256(f"inferproof browser verifier test vectors: {label}".encode()).digest()


def node_key(label: str) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(_seed(label))


def log_key(label: str) -> SignerKey:
    """A log signer named as the embedded default names its key (log/_default.py)."""
    public = SignerKey("x", ALG_ED25519, _seed(label)).verifier().public_key
    name = f"inferproof.local/{hashlib.sha256(public).hexdigest()[:16]}"
    return SignerKey(name, ALG_ED25519, _seed(label))


def _raw_public(key: Ed25519PrivateKey) -> bytes:
    return key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def pins(node: str, log: str) -> dict[str, list[str]]:
    raw = _raw_public(node_key(node))
    return {
        "nodeKeys": [base64.b64encode(raw).decode()],
        "logKeys": [log_key(log).verifier().encode()],
    }


def _seed_home(home: Path) -> None:
    """Put the fixed-seed keys where the node would otherwise create random ones."""
    keys = home / "keys"
    keys.mkdir(parents=True)
    pem = node_key("node").private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    (keys / "node.key").write_bytes(pem)
    (keys / "log.key").write_text(log_key("log").encode() + "\n", encoding="ascii")


def dtypes_model() -> bytes:
    """An ONNX model whose outputs cover the dtypes of the corpus (Cast of a float32 input)."""
    from onnx import TensorProto, helper

    kinds = {
        "f64": TensorProto.DOUBLE,
        "i32": TensorProto.INT32,
        "i64": TensorProto.INT64,
        "i8": TensorProto.INT8,
        "u8": TensorProto.UINT8,
        "f16": TensorProto.FLOAT16,
    }
    nodes = [helper.make_node("Cast", ["x"], [name], to=to) for name, to in kinds.items()]
    nodes.append(helper.make_node("Constant", [], ["zero"], value_float=0.0))
    nodes.append(helper.make_node("Greater", ["x", "zero"], ["positive"]))
    outputs = [helper.make_tensor_value_info(n, t, [1, 3]) for n, t in kinds.items()]
    outputs.append(helper.make_tensor_value_info("positive", TensorProto.BOOL, [1, 3]))
    graph = helper.make_graph(
        nodes, "dtypes", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 3])], outputs
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return bytes(model.SerializeToString())


# -- tampering ------------------------------------------------------------------------------
def _flip_b64(text: str, byte: int = 0) -> str:
    raw = bytearray(base64.b64decode(text))
    raw[byte] ^= 0x01
    return base64.b64encode(bytes(raw)).decode()


def _payload(bundle: dict[str, Any]) -> bytes:
    return base64.b64decode(bundle["dsseEnvelope"]["payload"])


def _with_payload(bundle: dict[str, Any], payload: bytes) -> dict[str, Any]:
    out = copy.deepcopy(bundle)
    out["dsseEnvelope"]["payload"] = base64.b64encode(payload).decode()
    return out


def _flip_in_payload(bundle: dict[str, Any], marker: bytes, digit_offset: int) -> dict[str, Any]:
    """Flip the lowest bit of a digit after ``marker``: the payload stays canonical JSON."""
    payload = bytearray(_payload(bundle))
    at = payload.index(marker) + len(marker) + digit_offset
    while chr(payload[at]) not in "0123456789bcde":  # c ^ 1 stays a digit or a hex letter
        at += 1
    payload[at] ^= 0x01
    return _with_payload(bundle, bytes(payload))


def _resign(bundle: dict[str, Any], payload: bytes) -> dict[str, Any]:
    out = _with_payload(bundle, payload)
    sig = node_key("node").sign(pae(PAYLOAD_TYPE, payload))
    out["dsseEnvelope"]["signatures"][0]["sig"] = base64.b64encode(sig).decode()
    return out


def _flip_float32(value: float) -> float:
    bits = struct.unpack("<I", struct.pack("<f", value))[0] ^ 0x01
    return float(struct.unpack("<f", struct.pack("<I", bits))[0])


def _set_proof(bundle: dict[str, Any], proof: TlogProof) -> dict[str, Any]:
    out = copy.deepcopy(bundle)
    out["tlogEntry"] = proof.encode()
    return out


def _checkpoint_parts(proof: TlogProof) -> tuple[list[str], str]:
    text, _, sigs = proof.checkpoint.decode().partition("\n\n")
    return text.split("\n"), sigs


def _tamper_checkpoint(proof: TlogProof, *, root: bool) -> TlogProof:
    lines, sigs = _checkpoint_parts(proof)
    if root:
        lines[2] = _flip_b64(lines[2])
    else:
        head, _, sig = sigs.rstrip("\n").rpartition(" ")
        sigs = f"{head} {_flip_b64(sig, 10)}\n"
    note = ("\n".join(lines) + "\n\n" + sigs).encode()
    return TlogProof(proof.index, proof.path, note, proof.extra)


def log_tampers(good: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    """Each inclusion-proof hash, the index, the checkpoint root and signature, a long proof."""
    proof = TlogProof.parse(good["tlogEntry"])
    for k in range(len(proof.path)):
        path = list(proof.path)
        path[k] = bytes([path[k][0] ^ 0x01]) + path[k][1:]
        bad = TlogProof(proof.index, tuple(path), proof.checkpoint, proof.extra)
        yield f"tamper_proof_hash_{k}", _set_proof(good, bad), {"log.inclusion": "failed"}
    bad = TlogProof(proof.index ^ 0x01, proof.path, proof.checkpoint, proof.extra)
    yield "tamper_leaf_index", _set_proof(good, bad), {"log.inclusion": "failed"}
    for what, root in (("root", True), ("signature", False)):
        bad = _tamper_checkpoint(proof, root=root)
        yield (
            f"tamper_checkpoint_{what}",
            _set_proof(good, bad),
            {"log.checkpoint_signature": "failed", "log.inclusion": "not_checked"},
        )
    # 65 hashes: over RFC 9162's bound for a 2^64-leaf tree (log/_merkle.py), refused unread.
    long = _set_proof(good, proof)
    head, _, rest = long["tlogEntry"].partition("\n\n")
    long["tlogEntry"] = head + ("\n" + base64.b64encode(bytes(32)).decode()) * 65 + "\n\n" + rest
    unread = {"log.inclusion": "failed", "log.checkpoint_signature": "not_checked"}
    yield "proof_too_long", long, unread


def envelope_tampers(good: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    """The signed fields: a changed envelope also changes the log leaf (its RFC 8785 bytes)."""
    env_fail = {"signature": "failed", "log.inclusion": "failed"}
    bad = copy.deepcopy(good)
    sig = bad["dsseEnvelope"]["signatures"][0]
    sig["sig"] = _flip_b64(sig["sig"], 5)
    yield "tamper_signature", bad, env_fail
    yield "tamper_payload_time", _flip_in_payload(good, b'"finished":"', 20), env_fail
    subject = _flip_in_payload(good, b'"sha256":"', 0)
    yield "tamper_payload_subject", subject, {**env_fail, "output.digest": "failed"}
    # Canonical bytes re-serialised with spaces, and signed again: the signature holds.
    statement = json.loads(_payload(good))
    loose = json.dumps(statement, sort_keys=True).encode()
    yield (
        "noncanonical_payload",
        _resign(good, loose),
        {"signature": "passed", "statement": "failed", "log.inclusion": "failed"},
    )
    bad = copy.deepcopy(good)
    bad["dsseEnvelope"]["payloadType"] = "application/json"
    yield "wrong_payload_type", bad, {"signature": "failed"}
    # 64 bytes are 88 base64 characters ending "==": the last letter carries 4 zero
    # bits (RFC 4648 section 3.5); setting one keeps the bytes, not the one encoding.
    bad = copy.deepcopy(good)
    text = bad["dsseEnvelope"]["signatures"][0]["sig"]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    last = alphabet[alphabet.index(text[-3]) | 0x01]
    bad["dsseEnvelope"]["signatures"][0]["sig"] = text[:-3] + last + "=="
    yield "noncanonical_signature_base64", bad, {"signature": "failed"}


def material_tampers(good: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    """The unsigned material beside the envelope, bound by the signed digests."""
    bad = copy.deepcopy(good)
    probs = bad["outputs"]["probabilities"]["data"]
    probs[0] = _flip_float32(probs[0])
    yield "tamper_output_value", bad, {"output.digest": "failed"}
    bad = copy.deepcopy(good)
    values = bad["inputs"]["X"]["data"]
    values[1] = _flip_float32(values[1])
    yield "tamper_input_value", bad, {"input": "failed"}
    bad = copy.deepcopy(good)
    bad["outputs"]["label"]["shape"] = [1, 1]
    yield "tamper_output_shape", bad, {"output.digest": "failed"}


# A good chat bundle without the model: the answer is checked against the signed digest,
# the request is not re-derived in the browser (Python parses it: "input" passes there).
GOOD_CHAT = {
    **{k: v for k, v in GOOD.items() if k != "input"},
    "output.fingerprint": "not_checked",
}


def chat_tampers(good: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any], dict[str, str]]]:
    """The answer beside the envelope, bound by the signed subject digest."""
    bad = copy.deepcopy(good)
    text = bad["outputs"]["text"]
    bad["outputs"]["text"] = (chr(ord(text[0]) ^ 1) + text[1:]) if text else "x"
    yield "tamper_chat_text", bad, {"output.digest": "failed"}
    bad = copy.deepcopy(good)
    bad["outputs"]["usage"]["completion_tokens"] += 1
    yield "tamper_chat_usage", bad, {"output.digest": "failed"}
    bad = copy.deepcopy(good)
    bad["outputs"]["finish_reason"] = (
        "stop" if good["outputs"]["finish_reason"] != "stop" else "length"
    )
    yield "tamper_chat_finish_reason", bad, {"output.digest": "failed"}


def _chat(node: LocalNode, home: Path) -> dict[str, Any]:
    """A real llama.cpp answer from the tiny random model (gibberish, but real)."""
    gguf = home.parent / "tiny.gguf"
    write_tiny_llama(gguf)
    node.push(gguf, name="tiny")
    request = {"messages": [{"role": "user", "content": "Name a colour."}],
               "temperature": 0, "max_tokens": 8}  # fmt: skip
    return node.chat("tiny", request).bundle.to_json()


def _case(name: str, bundle: dict[str, Any], expect: dict[str, str], **extra: Any) -> dict:
    return {"name": name, "bundle": bundle, "expect": expect, **extra}


def _timed(good: dict[str, Any], nonced: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """Nonce and freshness, checked only with an expected nonce or a time and maximum age."""
    finished = json.loads(_payload(good))["predicate"]["time"]["finished"]
    issued = datetime.fromisoformat(finished.replace("Z", "+00:00"))

    def at(seconds: float) -> str:
        return (issued + timedelta(seconds=seconds)).isoformat().replace("+00:00", "Z")

    ok = {**GOOD, "nonce": "passed"}
    yield _case("nonce_expected", nonced, ok, options={"nonce": "vector-nonce-1"})
    bad = {**GOOD, "nonce": "failed"}
    yield _case("nonce_wrong", nonced, bad, options={"nonce": "vector-nonce-2"})
    for name, seconds, status in (
        ("fresh", 60, "passed"),
        ("stale", 7200, "failed"),
        ("future", -3600, "failed"),
    ):
        options = {"now": at(seconds), "maxAgeSeconds": 3600}
        yield _case(name, good, {**GOOD, "freshness": status}, options=options)


def _infer(node: LocalNode) -> tuple[dict[str, Any], ...]:
    model, sample = credit_risk_model()
    node.push(model, name="credit")
    node.push(dtypes_model(), name="dtypes")
    first = node.infer("credit", sample).bundle
    node.infer("credit", {"X": [[40.0, 0.3, 20.0, 1.0]]})
    good = node.infer("credit", {"X": [[61.0, 0.2, 55.0, 3.0]]}).bundle
    dtypes = node.infer("dtypes", {"x": np.array([[-1.5, 0.1, 2.75]], np.float32)}).bundle
    private = node.infer("credit", sample, private_input=True).bundle
    nonced = node.infer("credit", sample, nonce="vector-nonce-1").bundle
    node.infer("credit", {"X": [[33.0, 0.5, 12.0, 0.0]]})
    # The good bundle's proof against the final tree: a path of several hashes.
    index = TlogProof.parse(good.tlog_entry or "").index
    good = good.with_tlog_entry(node.log.tlog_proof(index).encode())
    return tuple(b.to_json() for b in (first, good, dtypes, private, nonced))


def cases(home: Path) -> list[dict[str, Any]]:
    """Every case; ``expect`` lists the statuses that must hold, ``verified`` the verdict
    (true only when nothing failed and signature, output.digest, log.inclusion passed)."""
    _seed_home(home)
    committed = {"output.digest": "not_checked", "input": "not_checked"}
    untrusted_log = {"log.inclusion": "failed", "log.checkpoint_signature": "not_checked"}
    with LocalNode(home) as node:
        first, good, dtypes, private, nonced = _infer(node)
        chat = _chat(node, home)
    out = [
        _case("good_onnx", good, GOOD),
        _case("good_first_entry", first, GOOD),
        _case("good_dtypes", dtypes, GOOD),
        _case("private_receipt", private, {**GOOD, **committed}),
        _case("unpinned_node_key", good, {**GOOD, "signature": "failed"}, pins="other_node"),
        _case("unpinned_log_key", good, {**GOOD, **untrusted_log}, pins="other_log"),
    ]
    out.append(_case("good_chat", chat, GOOD_CHAT))
    for name, bundle, expect in chat_tampers(chat):
        out.append(_case(name, bundle, {**GOOD_CHAT, **expect}))
    for tampers in (envelope_tampers, material_tampers, log_tampers):
        for name, bundle, expect in tampers(good):
            # A bundle the library refuses to read has no report to start from: only
            # the checks the tampering must fail are expected.
            whole = expect if _refused(bundle) else {**GOOD, **expect}
            out.append(_case(name, bundle, whole))
    out.extend(_timed(good, nonced))
    for case in out:
        must = ("signature", "output.digest", "log.inclusion")
        case["verified"] = "failed" not in case["expect"].values() and all(
            case["expect"].get(name) == "passed" for name in must
        )
    return out


def _refused(bundle: dict[str, Any]) -> bool:
    """True when the Python library refuses to read the bundle at all."""
    try:
        Bundle.from_json(bundle)
    except Exception:
        return True
    return False


def write(folder: Path = VECTORS) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        made = cases(Path(tmp) / "home")
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    manifest: dict[str, Any] = {
        "about": "Bundles made by tests/explorer/_make_vectors.py; expectations from how each"
        " was made. Regenerate with: python -m tests.explorer._make_vectors",
        "pins": {
            "default": pins("node", "log"),
            "other_node": pins("another node", "log"),
            "other_log": pins("node", "another log"),
        },
        "cases": [],
    }
    for case in made:
        file = f"{case['name']}.json"
        (folder / file).write_text(json.dumps(case["bundle"], indent=1, sort_keys=True) + "\n")
        entry = {k: v for k, v in case.items() if k != "bundle"}
        entry.setdefault("pins", "default")
        entry.setdefault("options", {})
        entry["file"] = file
        entry["python"] = "refuses" if _refused(case["bundle"]) else "checks"
        manifest["cases"].append(entry)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    print(f"wrote {len(made)} vectors to {folder}", file=sys.stderr)


if __name__ == "__main__":
    write()
