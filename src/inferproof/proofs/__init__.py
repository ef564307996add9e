"""Proof systems: one module each, behind :class:`ProofSystem`.

``reexec`` re-runs an ONNX model (bit-identical, or within a policy's tolerance);
``llm_reexec`` re-runs a chat request in llama.cpp, ``llm_fingerprint`` checks
its answer with one prefill on any machine, and ``embed_reexec`` re-runs an
embedding request; ``zk`` (imported on use: it
loads EZKL) proves and checks Halo2 proofs.
"""

from __future__ import annotations

from ._base import OnnxTolerance, ProofSystem, ProveContext, VerifyContext
from .embed_reexec import embedding_checks, is_embedding_receipt
from .llm_fingerprint import Tolerance as FingerprintTolerance
from .llm_reexec import chat_checks, is_chat_receipt
from .reexec import Reexecution

__all__ = [
    "FingerprintTolerance",
    "OnnxTolerance",
    "ProofSystem",
    "ProveContext",
    "Reexecution",
    "VerifyContext",
    "chat_checks",
    "embedding_checks",
    "is_chat_receipt",
    "is_embedding_receipt",
]
