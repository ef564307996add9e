"""Anchoring a node's log and checking a bundle against the anchor.

``chain.json`` in the home says where the contract is (RPC URL, chain id, address,
operator account). :func:`anchor_log` posts the log's latest checkpoint with its
consistency proof from the anchored size, once: it reads the anchor first and sends
nothing when the chain already holds that size or more (no transaction is sent twice
for one anchor). :func:`anchored_check` is ``log.anchored``: the bundle's checkpoint is
consistent with the anchored one (a consistency proof between the two, checked here),
with the anchor's block and its confirmations.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._checks import Check, failed, passed
from ..errors import Error, InputError, VerificationError
from ..log import Checkpoint, Note, TlogProof, verify_consistency
from ..receipts import Bundle
from ._anchor import CheckpointAnchor

__all__ = ["ChainConfig", "anchor_log", "anchored_check"]


@dataclass(frozen=True)
class ChainConfig:
    """Where the anchor contract is: what ``inferproof chain deploy`` writes."""

    rpc: str
    chain_id: int
    anchor: str
    operator: str

    def write(self, home: Path) -> Path:
        path = home / "chain.json"
        path.write_text(json.dumps(self.__dict__, indent=1) + "\n")
        return path

    @classmethod
    def read(cls, home: Path) -> ChainConfig:
        path = home / "chain.json"
        if not path.is_file():
            raise InputError(f"no {path}: deploy first (inferproof chain deploy --rpc URL)")
        obj = json.loads(path.read_text())
        return cls(str(obj["rpc"]), int(obj["chain_id"]), str(obj["anchor"]),
                   str(obj["operator"]))  # fmt: skip


def load_key(path: Path) -> Any:
    """An account from a file holding its private key in hex (kept 0600, like ours)."""
    from eth_account import Account

    text = path.read_text().strip()
    try:
        return Account.from_key(text)
    except (ValueError, TypeError):
        raise InputError(f"{path} does not hold a hex private key") from None


def connect(rpc: str, chain_id: int | None = None, key: Any = None) -> Any:
    """web3 on ``rpc`` (checked to be chain ``chain_id``); with ``key`` (an account),
    transactions from its address are signed here and sent raw."""
    from web3 import Web3
    from web3.middleware import SignAndSendRawMiddlewareBuilder

    w3 = Web3(Web3.HTTPProvider(rpc, request_kwargs={"timeout": 30}))
    if key is not None:
        w3.middleware_onion.inject(SignAndSendRawMiddlewareBuilder.build(key), layer=0)
    try:
        got = int(w3.eth.chain_id)
    except Exception as exc:  # requests' and web3's errors alike: the RPC is unreachable
        raise Error(f"the RPC at {rpc} does not answer: {exc.__class__.__name__}") from None
    if chain_id is not None and got != chain_id:
        raise Error(f"the RPC at {rpc} is chain {got}, the anchor was deployed on {chain_id}")
    return w3


def anchor_log(log: Any, anchor: CheckpointAnchor, operator: str) -> tuple[int, int, Any]:
    """Post ``log``'s latest checkpoint if the chain lacks it: (old size, new size, tx)."""
    signed = log.checkpoint()
    cp = signed.checkpoint
    have = anchor.latest(cp.origin)
    if have.size >= cp.size:
        return have.size, have.size, None
    proof = log.consistency_proof(have.size, cp.size) if have.size else []
    receipt = anchor.anchor(cp.origin, cp.size, cp.root_hash, proof, sender=operator)
    return have.size, cp.size, receipt


def anchored_check(
    bundle: Bundle, anchor: CheckpointAnchor, consistency: Callable[[str, int, int], list[bytes]]
) -> Check:
    """``log.anchored`` (module docs); ``consistency(origin, old, new)`` gives a proof."""
    name = "log.anchored"
    if bundle.tlog_entry is None:
        return failed(name, "the bundle has no log proof")
    cp = Checkpoint.parse(Note.parse(TlogProof.parse(bundle.tlog_entry).checkpoint).text)
    have = anchor.latest(cp.origin)
    if have.size == 0:
        return failed(name, f"log {cp.origin} has no anchor at {anchor.address}")
    depth = int(anchor.web3.eth.block_number) - have.block + 1
    where = f"anchor at size {have.size}, block {have.block} ({depth} confirmation(s))"
    if have.size == cp.size:
        if have.root == cp.root_hash:
            return passed(name, f"the bundle's checkpoint is the {where}")
        return failed(name, f"same size, another root than the {where}: a forked log")
    pair = sorted([(cp.size, cp.root_hash), (have.size, have.root)])
    (old, old_root), (new, new_root) = pair
    try:
        verify_consistency(old, new, old_root, new_root, consistency(cp.origin, old, new))
    except (VerificationError, InputError, Error) as exc:
        return failed(name, f"the bundle's checkpoint (size {cp.size}) is not consistent with "
                      f"the {where}: {exc}")  # fmt: skip
    return passed(name, f"the bundle's checkpoint (size {cp.size}) is consistent with the {where}")
