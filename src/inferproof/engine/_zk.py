"""ZK mode: set a model up once, prove each inference.

The prover lives in :mod:`inferproof.proofs.zk`; this module connects it to the
hub (artifacts in the blob store, setups indexed under ``INFERPROOF_HOME/zk``),
to receipts (a ``zk`` proof entry, signed) and to bundles (the proof itself).
EZKL is imported only when a ZK operation runs.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .._canonical import canonical_json, sha256_digest
from ..errors import InputError
from ..hub import BlobStore
from ..runtime import NamedInputs
from ._models import ModelRef, OnnxModels

if TYPE_CHECKING:
    from ..proofs.zk import JsonSetupIndex, ZkProof, ZkSetup

__all__ = ["ZK_PROOF_TYPE", "Prover", "ZkFlow"]

ZK_PROOF_TYPE = "zk"
# Makes one proof: (setup, inputs, the hub's blobs, progress) -> proof. The default
# proves in this process; engine.RayProver proves on a Ray cluster.
Prover = Callable[
    ["ZkSetup", dict[str, np.ndarray], BlobStore, Callable[[str], None] | None], "ZkProof"
]


class ZkFlow:
    """Setups and proofs for the models in ``models``' hub, indexed under ``index_dir``.

    Example::

        zk = ZkFlow(models, home.zk)
        setup = zk.setup("mlp:1", [sample], dev_srs=True)
        entry, bundle_part, outputs = zk.prove(model_digest, tensors, {"y": float_y})
    """

    def __init__(self, models: OnnxModels, index_dir: Path, prover: Prover | None = None) -> None:
        self.models = models
        self.hub = models.hub
        self.index_dir = index_dir
        self._prover = prover

    def set_prover(self, prover: Prover | None) -> None:
        """Prove with ``prover`` from now on (None: in this process, the default)."""
        self._prover = prover

    def index(self) -> JsonSetupIndex:
        from ..proofs import zk

        return zk.JsonSetupIndex(self.index_dir)

    def setup(
        self,
        model_ref: ModelRef,
        samples: Sequence[NamedInputs],
        *,
        progress: Callable[[str], None] | None = None,
        **options: Any,
    ) -> ZkSetup:
        """Set a hub model up for proofs (idempotent); samples are checked like inputs."""
        from ..proofs import zk

        if not samples:
            raise InputError("zk setup needs at least one sample input")
        _, block = self.models.resolve(model_ref)
        digest = str(block["digest"])
        model = self.models.session(digest)
        tensors = [model.conform(s.tensors, s.untyped) for s in samples]
        return zk.setup(
            self.hub.load(digest),
            digest,
            tensors,
            self.hub.blobs,
            self.index(),
            progress=progress,
            **options,
        )

    def load(self, setup_digest: str) -> ZkSetup | None:
        """A setup record from the local hub, or None when this hub does not have it."""
        from ..proofs.zk import ZkSetup

        if not self.hub.blobs.has(setup_digest):
            return None
        return ZkSetup.from_bytes(self.hub.blobs.get(setup_digest))

    def resolver(self, setup_digest: str) -> tuple[ZkSetup, BlobStore] | None:
        """A verifier's ``zk_resolver``: the setup and the store holding its artifacts."""
        record = self.load(setup_digest)
        return None if record is None else (record, self.hub.blobs)

    def setups(self, model_ref: ModelRef) -> list[ZkSetup]:
        """Every setup made for the hub model ``model_ref`` (any options)."""
        _, block = self.models.resolve(model_ref)
        found = (self.load(d) for d in self.index().entries(str(block["digest"])))
        return [record for record in found if record is not None]

    def find(self, model_digest: str, inputs: dict[str, np.ndarray]) -> ZkSetup:
        """The setup of ``model_digest`` whose circuit takes inputs of these shapes."""
        shapes = {name: tuple(arr.shape) for name, arr in inputs.items()}
        for digest in self.index().entries(model_digest):
            record = self.load(digest)
            if (
                record is not None
                and dict(zip(record.input_names, record.input_shapes, strict=True)) == shapes
            ):
                return record
        raise InputError(
            f"model {model_digest} is not set up for zk proofs on inputs of shape "
            f"{ {k: list(v) for k, v in shapes.items()} }: run `inferproof zk setup` first"
        )

    def prove(
        self,
        model_digest: str,
        inputs: dict[str, np.ndarray],
        outputs: Mapping[str, np.ndarray],
        progress: Callable[[str], None] | None = None,
        *,
        private_input: bool = False,
    ) -> tuple[dict[str, Any], dict[str, Any], dict[str, np.ndarray]]:
        """Prove one inference: (the receipt's proof entry, the bundle's ``proofs.zk``,
        the proven outputs).

        The proven outputs (the circuit's, dequantised) are the answer: the receipt's
        subject and the bundle's outputs, so what a client reads is what the proof
        covers (review finding 11.2). ``outputs`` (the float run) only give the names
        and dtypes. A private input is refused on a setup whose inputs are public
        instances of the proof (review finding 11.9).
        """
        from ..proofs import zk

        record = self.find(model_digest, inputs)
        if private_input and record.input_visibility == "public":
            raise InputError(
                "a private input cannot be proven with this setup: its inputs are public "
                "instances of the proof, which would publish the input; set the model up "
                "with hashed inputs (`inferproof zk setup --input-visibility hashed`)"
            )
        if progress:
            progress(f"proving with EZKL (logrows {record.logrows}, {record.srs_kind} SRS)")
        if self._prover is None:
            proof = zk.prove(record, inputs, self.hub.blobs)
        else:
            proof = self._prover(record, inputs, self.hub.blobs, progress)
        proof_json = proof.to_json()
        names = (
            list(outputs)
            if len(outputs) == len(proof.outputs)
            else [f"output_{i}" for i in range(len(proof.outputs))]
        )
        proven = {
            name: _in_dtype(value, outputs.get(name))
            for name, value in zip(names, proof.outputs, strict=True)
        }
        entry = {
            "type": ZK_PROOF_TYPE,
            "system": "ezkl",
            "ezkl_version": record.ezkl_version,
            "setup": record.digest(),
            "srs": record.srs_kind,
            "proof": sha256_digest(canonical_json(proof_json)),
            # The circuit's outputs in its instance order, by name in the bundle.
            "output_names": names,
        }
        return entry, self.bundle_part(record, proof_json), proven

    def bundle_part(self, record: ZkSetup, proof_json: dict[str, Any]) -> dict[str, Any]:
        """The bundle's ``proofs.zk``: the proof, and what anyone needs to check it
        besides the SRS (review finding 11.4): the setup record, whose digest the
        receipt signs, and the settings and verifying key it names by digest."""
        artifacts = {
            digest: base64.b64encode(self.hub.blobs.get(digest)).decode()
            for digest in (record.settings_digest, record.vk_digest)
        }
        return {
            "setup": record.digest(),
            "proof": proof_json,
            "setup_record": record.to_json(),
            "artifacts": artifacts,
        }


def _in_dtype(value: np.ndarray, like: np.ndarray | None) -> np.ndarray:
    """The proven value in the model's output dtype when that holds it exactly (the
    circuit's values are multiples of 2^-scale; an integer output's are integers),
    else in float64."""
    if like is not None and like.dtype.kind in "fiu":
        cast = value.astype(like.dtype)
        if np.array_equal(cast.astype(np.float64), value):
            return cast
    return value.astype(np.float64)
