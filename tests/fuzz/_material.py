"""Real, valid inputs for the fuzzers, made by the library itself (never downloaded).

:func:`build` runs once per test session (or once per standalone fuzz run): a
LocalNode in a fresh home pushes a small MLP (signed by a publisher key) and the
tiny llama GGUF, then issues four receipts: a plain one, one with a private
(salted) input, one over the signed model, and a chat receipt. Everything is
written under one folder, which :class:`Material` reads back, so each fuzzing
process starts from the same real bundles, log proofs, notes and models.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, replace
from functools import cached_property
from pathlib import Path

import numpy as np
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from inferproof import LocalNode
from inferproof.log import ALG_COSIGNATURE_V1, SignerKey, VerifierKey
from inferproof.receipts import Bundle
from inferproof.testing import mlp_model, tiny_llama_gguf
from inferproof.verify import TrustRoot

MLP_SIZES = (4, 8, 2)
# A witness with a fixed key, so a cosigned checkpoint seed is the same in every run.
WITNESS = SignerKey(
    "fuzz.example/witness", ALG_COSIGNATURE_V1, hashlib.sha256(b"inferproof fuzz witness").digest()
)
# The witness signs at a fixed time: seeds must not depend on the clock.
WITNESS_TIME = 1_700_000_000


def _publisher_key(path: Path) -> Path:
    key = ec.generate_private_key(ec.SECP256R1())
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    path.write_bytes(pem)
    return path


def build(root: Path) -> Path:
    """Write the material under ``root`` (a new folder) and return ``root``."""
    root.mkdir(parents=True)
    (root / "bundles").mkdir()
    onnx, gguf = mlp_model(MLP_SIZES), tiny_llama_gguf()
    (root / "model.onnx").write_bytes(onnx)
    (root / "tiny.gguf").write_bytes(gguf)
    signer = _publisher_key(root / "publisher.key")
    x = {"x": np.array([[0.5, -1.0, 2.0, 0.25]], np.float32)}
    with LocalNode(root / "home") as node:
        node.push(onnx, name="mlp")
        signed = node.push(onnx + b"", name="mlp-signed", sign_key=signer)
        (root / "model.sig.json").write_bytes(node.hub.blobs.get(str(signed.signature_digest)))
        node.push(root / "tiny.gguf", name="tiny")
        issued = {
            "plain": node.infer("mlp", x, nonce="fuzz-nonce").bundle,
            "private": node.infer("mlp", x, private_input=True).bundle,
            "signed": node.infer("mlp-signed", x).bundle,
            "chat": node.chat(
                "tiny",
                {
                    "messages": [{"role": "user", "content": "hi"}],
                    "temperature": 0,
                    "max_tokens": 4,
                },
            ).bundle,
        }
    for name, bundle in issued.items():
        (root / "bundles" / f"{name}.json").write_text(bundle.dumps())
    return root


@dataclass
class Material:
    """The material under ``root``, read back (see :func:`build`)."""

    root: Path

    @cached_property
    def node(self) -> LocalNode:
        return LocalNode(self.root / "home")

    @cached_property
    def trust(self) -> TrustRoot:
        """The node's trust root (its key, its log, the publisher), plus the fixed witness."""
        base = self.node.trust_root()
        return replace(base, witness_keys=(*base.witness_keys, WITNESS.verifier()))

    @property
    def log_key(self) -> VerifierKey:
        return self.node.log.verifier_key

    @cached_property
    def bundles(self) -> dict[str, bytes]:
        folder = self.root / "bundles"
        return {p.stem: p.read_bytes() for p in sorted(folder.glob("*.json"))}

    def bundle(self, name: str) -> Bundle:
        return Bundle.loads(self.bundles[name])

    @property
    def onnx(self) -> bytes:
        return (self.root / "model.onnx").read_bytes()

    @property
    def gguf(self) -> bytes:
        return (self.root / "tiny.gguf").read_bytes()

    @property
    def model_signature(self) -> bytes:
        return (self.root / "model.sig.json").read_bytes()

    def tlog_entries(self) -> list[str]:
        return [str(json.loads(b)["tlogEntry"]) for b in self.bundles.values()]
