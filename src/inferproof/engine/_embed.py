"""Verifiable embeddings: the vectors of a GGUF model, with a signed, logged receipt.

The receipt is a chat receipt's sibling: its input is the digest of the canonical
request (task ``embedding``, the model digest, the input strings), its subject the
digest of the output (the vectors' exact float32 bytes and the token count), and
its runtime block records llama.cpp's version, the CPU features, every pinned
setting and the embedding mode (pooling, normalisation, one input per decode), so
a verifier can re-run the request and require identical bytes. A private request
commits to salted digests of both, with the opening for the caller only.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..hub import Hub, ModelRecord
from ..receipts import Bundle, commit_input
from ..runtime import (
    CHAT_SALT_BYTES,
    CHAT_SALT_SCHEME,
    EMBEDDING_TASK,
    EmbeddingOpening,
    EmbeddingOutput,
    EmbeddingRequest,
    LlamaEmbedder,
    commit_output,
    parse_embedding_request,
)
from ..runtime import openai_shapes as oai
from ._chat import REEXECUTION_PROOF
from ._chatmodels import ChatModels
from ._chatreceipt import check_nonce, receipt_digest
from ._issue import Claim, Issuer, utc_now
from ._models import ModelRef, model_block

__all__ = ["EmbeddingResult", "embed"]


@dataclass(frozen=True)
class EmbeddingResult:
    """Vectors in OpenAI's shape (``response``, the receipt in its ``inferproof``
    field), the bundle, and for a private request the opening (caller only)."""

    response: dict[str, Any]
    bundle: Bundle
    opening: EmbeddingOpening | None
    request: EmbeddingRequest
    output: EmbeddingOutput

    @property
    def receipt_digest(self) -> str:
        """``sha256`` of the envelope's RFC 8785 bytes: the log entry's digest."""
        return receipt_digest(self.bundle)


@dataclass(frozen=True)
class _Computed:
    """What the flow computed, before it is signed."""

    record: ModelRecord | None
    block: dict[str, Any]
    runtime: dict[str, Any]
    request: EmbeddingRequest
    output: EmbeddingOutput
    started: str
    finished: str


def embed(
    issuer: Issuer,
    models: ChatModels,
    model_ref: ModelRef,
    request: Mapping[str, Any],
    *,
    private: bool = False,
    nonce: str | None = None,
) -> EmbeddingResult:
    """Embed ``request`` (OpenAI's ``/v1/embeddings`` body; ``model`` may be left out)
    with the GGUF model ``model_ref``; sign and log the receipt. Bad requests raise
    :class:`InputError` before any work."""
    check_nonce(nonce)
    if not isinstance(request, Mapping):
        raise InputError("request must be a JSON object")
    label = model_ref if isinstance(model_ref, str) else str(model_ref)
    if request.get("model", label) != label:
        raise InputError(f"request names model {request.get('model')!r}, not {label!r}")
    parsed = parse_embedding_request({**request, "model": label})
    record, block, embedder = models.resolve_embedder(model_ref)
    bound = parsed.request.bind(str(block["digest"]))
    embedder.check(bound)  # refuse what does not fit before the clock starts
    started = utc_now()
    output = embedder.embed(bound)
    computed = _Computed(
        record, _block(block, embedder), embedder.runtime_info(), bound, output, started, utc_now()
    )
    bundle, opening = _sign(issuer, models.hub, computed, private=private, nonce=nonce)
    fields: dict[str, Any] = {"receipt_digest": receipt_digest(bundle), "bundle": bundle.to_json()}
    if opening is not None:
        fields["opening"] = opening.to_json()
    response = oai.embeddings(label, output, parsed.encoding_format, fields)
    return EmbeddingResult(response, bundle, opening, bound, output)


def _block(block: dict[str, Any], embedder: LlamaEmbedder) -> dict[str, Any]:
    return {
        **block,
        "architecture": embedder.signature["architecture"],
        "dimensions": embedder.dimensions,
    }


def _sign(
    issuer: Issuer, hub: Hub, c: _Computed, *, private: bool, nonce: str | None
) -> tuple[Bundle, EmbeddingOpening | None]:
    """State the receipt and have ``issuer`` sign, bundle and log it."""
    model, signature = model_block(hub, c.record, c.block, "gguf")
    salt = os.urandom(CHAT_SALT_BYTES) if private else None
    if salt is not None:
        commitment = commit_input(c.request.digest, salt)
        input_claim = {"commitment": commitment, "scheme": CHAT_SALT_SCHEME}
        subject = commit_output(c.output.digest, salt)
    else:
        input_claim, subject = {"digest": c.request.digest}, c.output.digest
    proof = {
        "type": REEXECUTION_PROOF,
        "engine": c.runtime["engine"],
        "settings": c.runtime["settings"],
        "embedding": c.runtime["embedding"],
    }
    claim = Claim(
        output_digest=subject,
        model=model,
        input_block=input_claim,
        runtime=c.runtime,
        nonce=nonce,
        started=c.started,
        finished=c.finished,
        parameters={
            "task": EMBEDDING_TASK,
            "mode": "vanilla",
            "count": len(c.request.inputs),
            "dimensions": int(c.output.vectors.shape[1]),
            "usage": {"prompt_tokens": c.output.prompt_tokens},
        },
        proofs=[proof],
    )
    bundle = issuer.issue(
        claim,
        outputs={} if salt else c.output.to_json(),
        inputs=None if salt else c.request.to_json(),
        model_signature=signature,
    )
    return bundle, (EmbeddingOpening(salt, c.request, c.output) if salt else None)
