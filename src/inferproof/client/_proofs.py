"""Consistency proofs as the node sends them: from ``GET /v1/log/consistency``, or
carried by an inference answer (``X-Inferproof-Log-Size``, docs/node.md)."""

from __future__ import annotations

import base64
from typing import Any

from ..errors import InputError

__all__ = ["LOG_SIZE_HEADER", "MAX_OFFERED_HASHES", "Offered", "hashes_of", "offered_proof"]

# The request header that names the tree size the client last saw (node/_routes.py).
LOG_SIZE_HEADER = "X-Inferproof-Log-Size"
# A consistency proof has at most about 2 * log2(size) hashes (RFC 9162, 2.1.4); 128
# covers any tree up to 2^64 entries.
MAX_OFFERED_HASHES = 128
# An offered proof: the (old, new) sizes it links and its hashes.
Offered = tuple[tuple[int, int], list[bytes]]


def offered_proof(obj: Any) -> Offered | None:
    """The consistency proof an answer carried, if well formed (else None: the client
    fetches one, so a malformed offer costs a request, never a check)."""
    if not isinstance(obj, dict):
        return None
    old, new = obj.get("old_size"), obj.get("new_size")
    if not (isinstance(old, int) and isinstance(new, int) and 0 < old < new):
        return None
    hashes = obj.get("hashes")
    if not isinstance(hashes, list) or len(hashes) > MAX_OFFERED_HASHES:
        return None
    try:
        return (old, new), hashes_of(obj)
    except InputError:
        return None


def hashes_of(obj: Any) -> list[bytes]:
    try:
        return [base64.b64decode(h, validate=True) for h in obj["hashes"]]
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError("the node sent a malformed consistency proof") from exc
