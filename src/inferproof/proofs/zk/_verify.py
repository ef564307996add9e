"""Verify a ZK proof: EZKL's check, then ours on what the proof is about.

``ezkl.verify`` only says "this proof is valid for this verifying key and these
public instances". Which model, which input and which output those instances mean
is for us to check: the instances must equal the claimed input (or its Poseidon
hash) and output, and the model must be bound (its weights fixed in the verifying
key recorded for this model digest, or their Poseidon hash equal to the one
recorded at setup).
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

import ezkl
import numpy as np

from ..._checks import Check, failed, not_checked, passed
from ...errors import Error
from ...hub import BlobStore
from . import _ezkl
from ._felts import dequantise, felt_to_int, int_to_felt, quantise
from ._model import ordered_tensors
from ._prove import layout
from ._rederive import CHECK_REDERIVED, rederive
from ._srs import public_srs_logrows
from ._types import ZkProof, ZkSetup

CHECK_SETUP = "zk.setup"
CHECK_PROOF = "zk.proof"
CHECK_SRS = "zk.srs"
CHECK_MODEL = "zk.model"
CHECK_INPUT = "zk.input"
CHECK_OUTPUT = "zk.output"


def verify(
    setup: ZkSetup,
    proof: ZkProof,
    store: BlobStore,
    *,
    model_digest: str,
    output_values: Sequence[np.ndarray] | None,
    input_tensors: Mapping[str, np.ndarray] | None = None,
    input_hash: Sequence[str] | None = None,
    allow_dev_srs: bool = False,
    model_bytes: bytes | None = None,
) -> tuple[Check, ...]:
    """Check a proof and what it proves; return every check made or not made.

    ``setup`` is the record the hub holds for ``model_digest`` (the receipt's
    model). ``output_values`` are the receipt's circuit outputs (``ZkProof.outputs``
    as recorded), compared within half a quantisation step. Give the input as
    tensors, or for hashed inputs as its Poseidon hash; with neither, the input
    check is reported as not made. A dev SRS fails ``zk.srs`` unless allowed; the
    ``zk.proof`` check is reported on its own either way. With ``model_bytes``
    (the model file) the verifying key and weight hash are also re-derived from the
    model (``zk.model.rederived``, a key generation's worth of time); without it that
    check is reported as not made and the record is trusted as the hub keeps it.

    Example::

        checks = verify(record, proof, store, model_digest=digest,
                        output_values=[y_circuit], input_tensors={"x": x})
        ok = all(c.passed for c in checks)
    """
    checks = [_check_setup(setup, proof, model_digest), _check_srs(setup, allow_dev_srs)]
    checks.append(_check_proof(setup, proof, store))
    where = layout(setup)
    if len(proof.instances) != where.total:
        bad = f"proof has {len(proof.instances)} public instances; the circuit has {where.total}"
        names = (CHECK_MODEL, CHECK_REDERIVED, CHECK_INPUT, CHECK_OUTPUT)
        return (*checks, *(failed(n, bad) for n in names))
    checks.append(_check_model(setup, proof))
    if model_bytes is None:
        why = "no model file given: key and weight hash taken as the setup record says"
        checks.append(not_checked(CHECK_REDERIVED, why))
    else:
        checks.append(rederive(setup, model_bytes, store))
    checks.append(_check_input(setup, proof, input_tensors, input_hash))
    checks.append(_check_output(setup, proof, output_values))
    return tuple(checks)


def _check_setup(setup: ZkSetup, proof: ZkProof, model_digest: str) -> Check:
    if setup.model_digest != model_digest:
        return failed(CHECK_SETUP, f"setup is for model {setup.model_digest}, not {model_digest}")
    if proof.setup_digest != setup.digest():
        return failed(
            CHECK_SETUP, f"proof was made for setup {proof.setup_digest}, not {setup.digest()}"
        )
    return passed(CHECK_SETUP, f"proof made for setup {setup.digest()} of model {model_digest}")


def _check_srs(setup: ZkSetup, allow_dev_srs: bool) -> Check:
    if setup.srs_kind == "public":
        # The record's word is not enough: a public SRS is one of the ceremony's files,
        # known by digest (a setup that calls its own SRS "public" could forge proofs).
        k = public_srs_logrows(setup.srs_digest)
        if k is None:
            return failed(CHECK_SRS, f"setup calls SRS {setup.srs_digest} public, but it is "
                          "not one of the public ceremony's files")  # fmt: skip
        return passed(CHECK_SRS, f"public ceremony SRS (logrows {k}, {setup.srs_digest})")
    warning = f"dev SRS {setup.srs_digest} generated locally: whoever generated it can forge proofs"
    if allow_dev_srs:
        return passed(CHECK_SRS, f"{warning}; allowed by policy for this run")
    return failed(CHECK_SRS, f"{warning}; not allowed by policy (allow_dev_srs)")


def _proof_file(proof: ZkProof, path: Path) -> None:
    # The minimal proof file EZKL 23 reads back: the instance column and the bytes.
    body = {"protocol": None, "instances": [list(proof.instances)], "proof": list(proof.proof)}
    path.write_text(json.dumps(body))


def _check_proof(setup: ZkSetup, proof: ZkProof, store: BlobStore) -> Check:
    with tempfile.TemporaryDirectory(prefix="inferproof-zk-verify-") as tmp:
        work = Path(tmp)
        try:
            settings = _ezkl.artifact_path(store, setup.settings_digest, work, "settings.json")
            vk = _ezkl.artifact_path(store, setup.vk_digest, work, "vk.key")
            srs = _ezkl.artifact_path(store, setup.srs_digest, work, "kzg.srs")
        except Error as exc:
            return failed(CHECK_PROOF, f"verification artifacts refused: {exc}")
        proof_path = work / "proof.json"
        _proof_file(proof, proof_path)
        try:
            _ezkl.call(
                "verify", ezkl.verify, str(proof_path), str(settings), str(vk), str(srs), False
            )
        except Error as exc:
            return failed(CHECK_PROOF, f"EZKL rejected the proof: {exc}")
    return passed(CHECK_PROOF, f"Halo2-KZG proof valid for verifying key {setup.vk_digest}")


def _check_model(setup: ZkSetup, proof: ZkProof) -> Check:
    if setup.param_visibility == "fixed":
        return passed(
            CHECK_MODEL,
            f"weights fixed in verifying key {setup.vk_digest}, recorded at setup for "
            f"model {setup.model_digest} (binding holds when {CHECK_PROOF} passed)",
        )
    got = proof.instances[layout(setup).param_hashes]
    if setup.param_hash is None or tuple(got) != setup.param_hash:
        return failed(
            CHECK_MODEL,
            f"weight hash in the proof {list(got)} is not the one recorded at setup "
            f"for model {setup.model_digest}",
        )
    return passed(CHECK_MODEL, "Poseidon hash of the weights equals the one recorded at setup")


def _check_input(
    setup: ZkSetup,
    proof: ZkProof,
    tensors: Mapping[str, np.ndarray] | None,
    input_hash: Sequence[str] | None,
) -> Check:
    where = layout(setup)
    if setup.input_visibility == "hashed":
        got = list(proof.instances[where.input_hashes])
        if tensors is not None:
            try:
                arrays = ordered_tensors(setup.input_names, setup.input_shapes, tensors)
            except Error as exc:
                return failed(CHECK_INPUT, str(exc))
            want = [_poseidon(a, s) for a, s in zip(arrays, setup.input_scales, strict=True)]
        elif input_hash is not None:
            want = list(input_hash)
        else:
            return not_checked(CHECK_INPUT, "no input or input hash given to compare")
        if got != want:
            return failed(CHECK_INPUT, "Poseidon hash of the input differs from the proof's")
        return passed(CHECK_INPUT, "Poseidon hash of the quantised input equals the proof's")
    if tensors is None:
        return not_checked(CHECK_INPUT, "no input tensors given to compare")
    try:
        arrays = ordered_tensors(setup.input_names, setup.input_shapes, tensors)
    except Error as exc:
        return failed(CHECK_INPUT, str(exc))
    want_ints = [q for a, s in zip(arrays, setup.input_scales, strict=True) for q in quantise(a, s)]
    got_ints = [felt_to_int(f) for f in proof.instances[where.public_inputs]]
    if got_ints != want_ints:
        return failed(CHECK_INPUT, "the proof's public input differs from the quantised input")
    return passed(CHECK_INPUT, "the proof's public input equals the quantised input")


def _poseidon(array: np.ndarray, scale: int) -> str:
    # EZKL hashes an input tensor as one Poseidon sponge over its quantised felts.
    hashed = _ezkl.call(
        "poseidon_hash", ezkl.poseidon_hash, [int_to_felt(q) for q in quantise(array, scale)]
    )
    return str(hashed[0])


def _check_output(
    setup: ZkSetup, proof: ZkProof, output_values: Sequence[np.ndarray] | None
) -> Check:
    if output_values is None:
        return not_checked(CHECK_OUTPUT, "no output given to compare")
    got = [felt_to_int(f) for f in proof.instances[layout(setup).outputs]]
    if len(output_values) != len(setup.output_shapes):
        return failed(CHECK_OUTPUT, f"{len(output_values)} outputs given, circuit has "
                      f"{len(setup.output_shapes)}")  # fmt: skip
    at, worst = 0, 0.0
    for value, shape, scale in zip(
        output_values, setup.output_shapes, setup.output_scales, strict=True
    ):
        claimed = np.asarray(value, dtype=np.float64)
        if claimed.size != int(np.prod(shape)):
            return failed(CHECK_OUTPUT, f"output has {claimed.size} values, circuit {shape}")
        size = claimed.size
        proved = dequantise(got[at : at + size], scale)
        step = 2.0**-scale
        # Half a quantisation step: the circuit's values are exact multiples of
        # 2^-scale, so any claim that rounds to another grid point is a different
        # output, while decimal printing of the same value still matches.
        diff = np.abs(claimed.reshape(-1) - proved)
        if not np.all(np.isfinite(claimed)) or np.any(diff >= step / 2):
            return failed(
                CHECK_OUTPUT,
                f"claimed output differs from the proof's by {float(np.nanmax(diff)):.3g} "
                f"(allowed: under half a quantisation step, {step / 2:.3g})",
            )
        worst = max(worst, float(diff.max(initial=0.0)))
        at += size
    return passed(CHECK_OUTPUT, f"claimed output equals the proof's within half a step "
                  f"(largest difference {worst:.3g})")  # fmt: skip
