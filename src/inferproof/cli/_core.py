"""`inferproof model ...`, `infer` and `verify`."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from ..client import Client, Inference
from ..engine import InferenceResult, LocalNode, load_opening, save_opening
from ..errors import InputError
from ..hub import sign_model
from ..proofs import is_chat_receipt
from ..receipts import Bundle
from ..runtime import ChatOpening, NamedInputs, encode_tensors, load_tensors
from ..verify import Material, Policy, load_policy
from ._common import EXIT_VERIFY_FAILED, console, handle_errors, model_ref, step_progress
from ._node import NodeOpt, TokenOpt, node_client
from ._render import print_report

model_app = typer.Typer(help="Push, list and show models in the hub.", no_args_is_help=True)


@model_app.command("push")
@handle_errors
def model_push(
    file: Annotated[Path, typer.Argument(help="An ONNX model file.")],
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


@model_app.command("list")
@handle_errors
def model_list(node_url: NodeOpt = None) -> None:
    """List the models in the hub (or on a node)."""
    if node_url:
        with node_client(node_url) as client:
            records = client.models()
    else:
        records = LocalNode().hub.list()
    table = Table("name", "version", "digest", "size", "signed")
    for r in records:
        signed = "verified" if r.publisher else ("unverified" if r.signature_digest else "no")
        table.add_row(r.name, r.version, r.digest, str(r.size), signed)
    console.print(table)


@model_app.command("show")
@handle_errors
def model_show(
    ref: Annotated[str, typer.Argument(help="NAME[:VERSION] or sha256:DIGEST")],
    node_url: NodeOpt = None,
) -> None:
    """Show one model: digest, signature, tensor signature."""
    if node_url:
        with node_client(node_url) as client:
            record = client.model(ref)
    else:
        record = LocalNode().hub.resolve(ref)
    console.print_json(json.dumps(record.to_json()))


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
) -> None:
    """Run a model (locally, or on a node with --node) and write a receipt bundle."""
    if public_output and not private_input:
        raise InputError("--public-output applies with --private-input (outputs are public anyway)")
    private_output = private_input and not public_output
    inputs = load_tensors(input_file)
    with step_progress(f"inference ({mode})") as progress:
        if node_url:
            with node_client(node_url, token, policy) as client:
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
    console.print(f"bundle written to {output}", style="dim")


@handle_errors
def verify(
    bundle_file: Annotated[Path, typer.Argument(metavar="BUNDLE", help="A receipt bundle.")],
    policy: Annotated[Path | None, typer.Option("--policy", help="A policy JSON file.")] = None,
    model: Annotated[Path | None, typer.Option("--model", help="The model file.")] = None,
    input_file: Annotated[Path | None, typer.Option("--input", help="The input.")] = None,
    opening: Annotated[
        Path | None, typer.Option("--opening", help="Opening of a private input.")
    ] = None,
    nonce: Annotated[str | None, typer.Option("--nonce", help="The expected nonce.")] = None,
    allow_dev_srs: Annotated[
        bool,
        typer.Option("--allow-dev-srs", help="Accept ZK proofs over a locally generated SRS."),
    ] = False,
    srs: Annotated[
        Path | None,
        typer.Option("--srs", help="The SRS file of a ZK receipt (a public ceremony file)."),
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Machine-readable output.")] = False,
    node_url: NodeOpt = None,
) -> None:
    """Verify a bundle offline and print every check; exit 0 only if the policy holds.

    With --node the node's pinned keys are trusted and consistency proofs come from it."""
    bundle = Bundle.read(bundle_file)
    node = LocalNode()
    material = _material(node, bundle, model, input_file, opening, nonce)
    if node_url:
        if srs is not None:
            raise InputError("--srs applies to offline verification, not with --node")
        # A bundle checked after the fact: the library's default policy (not the
        # client's, which requires the fresh nonce it sends with each request).
        extra = Policy(allow_dev_srs=allow_dev_srs)
        client = (
            node_client(node_url, None, policy, allow_dev_srs)
            if policy
            else Client(node_url, policy=extra)
        )
        with client:
            report = client.check(bundle, material)
        print_report(report, as_json)
        if not report.verified:
            raise typer.Exit(EXIT_VERIFY_FAILED)
        return
    trust = node.trust_root()
    trust, pol = load_policy(policy, trust) if policy else (trust, Policy())
    if allow_dev_srs:
        pol = replace(pol, allow_dev_srs=True)
    srs_bytes = srs.read_bytes() if srs is not None else None
    report = node.verifier(pol, trust, srs=srs_bytes).check(bundle, material)
    print_report(report, as_json)
    if not report.verified:
        raise typer.Exit(EXIT_VERIFY_FAILED)


def _material(
    node: LocalNode,
    bundle: Bundle,
    model: Path | None,
    input_file: Path | None,
    opening: Path | None,
    nonce: str | None,
) -> Material:
    """What the user gave beside the bundle (the model defaults to the local hub's copy)."""
    if model is not None:
        if not model.is_file():
            raise FileNotFoundError(2, "model file does not exist", str(model))
        model_bytes: bytes | None = model.read_bytes()
    else:
        model_bytes = node.model_bytes(bundle.receipt.model_digest)
    if is_chat_receipt(bundle.receipt):
        # A chat receipt's request and answer come from the bundle or the opening.
        if input_file is not None:
            raise InputError(
                "--input applies to tensor receipts; a chat receipt's request is in the "
                "bundle, or in its opening (--opening) for a private request"
            )
        chat_opening = ChatOpening.load(opening) if opening else None
        return Material(model_bytes=model_bytes, nonce=nonce, chat_opening=chat_opening)
    named = load_tensors(input_file) if input_file else None
    opened = load_opening(opening) if opening else None
    return Material(
        model_bytes=model_bytes,
        inputs=named.tensors if named else None,
        untyped=named.untyped if named else frozenset(),
        salt=opened.salt if opened else None,
        outputs=opened.outputs if opened else None,
        nonce=nonce,
    )


def _client_inputs(named: NamedInputs) -> dict[str, Any]:
    # Typed tensors go as arrays; plain JSON lists stay lists so the client types
    # them against the node's model signature, as the local path does.
    return {k: (v.tolist() if k in named.untyped else v) for k, v in named.tensors.items()}
