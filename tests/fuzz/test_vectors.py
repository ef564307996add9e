"""Every input a fuzzer found that broke the property, replayed (issue 11, "Also").

Each file under ``vectors/<target>/`` is named after what it triggered and must
now be refused or accepted without any other exception, within the memory
bound. A vector whose fix belongs to another owner is a strict xfail until then
(``_known.py``): when it is fixed the XPASS fails, and its entry is removed.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from ._harness import Target, bounded
from ._known import reason_for
from .targets import NAMES

VECTORS = Path(__file__).parent / "vectors"


def _vectors() -> list[object]:
    params: list[object] = []
    for path in sorted(VECTORS.glob("*/*")):
        vector = f"{path.parent.name}/{path.name}"
        reason = reason_for(vector)
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        params.append(pytest.param(path, id=vector, marks=marks))
    return params


def test_vector_folders_are_targets() -> None:
    folders = {p.name for p in VECTORS.iterdir() if p.is_dir()}
    assert folders and folders <= set(NAMES)


@pytest.mark.parametrize("path", _vectors())
def test_vector_no_longer_breaks_the_property(path: Path, target: Callable[[str], Target]) -> None:
    bounded(target(path.parent.name).run, skip_known=False)(path.read_bytes())
