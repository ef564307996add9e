"""``inferproof zk ...``: per-model zero-knowledge setup (EZKL).

Artifacts live in the hub's blob store ``<home>/blobs`` and the setup index in
``<home>/zk/``, where home is ``$INFERPROOF_HOME`` (default ``~/.inferproof``).
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from .._canonical import sha256_digest
from ..errors import InputError
from ..proofs import zk
from ..runtime import NamedInputs, load_tensors
from ._common import console, err_console, handle_errors, is_tty, model_ref, step_progress
from ._node import NodeOpt, TokenOpt, node_client

zk_app = typer.Typer(help="Zero-knowledge proofs of inference (EZKL, Halo2-KZG).")

_STEP_TEXT = {
    "settings": "generating circuit settings",
    "calibrate": "calibrating quantisation on the sample inputs",
    "compile": "compiling the circuit",
    "srs": "loading the structured reference string",
    "keys": "setting up proving and verifying keys",
}


class TargetOpt(StrEnum):
    resources = "resources"
    accuracy = "accuracy"


class ParamVis(StrEnum):
    fixed = "fixed"
    hashed = "hashed"


class InputVis(StrEnum):
    public = "public"
    hashed = "hashed"


@zk_app.callback()
def _group() -> None:
    """Zero-knowledge proofs of inference (keeps ``setup`` a subcommand when run alone)."""


@zk_app.command("setup")
@handle_errors
def setup(
    model: Annotated[
        str, typer.Argument(help="sha256:DIGEST, NAME[:VERSION] in the hub, or a .onnx file.")
    ],
    sample_input: Annotated[
        list[Path],
        typer.Option("--sample-input", help="Sample input (.json or .npz); repeatable."),
    ],
    target: Annotated[TargetOpt, typer.Option(help="Calibrate for size or for accuracy.")] = (
        TargetOpt.resources
    ),
    srs: Annotated[
        Path | None, typer.Option("--srs", help="The public ceremony SRS file (checked).")
    ] = None,
    dev_srs: Annotated[
        bool, typer.Option("--dev-srs", help="Generate a local SRS: development only.")
    ] = False,
    online_srs: Annotated[
        bool, typer.Option("--online-srs", help="Download the public SRS with EZKL.")
    ] = False,
    param_visibility: Annotated[ParamVis, typer.Option(help="Weights in the key or hashed.")] = (
        ParamVis.fixed
    ),
    input_visibility: Annotated[InputVis, typer.Option(help="Inputs public or hashed.")] = (
        InputVis.public
    ),
    node_url: NodeOpt = None,
    token: TokenOpt = None,
) -> None:
    """Set up a model for zero-knowledge proofs, once; print the setup record digest.

    With --node the node sets its hub model up (a job); --srs then names a public SRS
    file the node holds, by the digest of this local copy."""
    samples = [load_tensors(p) for p in sample_input]
    if node_url:
        _node_setup(node_url, token, model, samples, srs, dev_srs, online_srs,
                    target.value, input_visibility.value, param_visibility.value)  # fmt: skip
        return
    from ..engine import LocalNode  # imported here: loading the engine takes a second

    node = LocalNode()
    ran: list[str] = []
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        console=err_console,
        transient=not is_tty(),
        disable=not is_tty(),
    ) as bar:
        task = bar.add_task("zk setup", total=len(zk.SETUP_STEPS))

        def step(name: str) -> None:
            if ran:
                bar.advance(task)
            ran.append(name)
            bar.update(task, description=_STEP_TEXT.get(name, name))
            if not is_tty():
                err_console.print(f"step {len(ran)}/{len(zk.SETUP_STEPS)}: {_STEP_TEXT[name]}")

        record = node.zk_setup(
            model_ref(model, ".onnx"), samples,
            target=target.value, srs_path=srs, dev_srs=dev_srs, online_srs=online_srs,
            param_visibility=param_visibility.value, input_visibility=input_visibility.value,
            progress=step,
        )  # fmt: skip
        bar.update(task, completed=len(zk.SETUP_STEPS))
    if not ran:
        err_console.print("already set up: nothing to do")
    if record.srs_kind == "dev":
        err_console.print(
            "warning: dev SRS: whoever generated it can forge proofs; verifiers reject "
            "these proofs unless they pass --allow-dev-srs"
        )
    console.print(
        f"model {record.model_digest}\nlogrows {record.logrows}, params {record.param_visibility}"
        f", inputs {record.input_visibility}, SRS {record.srs_kind}",
        markup=False,
    )
    console.print(record.digest(), markup=False)


def _node_setup(
    url: str, token: str | None, model: str, samples: list[NamedInputs], srs: Path | None,
    dev_srs: bool, online_srs: bool, target: str, inputs: str, params: str,
) -> None:  # fmt: skip
    if sum((srs is not None, dev_srs, online_srs)) != 1:
        raise InputError("choose exactly one SRS: --srs FILE, --online-srs or --dev-srs")
    choice = "dev" if dev_srs else "online" if online_srs else sha256_digest(_read(srs))
    with node_client(url, token) as client, step_progress("zk setup (on the node)") as progress:
        info = client.zk_setup(
            model, [_plain(s) for s in samples], srs=choice, target=target,
            input_visibility=inputs, param_visibility=params, progress=progress,
        )  # fmt: skip
    if info.srs == "dev":
        err_console.print("warning: dev SRS: whoever generated it can forge proofs")
    console.print(
        f"model {info.model}\nlogrows {info.logrows}, params {info.param_visibility}, "
        f"inputs {info.input_visibility}, SRS {info.srs}",
        markup=False,
    )
    console.print(info.setup, markup=False)


def _read(path: Path | None) -> bytes:
    if path is None or not path.is_file():
        raise InputError(f"SRS file {path} does not exist")
    return path.read_bytes()


def _plain(named: NamedInputs) -> dict[str, Any]:
    # Plain JSON lists stay lists, typed by the node's model as the local path types them.
    return {k: (v.tolist() if k in named.untyped else v) for k, v in named.tensors.items()}
