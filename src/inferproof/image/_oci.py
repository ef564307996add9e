"""An OCI image layout (OCI Image Format Specification v1.1, "image-layout.md"):
``oci-layout``, ``index.json`` and content-addressed ``blobs/sha256/``.

Why an OCI layout and not a bare root filesystem tarball: it is what container
runtimes, registries (``oras``/``skopeo copy oci:DIR``) and confidential-VM stacks
such as dstack take as they are, and its identity, the manifest's digest, is the one
those tools print and pin. Each layer is an uncompressed tar
(``application/vnd.oci.image.layer.v1.tar``): gzip output depends on the
compressor's version and level, and the spec lets a layer go uncompressed.

Every JSON document is written as RFC 8785 canonical JSON, so its digest depends only
on its content.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .._canonical import canonical_json, parse_json
from ..errors import InputError, VerificationError

__all__ = ["Component", "Image", "Layer", "Layout", "read_layout", "write_layout"]

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
CONFIG = "application/vnd.oci.image.config.v1+json"
LAYER = "application/vnd.oci.image.layer.v1.tar"
INDEX = "application/vnd.oci.image.index.v1+json"
# The annotation naming what each layer holds (OCI annotations: reverse-domain keys).
LAYER_NAME = "dev.inferproof.layer"
_MAX_JSON = 1024 * 1024


@dataclass(frozen=True)
class Layer:
    """A layer's tar and the name of what it holds (``debian``, ``wheels``...)."""

    name: str
    tar: bytes

    @property
    def digest(self) -> str:
        return "sha256:" + hashlib.sha256(self.tar).hexdigest()


@dataclass(frozen=True)
class Component:
    """A package the image holds: its name, version, package URL (purl-spec) and the
    SHA-256 of the file it came from (a wheel, a .deb), or of its commit's tree."""

    name: str
    version: str
    purl: str
    sha256: str


@dataclass(frozen=True)
class Image:
    """A written image: the manifest's digest (the image's identity), the layers' digests
    by name, the total size of its blobs, its config, and what went into it."""

    digest: str
    layers: dict[str, str]
    size: int
    config: dict[str, Any]
    components: tuple[Component, ...] = ()
    revision: str = ""
    variant: str = ""
    epoch: int = 0
    toolchain: tuple[tuple[str, str], ...] = ()


def _blob(root: Path, data: bytes) -> str:
    digest = hashlib.sha256(data).hexdigest()
    path = root / "blobs" / "sha256" / digest
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return "sha256:" + digest


def _descriptor(media: str, data: bytes, digest: str, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media, "digest": digest, "size": len(data), **extra}


def require_new(root: Path) -> None:
    """Refuse to write an image over anything: ``root`` must be missing or an empty folder."""
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise InputError(f"{root} is not empty: an image is written into a new folder")


def write_layout(
    root: Path, layers: list[Layer], *, epoch: int, config: dict[str, Any],
    annotations: dict[str, str] | None = None,
) -> Image:  # fmt: skip
    """Write ``layers`` as an OCI layout under ``root`` (a new or empty folder).
    ``config`` is the image config's ``config`` member (Entrypoint, Env...)."""
    require_new(root)
    root.mkdir(parents=True, exist_ok=True)
    created = datetime.fromtimestamp(epoch, UTC).isoformat().replace("+00:00", "Z")
    descriptors = []
    for layer in layers:
        digest = _blob(root, layer.tar)
        descriptors.append(_descriptor(LAYER, layer.tar, digest,
                                       annotations={LAYER_NAME: layer.name}))  # fmt: skip
    image_config = {
        "created": created, "architecture": "amd64", "os": "linux", "config": config,
        "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in descriptors]},
    }  # fmt: skip
    config_bytes = canonical_json(image_config)
    manifest = {
        "schemaVersion": 2, "mediaType": MANIFEST,
        "config": _descriptor(CONFIG, config_bytes, _blob(root, config_bytes)),
        "layers": descriptors,
        "annotations": {"org.opencontainers.image.created": created, **(annotations or {})},
    }  # fmt: skip
    manifest_bytes = canonical_json(manifest)
    digest = _blob(root, manifest_bytes)
    index = {"schemaVersion": 2, "mediaType": INDEX,
             "manifests": [_descriptor(MANIFEST, manifest_bytes, digest)]}  # fmt: skip
    (root / "index.json").write_bytes(canonical_json(index))
    (root / "oci-layout").write_bytes(canonical_json({"imageLayoutVersion": "1.0.0"}))
    size = sum(len(layer.tar) for layer in layers) + len(config_bytes) + len(manifest_bytes)
    return Image(digest, {layer.name: d["digest"] for layer, d in zip(layers, descriptors,
                 strict=True)}, size, image_config)  # fmt: skip


