"""The Python SDK for an inferproof node: every answer is verified before it is returned.

``Client`` (sync) and ``AsyncClient`` (asyncio) share one behaviour. With ``verify=True``
(the default) each bundle is checked by :class:`~inferproof.verify.Verifier` against the
client's trust root and policy, the receipt must name the model asked for, carry the
client's nonce and commit to the client's input, and its log checkpoint must be
consistent with every checkpoint this client saw before (consistency proofs are fetched
from the node when a newer one appears). A failed check raises
:class:`~inferproof.errors.VerificationError`: an unverified answer is never returned.

Trust: with ``trust=None`` the client pins the node's Ed25519 key and log key on first
use (``INFERPROOF_HOME/known_nodes/``, like SSH's known_hosts) and later receipts must
match the pin; publishers and witnesses come from ``INFERPROOF_HOME/trust/``. Pass an
explicit :class:`~inferproof.verify.TrustRoot` to trust nothing learned from the node.

Chat (``chat``, ``complete``, and their ``*_stream`` forms) is verified the same way,
and also: the receipt commits to the request sent (``input.requested``) and signs the
text shown (``output.digest``). A stream's receipt comes with its last chunk, so its
text is unverified until the iteration ends without raising (``verified_stream=True``
holds it back until then). :func:`verify_openai` checks the receipt riding on an
answer of the official ``openai`` client.

Workflows (``create_workflow``, ``subscribe_workflow``...) are verified the same way:
each run's signed entry, its definition and its link to the run before, checked here
before it is handed over; ``verify_workflow`` checks a whole history locally.

The node's URL and token default to ``INFERPROOF_NODE`` and ``INFERPROOF_TOKEN``.

Example::

    from inferproof.client import Client
    with Client("http://127.0.0.1:8080", token=token) as node:
        node.push("model.onnx", name="risk", version="1")
        answer = node.infer("risk:1", {"X": np.array([[52, 0.41, 34, 2]], np.float32)})
        print(answer.outputs, answer.report.verified)
        said = node.chat("tiny", "What is the capital of France?", temperature=0)
        print(said.text, said.receipt_digest)
"""

from __future__ import annotations

from ._async import AsyncClient
from ._chatflows import ChatAnswer
from ._chatstream import AsyncChatStream, ChatStream
from ._core import DEFAULT_POLICY, Inference, ZkSetupInfo
from ._openai import verify_openai
from ._sync import Client
from ._workflows import VerifiedRun

__all__ = [
    "DEFAULT_POLICY",
    "AsyncChatStream",
    "AsyncClient",
    "ChatAnswer",
    "ChatStream",
    "Client",
    "Inference",
    "VerifiedRun",
    "ZkSetupInfo",
    "verify_openai",
]
