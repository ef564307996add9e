"""RFC 6962 / RFC 9162 Merkle tree hashing, proof generation and proof verification.

Hashing follows RFC 6962 section 2.1 (and RFC 9162 section 2.1.1): a leaf hash is
``SHA-256(0x00 || leaf)`` and an interior node is ``SHA-256(0x01 || left || right)``;
the hash of the empty tree is ``SHA-256("")``.

Proof generation follows the recursive definitions of RFC 9162 section 2.1.3.1 (PATH)
and 2.1.4.1 (PROOF / SUBPROOF), evaluated against a :class:`NodeReader` that returns the
hash of any *complete, aligned* subtree (``2**level`` leaves starting at
``index * 2**level``). Every subtree those definitions name is either such a node or the
right edge of the tree, which :func:`subtree_hash` folds from complete nodes.

Verification follows the iterative algorithms of RFC 9162 section 2.1.3.2 (inclusion)
and 2.1.4.2 (consistency) step by step.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from typing import Protocol

from ..errors import VerificationError

HASH_SIZE = 32
# RFC 6962 section 2.1: domain separation prefixes for leaves and interior nodes.
LEAF_PREFIX = b"\x00"
NODE_PREFIX = b"\x01"
# MTH({}) = SHA-256() (RFC 6962 section 2.1).
EMPTY_ROOT = hashlib.sha256(b"").digest()
# Tree sizes are uint64 in every format we speak (RFC 9162 section 4.10, tlog-checkpoint).
MAX_TREE_SIZE = (1 << 64) - 1
# A proof in a tree of at most 2**64 leaves has at most 64 hashes (tlog-witness allows 63
# consistency lines because the first hash of a power-of-two old tree is omitted).
MAX_PROOF_HASHES = 64


def hash_leaf(data: bytes) -> bytes:
    """Return the RFC 6962 leaf hash ``SHA-256(0x00 || data)``."""
    return hashlib.sha256(LEAF_PREFIX + data).digest()


def hash_children(left: bytes, right: bytes) -> bytes:
    """Return the RFC 6962 interior node hash ``SHA-256(0x01 || left || right)``."""
    return hashlib.sha256(NODE_PREFIX + left + right).digest()


class NodeReader(Protocol):
    """Anything that returns the hash of a complete aligned subtree.

    ``node(level, index)`` is the Merkle Tree Hash of leaves
    ``[index * 2**level, (index + 1) * 2**level)``; level 0 nodes are leaf hashes.
    """

    def node(self, level: int, index: int) -> bytes: ...


def _largest_power_of_two_below(n: int) -> int:
    """The k of RFC 9162 section 2.1.1: largest power of two strictly smaller than n (n > 1)."""
    return 1 << ((n - 1).bit_length() - 1)


def subtree_hash(nodes: NodeReader, start: int, end: int) -> bytes:
    """Merkle Tree Hash of leaves ``[start, end)`` (RFC 9162 section 2.1.1).

    ``start`` must be aligned as in every subtree of the RFC's recursion: a multiple of
    the largest power of two not exceeding ``end - start`` rounded up.
    """
    n = end - start
    if n <= 0:
        if n == 0 and start == 0:
            return EMPTY_ROOT
        raise ValueError(f"empty or negative range [{start}, {end})")
    level = (n - 1).bit_length()
    if n == 1 << level and start % n == 0:
        return nodes.node(level, start >> level)
    k = _largest_power_of_two_below(n)
    return hash_children(subtree_hash(nodes, start, start + k), subtree_hash(nodes, start + k, end))


def root_hash(nodes: NodeReader, size: int) -> bytes:
    """Root hash of the tree of the first ``size`` leaves."""
    return subtree_hash(nodes, 0, size) if size else EMPTY_ROOT


def inclusion_proof(nodes: NodeReader, index: int, size: int) -> list[bytes]:
    """Audit path for leaf ``index`` in the tree of ``size`` leaves (RFC 9162 2.1.3.1).

    The list goes from the leaf's sibling up to the root's child.
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is not inside a tree of size {size}")
    path: list[bytes] = []
    start, end, m = 0, size, index
    # PATH(m, D[n]) recursion unrolled top-down; hashes are collected root-first.
    while end - start > 1:
        k = _largest_power_of_two_below(end - start)
        if m < k:
            path.append(subtree_hash(nodes, start + k, end))
            end = start + k
        else:
            path.append(subtree_hash(nodes, start, start + k))
            start, m = start + k, m - k
    path.reverse()
    return path


