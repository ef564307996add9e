"""`inferproof node attest | identity`: the node's hardware-backed identity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer

from ..attest import ConfigfsTsmProducer, detect_producer, software_environment
from ..engine import LocalNode
from ..errors import InputError
from ._common import console, handle_errors

node_app = typer.Typer(
    help="The node's identity: key, measurement, attestation.", no_args_is_help=True
)


@node_app.command("attest")
@handle_errors
def node_attest(
    nonce: Annotated[str | None, typer.Option("--nonce", help="A verifier's nonce (hex).")] = None,
    collateral: Annotated[
        list[Path] | None,
        typer.Option("--collateral", help="DCAP collateral JSON or SNP certificates (repeatable)."),
    ] = None,
    configfs: Annotated[
        Path | None, typer.Option("--configfs", help="configfs-tsm report folder to use.")
    ] = None,
    entry: Annotated[str | None, typer.Option("--entry", help="An existing report entry.")] = None,
) -> None:
    """Bind the node's key into TEE evidence and keep the identity document."""
    producer = (
        ConfigfsTsmProducer(configfs, entry=entry) if configfs is not None else detect_producer()
    )
    if producer is None:
        raise InputError(
            "no TEE found (no configfs-tsm report interface, no dstack agent): this node "
            "reports a software measurement, not hardware-backed"
        )
    try:
        raw_nonce = bytes.fromhex(nonce) if nonce else None
    except ValueError as exc:
        raise InputError("--nonce must be hex") from exc
    files = tuple(p.read_bytes() for p in collateral or [])
    node = LocalNode()
    identity = node.attest(producer, raw_nonce, files)
    console.print(f"platform {identity.platform}, identity {identity.digest}")
    console.print(f"written to {node.home.root / 'identity.json'}")


@node_app.command("identity")
@handle_errors
def node_identity() -> None:
    """Print the node's key, log key, software measurement and attestation."""
    import base64

    node = LocalNode()
    identity = node.identity
    doc = {
        "node_id": node.node_id,
        "node_key": base64.b64encode(node.public_key).decode(),
        "log": {"origin": node.log.origin, "verifier_key": str(node.log.verifier_key)},
        "environment": software_environment(),
        "attestation": identity.doc if identity else None,
    }
    console.print_json(json.dumps(doc))
