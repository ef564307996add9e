"""Real EZKL setups on tiny MLPs, made once per test session and shared.

Circuits use a smaller lookup decomposition (base 1024, 2 legs: values up to 2^20
at scale) than EZKL's default so they fit 2^11-2^12 rows and prove in about a
second; the engine is the same.
"""

from __future__ import annotations

import importlib.util
import shutil
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from inferproof._canonical import sha256_digest
from inferproof.hub._blobs import LocalBlobStore
from inferproof.proofs import zk

DECOMP = (1024, 2)
SIZES = (8, 8, 2)


def pytest_configure(config: pytest.Config) -> None:
    # Heaviest tests (EZKL's default 2^15-row circuits); they run in CI like the rest,
    # the marker only lets a developer deselect them locally (-m "not zk_heavy").
    config.addinivalue_line("markers", "zk_heavy: real EZKL setup at EZKL's default size")


def _load_models() -> ModuleType:
    path = Path(__file__).resolve().parents[2] / "bench" / "_models.py"
    spec = importlib.util.spec_from_file_location("inferproof_bench_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


models = _load_models()


@dataclass
class Env:
    root: Path
    store: LocalBlobStore
    index: zk.JsonSetupIndex


@dataclass
class Model:
    data: bytes
    digest: str
    samples: list[dict[str, np.ndarray]]


def make_model(**kwargs: Any) -> Model:
    data, samples = models.mlp(SIZES, **kwargs)
    return Model(data, sha256_digest(data), samples)


@pytest.fixture(scope="session")
def env(tmp_path_factory: pytest.TempPathFactory) -> Env:
    root = tmp_path_factory.mktemp("zkhome")
    return Env(root, LocalBlobStore(root / "blobs"), zk.JsonSetupIndex(root / "zk"))


@pytest.fixture(scope="session")
def model_a() -> Model:
    return make_model(seed=1)


@pytest.fixture(scope="session")
def model_b() -> Model:
    return make_model(seed=2)


def do_setup(env: Env, model: Model, **options: Any) -> zk.ZkSetup:
    return zk.setup(
        model.data, model.digest, model.samples, env.store, env.index,
        dev_srs=True, decomp=DECOMP, **options,
    )  # fmt: skip


_SETUPS: dict[tuple[str, str, str], zk.ZkSetup] = {}


@pytest.fixture(scope="session")
def setups(env: Env, model_a: Model, model_b: Model) -> Any:
    """setups(model_name, input_visibility, param_visibility) -> ZkSetup, cached."""
    by_name = {"a": model_a, "b": model_b}

    def get(name: str, inp: str = "public", param: str = "fixed") -> zk.ZkSetup:
        key = (name, inp, param)
        if key not in _SETUPS:
            _SETUPS[key] = do_setup(
                env, by_name[name], input_visibility=inp, param_visibility=param
            )
        return _SETUPS[key]

    return get


@pytest.fixture()
def store_copy(env: Env, tmp_path: Path) -> LocalBlobStore:
    """A private copy of the shared store, for tests that damage blobs."""
    shutil.copytree(env.root / "blobs", tmp_path / "blobs")
    return LocalBlobStore(tmp_path / "blobs")
