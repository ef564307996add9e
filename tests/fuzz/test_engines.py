"""The fuzz engines themselves: a planted crash and a planted hang are caught and
recorded, the memory bound holds, known crashes are skipped and nothing else is."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from ._harness import MemoryCapExceeded, Target, bounded
from ._known import KNOWN, known
from ._run import _default_engine
from .targets import NAMES
from .test_fuzz import fuzz

ENGINES = sorted({"mutate", _default_engine()})


@pytest.mark.parametrize("engine", ENGINES)
def test_a_planted_crash_is_found_and_kept(
    engine: str, material_root: Path, tmp_path: Path
) -> None:
    run = fuzz("_crash", material_root, tmp_path, 30, engine=engine)
    assert run.returncode != 0, run.explain()
    assert "planted crash" in run.output
    assert [p.name.split("-")[0] for p in run.artifacts] == ["crash"], run.explain()
    assert b"!" in run.artifacts[0].read_bytes()


def test_a_planted_hang_is_found_and_kept(material_root: Path, tmp_path: Path) -> None:
    run = fuzz("_hang", material_root, tmp_path, 30, "--time-limit", "1")
    assert run.returncode != 0, run.explain()
    assert [p.name.split("-")[0] for p in run.artifacts] == ["timeout"], run.explain()
    assert b"?" in run.artifacts[0].read_bytes()


def test_the_memory_bound_holds() -> None:
    def greedy(data: bytes) -> None:
        np.ones(len(data) * 1024 * 1024, np.uint8)  # touched or not, tracemalloc sees it

    one = bounded(greedy, cap=4 * 1024 * 1024)
    one(b"abc")
    with pytest.raises(MemoryCapExceeded):
        one(b"abcde")


def test_only_known_crashes_are_skipped() -> None:
    def unknown(data: bytes) -> None:
        raise KeyError("not known")

    with pytest.raises(KeyError):
        bounded(unknown)(b"x")
    assert known(KeyError("not known")) is None


def test_every_known_crash_has_its_vector_and_is_skipped(target: Callable[[str], Target]) -> None:
    vectors = Path(__file__).parent / "vectors"
    for entry in KNOWN:
        path = vectors / entry.vector
        assert path.is_file(), entry.vector
        assert entry.reason.split(":")[0] in ("verifier crash", "tlog-proof parser crash")
        # Skipped by a fuzz run (which goes on past it); test_vectors.py replays it unskipped.
        bounded(target(path.parent.name).run)(path.read_bytes())


@pytest.mark.parametrize("name", NAMES)
def test_every_seed_is_accepted(name: str, target: Callable[[str], Target]) -> None:
    """A fuzzer must start deep: the library takes every seed all the way through."""
    t = target(name)
    assert t.seeds and t.accepts is not None
    one = bounded(t.run, skip_known=False)
    for seed in t.seeds:
        one(seed)
        assert t.accepts(seed), seed[:200]
        assert len(seed) <= t.max_len
