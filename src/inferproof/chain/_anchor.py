"""The checkpoint anchor contract from Python (web3.py): deploy, register, anchor, read.

The contract (``contracts/CheckpointAnchor.sol``) keeps, per log origin, the latest
anchored ``(size, root)`` and accepts a new one only with an RFC 9162 consistency
proof from it, checked on chain: a forked or rolled-back log is refused by the chain
itself. A refusal is raised as :class:`~inferproof.errors.Error` naming the
contract's error (``InconsistentProof``, ``NotGrowing``, ``NotOperator``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from eth_utils.crypto import keccak

from ..errors import Error
from ._tools import artifact

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


def _selectors(abi: Sequence[dict[str, Any]]) -> dict[str, str]:
    out = {}
    for item in abi:
        if item.get("type") == "error":
            sig = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
            out["0x" + keccak(sig.encode())[:4].hex()] = item["name"]
    return out


@contextlib.contextmanager
def _refusals() -> Iterator[None]:
    """The RPC node refusing a transaction (funds, nonce, gas) as one of our errors."""
    from web3.exceptions import Web3RPCError

    try:
        yield
    except Web3RPCError as exc:
        error = (exc.rpc_response or {}).get("error")
        message = error.get("message") if isinstance(error, dict) else None
        raise Error(f"the chain refused the transaction: {message or exc}") from None


class CheckpointAnchor:
    """One deployed anchor contract (module docs).

    Example::

        anchor = CheckpointAnchor.deploy(w3, owner)
        anchor.set_operator(log.origin, operator, sender=owner)
        anchor.anchor(log.origin, size, root, proof, sender=operator)
    """

    def __init__(self, web3: Any, address: str) -> None:
        self.web3 = web3
        self.address = address
        self._abi = artifact(NAME)["abi"]
        self.contract = web3.eth.contract(address=address, abi=self._abi)
        self._errors = _selectors(self._abi)

    @classmethod
    def deploy(cls, web3: Any, sender: str) -> CheckpointAnchor:
        built = artifact(NAME)
        factory = web3.eth.contract(abi=built["abi"], bytecode=built["bytecode"])
        with _refusals():
            receipt = cls._wait(web3, factory.constructor().transact({"from": sender}))
        return cls(web3, receipt["contractAddress"])

    @staticmethod
    def _wait(web3: Any, tx: Any) -> Any:
        receipt = web3.eth.wait_for_transaction_receipt(tx, timeout=60)
        if receipt["status"] != 1:
            raise Error(f"transaction {tx.hex()} reverted")
        return receipt

    def _send(self, fn: Any, sender: str) -> Any:
        from web3.exceptions import ContractCustomError, ContractLogicError

        try:
            with _refusals():
                return self._wait(self.web3, fn.transact({"from": sender}))
        except ContractCustomError as exc:
            data = str(exc.data if hasattr(exc, "data") else exc)
            name = self._errors.get(data[:10], data[:10])
            raise Error(f"the anchor contract refused: {name}") from None
        except ContractLogicError as exc:
            raise Error(f"the anchor contract refused: {exc}") from None

    def set_operator(self, origin: str, operator: str, *, sender: str) -> Any:
        return self._send(self.contract.functions.setOperator(origin, operator), sender)

    def anchor(
        self, origin: str, size: int, root: bytes, proof: Sequence[bytes], *, sender: str
    ) -> Any:
        """Anchor ``(size, root)`` of log ``origin`` with the consistency ``proof`` from
        the anchored size (empty for the first anchor); the transaction receipt."""
        fn = self.contract.functions.anchor(origin_hash(origin), size, root, list(proof))
        return self._send(fn, sender)

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
