"""Zero-knowledge proofs of inference with EZKL (Halo2 with KZG commitments).

Once per model, :func:`setup` turns an ONNX file into a circuit with proving and
verifying keys, stores every artifact in a BlobStore by digest and indexes the
resulting :class:`ZkSetup` record under the model digest. For each inference,
:func:`prove` returns a :class:`ZkProof` whose public instances carry the input
(or its Poseidon hash), the weights' hash when params are hashed, and the output
the circuit computed. :func:`verify` runs EZKL's verifier and then checks what
EZKL does not: that those instances are this receipt's input, output and model.

Example::

    from inferproof.proofs import zk
    record = zk.setup(onnx_bytes, digest, [{"x": x}], store, zk.JsonSetupIndex(home / "zk"),
                      dev_srs=True)
    proof = zk.prove(record, {"x": x}, store)
    checks = zk.verify(record, proof, store, model_digest=digest,
                       output_values=proof.outputs, input_tensors={"x": x}, allow_dev_srs=True)
"""

from __future__ import annotations

from ...errors import ZkError
from ._ezkl import EZKL_VERSION, artifact_path
from ._felts import BN254_R, felt_to_int
from ._index import JsonSetupIndex, SetupIndex
from ._memory import check_memory, estimate_bytes
from ._prove import Layout, layout, prove
from ._rederive import CHECK_REDERIVED
from ._setup import DEFAULT_DECOMP, SETUP_STEPS, ProgressFn, options_key, setup
from ._srs import PUBLIC_SRS_SHA256, public_srs_logrows
from ._types import (
    InputVisibility,
    ParamVisibility,
    SrsKind,
    Target,
    ZkProof,
    ZkSetup,
)
from ._verify import (
    CHECK_INPUT,
    CHECK_MODEL,
    CHECK_OUTPUT,
    CHECK_PROOF,
    CHECK_SETUP,
    CHECK_SRS,
    verify,
)

__all__ = [
    "BN254_R",
    "CHECK_INPUT",
    "CHECK_MODEL",
    "CHECK_OUTPUT",
    "CHECK_PROOF",
    "CHECK_REDERIVED",
    "CHECK_SETUP",
    "CHECK_SRS",
    "DEFAULT_DECOMP",
    "EZKL_VERSION",
    "PUBLIC_SRS_SHA256",
    "SETUP_STEPS",
    "InputVisibility",
    "JsonSetupIndex",
    "Layout",
    "ParamVisibility",
    "ProgressFn",
    "SetupIndex",
    "SrsKind",
    "Target",
    "ZkError",
    "ZkProof",
    "ZkSetup",
    "artifact_path",
    "check_memory",
    "estimate_bytes",
    "felt_to_int",
    "layout",
    "options_key",
    "prove",
    "public_srs_logrows",
    "setup",
    "verify",
]
