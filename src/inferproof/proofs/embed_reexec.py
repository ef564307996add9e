"""Checks of embedding receipts: output and request digests, re-execution.

An embedding receipt (``parameters.task`` is ``embedding``) commits to a canonical
request (the model digest and the input strings) and to the vectors' exact float32
bytes, so three of the verifier's checks take an embedding form here, as they take
a chat form in :mod:`.llm_reexec`:

- ``output.digest``: the bundle's vectors (or the opening's, for a private request)
  hash to (or open) the signed subject, and agree with the signed count, dimensions
  and token count;
- ``input``: the canonical request hashes to (or opens) the receipt's input and
  names the receipt's model;
- ``output.reexecution``: the GGUF model, loaded in embedding mode with the
  receipt's recorded settings, pooling and normalisation, re-run on every input
  gives identical bytes. On a mismatch the first differing vector and component
  are named, with both sides' llama.cpp build and CPU features when they differ.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from .._checks import Check, failed, not_checked, passed
from ..errors import InputError
from ..receipts import Bundle, Receipt
from ..runtime import (
    EMBEDDING_TASK,
    EmbeddingMode,
    EmbeddingOpening,
    EmbeddingOutput,
    EmbeddingRequest,
    LlamaEmbedder,
    LlamaSettings,
)
from ._request import canonical_request, model_mismatch
from .llm_reexec import failed_material, where_it_ran

__all__ = ["embedding_checks", "is_embedding_receipt"]

CHECK = "output.reexecution"


def is_embedding_receipt(receipt: Receipt) -> bool:
    """True for receipts made by the embedding flow (they need :func:`embedding_checks`)."""
    return receipt.parameters.get("task") == EMBEDDING_TASK


def _signed_shape_check(receipt: Receipt, output: EmbeddingOutput) -> str | None:
    p = receipt.parameters
    rows, dim = output.vectors.shape
    if p.get("count") != rows or p.get("dimensions") != dim:
        return f"the vectors are {rows} x {dim}, the receipt says {p.get('count')} x " + str(
            p.get("dimensions")
        )
    if p.get("usage") != {"prompt_tokens": output.prompt_tokens}:
        return "the vectors' token count differs from the signed"
    return None


def output_check(
    bundle: Bundle, opening: EmbeddingOpening | None
) -> tuple[EmbeddingOutput | None, Check]:
    """``output.digest`` for an embedding receipt."""
    name, r = "output.digest", bundle.receipt
    try:
        if r.input_commitment is None:
            output = EmbeddingOutput.from_json(bundle.outputs)
            if output.digest != r.output_digest:
                return None, failed(
                    name,
                    f"the vectors hash to {output.digest}, the signed receipt says "
                    f"{r.output_digest}",
                )
            source = "the vectors (float32 bytes, token count) match the signed subject"
        else:
            if opening is None:
                why = "private request: the vectors are a salted commitment; give the opening"
                return None, not_checked(name, why)
            output = opening.output
            if not opening.opens_output(r.output_digest):
                return None, failed(name, "the opening's vectors do not open the signed subject")
            source = "the opening's vectors open the signed subject's salted commitment"
    except InputError as exc:
        return None, failed(name, str(exc))
    wrong = _signed_shape_check(r, output)
    if wrong is not None:
        return None, failed(name, wrong)
    rows, dim = output.vectors.shape
    return output, passed(name, f"{source} ({rows} x {dim})")


def input_check(
    bundle: Bundle, opening: EmbeddingOpening | None, required: bool
) -> tuple[EmbeddingRequest | None, Check]:
    """``input`` for an embedding receipt: the canonical request against the receipt."""
    name, r = "input", bundle.receipt
    found = canonical_request(bundle, opening, required, EmbeddingRequest.from_json)
    if isinstance(found, Check):
        return None, found
    request, source = found
    if len(request.inputs) != r.parameters.get("count"):
        return None, failed(name, "the request's number of inputs is not the receipt's")
    return request, passed(name, f"{source} ({len(request.inputs)} inputs)")


def _absent(required: bool, why: str) -> Check:
    if required:
        return failed(CHECK, f"required by the policy, but {why}")
    return not_checked(CHECK, why)


def reexecution_check(
    receipt: Receipt,
    request: EmbeddingRequest | None,
    output: EmbeddingOutput | None,
    model: bytes | Path | None,
    required: bool,
) -> Check:
    """Re-run every input with the recorded settings; require identical bytes."""
    if model is None:
        return _absent(required, "model file not available (give --model or push it to the hub)")
    if request is None or output is None:
        return _absent(required, "request or vectors not available (private: give the opening)")
    if (wrong := model_mismatch(receipt, model)) is not None:
        return failed(CHECK, wrong)
    try:
        settings = LlamaSettings.from_json(receipt.runtime.get("settings"))
        mode = EmbeddingMode.from_json(receipt.runtime.get("embedding"))
        embedder = LlamaEmbedder(model, settings, mode=mode, max_ctx=settings.n_ctx)
    except InputError as exc:
        return failed(CHECK, f"cannot load the model with the recorded settings: {exc}")
    try:
        again = embedder.embed(request)
        here = embedder.runtime_info()
    except InputError as exc:
        return failed(CHECK, f"cannot re-execute the request: {exc}")
    finally:
        embedder.close()
    return _compare(receipt, output, again, here)


def _compare(
    receipt: Receipt, claimed: EmbeddingOutput, again: EmbeddingOutput, here: dict[str, object]
) -> Check:
    rows, dim = again.vectors.shape
    if claimed.vectors.shape != again.vectors.shape:
        theirs = "{} x {}".format(*claimed.vectors.shape)
        return failed(
            CHECK,
            f"re-executed: {rows} x {dim} vectors, the receipt's are {theirs}"
            + where_it_ran(receipt, here),
        )
    if claimed.prompt_tokens != again.prompt_tokens:
        return failed(
            CHECK,
            f"re-executed: {again.prompt_tokens} input tokens, the receipt says "
            f"{claimed.prompt_tokens} (tokenizer differs)",
        )
    # Compared as bytes: -0.0 and 0.0 differ, and so does every NaN payload.
    a = np.ascontiguousarray(claimed.vectors, "<f4").view("<u4")
    b = np.ascontiguousarray(again.vectors, "<f4").view("<u4")
    differs = np.argwhere(a != b)
    if len(differs) == 0:
        return passed(CHECK, f"re-executed: identical bytes ({rows} vectors x {dim})")
    i, j = (int(x) for x in differs[0])
    n_rows = len(np.unique(differs[:, 0]))
    return failed(
        CHECK,
        f"re-executed: vector {i} differs first at component {j} (expected "
        f"{float(claimed.vectors[i, j])!r}, got {float(again.vectors[i, j])!r}); "
        f"{n_rows} of {rows} vectors differ" + where_it_ran(receipt, here),
    )


def embedding_checks(
    bundle: Bundle,
    *,
    model: bytes | Path | None = None,
    opening: EmbeddingOpening | None = None,
    require_input: bool = False,
    require_reexecution: bool = False,
) -> list[Check]:
    """The embedding forms of ``output.digest``, ``input`` and ``output.reexecution``,
    in that order.

    Example::

        checks = embedding_checks(bundle, model=Path("model.gguf"))
        assert checks[-1].detail.startswith("re-executed: identical bytes")
    """
    r = bundle.receipt
    output, out_check = output_check(bundle, opening)
    request, in_check = input_check(bundle, opening, require_input)
    broken = failed_material(out_check, in_check)
    if broken is not None:
        return [out_check, in_check, _absent(require_reexecution, broken)]
    last = reexecution_check(r, request, output, model, require_reexecution)
    return [out_check, in_check, last]
