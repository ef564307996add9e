"""The node's image: a reproducible OCI image layout built from the lock and the
committed source, whose digest anyone can rebuild (docs/environment.md).

Example::

    from pathlib import Path
    from inferproof.image import BuildInputs, build_image

    image = build_image(Path("image"), BuildInputs(Path("."), Path("/tmp/wheels")))
    print(image.digest)   # sha256:... the same on every machine, for this commit
"""

from ._build import VARIANTS, BuildInputs, build_image
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
    "build_image",
    "image_entry",
    "layer_tar",
    "provenance_fields",
    "provenance_statement",
    "read_image_entry",
    "read_layout",
    "read_lock",
    "sbom_document",
    "write_layout",
]
