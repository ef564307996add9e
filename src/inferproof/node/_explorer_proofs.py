"""The explorer's consistency page as plain data: an RFC 9162 proof between two tree
sizes of the node's log, both roots, and the library's verdict on them."""

from __future__ import annotations

import base64
from dataclasses import dataclass

from ..errors import Error
from ..log import Log, verify_consistency

__all__ = ["Consistency", "consistency_view"]


@dataclass(frozen=True)
class Consistency:
    """A consistency proof as the page shows it (hashes and roots in base64)."""

    old: int
    new: int
    hashes: list[str]
    old_root: str
    new_root: str
    old_signed: bool  # the root is the signed checkpoint's of that size, not recomputed
    new_signed: bool
    ok: bool
    detail: str


def consistency_view(log: Log, old: int, new: int) -> Consistency:
    """The consistency proof (RFC 9162 section 2.1.4.1) from the tree of ``old`` entries
    to the tree of ``new``, built as ``GET /v1/log/consistency`` builds it, both roots,
    and whether the library's verify_consistency (section 2.1.4.2) accepts them: the
    page's verdict is the node's own check, not a claim read from storage."""
    proof = log.consistency_proof(old, new)
    old_root, old_signed = _root_at(log, old)
    new_root, new_signed = _root_at(log, new)
    try:
        verify_consistency(old, new, old_root, new_root, proof)
        ok, detail = True, ""
    except Error as exc:
        ok, detail = False, str(exc)
    return Consistency(old, new, [_b64(h) for h in proof], _b64(old_root), _b64(new_root),
                       old_signed, new_signed, ok, detail)  # fmt: skip


def _root_at(log: Log, size: int) -> tuple[bytes, bool]:
    """The root the log signed at ``size`` when it issued a checkpoint there (the root a
    client holds, so a rewritten tree would fail the check), else the root recomputed
    from the log's tiles."""
    if log.store.checkpoint(size) is not None:
        return log.checkpoint(size).root_hash, True
    return log.root(size), False


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
