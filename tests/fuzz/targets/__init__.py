"""The fuzz targets, one module each; ``load(name, material)`` builds one.

Each module has ``target(material) -> Target``. The names are also the folders of
``tests/fuzz/vectors/``, where every crash a fuzzer found is kept as a test vector.
"""

from __future__ import annotations

import importlib

from .._harness import Target
from .._material import Material
from .._names import NAMES

__all__ = ["CANARIES", "NAMES", "load"]

# Targets with planted bugs (``_canary.py``), for the tests of the engines themselves.
CANARIES = ("_crash", "_hang")


def load(name: str, material: Material) -> Target:
    """The target ``name`` (one of :data:`NAMES` or :data:`CANARIES`) over ``material``."""
    if name in CANARIES:
        module = importlib.import_module(f"{__name__}._canary")
        planted: Target = getattr(module, name[1:])(material)
        return planted
    if name not in NAMES:
        raise KeyError(f"no fuzz target {name!r}; the targets are {', '.join(NAMES)}")
    module = importlib.import_module(f"{__name__}.{name}")
    target: Target = module.target(material)
    return target