def consistency_proof(nodes: NodeReader, old_size: int, new_size: int) -> list[bytes]:
    """Consistency proof from ``old_size`` to ``new_size`` (RFC 9162 2.1.4.1).

    Empty when ``old_size`` is 0 or equal to ``new_size`` (nothing to prove).
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    proof: list[bytes] = []
    start, end, m, complete = 0, new_size, old_size, True
    # SUBPROOF(m, D[n], b) unrolled top-down; hashes are collected root-first.
    while m != end - start:
        k = _largest_power_of_two_below(end - start)
        if m <= k:
            proof.append(subtree_hash(nodes, start + k, end))
            end = start + k
        else:
            proof.append(subtree_hash(nodes, start, start + k))
            start, m, complete = start + k, m - k, False
    if not complete:
        proof.append(subtree_hash(nodes, start, end))
    proof.reverse()
    return proof


def _check_hash(value: bytes, what: str, check: str) -> None:
    if len(value) != HASH_SIZE:
        raise VerificationError(check, f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check an inclusion proof (RFC 9162 section 2.1.3.2); raise VerificationError.

    Example::

        verify_inclusion(hash_leaf(b"entry"), 3, 10, proof, checkpoint.root_hash)
    """
    check = "log.inclusion"
    _check_hash(leaf_hash, "leaf hash", check)
    _check_hash(root, "root hash", check)
    if not 0 <= index < size or size > MAX_TREE_SIZE:
        raise VerificationError(check, f"leaf index {index} is not inside tree size {size}")
    if len(proof) > MAX_PROOF_HASHES:
        raise VerificationError(check, f"proof has {len(proof)} hashes")
    fn, sn, r = index, size - 1, leaf_hash
    for p in proof:
        _check_hash(p, "proof hash", check)
        if sn == 0:
            raise VerificationError(check, "proof is longer than the path to the root")
        if fn & 1 or fn == sn:
            r = hash_children(p, r)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            r = hash_children(r, p)
        fn, sn = fn >> 1, sn >> 1
    if sn != 0:
        raise VerificationError(check, "proof is shorter than the path to the root")
    if r != root:
        raise VerificationError(check, "recomputed root does not match the checkpoint root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check a consistency proof (RFC 9162 section 2.1.4.2); raise VerificationError.

    Sizes 0 and equal sizes are handled first: any tree extends the empty tree (empty
    proof), and a tree is consistent with itself only if the roots are equal.
    """
    check = "log.consistency"
    _check_hash(old_root, "old root hash", check)
    _check_hash(new_root, "new root hash", check)
    if not 0 <= old_size <= new_size <= MAX_TREE_SIZE:
        raise VerificationError(check, f"old size {old_size} is larger than new size {new_size}")
    if len(proof) > MAX_PROOF_HASHES:
        raise VerificationError(check, f"proof has {len(proof)} hashes")
    for p in proof:
        _check_hash(p, "proof hash", check)
    if old_size == 0 or old_size == new_size:
        if proof:
            raise VerificationError(check, "proof must be empty for these sizes")
        if old_size == new_size and old_root != new_root:
            raise VerificationError(check, f"two different roots for tree size {old_size}")
        return
    _verify_consistency_path(old_size, new_size, old_root, new_root, list(proof))


def _verify_consistency_path(
    first: int, second: int, first_hash: bytes, second_hash: bytes, path: list[bytes]
) -> None:
    check = "log.consistency"
    if not path:  # step 1
        raise VerificationError(check, "empty proof")
    if first & (first - 1) == 0:  # step 2: first is an exact power of 2
        path.insert(0, first_hash)
    fn, sn = first - 1, second - 1  # step 3
    while fn & 1:  # step 4
        fn, sn = fn >> 1, sn >> 1
    fr = sr = path[0]  # step 5
    for c in path[1:]:  # step 6
        if sn == 0:
            raise VerificationError(check, "proof is longer than expected")
        if fn & 1 or fn == sn:
            fr = hash_children(c, fr)
            sr = hash_children(c, sr)
            while fn and not fn & 1:
                fn, sn = fn >> 1, sn >> 1
        else:
            sr = hash_children(sr, c)
        fn, sn = fn >> 1, sn >> 1
    # step 7
    if sn != 0:
        raise VerificationError(check, "proof is shorter than expected")
    if fr != first_hash:
        raise VerificationError(check, "proof does not lead to the old root")
    if sr != second_hash:
        raise VerificationError(check, "proof does not lead to the new root")


class MemoryTree:
    """A Merkle tree held in memory, every level kept: for tests, clients and small logs.

    Example::

        tree = MemoryTree([b"a", b"b", b"c"])
        proof = tree.inclusion_proof(1)
        verify_inclusion(hash_leaf(b"b"), 1, tree.size, proof, tree.root())
    """

    def __init__(self, entries: Sequence[bytes] = ()) -> None:
        self._levels: list[list[bytes]] = [[]]
        for entry in entries:
            self.append_hash(hash_leaf(entry))

    @property
    def size(self) -> int:
        return len(self._levels[0])

    def append_hash(self, leaf_hash: bytes) -> None:
        """Append a leaf by its hash, completing every parent it closes."""
        level, h = 0, leaf_hash
        while True:
            if level == len(self._levels):
                self._levels.append([])
            row = self._levels[level]
            row.append(h)
            if len(row) % 2:
                return
            h, level = hash_children(row[-2], row[-1]), level + 1

    def node(self, level: int, index: int) -> bytes:
        return self._levels[level][index]

    def root(self, size: int | None = None) -> bytes:
        return root_hash(self, self.size if size is None else size)

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        return inclusion_proof(self, index, self.size if size is None else size)

    def consistency_proof(self, old_size: int, new_size: int | None = None) -> list[bytes]:
        return consistency_proof(self, old_size, self.size if new_size is None else new_size)
