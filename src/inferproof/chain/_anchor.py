"""The checkpoint anchor contract from Python (web3.py): deploy, register, anchor, read.

The contract (``contracts/CheckpointAnchor.sol``) keeps, per log origin, the latest
anchored ``(size, root)`` and accepts a new one only with an RFC 9162 consistency
proof from it, checked on chain: a forked or rolled-back log is refused by the chain
itself. A refusal is raised as :class:`~inferproof.errors.Error` naming the
contract's error (``InconsistentProof``, ``NotGrowing``, ``NotOperator``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.crypto import keccak

from ._contract import Contract

__all__ = ["Anchored", "CheckpointAnchor"]

NAME = "CheckpointAnchor"


@dataclass(frozen=True)
class Anchored:
    """The latest anchor of a log: its size, root and the block it landed in."""

    size: int
    root: bytes
    block: int


def origin_hash(origin: str) -> bytes:
    return bytes(keccak(origin.encode()))


class CheckpointAnchor(Contract):
    """One deployed anchor contract (module docs).

    Example::

        anchor = CheckpointAnchor.deploy(w3, owner)
        anchor.set_operator(log.origin, operator, sender=owner)
        anchor.anchor(log.origin, size, root, proof, sender=operator)
    """

    NAME = NAME

    def set_operator(self, origin: str, operator: str, *, sender: str) -> Any:
        return self.send(self.contract.functions.setOperator(origin, operator), sender)

    def anchor(
        self, origin: str, size: int, root: bytes, proof: Sequence[bytes], *, sender: str
    ) -> Any:
        """Anchor ``(size, root)`` of log ``origin`` with the consistency ``proof`` from
        the anchored size (empty for the first anchor); the transaction receipt."""
        fn = self.contract.functions.anchor(origin_hash(origin), size, root, list(proof))
        return self.send(fn, sender)

    def latest(self, origin: str) -> Anchored:
        size, root, block = self.contract.functions.latest(origin_hash(origin)).call()
        return Anchored(int(size), bytes(root), int(block))

    def consistent(
        self, first: int, second: int, first_root: bytes, second_root: bytes,
        proof: Sequence[bytes],
    ) -> bool:  # fmt: skip
        """The contract's own RFC 9162 consistency check, called (no transaction)."""
        fn = self.contract.functions.consistent(first, second, first_root, second_root,
                                                list(proof))  # fmt: skip
        return bool(fn.call())
