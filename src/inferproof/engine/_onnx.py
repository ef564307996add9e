"""Tensor inference on ONNX models: resolve, conform, run, prove, issue.

Each step is a small function; :func:`infer` is their sequence. The receipt's
input is the digest of the conformed input tensors (or a salted commitment to
it, for a private input), its subject the digest of the output tensors.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._canonical import canonical_json, sha256_digest
from ..errors import InputError
from ..proofs import ProveContext, Reexecution
from ..receipts import Bundle, commit_input
from ..runtime import (
    NamedInputs,
    commit_output,
    encode_tensors,
    engine_info,
    parse_json_tensors,
    tensors_digest,
)
from ._issue import Claim, Issuer, utc_now
from ._models import ModelRef, OnnxModels, model_block
from ._zk import ZkFlow

__all__ = ["MODES", "OUTPUT_COMMITTED", "SALT_SCHEME", "InferenceResult", "infer"]

SALT_SCHEME = "salted-sha256-v1"
MODES = ("vanilla", "zk", "tee")
# parameters.output of a receipt whose subject is a salted commitment to the output.
OUTPUT_COMMITTED = "committed"


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


def named_inputs(inputs: NamedInputs | Mapping[str, Any]) -> NamedInputs:
    """Numpy arrays as they are; plain (nested) lists typed later by the model's
    signature, exactly as the HTTP node and the client type them."""
    if isinstance(inputs, NamedInputs):
        return inputs
    if not isinstance(inputs, Mapping) or not inputs:
        raise InputError("inputs must be a non-empty mapping of names to tensors")
    arrays = {k: v for k, v in inputs.items() if isinstance(v, np.ndarray)}
    plain = {k: v for k, v in inputs.items() if not isinstance(v, np.ndarray)}
    if not plain:
        return NamedInputs(arrays)
    try:
        text = json.dumps(plain, allow_nan=False).encode()
    except (TypeError, ValueError) as exc:
        raise InputError(f"inputs must be numpy arrays or nested lists of numbers: {exc}") from None
    parsed = parse_json_tensors(text)
    return NamedInputs({**arrays, **parsed.tensors}, parsed.untyped)


def run(models: OnnxModels, digest: str, inputs: NamedInputs | Mapping[str, Any]) -> _Run:
    """Conform ``inputs`` to the model's signature and run it."""
    named = named_inputs(inputs)
    model = models.session(digest)
    tensors = model.conform(named.tensors, named.untyped)
    started = utc_now()
    outputs = model.run(tensors)
    return _Run(tensors, outputs, started, utc_now())


def input_block(tensors: dict[str, np.ndarray], salt: bytes | None) -> dict[str, Any]:
    """The receipt's input: the tensors' digest, or with ``salt`` a salted commitment."""
    digest = tensors_digest(tensors)
    if salt is None:
        return {"digest": digest}
    return {"commitment": commit_input(digest, salt), "scheme": SALT_SCHEME}


def check_privacy(mode: str, private_input: bool, private_output: bool) -> None:
    """Refuse what would publish a private value: a ZK proof's outputs are public
    instances of the proof (review finding 11.6)."""
    if mode == "zk" and private_output:
        why = "private input" if private_input else "private output"
        raise InputError(
            f"a ZK proof publishes its outputs as public instances, so a {why} cannot "
            "keep the output private: reveal the output (private_output=False, "
            "`--public-output`) or infer without --mode zk"
        )


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
    private_output: bool | None = None,
    mode: str = "vanilla",
    progress: Callable[[str], None] | None = None,
    workflow: Mapping[str, Any] | None = None,
    provenance: Mapping[str, Any] | None = None,
) -> InferenceResult:
    """Run a model and return its outputs with a signed, logged receipt bundle.

    A workflow run names its workflow in the receipt's parameters (``workflow``) and
    the origin of its input data in the input block: the ``provenance`` record's
    RFC 8785 digest beside the tensors' digest, the record itself in the bundle.

    A private input is committed to by a salted digest. A private output (by
    default, with a private input) likewise: the subject is a salted commitment to
    the output digest and the bundle carries no outputs, so a published receipt
    shows neither (review finding 11.6); the caller gets the outputs and the salt."""
    hide_output = private_input if private_output is None else private_output
    check_mode(mode, issuer)
    check_privacy(mode, private_input, hide_output)
    record, block = models.resolve(model_ref)
    digest = str(block["digest"])
    done = run(models, digest, inputs)
    model, signature = model_block(models.hub, record, block, "onnx")
    salt = os.urandom(32) if private_input or hide_output else None
    input_claim = input_block(done.tensors, salt if private_input else None)
    if provenance is not None:
        input_claim["provenance"] = sha256_digest(canonical_json(dict(provenance)))
        bundle_proofs_extra = {"provenance": dict(provenance)}
    else:
        bundle_proofs_extra = {}
    runtime = engine_info()
    zk_flow = zk if mode == "zk" else None
    proofs, bundle_proofs, answer = prove(digest, done, runtime, zk_flow, progress, private_input)
    subject = tensors_digest(answer)
    parameters: dict[str, Any] = {"mode": mode}
    if workflow is not None:
        parameters["workflow"] = dict(workflow)
    if hide_output:
        assert salt is not None
        subject = commit_output(subject, salt)
        parameters["output"] = OUTPUT_COMMITTED
    claim = Claim(
        output_digest=subject,
        model=model,
        input_block=input_claim,
        runtime=runtime,
        nonce=nonce,
        started=done.started,
        finished=done.finished,
        parameters=parameters,
        proofs=proofs,
    )
    bundle = issuer.issue(
        claim,
        outputs={} if hide_output else encode_tensors(answer),
        inputs=None if private_input else encode_tensors(done.tensors),
        model_signature=signature,
        proofs={**bundle_proofs, **bundle_proofs_extra},
    )
    return InferenceResult(answer, bundle, salt)
