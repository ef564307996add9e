"""``inferproof image``: build the node's image reproducibly, and rebuild one to check it."""

from __future__ import annotations

import tempfile
from dataclasses import replace
from pathlib import Path
from typing import Annotated, Any

import typer

from .._canonical import canonical_json, parse_json, sha256_digest
from .._files import default_home
from ..engine import LocalNode
from ..errors import InputError, VerificationError
from ..hub import check_signing_key
from ..image import (
    VARIANTS,
    BuildInputs,
    Image,
    ImageEntry,
    app_compose,
    build_image,
    compose_hash,
    image_entry,
    lock_debian_base,
    provenance_fields,
    provenance_statement,
    read_image_entry,
    read_layout,
    sbom_document,
)
from ._common import console, handle_errors, step_progress

image_app = typer.Typer(help="Build the node's image reproducibly, and check one.",
                        no_args_is_help=True)  # fmt: skip

SBOM_FILE, PROVENANCE_FILE = "sbom.cdx.json", "provenance.json"
ENTRY_FILE, PROOF_FILE = "image-entry.json", "image-entry.tlog-proof"
CheckoutOpt = Annotated[
    Path, typer.Option("--checkout", help="The git checkout of the project to build from.")
]


def _inputs(checkout: Path, recompile: bool = False) -> BuildInputs:
    if not (checkout / "requirements.lock").is_file() or not (checkout / ".git").exists():
        raise InputError(f"{checkout} is not a git checkout of inferproof (no lock or .git)")
    return BuildInputs(checkout.resolve(), default_home() / "image-cache",
                       reuse_compiled=not recompile)  # fmt: skip


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
    recompile: Annotated[bool, typer.Option(
        "--recompile", help="Compile source-only packages again, not from the cache.")] = False,
) -> None:
    """Build the image of the checkout's HEAD as an OCI image layout and print its digest.
    The same commit gives the same digest on every machine (docs/environment.md)."""
    with step_progress(f"image build ({variant})") as progress:
        image = build_image(output, _inputs(checkout, recompile), variant, progress)
    write_records(output, image)
    for name, digest in image.layers.items():
        console.print(f"layer {name}: {digest}", style="dim", markup=False, soft_wrap=True)
    console.print(f"{image.size} bytes in {output}", style="dim", markup=False)
    console.print(image.digest, markup=False, soft_wrap=True)


@image_app.command("lock")
@handle_errors
def image_lock(
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write it.")] = Path(
        "debian.lock"
    ),
) -> None:
    """Lock the full image's Debian base: read bookworm's signed indexes (the release, its
    updates, its security archive; each InRelease checked with gpgv against Debian's
    keyring), take the base packages and their dependencies, and write each .deb's
    SHA-256. Commit the file: builds read only it."""
    with step_progress("debian lock") as progress:
        text = lock_debian_base(progress=progress)
    output.write_text(text)
    count = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
    console.print(f"{count} packages locked in {output}", markup=False)


@image_app.command("compose")
@handle_errors
def image_compose(
    digest: Annotated[str, typer.Argument(help="The image digest, sha256:...")],
    repository: Annotated[str, typer.Option(
        "--repository", help="Where the image is pushed (registry/name, no tag).")],
    output: Annotated[Path, typer.Option("-o", "--output", help="Where to write it.")] = Path(
        "app-compose.json"
    ),
) -> None:
    """Write the dstack app-compose.json that runs only this image, and print the compose
    hash a dstack TDX node running it will have in RTMR3 (docs/environment.md)."""
    doc = app_compose(digest, repository)
    output.write_bytes(doc)
    console.print(f"wrote {output}", style="dim", markup=False)
    console.print(f"compose-hash {compose_hash(doc)}", markup=False)


@image_app.command("verify")
@handle_errors
def image_verify(
    image: Annotated[str, typer.Argument(
        help="An image layout folder, or the digest sha256:... of an image logged here.")],
    checkout: CheckoutOpt = Path("."),
) -> None:
    """Rebuild the image from the checkout, at the commit (and epoch, for a logged image)
    it names, and compare: exit 0 only when every byte is the same."""
    inputs = _inputs(checkout)
    if image.startswith("sha256:"):
        with LocalNode() as node:
            _, entry = _logged(node, image)
        internal = entry.statement["predicate"]["buildDefinition"].get("internalParameters", {})
        epoch = internal.get("source_date_epoch") if isinstance(internal, dict) else None
        wanted, variant, revision = entry.digest, entry.variant, entry.revision
        layers: list[tuple[str, bytes]] | None = None
        inputs = replace(inputs, epoch=epoch if isinstance(epoch, int) else None)
    else:
        found = read_layout(Path(image))
        wanted, layers = found.digest, list(found.layers)
        variant = found.annotations.get("dev.inferproof.variant", "reduced")
        revision = found.annotations.get("org.opencontainers.image.revision", "HEAD")
    inputs = replace(inputs, revision=revision)
    with tempfile.TemporaryDirectory() as tmp, step_progress("image rebuild") as progress:
        again = build_image(Path(tmp) / "image", inputs, variant, progress)
        rebuilt = read_layout(Path(tmp) / "image")
    if again.digest != wanted:
        differ = [n for (n, a), (_, b) in zip(layers or [], rebuilt.layers, strict=False)
                  if a != b]  # fmt: skip
        raise VerificationError(
            "image.reproduced",
            f"the rebuild is {again.digest}, the image {wanted}; layers that differ: "
            f"{', '.join(differ) or 'none (the config or manifest), or unknown'}; the image "
            f"names commit {revision}",
        )
    console.print(
        f"image.reproduced: passed rebuilt {wanted} byte for byte from commit {revision}",
        markup=False, soft_wrap=True,
    )  # fmt: skip


