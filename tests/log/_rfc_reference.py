"""A second, independent RFC 9162 implementation written from the RFC's definitions.

It shares no code with inferproof.log: the tree hash is the recursive MTH of RFC 9162
section 2.1.1, and proofs are checked by rebuilding the root along the same recursion
as PATH (2.1.3.1) and SUBPROOF (2.1.4.1), instead of the iterative algorithms.
"""

from __future__ import annotations

import hashlib


def leaf_hash(data: bytes) -> bytes:
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    return hashlib.sha256(b"\x01" + left + right).digest()


def split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k * 2 < n:
        k *= 2
    return k


def mth(leaves: list[bytes]) -> bytes:
    """MTH(D[n]) over already-hashed leaves."""
    if not leaves:
        return hashlib.sha256(b"").digest()
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def root_from_path(m: int, n: int, leaf: bytes, path: list[bytes]) -> bytes | None:
    """Walk PATH(m, D[n]) backwards: the last hash of the path is the top sibling."""
    if n == 1:
        return leaf if not path else None
    if not path:
        return None
    k = split(n)
    sibling, rest = path[-1], path[:-1]
    if m < k:
        sub = root_from_path(m, k, leaf, rest)
        return None if sub is None else node_hash(sub, sibling)
    sub = root_from_path(m - k, n - k, leaf, rest)
    return None if sub is None else node_hash(sibling, sub)


def verify_inclusion(index: int, size: int, leaf: bytes, path: list[bytes], root: bytes) -> bool:
    if not 0 <= index < size:
        return False
    return root_from_path(index, size, leaf, list(path)) == root


def _subproof_roots(
    m: int, n: int, proof: list[bytes], complete: bool, old_root: bytes
) -> tuple[bytes, bytes] | None:
    """Return (old subtree hash, new subtree hash) of SUBPROOF(m, D[n], complete)."""
    if m == n:
        if complete:
            return (old_root, old_root) if not proof else None
        return (proof[0], proof[0]) if len(proof) == 1 else None
    if not proof:
        return None
    k = split(n)
    top, rest = proof[-1], proof[:-1]
    if m <= k:
        sub = _subproof_roots(m, k, rest, complete, old_root)
        if sub is None:
            return None
        # The old tree lies entirely in the left k leaves; the new adds MTH(D[k:n]).
        return sub[0], node_hash(sub[1], top)
    sub = _subproof_roots(m - k, n - k, rest, False, old_root)
    if sub is None:
        return None
    return node_hash(top, sub[0]), node_hash(top, sub[1])


def verify_consistency(
    m: int, n: int, old_root: bytes, new_root: bytes, proof: list[bytes]
) -> bool:
    if not 0 <= m <= n:
        return False
    if m == 0 or m == n:
        return not proof and (m == 0 or old_root == new_root)
    roots = _subproof_roots(m, n, list(proof), True, old_root)
    return roots is not None and roots == (old_root, new_root)
