"""What the checks of LLM receipts share (chat and embeddings): the ``input`` check
(the canonical request, from the bundle or a private request's opening, against the
receipt), the given model against the receipt, and the prompt a verifier renders."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from .._canonical import sha256_digest
from .._checks import Check, failed, not_checked
from ..errors import InputError
from ..receipts import Bundle, Receipt, opens
from ..runtime import gguf_file_digest

if TYPE_CHECKING:
    from ..runtime import ChatRequest, LlamaModel, Prompt

__all__ = ["Opened", "canonical_request", "model_mismatch", "render_prompt"]


def model_mismatch(receipt: Receipt, model: bytes | Path) -> str | None:
    """Why the given model is not the receipt's, or None when its digest matches."""
    digest = gguf_file_digest(model) if isinstance(model, Path) else sha256_digest(model)
    if digest != receipt.model_digest:
        return f"the given model is {digest}, the receipt names {receipt.model_digest}"
    return None


def render_prompt(
    llm: LlamaModel, request: ChatRequest, prompt_tokens: int, *, answer_room: bool = True
) -> Prompt | str:
    """The request's prompt as this verifier renders it, or why it cannot stand for the
    node's: the request lacks what the node filled in, or the prompt's length differs
    from the signed count. ``answer_room`` as in :meth:`LlamaModel.prepare`."""
    prepared, prompt = llm.prepare(request, enforce_cap=False, answer_room=answer_room)
    if prepared != request:
        return "the canonical request is incomplete (no max_tokens or template time)"
    if len(prompt.tokens) != prompt_tokens:
        return (
            f"the prompt renders to {len(prompt.tokens)} tokens here, the receipt says "
            f"{prompt_tokens} (chat template or tokenizer differ)"
        )
    return prompt


class _Request(Protocol):
    @property
    def digest(self) -> str: ...

    @property
    def model(self) -> str: ...


R = TypeVar("R", bound=_Request)


class Opened(Protocol[R]):  # type: ignore[misc]
    """An opening of a private request: its salt and the request it opens."""

    @property
    def salt(self) -> bytes: ...

    @property
    def request(self) -> R: ...


def canonical_request(
    bundle: Bundle,
    opening: Opened[R] | None,
    required: bool,
    parse: Callable[[Any], R],
) -> tuple[R, str] | Check:
    """The request the receipt commits to and where it came from, or the ``input``
    check that failed (or could not be made)."""
    name, r = "input", bundle.receipt
    try:
        if r.input_digest is not None:
            if bundle.inputs is None:
                why = "the bundle holds no request"
                return failed(name, why) if required else not_checked(name, why)
            request = parse(bundle.inputs)
            if request.digest != r.input_digest:
                return failed(
                    name,
                    f"the bundle's request hashes to {request.digest}, "
                    f"the receipt says {r.input_digest}",
                )
            source = "the bundle's canonical request matches the receipt's input digest"
        else:
            if opening is None:
                why = "private request: the receipt holds only a commitment; give the opening"
                return failed(name, why) if required else not_checked(name, why)
            request = opening.request
            if not opens(str(r.input_commitment), request.digest, opening.salt):
                return failed(name, "the opening's request does not open the commitment")
            source = "the opening's canonical request opens the receipt's salted commitment"
    except InputError as exc:
        return failed(name, str(exc))
    if request.model != r.model_digest:
        return failed(name, f"the request names model {request.model}, not the receipt's")
    return request, source
