"""The node's image: a reproducible OCI image layout built from the lock and the
committed source, whose digest anyone can rebuild (docs/environment.md).

Example::

    from pathlib import Path
    from inferproof.image import BuildInputs, build_image

    image = build_image(Path("image"), BuildInputs(Path("."), Path("/tmp/wheels")))
    print(image.digest)   # sha256:... the same on every machine, for this commit
"""

from ._build import VARIANTS, BuildInputs, build_image
from ._oci import Image, Layer, Layout, read_layout, write_layout
from ._tar import LayerFile, layer_tar, walk_tree
from ._wheels import LockedPackage, read_lock

__all__ = [
    "VARIANTS",
    "BuildInputs",
    "Image",
    "Layer",
    "LayerFile",
    "Layout",
    "LockedPackage",
    "build_image",
    "layer_tar",
    "read_layout",
    "read_lock",
    "walk_tree",
    "write_layout",
]
