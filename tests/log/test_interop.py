"""Our proofs checked by another project's verifier: sigstore-python's Merkle inclusion checker."""

from __future__ import annotations

from types import SimpleNamespace

import pytest
from sigstore._internal.merkle import verify_merkle_inclusion
from sigstore.errors import VerificationError as SigstoreVerificationError

from inferproof.log import MemoryTree

LEAVES = [f"rekor-style body {i}".encode() for i in range(130)]
TREE = MemoryTree(LEAVES)


def _entry(index: int, size: int, proof: list[bytes], root: bytes, body: bytes) -> object:
    # verify_merkle_inclusion reads exactly these attributes of a TransparencyLogEntry.
    inclusion = SimpleNamespace(log_index=index, tree_size=size, hashes=proof, root_hash=root)
    return SimpleNamespace(
        _inner=SimpleNamespace(inclusion_proof=inclusion, canonicalized_body=body)
    )


def test_sigstore_accepts_every_inclusion_proof() -> None:
    for n in range(1, len(LEAVES) + 1):
        root = TREE.root(n)
        for i in range(n):
            verify_merkle_inclusion(_entry(i, n, TREE.inclusion_proof(i, n), root, LEAVES[i]))  # type: ignore[arg-type]


def test_sigstore_rejects_tampered_proofs() -> None:
    for n in (2, 7, 64, 130):
        root = TREE.root(n)
        for i in range(n):
            proof = TREE.inclusion_proof(i, n)
            bad = [bytes([proof[0][0] ^ 1]) + proof[0][1:], *proof[1:]]
            with pytest.raises(SigstoreVerificationError):
                verify_merkle_inclusion(_entry(i, n, bad, root, LEAVES[i]))  # type: ignore[arg-type]
            with pytest.raises(SigstoreVerificationError):
                verify_merkle_inclusion(_entry(i, n, proof, root, LEAVES[i] + b"x"))  # type: ignore[arg-type]