def _read_blob(root: Path, descriptor: Any, limit: int) -> bytes:
    if not isinstance(descriptor, dict) or not isinstance(descriptor.get("digest"), str):
        raise InputError("an OCI descriptor without a digest")
    algo, _, hexdigest = descriptor["digest"].partition(":")
    if (
        algo != "sha256"
        or len(hexdigest) != 64
        or not all(c in "0123456789abcdef" for c in hexdigest)
    ):
        raise InputError(f"unsupported OCI digest {descriptor['digest']!r:.80}")
    path = root / "blobs" / "sha256" / hexdigest
    if not path.is_file() or path.stat().st_size > limit:
        raise InputError(f"blob {descriptor['digest']} is missing or over {limit} bytes")
    data: bytes = path.read_bytes()
    if hashlib.sha256(data).hexdigest() != hexdigest or len(data) != descriptor.get("size"):
        raise VerificationError(
            "image.blob", f"blob {descriptor['digest']} does not match its digest"
        )
    return data


@dataclass(frozen=True)
class Layout:
    """An image read back: its digest (the manifest's), manifest annotations, config
    and layers (name, tar), every blob checked against its digest."""

    digest: str
    annotations: dict[str, str]
    config: dict[str, Any]
    layers: list[tuple[str, bytes]]


def read_layout(root: Path) -> Layout:
    """The one image in the OCI layout at ``root``; every blob is checked against its
    digest, so a flipped byte anywhere is refused (``image.blob``)."""
    index_path = root / "index.json"
    if not index_path.is_file():
        raise InputError(f"{root} is not an OCI image layout (no index.json)")
    if index_path.stat().st_size > _MAX_JSON:
        raise InputError(f"{index_path} is over {_MAX_JSON} bytes")
    index = parse_json(index_path.read_bytes(), "index.json", _MAX_JSON)
    manifests = index.get("manifests") if isinstance(index, dict) else None
    if not isinstance(manifests, list) or len(manifests) != 1:
        raise InputError(f"{root}: index.json must name exactly one manifest")
    manifest_bytes = _read_blob(root, manifests[0], _MAX_JSON)
    manifest = parse_json(manifest_bytes, "the image manifest", _MAX_JSON)
    if not isinstance(manifest, dict) or manifest.get("mediaType") != MANIFEST:
        raise InputError(f"{root}: the index names no OCI image manifest")
    config = parse_json(_read_blob(root, manifest.get("config"), _MAX_JSON), "the config")
    layers = []
    for d in manifest.get("layers", []):
        name = (d.get("annotations") or {}).get(LAYER_NAME, "") if isinstance(d, dict) else ""
        layers.append((str(name), _read_blob(root, d, 8 * 1024**3)))
    notes = manifest.get("annotations") or {}
    if not isinstance(notes, dict) or not isinstance(config, dict):
        raise InputError(f"{root}: malformed manifest annotations or config")
    return Layout(str(manifests[0]["digest"]), {str(k): str(v) for k, v in notes.items()},
                  config, layers)  # fmt: skip
