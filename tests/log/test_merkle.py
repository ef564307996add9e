"""RFC 9162 proofs: every tree size 1..130, every leaf, every (m, n) pair, and corruption."""

from __future__ import annotations

import hashlib

import pytest

from inferproof.errors import VerificationError
from inferproof.log import (
    EMPTY_ROOT,
    MemoryTree,
    hash_children,
    hash_leaf,
    verify_consistency,
    verify_inclusion,
)

from . import _rfc_reference as ref

MAX_N = 130
LEAVES = [f"leaf {i}".encode() for i in range(MAX_N)]
HASHED = [ref.leaf_hash(x) for x in LEAVES]
TREE = MemoryTree(LEAVES)
ROOTS = {n: ref.mth(HASHED[:n]) for n in range(MAX_N + 1)}


def _flip(value: bytes, bit: int) -> bytes:
    out = bytearray(value)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def test_hashing_is_rfc6962() -> None:
    # Values computed here from the RFC's definitions, not by the code under test.
    assert hash_leaf(b"") == hashlib.sha256(b"\x00").digest()
    assert (
        hash_children(b"a" * 32, b"b" * 32)
        == hashlib.sha256(b"\x01" + b"a" * 32 + b"b" * 32).digest()
    )
    assert EMPTY_ROOT.hex() == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    assert TREE.root(0) == EMPTY_ROOT


def test_roots_match_the_recursive_definition() -> None:
    for n in range(1, MAX_N + 1):
        assert TREE.root(n) == ROOTS[n], n


def test_every_inclusion_proof_verifies_both_ways() -> None:
    for n in range(1, MAX_N + 1):
        for i in range(n):
            proof = TREE.inclusion_proof(i, n)
            verify_inclusion(HASHED[i], i, n, proof, ROOTS[n])
            assert ref.verify_inclusion(i, n, HASHED[i], proof, ROOTS[n]), (i, n)


def test_every_consistency_proof_verifies_both_ways() -> None:
    for n in range(1, MAX_N + 1):
        for m in range(0, n + 1):
            proof = TREE.consistency_proof(m, n)
            verify_consistency(m, n, ROOTS[m], ROOTS[n], proof)
            assert ref.verify_consistency(m, n, ROOTS[m], ROOTS[n], proof), (m, n)


def _rejects_inclusion(leaf: bytes, i: int, n: int, proof: list[bytes], root: bytes) -> None:
    with pytest.raises(VerificationError) as info:
        verify_inclusion(leaf, i, n, proof, root)
    assert info.value.check == "log.inclusion"


def test_inclusion_corruption_is_rejected() -> None:
    """Flip a bit in each path hash, the root and the leaf, for every proof; change the index."""
    for n in range(1, MAX_N + 1):
        for i in range(n):
            proof = TREE.inclusion_proof(i, n)
            bit = (i * 31 + n) % 256
            for k in range(len(proof)):
                bad = [*proof[:k], _flip(proof[k], bit), *proof[k + 1 :]]
                _rejects_inclusion(HASHED[i], i, n, bad, ROOTS[n])
            _rejects_inclusion(HASHED[i], i, n, proof, _flip(ROOTS[n], bit))
            _rejects_inclusion(_flip(HASHED[i], bit), i, n, proof, ROOTS[n])
            _rejects_inclusion(
                HASHED[i], i, n, [*proof, proof[0] if proof else HASHED[i]], ROOTS[n]
            )
            if proof:
                _rejects_inclusion(HASHED[i], i, n, proof[:-1], ROOTS[n])
            for b in range(8):
                _rejects_inclusion(HASHED[i], i ^ (1 << b), n, proof, ROOTS[n])


