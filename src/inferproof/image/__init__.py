"""The node's image: a reproducible OCI image layout built from the lock and the
committed source, whose digest anyone can rebuild (docs/environment.md).

Example::

    from pathlib import Path
    from inferproof.image import BuildInputs, build_image

    image = build_image(Path("image"), BuildInputs(Path("."), Path("/tmp/wheels")))
    print(image.digest)   # sha256:... the same on every machine, for this commit
"""

from ._archive import lock_debian_base
from ._build import VARIANTS, BuildInputs, build_image
from ._dstack import app_compose, compose_hash, image_of_app_compose, replay_rtmr3
from ._entry import (
    IMAGE_ENTRY,
    SLSA_PROVENANCE,
    ImageEntry,
    image_entry,
    provenance_fields,
    provenance_statement,
    read_image_entry,
    sbom_document,
)
from ._oci import Image, Layer, Layout, read_layout, write_layout
from ._tar import LayerFile, layer_tar
from ._wheels import LockedPackage, read_lock

__all__ = [
    "IMAGE_ENTRY",
    "SLSA_PROVENANCE",
    "VARIANTS",
    "BuildInputs",
    "Image",
    "ImageEntry",
    "Layer",
    "LayerFile",
    "Layout",
    "LockedPackage",
    "app_compose",
    "build_image",
    "compose_hash",
    "image_entry",
    "image_of_app_compose",
    "layer_tar",
    "lock_debian_base",
    "provenance_fields",
    "provenance_statement",
    "read_image_entry",
    "read_layout",
    "read_lock",
    "replay_rtmr3",
    "sbom_document",
    "write_layout",
]
