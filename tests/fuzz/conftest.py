"""The fuzz material, built once per session from a real LocalNode in a temporary home."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ._harness import Target
from ._material import Material, build
from .targets import load


@pytest.fixture(scope="session")
def material_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build(tmp_path_factory.mktemp("fuzz") / "material")


@pytest.fixture(scope="session")
def material(material_root: Path) -> Material:
    return Material(material_root)


@pytest.fixture(scope="session")
def target(material: Material) -> Callable[[str], Target]:
    """``target(name)``: the fuzz target ``name``, built once per session."""
    made: dict[str, Target] = {}

    def get(name: str) -> Target:
        if name not in made:
            made[name] = load(name, material)
        return made[name]

    return get
