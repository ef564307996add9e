"""``inferproof chain deploy|status|register|nodes``, ``inferproof anchor``,
``inferproof settle`` and ``inferproof zk evm-verifier``: the node on an EVM chain."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer

from ..errors import Error, InputError, VerificationError
from ._common import EXIT_VERIFY_FAILED, console, err_console, handle_errors, step_progress

if TYPE_CHECKING:
    from ..chain import AnchorResult, ChainConfig
    from ..engine import LocalNode
    from ..receipts import Bundle

__all__ = ["anchor", "chain_app", "evm_verifier", "onchain_checks", "settle"]

chain_app = typer.Typer(
    help="The node on an EVM chain: anchored log, ZK settlement, node registry.",
    no_args_is_help=True,
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
# Seconds `anchor --confirmations N` waits for them (a public chain: 12 s a block).
CONFIRM_TIMEOUT = 600.0


def _deps() -> Any:
    try:
        from .. import chain
    except ImportError:
        raise Error(
            "on-chain commands need the chain extra: pip install 'inferproof[chain]'"
            " (the README's install has it)"
        ) from None
    return chain


@dataclass
class _Session:
    """A node, its chain configuration, and web3 with the account that sends."""

    node: LocalNode
    cfg: ChainConfig
    web3: Any
    sender: str

    def contract(self, kind: str) -> Any:
        chain = _deps()
        address = getattr(self.cfg, kind)
        if address is None:
            raise InputError(f"chain.json names no {kind} contract: run `inferproof chain "
                             "deploy` again (it deploys every contract)")  # fmt: skip
        cls = {"anchor": chain.CheckpointAnchor, "settlement": chain.InferenceSettlement,
               "registry": chain.NodeRegistry}[kind]  # fmt: skip
        return cls(self.web3, address)


@contextlib.contextmanager
def _session(
    rpc: str | None, key: Path | None = None, sender: str | None = None, operator: bool = False
) -> Iterator[_Session]:
    chain = _deps()
    from ..engine import LocalNode

    with LocalNode() as node:
        cfg = chain.ChainConfig.read(node.home.root)
        signer = chain.load_key(key) if key is not None else None
        if operator and signer is not None and signer.address != cfg.operator:
            raise Error(f"--key is account {signer.address}; the log's operator is {cfg.operator}")
        w3 = chain.connect(rpc or cfg.rpc, cfg.chain_id, key=signer)
        account = _sender(w3, signer, sender, cfg.operator if operator else None)
        yield _Session(node, cfg, w3, account)


def _sender(w3: Any, signer: Any, sender: str | None, default: str | None = None) -> str:
    """Who sends: the local key's account, else --from, else ``default``, else the
    first account the RPC unlocks."""
    if signer is not None:
        return str(signer.address)
    return sender or default or _first_account(w3)


def _first_account(w3: Any) -> str:
    accounts = list(w3.eth.accounts)
    if not accounts:
        raise InputError("the RPC unlocks no account: give --key FILE (a hex private key) "
                         "or --from ADDRESS")  # fmt: skip
    return str(accounts[0])


@chain_app.command("deploy")
@handle_errors
def deploy(
    rpc: Annotated[str, typer.Option("--rpc", help="The chain's JSON-RPC URL.")],
    sender: FromOpt = None,
    key: KeyOpt = None,
) -> None:
    """Deploy the checkpoint anchor, the ZK settlement and the node registry contracts,
    register this node's log with the sending account as its operator, and write the
    addresses to HOME/chain.json."""
    chain = _deps()
    from ..engine import LocalNode

    signer = chain.load_key(key) if key is not None else None
    w3 = chain.connect(rpc, key=signer)
    account = _sender(w3, signer, sender)
    with LocalNode() as node, step_progress("deploying") as say:
        say("checkpoint anchor")
        anchor_c = chain.CheckpointAnchor.deploy(w3, account)
        anchor_c.set_operator(node.log.origin, account, sender=account)
        say("ZK settlement")
        settlement = chain.InferenceSettlement.deploy(w3, account)
        say("node registry")
        registry = chain.NodeRegistry.deploy(w3, account)
        cfg = chain.ChainConfig(rpc, int(w3.eth.chain_id), anchor_c.address, account,
                                settlement.address, registry.address)  # fmt: skip
        path = cfg.write(node.home.root)
    console.print(f"anchor contract {anchor_c.address} on chain {cfg.chain_id}; operator "
                  f"{account}\nsettlement contract {settlement.address}\nnode registry "
                  f"{registry.address}\nwritten to {path}", soft_wrap=True)  # fmt: skip


def _say_result(result: AnchorResult) -> None:
    if result.dropped is not None:
        err_console.print(f"warning: {result.dropped.detail}", markup=False, soft_wrap=True)
    if result.receipt is None:
        why = "the log is empty" if result.new == 0 else f"already anchored at size {result.old}"
        console.print(f"{why}: nothing sent")
        return
    r = result.receipt
    console.print(
        f"anchored size {result.new} (from {result.old}) in block {r['blockNumber']}, "
        f"tx {r['transactionHash'].hex()}, gas {r['gasUsed']}", soft_wrap=True,
    )  # fmt: skip


@handle_errors
def anchor(
    rpc: RpcOpt = None,
    key: KeyOpt = None,
    confirmations: Annotated[
        int, typer.Option("--confirmations", min=1, help="Wait for this many blocks.")
    ] = 1,
    every: Annotated[
        str | None, typer.Option("--every", help="Keep anchoring: every 60s, 5m, 1h...")
    ] = None,
    receipts: Annotated[
        int | None,
        typer.Option("--receipts", help="Keep anchoring: whenever N receipts were logged."),
    ] = None,
) -> None:
    """Anchor the log's latest checkpoint, with its consistency proof from the anchored
    one (checked by the contract); nothing is sent when the chain already has it. With
    --every and/or --receipts, keep anchoring on that schedule until interrupted."""
    chain = _deps()
    with _session(rpc, key, operator=True) as s:
        contract = s.contract("anchor")
        home = s.node.home.root

        def once() -> AnchorResult:
            result: AnchorResult = chain.anchor_log(s.node.log, contract, s.sender, home)
            if result.sent is not None and confirmations > 1:
                with step_progress(f"waiting for {confirmations} confirmations") as say:
                    chain.wait_confirmations(s.web3, result.sent, confirmations,
                                             CONFIRM_TIMEOUT, lambda n: say(f"{n}"))  # fmt: skip
            return result

        if every is None and receipts is None:
            _say_result(once())
            return
        from ..workflows import parse_every

        seconds = parse_every(every) if every is not None else None
        schedule = chain.AnchorSchedule(once, lambda: s.node.log.size, every=seconds,
                                        receipts=receipts, report=_report)  # fmt: skip
        schedule.start()
        err_console.print("anchoring on schedule; Ctrl-C stops", markup=False)
        try:
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
        finally:
            schedule.stop()


def _report(result: AnchorResult | Error) -> None:
    if isinstance(result, Error):
        err_console.print(f"error: {result}", markup=False, soft_wrap=True)
    else:
        _say_result(result)


@chain_app.command("status")
@handle_errors
def status(rpc: RpcOpt = None) -> None:
    """The anchored checkpoint of this node's log beside the log's own size, and the
    last anchor sent from here: its confirmations, or the reorg that dropped it
    (exit 1)."""
    chain = _deps()
    with _session(rpc) as s:
        contract = s.contract("anchor")
        origin = s.node.log.origin
        have = contract.latest(origin)
        size = s.node.log.checkpoint().size
        sent = chain.last_sent(s.node.home.root, origin)
        state = chain.anchor_status(s.web3, sent) if sent is not None else None
    console.print(f"log {origin}: size {size}; anchored size {have.size} in block "
                  f"{have.block} at {s.cfg.anchor}", soft_wrap=True)  # fmt: skip
    for kind in ("settlement", "registry"):
        console.print(f"{kind}: {getattr(s.cfg, kind) or 'not deployed'}")
    if state is not None:
        console.print(f"last anchor sent from here: {state.detail}", soft_wrap=True)
        if state.dropped:
            raise typer.Exit(EXIT_VERIFY_FAILED)


@handle_errors
def settle(
    bundle_file: Annotated[Path, typer.Argument(metavar="BUNDLE", help="A ZK receipt bundle.")],
    rpc: RpcOpt = None,
    sender: FromOpt = None,
    key: KeyOpt = None,
) -> None:
    """Settle a ZK bundle's result on chain: the settlement contract checks the proof
    with the circuit's verifier and records model, input commitment and output. A
    result already settled is not sent again."""
    chain = _deps()
    from ..receipts import Bundle

    claim = chain.ZkClaim.from_bundle(Bundle.read(bundle_file))
    with _session(rpc, key, sender) as s:
        contract = s.contract("settlement")
        done = contract.settled(claim)
        if done is not None:
            console.print(f"already settled in block {done.block}: nothing sent")
            return
        receipt = contract.settle(claim, sender=s.sender)
    console.print(f"settled {claim.id.hex()} in block {receipt['blockNumber']}, tx "
                  f"{receipt['transactionHash'].hex()}, gas {receipt['gasUsed']}",
                  soft_wrap=True)  # fmt: skip


@handle_errors
def evm_verifier(
    model: Annotated[str, typer.Argument(help="NAME[:VERSION] or sha256:DIGEST in the hub.")],
    rpc: RpcOpt = None,
    sender: FromOpt = None,
    key: KeyOpt = None,
    sol: Annotated[
        Path | None, typer.Option("--sol", help="Also write the Solidity source here.")
    ] = None,
    setup_digest: Annotated[
        str | None, typer.Option("--setup", help="The setup (when the model has several).")
    ] = None,
) -> None:
    """Generate EZKL's Solidity verifier for the model's ZK setup, deploy it and
    register it with the settlement contract (from HOME/chain.json)."""
    chain = _deps()
    with _session(rpc, key, sender, operator=True) as s:
        setup = _one_setup(s.node, model, setup_digest)
        contract = s.contract("settlement")
        with step_progress("EVM verifier") as say:
            built = chain.build_verifier(setup, s.node.hub.blobs, say)
            if sol is not None:
                sol.write_text(built.source)
            known = contract.circuit(setup.digest())
            if known is None:
                say("deploying")
                address = chain.deploy_verifier(s.web3, s.sender, built)
                say("registering with the settlement contract")
                contract.register(setup, address, sender=s.sender)
            else:
                address = known.verifier
    state = "registered" if known is None else "already registered"
    console.print(f"verifier {address} {state} for setup {setup.digest()} (source "
                  f"{built.source_digest}, {len(built.runtime) // 2 - 1} bytes of code)",
                  soft_wrap=True)  # fmt: skip


def _one_setup(node: LocalNode, model: str, digest: str | None) -> Any:
    setups = [x for x in node.zk_setups(model) if digest is None or x.digest() == digest]
    if not setups:
        raise InputError(f"model {model} has no ZK setup{' ' + digest if digest else ''}: run "
                         "`inferproof zk setup` first")  # fmt: skip
    if len(setups) > 1:
        names = ", ".join(x.digest() for x in setups)
        raise InputError(f"model {model} has {len(setups)} ZK setups ({names}): choose one "
                         "with --setup")  # fmt: skip
    return setups[0]


def onchain_checks(bundle: Bundle, rpc: str, confirmations: int, srs: bytes | None) -> list[Any]:
    """The chain's checks for ``verify --rpc``: ``log.anchored`` (consistency proofs from
    the local log), and for a ZK bundle ``zk.onchain``."""
    chain = _deps()
    with _session(rpc) as s:
        checks = [chain.anchored_check(bundle, s.contract("anchor"), s.node.consistency_proof,
                                       confirmations=confirmations)]  # fmt: skip
        if any(p.get("type") == "zk" for p in bundle.receipt.proofs):
            checks.append(_zk_onchain(s, bundle, srs))
    return checks


def _zk_onchain(s: _Session, bundle: Bundle, srs: bytes | None) -> Any:
    chain = _deps()
    from .._checks import failed

    try:
        setup, store = s.node.zk_setup_of(bundle, srs)
    except VerificationError as exc:
        return failed("zk.onchain", f"cannot rebuild the circuit's verifier: {exc}")
    with step_progress("building the circuit's EVM verifier") as say:
        built = chain.build_verifier(setup, store, say)
    claim = chain.ZkClaim.from_bundle(bundle)
    return chain.onchain_check(claim, built, s.contract("settlement"))


@chain_app.command("register")
@handle_errors
def register(
    endpoint: Annotated[str, typer.Option("--endpoint", help="The node's https:// URL.")],
    rpc: RpcOpt = None,
    sender: FromOpt = None,
    key: KeyOpt = None,
) -> None:
    """Register this node in the node registry: its key, identity document digest,
    platform and endpoint, signed by the node key (an attested node: `node attest`)."""
    with _session(rpc, key, sender) as s:
        identity = s.node.identity
        if identity is None:
            raise InputError("this node has no identity document: run `inferproof node "
                             "attest` in its TEE first")  # fmt: skip
        registry = s.contract("registry")
        receipt = registry.register(identity, endpoint, s.node.home.node_key(),
                                    sender=s.sender)  # fmt: skip
    console.print(f"registered node {identity.digest} ({identity.platform}) at {endpoint} "
                  f"from {s.sender} in block {receipt['blockNumber']}", soft_wrap=True)  # fmt: skip


@chain_app.command("nodes")
@handle_errors
def nodes(
    rpc: RpcOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
) -> None:
    """The nodes in the registry whose registration the node key signed for this
    chain, registry and registrant; every other entry with the reason it was ignored."""
    chain = _deps()
    with _session(rpc) as s:
        found = chain.discover(s.contract("registry"), chain_id=s.cfg.chain_id)
    rows = [_entry(r, "verified", "") for r in found.verified]
    rows += [_entry(x.registration, "rejected", x.reason) for x in found.rejected]
    if as_json:
        import json

        console.print_json(json.dumps({"nodes": rows, "truncated": found.truncated}))
        return
    from rich.table import Table

    table = Table("node key", "platform", "endpoint", "registrant", "status")
    for row in rows:
        status = row["status"] + (f": {row['reason']}" if row["reason"] else "")
        table.add_row(row["node_key"][:16] + "…", row["platform"], row["endpoint"],
                      row["registrant"], status)  # fmt: skip
    console.print(table)
    if found.truncated:
        console.print(f"(more entries than the {chain.MAX_ENTRIES} read)")


def _entry(r: Any, status: str, reason: str) -> dict[str, Any]:
    import base64

    return {"node_key": base64.b64encode(r.node_key).decode(), "identity": r.identity,
            "platform": r.platform, "endpoint": r.endpoint, "registrant": r.registrant,
            "block": r.block, "status": status, "reason": reason}  # fmt: skip