def write_records(output: Path, image: Image) -> None:
    """The SBOM and the (unsigned) provenance statement, beside the layout."""
    sbom = canonical_json(sbom_document(image))
    (output / SBOM_FILE).write_bytes(sbom)
    (output / PROVENANCE_FILE).write_bytes(canonical_json(provenance_statement(image, sbom)))


@image_app.command("publish")
@handle_errors
def image_publish(
    image: Annotated[Path, typer.Argument(help="An image built by `image build`.")],
    sign_key: Annotated[
        Path, typer.Option("--sign-key", help="The publisher's PEM private key (ECDSA).")
    ],
) -> None:
    """Sign the image's provenance with the publisher key (DSSE) and append it to this
    home's transparency log as an image entry; write it and its log proof beside it."""
    found = read_layout(image)
    statement, sbom = _records(image, found.digest)
    key = check_signing_key(sign_key.read_bytes(), str(sign_key))
    entry = image_entry(statement, key)
    with LocalNode() as node:
        result = node.log.append(entry)
    (image / ENTRY_FILE).write_bytes(entry)
    (image / PROOF_FILE).write_text(result.tlog_proof().encode())
    console.print(f"image entry for {found.digest} logged at index {result.index} "
                  f"(SBOM with {len(sbom['components'])} packages)", markup=False,
                  soft_wrap=True)  # fmt: skip


def _records(image: Path, digest: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The image's provenance and SBOM, checked to be this image's and each other's."""
    for name in (SBOM_FILE, PROVENANCE_FILE):
        if not (image / name).is_file():
            raise InputError(f"{image} has no {name}: build it with `inferproof image build`")
    sbom_bytes = (image / SBOM_FILE).read_bytes()
    statement = parse_json((image / PROVENANCE_FILE).read_bytes(), PROVENANCE_FILE)
    sbom = parse_json(sbom_bytes, SBOM_FILE, 16 * 1024 * 1024)
    named, _, byproduct = provenance_fields(statement)
    components = sbom.get("components") if isinstance(sbom, dict) else None
    if not isinstance(components, list) or not all(
        isinstance(c, dict) and isinstance(c.get("purl"), str) for c in components
    ):
        raise InputError(f"{image}: {SBOM_FILE} lists no components")
    if f"sha256:{named}" != digest:
        raise VerificationError(
            "image.entry", f"{PROVENANCE_FILE} is not the provenance of {digest}"
        )
    if sha256_digest(sbom_bytes) != f"sha256:{byproduct['digest']['sha256']}":
        raise VerificationError("image.entry", f"{SBOM_FILE} is not the SBOM the provenance names")
    return statement, sbom


@image_app.command("show")
@handle_errors
def image_show(
    what: Annotated[str, typer.Argument(help="An image folder, or an image digest sha256:...")],
) -> None:
    """Print an image's SBOM summary and provenance: from its folder, or from the image
    entry for that digest in this home's log (its publisher checked)."""
    if what.startswith("sha256:"):
        with LocalNode() as node:
            index, entry = _logged(node, what)
        console.print(f"image {entry.digest} (logged at index {index}, SBOM with "
                      f"{entry.components} packages)", markup=False, soft_wrap=True)  # fmt: skip
        console.print(f"publisher {entry.publisher}; commit {entry.revision}; variant "
                      f"{entry.variant}; SBOM {entry.sbom_digest}", markup=False,
                      soft_wrap=True)  # fmt: skip
        return
    folder = Path(what)
    found = read_layout(folder)
    statement, sbom = _records(folder, found.digest)
    _, params, _ = provenance_fields(statement)
    console.print(f"image {found.digest} (not logged here: a folder; SBOM with "
                  f"{len(sbom['components'])} packages)", markup=False, soft_wrap=True)  # fmt: skip
    console.print(f"commit {params.get('revision')}; variant {params.get('variant')}",
                  markup=False)  # fmt: skip
    for c in sbom["components"]:
        hashes = c.get("hashes")
        first = hashes[0] if isinstance(hashes, list) and hashes else {}
        content = first.get("content") if isinstance(first, dict) else None
        console.print(f"  {c['purl']}  sha256:{content}", markup=False,
                      soft_wrap=True)  # fmt: skip


def _logged(node: LocalNode, digest: str) -> tuple[int, ImageEntry]:
    """The newest image entry for ``digest`` in the node's log, by a trusted publisher."""
    publishers = node.trust_root().publishers
    log = node.log
    refused: list[str] = []
    for index in range(log.size - 1, -1, -1):
        data = log.entry(index)
        if not data.startswith(b'{"envelope":'):  # canonical JSON: keys sorted
            continue
        try:
            entry = read_image_entry(data, publishers)
        except VerificationError as exc:
            refused.append(f"index {index}: {exc}")
            continue
        except InputError:
            continue
        if entry.digest == digest:
            return index, entry
    why = f" (refused: {'; '.join(refused[:3])})" if refused else ""
    raise InputError(f"no image entry for {digest} by a publisher this home trusts{why}")
