"""``inferproof image``: build the node's image reproducibly, and rebuild one to check it."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer

from .._files import default_home
from ..errors import InputError, VerificationError
from ..image import VARIANTS, BuildInputs, build_image, read_layout
from ._common import console, handle_errors, step_progress

image_app = typer.Typer(help="Build the node's image reproducibly, and check one.",
                        no_args_is_help=True)  # fmt: skip

CheckoutOpt = Annotated[
    Path, typer.Option("--checkout", help="The git checkout of the project to build from.")
]


def _inputs(checkout: Path) -> BuildInputs:
    if not (checkout / "requirements.lock").is_file() or not (checkout / ".git").exists():
        raise InputError(f"{checkout} is not a git checkout of inferproof (no lock or .git)")
    return BuildInputs(checkout.resolve(), default_home() / "image-cache")


@image_app.command("build")
@handle_errors
def image_build(
    output: Annotated[Path, typer.Option("-o", "--output", help="A new folder for it.")] = Path(
        "image"
    ),
    variant: Annotated[
        str, typer.Option("--variant", help=f"What to build: {', '.join(VARIANTS)}.")
    ] = "reduced",
    checkout: CheckoutOpt = Path("."),
) -> None:
    """Build the image of the checkout's HEAD as an OCI image layout and print its digest.
    The same commit gives the same digest on every machine (docs/environment.md)."""
    with step_progress(f"image build ({variant})") as progress:
        image = build_image(output, _inputs(checkout), variant, progress)
    for name, digest in image.layers.items():
        console.print(f"layer {name}: {digest}", style="dim", markup=False, soft_wrap=True)
    console.print(f"{image.size} bytes in {output}", style="dim", markup=False)
    console.print(image.digest, markup=False, soft_wrap=True)


@image_app.command("verify")
@handle_errors
def image_verify(
    image: Annotated[Path, typer.Argument(help="An image layout folder to check.")],
    checkout: CheckoutOpt = Path("."),
) -> None:
    """Rebuild the image from the checkout (at the commit the image names) and compare:
    exit 0 only when every byte is the same."""
    found = read_layout(image)
    inputs = _inputs(checkout)
    variant = found.annotations.get("dev.inferproof.variant", "reduced")
    revision = found.annotations.get("org.opencontainers.image.revision")
    with tempfile.TemporaryDirectory() as tmp, step_progress("image rebuild") as progress:
        again = build_image(Path(tmp) / "image", inputs, variant, progress)
        rebuilt = read_layout(Path(tmp) / "image")
    if again.digest != found.digest:
        differ = [n for (n, a), (_, b) in zip(found.layers, rebuilt.layers, strict=False) if a != b]
        raise VerificationError(
            "image.reproduced",
            f"the rebuild is {again.digest}, the image {found.digest}; layers that differ: "
            f"{', '.join(differ) or 'none (the config or manifest)'}; the image names commit "
            f"{revision}",
        )
    console.print(
        f"image.reproduced: passed rebuilt {found.digest} byte for byte from commit {revision}",
        markup=False, soft_wrap=True,
    )  # fmt: skip
