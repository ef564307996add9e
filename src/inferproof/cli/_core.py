"""`inferproof model push` and `infer`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Any

import typer

from .._canonical import sha256_digest
from ..client import Client, Inference
from ..engine import InferenceResult, LocalNode, receipt_digest, save_opening
from ..errors import InputError
from ..hub import sign_model
from ..receipts import Bundle
from ..runtime import NamedInputs, encode_tensors, load_tensors
from ._common import console, handle_errors, model_ref, step_progress
from ._node import (
    ConfidentialOpt,
    NodeOpt,
    RelayOpt,
    TokenOpt,
    confidential_relay,
    node_client,
    print_confidential,
)
from ._view import log_entry

model_app = typer.Typer(help="Push, list and show models in the hub.", no_args_is_help=True)


@model_app.command("push")
@handle_errors
def model_push(
    file: Annotated[Path, typer.Argument(help="A model file: ONNX, or GGUF (an LLM, for chat).")],
    name: Annotated[str, typer.Option("--name", help="Model name.")],
    version: Annotated[str | None, typer.Option("--version", help="Version (immutable).")] = None,
    sign_key: Annotated[
        Path | None, typer.Option("--sign-key", help="ECDSA P-256/384 PEM key: sign the model.")
    ] = None,
    zk_sample: Annotated[
        list[Path] | None,
        typer.Option("--zk-sample-input", help="Also set the model up for ZK proofs on this."),
    ] = None,
    zk_srs: Annotated[
        Path | None, typer.Option("--zk-srs", help="Public ceremony SRS file for the ZK setup.")
    ] = None,
    zk_dev_srs: Annotated[
        bool, typer.Option("--zk-dev-srs", help="ZK setup with a local SRS (development only).")
    ] = False,
    node_url: NodeOpt = None,
    token: TokenOpt = None,
) -> None:
    """Store a model (content-addressed) and print its digest."""
    if node_url:
        data = file.read_bytes() if file.is_file() else b""
        if not data:
            raise InputError(f"model file {file} does not exist or is empty")
        sig = sign_model(data, sign_key) if sign_key else None
        with node_client(node_url, token) as client:
            remote = client.push(data, name=name, version=version, signature=sig)
            if zk_sample:
                _node_zk_setup(client, remote.digest, zk_sample, zk_srs, zk_dev_srs)
        console.print(remote.digest)
        return
    node = LocalNode()
    record = node.push(file, name=name, version=version, sign_key=sign_key)
    if zk_sample:
        with step_progress("zk setup") as progress:
            setup = node.zk_setup(
                record.digest,
                [load_tensors(p) for p in zk_sample],
                srs_path=zk_srs,
                dev_srs=zk_dev_srs,
                progress=progress,
            )
        console.print(f"zk setup {setup.digest()} (logrows {setup.logrows}, {setup.srs_kind} SRS)")
    if record.publisher:
        console.print(f"signed by publisher {record.publisher}", style="dim")
    console.print(record.digest)


def _node_zk_setup(
    client: Client, digest: str, samples: list[Path], srs: Path | None, dev_srs: bool
) -> None:
    """The node sets the pushed model up (a job): a dev SRS, or the public SRS file it
    holds (named by this local copy's digest); without either, EZKL fetches it."""
    if srs is not None and dev_srs:
        raise InputError("give --zk-srs or --zk-dev-srs, not both")
    if srs is not None and not srs.is_file():
        raise InputError(f"SRS file {srs} does not exist")
    choice = "dev" if dev_srs else sha256_digest(srs.read_bytes()) if srs else "online"
    plain = [_client_inputs(load_tensors(p)) for p in samples]
    with step_progress("zk setup (on the node)") as progress:
        info = client.zk_setup(digest, plain, srs=choice, progress=progress)
    console.print(f"zk setup {info.setup} (logrows {info.logrows}, {info.srs} SRS)")


@handle_errors
def infer(
    model: Annotated[str, typer.Argument(help="sha256:DIGEST, NAME[:VERSION] or a .onnx file.")],
    input_file: Annotated[Path, typer.Option("--input", help="Inputs: .json or .npz.")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write the bundle.")],
    nonce: Annotated[str | None, typer.Option("--nonce", help="A verifier's nonce.")] = None,
    private_input: Annotated[
        bool, typer.Option("--private-input", help="Commit to a salted input digest only.")
    ] = False,
    public_output: Annotated[
        bool,
        typer.Option(
            "--public-output",
            help="With --private-input: keep the outputs in the bundle and the receipt's "
            "plain output digest (a ZK proof publishes them anyway).",
        ),
    ] = False,
    mode: Annotated[
        str, typer.Option("--mode", help="vanilla, zk (zero-knowledge proof) or tee.")
    ] = "vanilla",
    node_url: NodeOpt = None,
    token: TokenOpt = None,
    policy: Annotated[
        Path | None, typer.Option("--policy", help="With --node: the client's policy.")
    ] = None,
    confidential: ConfidentialOpt = False,
    relay: RelayOpt = None,
) -> None:
    """Run a model (locally, or on a node with --node) and write a receipt bundle.

    With --confidential --relay URL the request and its answer travel sealed to the
    node's attested key through the relay, which reads neither (docs/confidential.md).
    """
    relay = confidential_relay(node_url, confidential, relay)
    if public_output and not private_input:
        raise InputError("--public-output applies with --private-input (outputs are public anyway)")
    private_output = private_input and not public_output
    inputs = load_tensors(input_file)
    with step_progress(f"inference ({mode})") as progress:
        if node_url:
            with node_client(node_url, token, policy, relay=relay) as client:
                result: InferenceResult | Inference = client.infer(
                    model, _client_inputs(inputs), mode=mode, nonce=nonce,
                    private_input=private_input, private_output=private_output,
                    progress=progress,
                )  # fmt: skip
        else:
            result = LocalNode().infer(
                model_ref(model, ".onnx"), inputs, nonce=nonce, private_input=private_input,
                private_output=private_output, mode=mode, progress=progress,
            )  # fmt: skip
    result.bundle.write(output)
    if result.salt is not None:
        opening = output.with_name(output.name + ".opening")
        save_opening(opening, result.salt, result.bundle, result.outputs)
        console.print(f"opening (keep it private) written to {opening}", style="dim")
    console.print_json(json.dumps(encode_tensors(result.outputs)))
    _print_receipt(result.bundle)
    if isinstance(result, Inference):
        print_confidential(result.report)
    console.print(f"bundle written to {output}", style="dim")


def _print_receipt(bundle: Bundle) -> None:
    """The receipt's digest, its log index and the nonce it carries (the client draws a
    fresh one when none is given): what a later `log search` or `verify --nonce` needs."""
    log = log_entry(bundle.tlog_entry)
    index = log.get("index", "?") if log else "none (not logged)"
    nonce = bundle.receipt.nonce or "none"
    console.print(
        f"receipt {receipt_digest(bundle)}, log index {index}, nonce {nonce}",
        style="dim", markup=False, soft_wrap=True,
    )  # fmt: skip


def _client_inputs(named: NamedInputs) -> dict[str, Any]:
    # Typed tensors go as arrays; plain JSON lists stay lists so the client types
    # them against the node's model signature, as the local path does.
    return {k: (v.tolist() if k in named.untyped else v) for k, v in named.tensors.items()}
