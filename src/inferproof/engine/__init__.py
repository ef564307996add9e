"""The node's logic without HTTP: :class:`LocalNode` over one receipt-issuing path.

The embedded default runs in one process on SQLite and a folder under
``INFERPROOF_HOME``. Every flow (tensor inference, ZK proofs, chat, embeddings, relay)
states what it computed and hands it to the :class:`Issuer`, which signs,
bundles and logs it; :class:`LocalNode` is the facade the CLI, the HTTP node and
library users call.

Example::

    from inferproof.engine import LocalNode
    with LocalNode() as node:
        node.push("model.onnx", name="risk")
        result = node.infer("risk", {"x": np.ones((1, 4), np.float32)})
        node.verifier().verify(result.bundle)
"""

from __future__ import annotations

from ..receipts import utc_now
from ._chat import ChatResult, ChatStream
from ._chatmodels import ChatConfig
from ._chatreceipt import receipt_digest
from ._embed import EmbeddingResult
from ._home import Home
from ._issue import Claim, Issuer
from ._local import LocalNode
from ._onnx import MODES, OUTPUT_COMMITTED, SALT_SCHEME, InferenceResult, named_inputs
from ._opening import Opening, load_opening, opening_json, parse_opening, save_opening
from ._ray import RayProver
from ._storage import CONFIG_FILE, Storage
from ._zk import Prover

__all__ = [
    "CONFIG_FILE",
    "MODES",
    "OUTPUT_COMMITTED",
    "SALT_SCHEME",
    "ChatConfig",
    "ChatResult",
    "ChatStream",
    "Claim",
    "EmbeddingResult",
    "Home",
    "InferenceResult",
    "Issuer",
    "LocalNode",
    "Opening",
    "Prover",
    "RayProver",
    "Storage",
    "load_opening",
    "named_inputs",
    "opening_json",
    "parse_opening",
    "receipt_digest",
    "save_opening",
    "utc_now",
]
