"""``inferproof chain deploy|status`` and ``inferproof anchor``: the log on an EVM chain."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from ..errors import Error
from ._common import console, handle_errors

__all__ = ["anchor", "anchored", "chain_app"]

chain_app = typer.Typer(
    help="The log's checkpoints anchored on an EVM chain.", no_args_is_help=True
)
RpcOpt = Annotated[str | None, typer.Option("--rpc", help="The chain's JSON-RPC URL.")]
FromOpt = Annotated[
    str | None,
    typer.Option("--from", help="An unlocked account of the RPC (default: its first one)."),
]
KeyOpt = Annotated[
    Path | None,
    typer.Option("--key", help="A file with the sender's hex private key: sign here."),
]


def _deps() -> Any:
    try:
        from .. import chain
    except ImportError:
        raise Error(
            "on-chain commands need the chain extra: pip install 'inferproof[chain]'"
            " (the README's install has it)"
        ) from None
    return chain


@chain_app.command("deploy")
@handle_errors
def deploy(
    rpc: Annotated[str, typer.Option("--rpc", help="The chain's JSON-RPC URL.")],
    sender: FromOpt = None,
    key: KeyOpt = None,
) -> None:
    """Deploy the checkpoint anchor contract, register this node's log with the sending
    account as its operator, and write the address to HOME/chain.json."""
    from ..chain import ChainConfig, CheckpointAnchor, connect, load_key
    from ..engine import LocalNode

    _deps()
    signer = load_key(key) if key is not None else None
    w3 = connect(rpc, key=signer)
    account = signer.address if signer is not None else sender or w3.eth.accounts[0]
    with LocalNode() as node:
        contract = CheckpointAnchor.deploy(w3, account)
        contract.set_operator(node.log.origin, account, sender=account)
        path = ChainConfig(rpc, int(w3.eth.chain_id), contract.address, account).write(
            node.home.root
        )
    console.print(f"anchor contract {contract.address} on chain {w3.eth.chain_id}; "
                  f"operator {account}; written to {path}", soft_wrap=True)  # fmt: skip


def _contract(rpc: str | None, key: Path | None = None) -> tuple[Any, Any, Any]:
    from ..chain import ChainConfig, CheckpointAnchor, connect, load_key
    from ..engine import LocalNode

    node = LocalNode()
    cfg = ChainConfig.read(node.home.root)
    signer = load_key(key) if key is not None else None
    if signer is not None and signer.address != cfg.operator:
        raise Error(f"--key is account {signer.address}; the log's operator is {cfg.operator}")
    w3 = connect(rpc or cfg.rpc, cfg.chain_id, key=signer)
    return node, cfg, CheckpointAnchor(w3, cfg.anchor)


@handle_errors
def anchor(rpc: RpcOpt = None, key: KeyOpt = None) -> None:
    """Anchor the log's latest checkpoint, with its consistency proof from the anchored
    one (checked by the contract); nothing is sent when the chain already has it."""
    from ..chain import anchor_log

    node, cfg, contract = _contract(rpc, key)
    with node:
        old, new, receipt = anchor_log(node.log, contract, cfg.operator)
    if receipt is None:
        why = "the log is empty" if new == 0 else f"already anchored at size {old}"
        console.print(f"{why}: nothing sent")
        return
    console.print(f"anchored size {new} (from {old}) in block {receipt['blockNumber']}, "
                  f"tx {receipt['transactionHash'].hex()}, gas {receipt['gasUsed']}",
                  soft_wrap=True)  # fmt: skip


@chain_app.command("status")
@handle_errors
def status(rpc: RpcOpt = None) -> None:
    """The anchored checkpoint of this node's log beside the log's own size."""
    node, cfg, contract = _contract(rpc)
    with node:
        have = contract.latest(node.log.origin)
        size = node.log.checkpoint().size
    console.print(f"log {node.log.origin}: size {size}; anchored size {have.size} in block "
                  f"{have.block} at {cfg.anchor}", soft_wrap=True)  # fmt: skip


def anchored(bundle: Any, rpc: str) -> Any:
    """``log.anchored`` for ``verify --rpc``: consistency proofs from the local log."""
    from ..chain import anchored_check

    node, _, contract = _contract(rpc)
    with node:
        return anchored_check(bundle, contract, node.consistency_proof)
