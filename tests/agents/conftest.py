"""A local node and a real HTTP node (loopback), each with the credit-risk ONNX model
and the tiny GGUF model pushed as ``credit`` and ``tiny``."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from inferproof import LocalNode
from inferproof.testing import tiny_llama_gguf

from ..node.conftest import Running, start


def _models(tmp_path: Path, credit_model) -> tuple[Path, Path]:
    onnx, gguf = tmp_path / "credit.onnx", tmp_path / "tiny.gguf"
    onnx.write_bytes(credit_model[0])
    gguf.write_bytes(tiny_llama_gguf())
    return onnx, gguf


@pytest.fixture()
def agent_node(home: Path, credit_model, tmp_path: Path) -> Iterator[LocalNode]:
    node = LocalNode(home)
    onnx, gguf = _models(tmp_path, credit_model)
    node.push(onnx, name="credit")
    node.push(gguf, name="tiny")
    yield node
    node.close()


@pytest.fixture()
def remote(tmp_path: Path, credit_model, monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    running = start(tmp_path / "server-home")
    onnx, gguf = _models(tmp_path, credit_model)
    running.node.push(onnx, name="credit")
    running.node.push(gguf, name="tiny")
    # The client's own home (its pins and checkpoints), not the server's.
    monkeypatch.setenv("INFERPROOF_HOME", str(tmp_path / "client-home"))
    yield running
    running.stop()
