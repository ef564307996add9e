"""Tensor inference on ONNX models: resolve, conform, run, prove, issue.

Each step is a small function; :func:`infer` is their sequence. The receipt's
input is the digest of the conformed input tensors (or a salted commitment to
it, for a private input), its subject the digest of the output tensors.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import InputError
from ..proofs import ProveContext, Reexecution
from ..receipts import Bundle, commit_input
from ..runtime import NamedInputs, encode_tensors, engine_info, tensors_digest
from ._issue import Claim, Issuer, utc_now
from ._models import ModelRef, OnnxModels, model_block
from ._zk import ZkFlow

__all__ = ["MODES", "SALT_SCHEME", "InferenceResult", "infer"]

SALT_SCHEME = "salted-sha256-v1"
MODES = ("vanilla", "zk", "tee")


@dataclass(frozen=True)
class InferenceResult:
    """What :meth:`LocalNode.infer` returns: the outputs, the bundle, and for private
    inputs the opening (salt) that only the caller receives."""

    outputs: dict[str, np.ndarray]
    bundle: Bundle
    salt: bytes | None = None


@dataclass(frozen=True)
class _Run:
    """One model run: conformed inputs, outputs, and when it ran."""

    tensors: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    started: str
    finished: str


def check_mode(mode: str, issuer: Issuer) -> None:
    """Refuse unknown modes, and ``tee`` on a node without hardware identity."""
    if mode not in MODES:
        raise InputError(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if mode == "tee" and issuer.identity is None:
        raise InputError("mode 'tee' needs a hardware-attested node (see `inferproof node attest`)")


def run(models: OnnxModels, digest: str, inputs: NamedInputs | Mapping[str, Any]) -> _Run:
    """Conform ``inputs`` to the model's signature and run it."""
    named = inputs if isinstance(inputs, NamedInputs) else NamedInputs(dict(inputs))
    model = models.session(digest)
    tensors = model.conform(named.tensors, named.untyped)
    started = utc_now()
    outputs = model.run(tensors)
    return _Run(tensors, outputs, started, utc_now())


def input_block(
    tensors: dict[str, np.ndarray], private: bool
) -> tuple[dict[str, Any], bytes | None]:
    """The receipt's input: the tensors' digest, or a salted commitment and its salt."""
    digest = tensors_digest(tensors)
    if not private:
        return {"digest": digest}, None
    salt = os.urandom(32)
    return {"commitment": commit_input(digest, salt), "scheme": SALT_SCHEME}, salt


def prove(
    digest: str,
    done: _Run,
    runtime: dict[str, Any],
    zk: ZkFlow | None,
    progress: Callable[[str], None] | None,
    private_input: bool,
) -> tuple[list[dict[str, Any]], dict[str, Any], dict[str, np.ndarray]]:
    """The output proofs beyond the signature, the bundle's proofs too big for the
    receipt, and the answer they vouch for.

    Vanilla: re-execution, and the answer is the model's output. ZK: the proof,
    and the answer is the circuit's output, which the proof covers; re-execution
    is not claimed then, since the float run's output is not the answer.
    """
    if zk is None:
        ctx = ProveContext(digest, done.tensors, done.outputs, runtime)
        return [Reexecution().prove(ctx)], {}, done.outputs
    entry, bundle_part, proven = zk.prove(
        digest, done.tensors, done.outputs, progress, private_input=private_input
    )
    return [entry], {"zk": bundle_part}, proven


def infer(
    issuer: Issuer,
    models: OnnxModels,
    zk: ZkFlow,
    model_ref: ModelRef,
    inputs: NamedInputs | Mapping[str, Any],
    *,
    nonce: str | None = None,
    private_input: bool = False,
    mode: str = "vanilla",
    progress: Callable[[str], None] | None = None,
) -> InferenceResult:
    """Run a model and return its outputs with a signed, logged receipt bundle."""
    check_mode(mode, issuer)
    record, block = models.resolve(model_ref)
    digest = str(block["digest"])
    done = run(models, digest, inputs)
    model, signature = model_block(models.hub, record, block, "onnx")
    input_claim, salt = input_block(done.tensors, private_input)
    runtime = engine_info()
    zk_flow = zk if mode == "zk" else None
    proofs, bundle_proofs, answer = prove(digest, done, runtime, zk_flow, progress, private_input)
    claim = Claim(
        output_digest=tensors_digest(answer),
        model=model,
        input_block=input_claim,
        runtime=runtime,
        nonce=nonce,
        started=done.started,
        finished=done.finished,
        parameters={"mode": mode},
        proofs=proofs,
    )
    bundle = issuer.issue(
        claim,
        outputs=encode_tensors(answer),
        inputs=None if salt else encode_tensors(done.tensors),
        model_signature=signature,
        proofs=bundle_proofs,
    )
    return InferenceResult(answer, bundle, salt)
