"""Re-derive a setup's model binding from the model file itself.

The ``zk.model`` check trusts that the setup record (its verifying key, its weight
hash) was made from the model it names: true when the record comes from the hub's
index for that model digest. A verifier holding the model file need not trust that:
compiling the model with the recorded settings and generating the verifying key
again gives the same bytes (Halo2 key generation is deterministic; the compiled
circuit file is not byte-stable, so it is not compared), and a witness of the
recompiled circuit yields the weight hash.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import ezkl
import numpy as np

from ..._canonical import sha256_digest
from ..._checks import Check, failed, passed
from ...errors import Error
from ...hub import BlobStore
from ...runtime import check_self_contained
from . import _ezkl
from ._memory import check_memory
from ._model import write_data
from ._types import ZkSetup

CHECK_REDERIVED = "zk.model.rederived"


def rederive(setup: ZkSetup, model_bytes: bytes, store: BlobStore) -> Check:
    """Compare the record's verifying key (and weight hash) with ones made from the model."""
    if sha256_digest(model_bytes) != setup.model_digest:
        return failed(CHECK_REDERIVED, f"model file does not hash to {setup.model_digest}")
    try:
        # EZKL's ONNX loader (tract) must never be handed a model that names files.
        check_self_contained(model_bytes)
        check_memory(setup.logrows, "re-deriving the verifying key")
        with tempfile.TemporaryDirectory(prefix="inferproof-zk-rederive-") as tmp:
            work = Path(tmp)
            model, circuit, vk, pk = (work / n for n in ("m.onnx", "c.ezkl", "vk.key", "pk.key"))
            model.write_bytes(model_bytes)
            settings = _ezkl.artifact_path(store, setup.settings_digest, work, "settings.json")
            srs = _ezkl.artifact_path(store, setup.srs_digest, work, "kzg.srs")
            _ezkl.call("compile_circuit", ezkl.compile_circuit, str(model), str(circuit),
                       str(settings))  # fmt: skip
            _ezkl.call("setup", ezkl.setup, str(circuit), str(vk), str(pk), str(srs), None,
                       False)  # fmt: skip
            vk_digest = sha256_digest(vk.read_bytes())
            weight_hash = _weight_hash(setup, work, circuit)
    except Error as exc:
        return failed(CHECK_REDERIVED, f"could not re-derive the circuit: {exc}")
    if vk_digest != setup.vk_digest:
        return failed(
            CHECK_REDERIVED,
            f"verifying key made from the model file is {vk_digest}, "
            f"not {setup.vk_digest} as the setup record says",
        )
    if weight_hash != setup.param_hash:
        return failed(CHECK_REDERIVED, "weight hash of the model file differs from the record's")
    return passed(
        CHECK_REDERIVED,
        "verifying key" + (" and weight hash" if weight_hash else "")
        + " re-derived from the model file match the setup record",
    )  # fmt: skip


def _weight_hash(setup: ZkSetup, work: Path, circuit: Path) -> tuple[str, ...] | None:
    if setup.param_visibility != "hashed":
        return None
    # Any input gives the weights' hash; zeros of the set-up shapes will do.
    zeros = [np.zeros(shape) for shape in setup.input_shapes]
    write_data(work / "zeros.json", [zeros])
    witness = _ezkl.call("gen_witness", ezkl.gen_witness, str(work / "zeros.json"), str(circuit),
                         str(work / "w.json"), None, None)  # fmt: skip
    return tuple(witness["processed_params"]["poseidon_hash"])
