"""The anchors this node sent, and whether the chain still holds them.

A transaction in a block is not final: a reorg can replace the block, and the anchor
with it. Each anchor sent is appended to ``HOME/chain-anchors.jsonl`` with its
transaction, block number and block hash. :func:`anchor_status` asks the chain for
that transaction again: gone, or in a block whose hash is not the one recorded at
that height, means a reorg dropped or moved it; otherwise its confirmations are the
blocks from its block to the head. :func:`wait_confirmations` waits for a number of
them, failing when the anchor is dropped meanwhile.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from ..errors import Error

__all__ = ["AnchorStatus", "SentAnchor", "anchor_status", "last_sent", "record_sent",
           "wait_confirmations"]  # fmt: skip

FILE = "chain-anchors.jsonl"
# Seconds between polls of the head while waiting for confirmations: a public chain
# makes a block every 2-12 s; anvil's test chains mine on demand.
POLL_SECONDS = 0.5
# A line longer than any record written here is skipped, not parsed: the file is the
# node's own, but a damaged one must not stall `anchor`.
MAX_LINE = 4096


@dataclass(frozen=True)
class SentAnchor:
    """An anchor transaction this node sent and the block it landed in."""

    origin: str
    size: int
    root: str
    tx: str
    block: int
    block_hash: str


@dataclass(frozen=True)
class AnchorStatus:
    """Where a sent anchor stands: its confirmations, or how a reorg took it."""

    sent: SentAnchor
    confirmations: int
    dropped: bool
    detail: str


def record_sent(home: Path, receipt: Any, origin: str, size: int, root: bytes) -> SentAnchor:
    sent = SentAnchor(origin, size, root.hex(), _hex(receipt["transactionHash"]),
                      int(receipt["blockNumber"]), _hex(receipt["blockHash"]))  # fmt: skip
    with (home / FILE).open("a") as f:
        f.write(json.dumps(asdict(sent), sort_keys=True) + "\n")
    return sent


def last_sent(home: Path, origin: str) -> SentAnchor | None:
    """The last anchor sent for log ``origin`` from this home, or None."""
    path = home / FILE
    if not path.is_file():
        return None
    found = None
    with path.open() as f:
        for line in f:
            if len(line) > MAX_LINE:
                continue
            try:
                sent = SentAnchor(**json.loads(line))
            except (ValueError, TypeError):
                continue  # a line cut by a crash mid-write
            if sent.origin == origin:
                found = sent
    return found


def _hex(value: Any) -> str:
    text = value.hex() if isinstance(value, bytes | bytearray) else str(value)
    return text if text.startswith("0x") else "0x" + text


def anchor_status(web3: Any, sent: SentAnchor) -> AnchorStatus:
    """Whether the chain still holds ``sent`` where it landed (module docs)."""
    from web3.exceptions import TransactionNotFound

    try:
        receipt = web3.eth.get_transaction_receipt(sent.tx)
    except TransactionNotFound:
        receipt = None
    head = int(web3.eth.block_number)
    if receipt is None:
        return AnchorStatus(sent, 0, True, f"the anchor of size {sent.size} (tx {sent.tx}, "
                            f"block {sent.block}) was dropped by a reorg")  # fmt: skip
    block = web3.eth.get_block(int(receipt["blockNumber"]))
    if _hex(block["hash"]) != _hex(receipt["blockHash"]) or int(receipt["status"]) != 1:
        return AnchorStatus(sent, 0, True, f"the anchor of size {sent.size} (tx {sent.tx}) "
                            "is not in the chain's block at its height")  # fmt: skip
    depth = head - int(receipt["blockNumber"]) + 1
    moved = _hex(receipt["blockHash"]) != sent.block_hash
    where = f"block {receipt['blockNumber']}" + (" (moved there by a reorg)" if moved else "")
    return AnchorStatus(sent, depth, False, f"the anchor of size {sent.size} is in {where}, "
                        f"{depth} confirmation(s)")  # fmt: skip


def wait_confirmations(
    web3: Any, sent: SentAnchor, wanted: int, timeout: float,
    progress: Callable[[int], None] | None = None,
) -> AnchorStatus:  # fmt: skip
    """Wait until ``sent`` has ``wanted`` confirmations (Error if a reorg drops it, or
    after ``timeout`` seconds)."""
    deadline = time.monotonic() + timeout
    while True:
        status = anchor_status(web3, sent)
        if status.dropped:
            raise Error(status.detail)
        if progress is not None:
            progress(status.confirmations)
        if status.confirmations >= wanted:
            return status
        if time.monotonic() > deadline:
            raise Error(f"{status.detail}; {wanted} not reached in {timeout:g} s")
        time.sleep(POLL_SECONDS)
