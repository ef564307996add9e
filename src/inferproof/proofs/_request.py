"""The ``input`` check shared by LLM receipts (chat and embeddings): the canonical
request, from the bundle or a private request's opening, against the receipt."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from .._checks import Check, failed, not_checked
from ..errors import InputError
from ..receipts import Bundle, opens

__all__ = ["Opened", "canonical_request"]


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
