"""``inferproof log ...`` and ``inferproof witness ...`` commands.

The log lives under INFERPROOF_HOME (default ``~/.inferproof``): ``log/log.sqlite`` with
its key in ``keys/log.key``. The lead registers ``log_app`` and ``witness_app`` in the
main ``inferproof`` application.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from ..errors import InputError
from ..log import (
    ALG_COSIGNATURE_V1,
    VerifierKey,
    Witness,
    WitnessEndpoint,
    b64encode,
    cosign_checkpoint,
    load_or_create_key,
    make_server,
)
from ._common import console, err_console, handle_errors, is_tty
from ._logfind import node_consistency, node_info, node_proof
from ._node import NodeOpt
from ._storage import home_log

log_app = typer.Typer(help="The transparency log: info, proofs, audit, tiles, witnesses.")
witness_app = typer.Typer(help="A tlog-witness cosigning service.")


@witness_app.callback()
def _witness_group() -> None:
    """A tlog-witness cosigning service (keeps ``serve`` a subcommand when run alone)."""


def _home() -> Path:
    return Path(os.environ.get("INFERPROOF_HOME", str(Path.home() / ".inferproof")))


def _out(text: str) -> None:
    # Proof texts must come out byte for byte: no Rich wrapping or markup.
    sys.stdout.write(text)
    sys.stdout.flush()


@log_app.command("info")
@handle_errors
def info(node_url: NodeOpt = None) -> None:
    """Print the log's origin, size, root hash and verifier key (signed-note form).

    With --node: that node's latest checkpoint, checked against its pinned log key."""
    if node_url:
        for line in node_info(node_url):
            console.print(line, markup=False, soft_wrap=True)
        return
    with home_log() as log:
        cp = log.checkpoint()
        console.print(f"origin: {log.origin}", markup=False)
        console.print(f"size: {cp.size}", markup=False)
        console.print(f"root: {b64encode(cp.root_hash)}", markup=False)
        console.print(f"verifier key: {log.verifier_key}", markup=False, soft_wrap=True)


@log_app.command("proof")
@handle_errors
def proof(
    index: Annotated[int, typer.Argument(help="Entry index.")],
    size: Annotated[int | None, typer.Option(help="Tree size (default: latest).")] = None,
    node_url: NodeOpt = None,
) -> None:
    """Print a c2sp.org/tlog-proof for entry INDEX (with --node: from the node's tiles)."""
    if node_url:
        _out(node_proof(node_url, index, size))
        return
    with home_log() as log:
        _out(log.tlog_proof(index, size).encode())


@log_app.command("consistency")
@handle_errors
def consistency(
    old: Annotated[int, typer.Argument(help="Old tree size.")],
    new: Annotated[int, typer.Argument(help="New tree size.")],
    node_url: NodeOpt = None,
) -> None:
    """Print the RFC 9162 consistency proof from OLD to NEW, one base64 hash a line.

    With --node NEW is the node's latest size, and the proof is made from its tiles."""
    if node_url:
        _out("".join(b64encode(h) + "\n" for h in node_consistency(node_url, old, new)))
        return
    with home_log() as log:
        _out("".join(b64encode(h) + "\n" for h in log.consistency_proof(old, new)))


@log_app.command("verify")
@handle_errors
def verify() -> None:
    """Recompute the whole tree from the stored entries; check tiles and every checkpoint."""
    with home_log() as log:
        total = log.size
        columns = (TextColumn("audit"), BarColumn(), MofNCompleteColumn())
        with Progress(*columns, console=err_console, disable=not is_tty()) as bar:
            task = bar.add_task("audit", total=total)
            result = log.verify(lambda done: bar.update(task, completed=done))
        console.print(
            f"ok: {result.size} entries, {len(result.checkpoints)} checkpoints verified,"
            f" root {b64encode(result.root_hash)}",
            markup=False,
        )


@log_app.command("export-tiles")
@handle_errors
def export_tiles(directory: Annotated[Path, typer.Argument(help="Output directory.")]) -> None:
    """Write the log as static tlog-tiles files (checkpoint, tile/..., tile/entries/...).

    Full tiles and bundles, and the partial ones of every checkpointed size whose tile
    is not full yet (c2sp.org/tlog-tiles); files already there are kept, so exporting
    into the same folder again adds what grew."""
    with home_log() as log:
        count = log.export_tiles(directory)
    console.print(f"wrote {count} files to {directory}", markup=False)


@log_app.command("append")
@handle_errors
def append(path: Annotated[Path, typer.Argument(help="File to append as one entry.")]) -> None:
    """Append a file's bytes as one entry and print its tlog-proof."""
    data = path.read_bytes()
    with home_log() as log:
        _out(log.append(data).tlog_proof().encode())


def _parse_witness(spec: str) -> WitnessEndpoint:
    url, sep, vkey = spec.partition("=")
    if not sep or not url.startswith(("http://", "https://")):
        raise InputError(f"witness {spec!r:.80} is not URL=VERIFIER_KEY")
    key = VerifierKey.parse(vkey)
    if key.alg != ALG_COSIGNATURE_V1:
        raise InputError(f"witness key {key.name} is not a cosignature/v1 key")
    return WitnessEndpoint(url, key)


@log_app.command("cosign")
@handle_errors
def cosign(
    witness: Annotated[list[str], typer.Option(help="URL=VERIFIER_KEY of a witness (repeat).")],
    timeout: Annotated[float, typer.Option(help="Seconds per witness request.")] = 10.0,
) -> None:
    """Submit the latest checkpoint to witnesses and store their cosignatures with it."""
    endpoints = [_parse_witness(w) for w in witness]
    with home_log() as log:
        cp = log.checkpoint()
        outcome = cosign_checkpoint(cp.encode(), endpoints, log.consistency_proof, timeout)
        log.attach_cosignatures(outcome.note)
    for failure in outcome.failures:
        err_console.print(f"warning: {failure}", markup=False)
    console.print(f"cosigned by {len(outcome.cosigned_by)} of {len(endpoints)}", markup=False)
    if not outcome.cosigned_by:
        raise typer.Exit(1)


@witness_app.command("serve")
@handle_errors
def serve(
    log_key: Annotated[list[str], typer.Option(help="Verifier key of a log to witness (repeat).")],
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port (0: any free port).")] = 7380,
    key: Annotated[Path | None, typer.Option(help="Witness private key file.")] = None,
    state: Annotated[Path | None, typer.Option(help="SQLite file of cosigned state.")] = None,
    name: Annotated[str, typer.Option(help="Name prefix for a new witness key.")] = (
        "inferproof.local/witness"
    ),
) -> None:
    """Serve POST /add-checkpoint (c2sp.org/tlog-witness) for the given logs."""
    home = _home()
    signer = load_or_create_key(key or home / "keys" / "witness.key", name, ALG_COSIGNATURE_V1)
    if signer.alg != ALG_COSIGNATURE_V1:
        raise InputError("the witness key file holds a non-cosigner key")
    logs = [VerifierKey.parse(k) for k in log_key]
    witness = Witness(signer, logs, state or home / "witness" / "witness.sqlite")
    server = make_server(witness, host, port)
    bound = server.server_address[1]
    err_console.print(f"witness key: {signer.verifier()}", markup=False, soft_wrap=True)
    err_console.print(f"listening on http://{host}:{bound}/add-checkpoint", markup=False)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        witness.close()
