"""Prove one inference (or one batch) against a model's setup."""

from __future__ import annotations

import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ezkl
import numpy as np

from ...errors import ZkError
from ...hub import BlobStore
from . import _ezkl
from ._felts import check_felt, felt_to_int
from ._memory import check_memory
from ._model import ordered_tensors, write_data
from ._types import ZkProof, ZkSetup


@dataclass(frozen=True)
class Layout:
    """Where each kind of public value sits in a proof's instance column.

    EZKL puts the Poseidon hashes first (inputs, then weights), then the public
    inputs, then the outputs; :func:`prove` checks this against the witness of
    every proof it makes, so a change in EZKL's order fails loudly.
    """

    input_hashes: slice
    param_hashes: slice
    public_inputs: slice
    outputs: slice
    total: int


def layout(setup: ZkSetup) -> Layout:
    """Where ``setup``'s public values sit in its proofs' instance column.

    Example::

        where = layout(record)
        outputs = proof.instances[where.outputs]
    """
    n_in_hash = len(setup.input_names) if setup.input_visibility == "hashed" else 0
    n_param = len(setup.param_hash or ()) if setup.param_visibility == "hashed" else 0
    n_pub = (
        sum(int(np.prod(s)) for s in setup.input_shapes)
        if setup.input_visibility == "public"
        else 0
    )
    n_out = sum(int(np.prod(s)) for s in setup.output_shapes)
    a, b, c = n_in_hash, n_in_hash + n_param, n_in_hash + n_param + n_pub
    return Layout(slice(0, a), slice(a, b), slice(b, c), slice(c, c + n_out), c + n_out)


def _expected_instances(witness: Mapping[str, Any], setup: ZkSetup) -> list[str]:
    """The instance column the witness implies, in the order :class:`Layout` assumes."""

    def hashes(part: str) -> list[str]:
        found = witness.get(part) or {}
        return list(found.get("poseidon_hash") or [])

    column = hashes("processed_inputs") + hashes("processed_params")
    if setup.input_visibility == "public":
        column += [f for tensor in witness["inputs"] for f in tensor]
    column += [f for tensor in witness["outputs"] for f in tensor]
    return column


def prove(
    setup: ZkSetup,
    inputs: Mapping[str, np.ndarray],
    store: BlobStore,
    *,
    available_memory: int | None = None,
) -> ZkProof:
    """Prove that the set-up model maps ``inputs`` to the output the proof carries.

    Inputs must have exactly the shapes given at setup. Raises InputError before
    starting when the circuit would not fit in memory (``available_memory``
    overrides the machine's figure), and BlobCorruptError when a stored artifact no
    longer matches its digest.

    Example::

        proof = prove(record, {"x": np.ones((1, 16), np.float32)}, store)
        y = proof.outputs[0]
    """
    tensors = ordered_tensors(setup.input_names, setup.input_shapes, inputs)
    with tempfile.TemporaryDirectory(prefix="inferproof-zk-prove-") as tmp:
        work = Path(tmp)
        pk = _ezkl.artifact_path(store, setup.pk_digest, work, "pk.key")
        check_memory(
            setup.logrows, "ZK proving", pk_bytes=pk.stat().st_size, available=available_memory
        )
        circuit = _ezkl.artifact_path(store, setup.circuit_digest, work, "circuit.ezkl")
        srs = _ezkl.artifact_path(store, setup.srs_digest, work, "kzg.srs")
        data, witness_file, proof_file = work / "data.json", work / "w.json", work / "p.json"
        write_data(data, [tensors])
        t0 = time.perf_counter()
        witness = _ezkl.call(
            "gen_witness", ezkl.gen_witness, str(data), str(circuit), str(witness_file), None, None
        )
        t1 = time.perf_counter()
        _ezkl.call(
            "prove", ezkl.prove, str(witness_file), str(circuit), str(pk), str(proof_file),
            str(srs), user_error=False,
        )  # fmt: skip
        t2 = time.perf_counter()
        raw = _ezkl.read_json(proof_file, "proof")
    instances = _single_column(raw["instances"])
    if instances != [check_felt(f, "witness value") for f in _expected_instances(witness, setup)]:
        raise ZkError("proof instances do not follow the layout this engine expects")
    where = layout(setup)
    if len(instances) != where.total:
        raise ZkError(f"proof has {len(instances)} instances, expected {where.total}")
    binding = (
        instances[where.input_hashes]
        if setup.input_visibility == "hashed"
        else instances[where.public_inputs]
    )
    return ZkProof(
        setup_digest=setup.digest(),
        proof=bytes(raw["proof"]),
        instances=tuple(instances),
        input_binding=tuple(binding),
        quantised_output=tuple(felt_to_int(f) for f in instances[where.outputs]),
        output_scales=setup.output_scales,
        output_shapes=setup.output_shapes,
        timings=(("witness", t1 - t0), ("prove", t2 - t1)),
    )


def _single_column(instances: Any) -> list[str]:
    if not isinstance(instances, list) or len(instances) != 1:
        raise ZkError("EZKL proof does not have exactly one instance column")
    return [check_felt(f, "instance") for f in instances[0]]
