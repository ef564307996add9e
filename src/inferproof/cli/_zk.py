"""``inferproof zk ...``: per-model zero-knowledge setup (EZKL).

Artifacts live in the blob store ``<home>/blobs`` and the setup index in
``<home>/zk/``, where home is ``$INFERPROOF_HOME`` (default ``~/.inferproof``).
The lead registers ``zk_app`` in the main application.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated

import typer
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

from .._canonical import sha256_digest
from .._home import default_home
from ..errors import InputError
from ..hub._blobs import LocalBlobStore
from ..proofs import zk
from ..runtime import load_tensors
from ._common import console, err_console, handle_errors, is_tty

zk_app = typer.Typer(help="Zero-knowledge proofs of inference (EZKL, Halo2-KZG).")

# Largest model file taken by `zk setup`: far above what EZKL can prove on one
# machine (a 40k-parameter MLP is ~170 KiB) and a guard on memory.
MAX_MODEL_BYTES = 256 * 1024 * 1024

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


def _read_model(path: Path) -> bytes:
    if not path.is_file():
        raise InputError(f"model file {path} does not exist")
    if path.stat().st_size > MAX_MODEL_BYTES:
        raise InputError(f"model file {path} is over the {MAX_MODEL_BYTES}-byte cap")
    return path.read_bytes()


@zk_app.command("setup")
@handle_errors
def setup(
    model_file: Annotated[Path, typer.Argument(help="ONNX model file.")],
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
) -> None:
    """Set up a model for zero-knowledge proofs, once; print the setup record digest."""
    model_bytes = _read_model(model_file)
    samples = [load_tensors(p).tensors for p in sample_input]
    home = default_home()
    store, index = LocalBlobStore(home / "blobs"), zk.JsonSetupIndex(home / "zk")
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

        record = zk.setup(
            model_bytes, sha256_digest(model_bytes), samples, store, index,
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
