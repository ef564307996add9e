"""What every contract wrapper here shares: deploying a committed build, sending a
transaction and waiting for it, and turning the chain's refusals into our errors.

A contract's custom error (``revert NotOwner()``) arrives as its 4-byte selector; the
wrapper names it from the ABI, so a refusal reads ``the CheckpointAnchor contract
refused: NotOperator``. The RPC node refusing a transaction before it runs (funds,
nonce, gas) is an :class:`~inferproof.errors.Error` with the node's message.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

from eth_utils.crypto import keccak

from ..errors import Error
from ._tools import artifact

__all__ = ["Contract"]

_C = TypeVar("_C", bound="Contract")
# Seconds to wait for a transaction's receipt: anvil mines at once; a public chain's
# block time is 2-12 s, and a minute leaves room for a congested mempool.
RECEIPT_TIMEOUT = 60


def error_selectors(abi: Sequence[dict[str, Any]]) -> dict[str, str]:
    """``0x`` + 4-byte selector -> error name, for the custom errors of ``abi``."""
    out = {}
    for item in abi:
        if item.get("type") == "error":
            sig = f"{item['name']}({','.join(i['type'] for i in item['inputs'])})"
            out["0x" + keccak(sig.encode())[:4].hex()] = item["name"]
    return out


@contextlib.contextmanager
def refusals() -> Iterator[None]:
    """The RPC node refusing a transaction (funds, nonce, gas) as one of our errors."""
    from web3.exceptions import Web3RPCError

    try:
        yield
    except Web3RPCError as exc:
        error = (exc.rpc_response or {}).get("error")
        message = error.get("message") if isinstance(error, dict) else None
        raise Error(f"the chain refused the transaction: {message or exc}") from None


def wait(web3: Any, tx: Any) -> Any:
    """The receipt of transaction ``tx``; Error if it reverted."""
    receipt = web3.eth.wait_for_transaction_receipt(tx, timeout=RECEIPT_TIMEOUT)
    if receipt["status"] != 1:
        raise Error(f"transaction {tx.hex()} reverted")
    return receipt


class Contract:
    """A deployed contract whose build is committed as ``contracts/NAME.json``."""

    NAME = ""

    def __init__(self, web3: Any, address: str, abi: Sequence[dict[str, Any]] | None = None):
        self.web3 = web3
        self.address = address
        self._abi = list(abi) if abi is not None else artifact(self.NAME)["abi"]
        self.contract = web3.eth.contract(address=address, abi=self._abi)
        self._errors = error_selectors(self._abi)

    @classmethod
    def deploy(cls: type[_C], web3: Any, sender: str, *args: Any) -> _C:
        """Deploy the committed build from ``sender`` (constructor ``args``)."""
        built = artifact(cls.NAME)
        return cls(web3, deploy_code(web3, sender, built["abi"], built["bytecode"], *args))

    def call(self, fn: Any) -> Any:
        """Call a view function; a revert is an Error naming the contract's error."""
        with self._refused():
            return fn.call()

    def send(self, fn: Any, sender: str) -> Any:
        """Send ``fn`` as a transaction from ``sender``; its receipt."""
        with self._refused(), refusals():
            return wait(self.web3, fn.transact({"from": sender}))

    @contextlib.contextmanager
    def _refused(self) -> Iterator[None]:
        from web3.exceptions import ContractCustomError, ContractLogicError

        try:
            yield
        except ContractCustomError as exc:
            data = str(exc.data if hasattr(exc, "data") else exc)
            name = self._errors.get(data[:10], data[:10])
            raise Error(f"the {self.NAME} contract refused: {name}") from None
        except ContractLogicError as exc:
            raise Error(f"the {self.NAME} contract refused: {exc}") from None


def deploy_code(web3: Any, sender: str, abi: Any, bytecode: str, *args: Any) -> str:
    """Deploy ``bytecode`` from ``sender``; the new contract's address."""
    factory = web3.eth.contract(abi=abi, bytecode=bytecode)
    with refusals():
        receipt = wait(web3, factory.constructor(*args).transact({"from": sender}))
    return str(receipt["contractAddress"])