def test_inclusion_size_changes_match_the_reference() -> None:
    # A path alone does not bind the tree size when two sizes give the same path shape
    # (the signed checkpoint does); we must accept exactly what the RFC accepts.
    for n in range(1, MAX_N + 1):
        for i in range(n):
            proof = TREE.inclusion_proof(i, n)
            for b in range(8):
                size = n ^ (1 << b)
                expected = ref.verify_inclusion(i, size, HASHED[i], proof, ROOTS[n])
                try:
                    verify_inclusion(HASHED[i], i, size, proof, ROOTS[n])
                    accepted = True
                except VerificationError:
                    accepted = False
                assert accepted == expected, (i, n, size)


def test_every_bit_of_some_proofs_is_covered() -> None:
    for i, n in [(0, 1), (5, 7), (64, 129), (129, 130)]:
        proof = TREE.inclusion_proof(i, n)
        for k in range(len(proof)):
            for bit in range(256):
                bad = [*proof[:k], _flip(proof[k], bit), *proof[k + 1 :]]
                _rejects_inclusion(HASHED[i], i, n, bad, ROOTS[n])
        for bit in range(256):
            _rejects_inclusion(HASHED[i], i, n, proof, _flip(ROOTS[n], bit))


def _rejects_consistency(m: int, n: int, old: bytes, new: bytes, proof: list[bytes]) -> None:
    with pytest.raises(VerificationError) as info:
        verify_consistency(m, n, old, new, proof)
    assert info.value.check == "log.consistency"


def test_consistency_corruption_is_rejected() -> None:
    for n in range(1, MAX_N + 1):
        for m in range(1, n + 1):
            proof = TREE.consistency_proof(m, n)
            bit = (m * 17 + n) % 256
            for k in range(len(proof)):
                bad = [*proof[:k], _flip(proof[k], bit), *proof[k + 1 :]]
                _rejects_consistency(m, n, ROOTS[m], ROOTS[n], bad)
            _rejects_consistency(m, n, _flip(ROOTS[m], bit), ROOTS[n], proof)
            _rejects_consistency(m, n, ROOTS[m], _flip(ROOTS[n], bit), proof)
            _rejects_consistency(m, n, ROOTS[m], ROOTS[n], [*proof, ROOTS[m]])
            if proof:
                _rejects_consistency(m, n, ROOTS[m], ROOTS[n], proof[:-1])


def test_consistency_size_changes_match_the_reference() -> None:
    for n in range(2, MAX_N + 1):
        for m in range(1, n):
            proof = TREE.consistency_proof(m, n)
            for b in range(8):
                for mm, nn in ((m ^ (1 << b), n), (m, n ^ (1 << b))):
                    expected = ref.verify_consistency(mm, nn, ROOTS[m], ROOTS[n], proof)
                    try:
                        verify_consistency(mm, nn, ROOTS[m], ROOTS[n], proof)
                        accepted = True
                    except VerificationError:
                        accepted = False
                    assert accepted == expected, (m, n, mm, nn)


def test_degenerate_consistency_cases() -> None:
    verify_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [])
    verify_consistency(5, 5, ROOTS[5], ROOTS[5], [])
    _rejects_consistency(0, 5, EMPTY_ROOT, ROOTS[5], [ROOTS[5]])
    _rejects_consistency(5, 5, ROOTS[5], ROOTS[6], [])
    _rejects_consistency(6, 5, ROOTS[6], ROOTS[5], [])
    _rejects_consistency(3, 5, ROOTS[3], ROOTS[5], [])
    _rejects_consistency(3, 5, ROOTS[3][:31], ROOTS[5], TREE.consistency_proof(3, 5))


def test_malformed_inclusion_inputs() -> None:
    proof = TREE.inclusion_proof(3, 10)
    _rejects_inclusion(HASHED[3], 10, 10, proof, ROOTS[10])
    _rejects_inclusion(HASHED[3], -1, 10, proof, ROOTS[10])
    _rejects_inclusion(HASHED[3], 3, 10, [*proof[:-1], proof[-1][:31]], ROOTS[10])
    _rejects_inclusion(HASHED[3][:16], 3, 10, proof, ROOTS[10])
    _rejects_inclusion(HASHED[3], 3, 10, proof * 30, ROOTS[10])
