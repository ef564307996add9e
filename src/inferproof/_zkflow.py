"""ZK mode on the local node: set a model up once, prove each inference.

The engine lives in :mod:`inferproof.proofs.zk`; this module connects it to the
hub (artifacts in the blob store, setups indexed under ``INFERPROOF_HOME/zk``),
to receipts (a ``zk`` proof entry, signed) and to bundles (the proof itself).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ._canonical import canonical_json, sha256_digest
from .errors import InputError
from .runtime import NamedInputs, encode_tensors

if TYPE_CHECKING:
    from ._local import LocalNode
    from .proofs.zk import JsonSetupIndex, ZkSetup

ZK_PROOF_TYPE = "zk"


def setup_index(node: LocalNode) -> JsonSetupIndex:
    from .proofs import zk

    return zk.JsonSetupIndex(node.home.root / "zk")


def setup_model(
    node: LocalNode,
    model_ref: str,
    samples: Sequence[NamedInputs],
    *,
    progress: Callable[[str], None] | None = None,
    **options: Any,
) -> ZkSetup:
    """Set a hub model up for proofs (idempotent); samples are checked like inputs."""
    from .proofs import zk

    if not samples:
        raise InputError("zk setup needs at least one sample input")
    _, block = node.resolve(model_ref)
    digest = str(block["digest"])
    model = node._model(digest)
    tensors = [model.conform(s.tensors, s.untyped) for s in samples]
    return zk.setup(
        node.hub.load(digest),
        digest,
        tensors,
        node.hub.blobs,
        setup_index(node),
        progress=progress,
        **options,
    )


def load_setup(node: LocalNode, setup_digest: str) -> ZkSetup | None:
    """A setup record from the local hub, or None when this hub does not have it."""
    from .proofs.zk import ZkSetup

    if not node.hub.blobs.has(setup_digest):
        return None
    return ZkSetup.from_bytes(node.hub.blobs.get(setup_digest))


def find_setup(node: LocalNode, model_digest: str, inputs: dict[str, np.ndarray]) -> ZkSetup:
    """The setup of ``model_digest`` whose circuit takes inputs of these shapes."""
    shapes = {name: tuple(arr.shape) for name, arr in inputs.items()}
    for digest in setup_index(node).entries(model_digest):
        record = load_setup(node, digest)
        if (
            record is not None
            and dict(zip(record.input_names, record.input_shapes, strict=True)) == shapes
        ):
            return record
    raise InputError(
        f"model {model_digest} is not set up for zk proofs on inputs of shape "
        f"{ {k: list(v) for k, v in shapes.items()} }: run `inferproof zk setup` first"
    )


def prove_inference(
    node: LocalNode,
    model_digest: str,
    inputs: dict[str, np.ndarray],
    output_names: Sequence[str],
    progress: Callable[[str], None] | None = None,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Prove one inference: (the receipt's proof entry, the bundle's ``proofs.zk``)."""
    from .proofs import zk

    record = find_setup(node, model_digest, inputs)
    if progress:
        progress(f"proving with EZKL (logrows {record.logrows}, {record.srs_kind} SRS)")
    proof = zk.prove(record, inputs, node.hub.blobs)
    proof_json = proof.to_json()
    names = (
        list(output_names)
        if len(output_names) == len(proof.outputs)
        else [f"output_{i}" for i in range(len(proof.outputs))]
    )
    entry = {
        "type": ZK_PROOF_TYPE,
        "system": "ezkl",
        "ezkl_version": record.ezkl_version,
        "setup": record.digest(),
        "srs": record.srs_kind,
        "proof": sha256_digest(canonical_json(proof_json)),
        # The circuit's (quantised, then dequantised) output, which the proof covers,
        # next to the float output that the receipt's subject digest covers.
        "circuit_outputs": encode_tensors(dict(zip(names, proof.outputs, strict=True))),
    }
    return entry, {"setup": record.digest(), "proof": proof_json}
