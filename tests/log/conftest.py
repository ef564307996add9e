"""Fixtures shared by the log tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inferproof.log import ALG_COSIGNATURE_V1, Log, SignerKey

VECTORS = Path(__file__).resolve().parent / "vectors"


def entry(i: int) -> bytes:
    return f"entry-{i}".encode()


@pytest.fixture(scope="session")
def log_signer() -> SignerKey:
    return SignerKey.generate("test.example/log")


@pytest.fixture(scope="session")
def witness_signer() -> SignerKey:
    return SignerKey.generate("test.example/witness1", ALG_COSIGNATURE_V1)


@pytest.fixture
def log(tmp_path: Path, log_signer: SignerKey) -> Iterator[Log]:
    with Log.open(tmp_path / "log.sqlite", log_signer, max_delay=0.001) as opened:
        yield opened
