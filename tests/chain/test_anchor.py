"""The checkpoint anchor contract on a real EVM (anvil): its RFC 9162 consistency check
agrees with ours for every pair of tree sizes up to 40, rejects every one-bit corruption,
and the contract refuses a forked, rolled-back or unauthorised anchor."""

from __future__ import annotations

import json
from typing import Any

import pytest

from inferproof.chain import CheckpointAnchor, artifact, compile_contract
from inferproof.errors import Error
from inferproof.log import MemoryTree, consistency_proof

SIZES = 40


@pytest.fixture(scope="module")
def anchor(chain: Any) -> CheckpointAnchor:
    owner = chain.accounts[0]
    a = CheckpointAnchor.deploy(chain.web3, owner)
    a.set_operator("log.example/test", chain.accounts[1], sender=owner)
    return a


def _tree(n: int, tag: bytes = b"e") -> MemoryTree:
    return MemoryTree([tag + str(i).encode() for i in range(n)])


def test_the_build_is_reproducible() -> None:
    built = compile_contract("CheckpointAnchor")
    assert built == artifact("CheckpointAnchor"), "contracts/CheckpointAnchor.json is stale"
    assert json.dumps(built["abi"])  # the committed ABI is plain JSON


def test_consistency_agrees_with_ours_for_every_pair(anchor: CheckpointAnchor) -> None:
    tree = _tree(SIZES)
    for n in range(2, SIZES + 1):
        for m in range(1, n):
            proof = consistency_proof(tree, m, n)
            assert anchor.consistent(m, n, tree.root(m), tree.root(n), proof), (m, n)
            # Another tree of size n that does not extend the first m entries.
            other = _tree(n, b"x")
            assert not anchor.consistent(m, n, tree.root(m), other.root(n), proof), (m, n)


@pytest.mark.parametrize(("m", "n"), [(5, 13), (8, 21), (3, 4)])
def test_every_one_bit_corruption_is_rejected(anchor: CheckpointAnchor, m: int, n: int) -> None:
    tree = _tree(n)
    proof = consistency_proof(tree, m, n)
    r1, r2 = tree.root(m), tree.root(n)
    for k in range(len(proof)):
        for bit in range(256):
            bad = list(proof)
            h = bytearray(bad[k])
            h[bit // 8] ^= 1 << (bit % 8)
            bad[k] = bytes(h)
            assert not anchor.consistent(m, n, r1, r2, bad), (k, bit)
    for bit in range(0, 256, 7):
        flipped = bytearray(r2)
        flipped[bit // 8] ^= 1 << (bit % 8)
        assert not anchor.consistent(m, n, r1, bytes(flipped), proof)
    assert not anchor.consistent(m, n, r1, r2, proof[:-1])
    assert not anchor.consistent(m, n, r1, r2, [*proof, proof[0]])
    assert not anchor.consistent(m, m, r1, r1, [])
    assert not anchor.consistent(0, n, r1, r2, proof)


def test_anchoring_refuses_a_fork_a_rollback_and_strangers(chain: Any) -> None:
    owner, operator, stranger = chain.accounts[:3]
    a = CheckpointAnchor.deploy(chain.web3, owner)
    origin = "log.example/fork"
    a.set_operator(origin, operator, sender=owner)
    tree = _tree(30)
    a.anchor(origin, 10, tree.root(10), [], sender=operator)
    a.anchor(origin, 20, tree.root(20), consistency_proof(tree, 10, 20), sender=operator)
    assert (a.latest(origin).size, a.latest(origin).root) == (20, tree.root(20))
    fork = _tree(25, b"f")
    with pytest.raises(Error, match="InconsistentProof"):
        a.anchor(origin, 25, fork.root(25), consistency_proof(tree, 20, 25), sender=operator)
    with pytest.raises(Error, match="NotGrowing"):
        a.anchor(origin, 15, tree.root(15), [], sender=operator)
    with pytest.raises(Error, match="NotOperator"):
        a.anchor(origin, 30, tree.root(30), consistency_proof(tree, 20, 30), sender=stranger)
    with pytest.raises(Error, match="NotOwner"):
        a.set_operator(origin, stranger, sender=stranger)
    assert a.latest(origin).size == 20  # nothing refused changed the anchor
    a.anchor(origin, 30, tree.root(30), consistency_proof(tree, 20, 30), sender=operator)
    assert a.latest(origin).size == 30
