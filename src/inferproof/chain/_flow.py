"""Anchoring a node's log and checking a bundle against the anchor.

``chain.json`` in the home says where the contracts are (RPC URL, chain id, the
anchor's, settlement's and registry's addresses, operator account). :func:`anchor_log`
posts the log's latest checkpoint with its consistency proof from the anchored size,
once: it reads the anchor first and sends nothing when the chain already holds that
size or more (no transaction is sent twice for one anchor). Each anchor sent is
remembered in ``chain-anchors.jsonl`` with its block's hash, so a reorg that drops it
is seen (:func:`anchor_status`: its transaction is gone or in another block) and the
next ``anchor`` sends it again. :func:`anchored_check` is ``log.anchored``: the
bundle's checkpoint is consistent with the anchored one (a consistency proof between
the two, checked here), with the anchor's block and its confirmations, of which a
policy may require a minimum.
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
from ._sent import AnchorStatus, SentAnchor, anchor_status, last_sent, record_sent

__all__ = ["AnchorResult", "ChainConfig", "anchor_log", "anchored_check"]


@dataclass(frozen=True)
class ChainConfig:
    """Where the anchor contract is: what ``inferproof chain deploy`` writes."""

    rpc: str
    chain_id: int
    anchor: str
    operator: str
    settlement: str | None = None
    registry: str | None = None

    def write(self, home: Path) -> Path:
        path = home / "chain.json"
        path.write_text(json.dumps(self.__dict__, indent=1) + "\n")
        return path

    @classmethod
    def read(cls, home: Path) -> ChainConfig:
        path = home / "chain.json"
        if not path.is_file():
            raise InputError(f"no {path}: deploy first (inferproof chain deploy --rpc URL)")
        try:
            obj = json.loads(path.read_text())
            return cls(str(obj["rpc"]), int(obj["chain_id"]), str(obj["anchor"]),
                       str(obj["operator"]), _opt(obj.get("settlement")),
                       _opt(obj.get("registry")))  # fmt: skip
        except (ValueError, KeyError, TypeError) as exc:
            raise InputError(f"{path} is not a chain configuration: {exc}") from None


def _opt(value: object) -> str | None:
    return None if value is None else str(value)


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
        raise Error(
            f"the RPC at {rpc} is chain {got}; the contracts were deployed on chain {chain_id}"
        )
    return w3


@dataclass(frozen=True)
class AnchorResult:
    """What :func:`anchor_log` did: the sizes before and after, the transaction receipt
    (None when nothing was sent) and, when the last anchor sent from this home was lost
    to a reorg, its status."""

    old: int
    new: int
    receipt: Any
    sent: SentAnchor | None = None
    dropped: AnchorStatus | None = None


def anchor_log(
    log: Any, anchor: CheckpointAnchor, operator: str, home: Path | None = None
) -> AnchorResult:
    """Post ``log``'s latest checkpoint if the chain lacks it (module docs). With
    ``home``, the anchor sent is recorded there and a reorg of the last one is reported."""
    cp = log.checkpoint().checkpoint
    have = anchor.latest(cp.origin)
    dropped = None
    previous = last_sent(home, cp.origin) if home is not None else None
    if previous is not None and previous.size > have.size:
        status = anchor_status(anchor.web3, previous)
        dropped = status if status.dropped else None
    if have.size >= cp.size:
        return AnchorResult(have.size, have.size, None, dropped=dropped)
    proof = log.consistency_proof(have.size, cp.size) if have.size else []
    receipt = anchor.anchor(cp.origin, cp.size, cp.root_hash, proof, sender=operator)
    sent = record_sent(home, receipt, cp.origin, cp.size, cp.root_hash) if home else None
    return AnchorResult(have.size, cp.size, receipt, sent, dropped)


def anchored_check(
    bundle: Bundle,
    anchor: CheckpointAnchor,
    consistency: Callable[[str, int, int], list[bytes]],
    *,
    confirmations: int = 1,
) -> Check:
    """``log.anchored`` (module docs); ``consistency(origin, old, new)`` gives a proof.
    An anchor with fewer than ``confirmations`` blocks on top fails the check: a reorg
    could still drop it."""
    name = "log.anchored"
    if bundle.tlog_entry is None:
        return failed(name, "the bundle has no log proof")
    cp = Checkpoint.parse(Note.parse(TlogProof.parse(bundle.tlog_entry).checkpoint).text)
    have = anchor.latest(cp.origin)
    if have.size == 0:
        return failed(name, f"log {cp.origin} has no anchor at {anchor.address}")
    depth = int(anchor.web3.eth.block_number) - have.block + 1
    where = f"anchor at size {have.size}, block {have.block} ({depth} confirmation(s))"
    if depth < confirmations:
        return failed(name, f"the {where} has fewer than the {confirmations} confirmations "
                      "the policy requires: a reorg could still drop it")  # fmt: skip
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
