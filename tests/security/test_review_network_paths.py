"""Issue 11, item 5: network callers reached local files.

Chat with ``"model": "tiny.gguf"`` loaded a GGUF from the node's working directory,
a hub model *named* ``mlp.onnx`` made ``/v1/infer`` run the file of that name, the
file then became a public blob, and "model file X does not exist" told callers
which files exist. Over HTTP (and in the library, for a ``str``) a model reference
is a name, ``name:version`` or digest, never a path.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from inferproof.errors import ModelNotFound
from inferproof.receipts import Bundle
from inferproof.testing import mlp_model, tiny_llama_gguf

from ..node.conftest import Running


@pytest.fixture()
def node_in_cwd(make_node: Callable[..., Running], monkeypatch: pytest.MonkeyPatch) -> Running:
    """A node whose working directory holds model files a caller should never reach."""
    running = make_node()
    monkeypatch.chdir(running.home)
    (running.home / "mlp.onnx").write_bytes(mlp_model((8, 16, 2), seed=99))
    (running.home / "tiny.gguf").write_bytes(tiny_llama_gguf())
    return running


def test_a_hub_model_named_like_a_file_runs_the_hub_copy(node_in_cwd: Running) -> None:
    hub_model = mlp_model((8, 16, 2), seed=1)
    with node_in_cwd.http() as http:
        pushed = http.post("/v1/models", params={"name": "mlp.onnx"}, content=hub_model,
                           headers={"content-type": "application/octet-stream"})  # fmt: skip
        assert pushed.status_code == 201, pushed.text
        x = np.ones((1, 8), np.float32).tolist()
        got = http.post("/v1/infer", json={"model": "mlp.onnx", "inputs": {"x": x}})
    assert got.status_code == 200, got.text
    bundle = Bundle.from_json(got.json()["bundle"])
    assert bundle.receipt.model_digest == "sha256:" + hashlib.sha256(hub_model).hexdigest()
    file_digest = (
        "sha256:" + hashlib.sha256((node_in_cwd.home / "mlp.onnx").read_bytes()).hexdigest()
    )
    assert not node_in_cwd.node.hub.blobs.has(file_digest)


def test_chat_never_loads_a_file_from_the_working_directory(node_in_cwd: Running) -> None:
    body = {"model": "tiny.gguf", "messages": [{"role": "user", "content": "Hi"}]}
    missing = {**body, "model": "absent.gguf"}
    with node_in_cwd.http() as http:
        present = http.post("/v1/chat/completions", json=body)
        absent = http.post("/v1/chat/completions", json=missing)
    assert present.status_code == absent.status_code == 404
    assert present.json()["error"]["code"] == "model_not_found"
    # The same answer whether or not the file exists: no oracle on the node's files.
    assert present.json()["error"]["message"].replace("tiny", "X") == absent.json()["error"][
        "message"
    ].replace("absent", "X")
    gguf = "sha256:" + hashlib.sha256((node_in_cwd.home / "tiny.gguf").read_bytes()).hexdigest()
    assert not node_in_cwd.node.hub.blobs.has(gguf)


def test_infer_with_a_path_like_name_is_not_found(node_in_cwd: Running) -> None:
    with node_in_cwd.http() as http:
        got = http.post("/v1/infer", json={"model": "mlp.onnx", "inputs": {"x": [[1.0] * 8]}})
    assert got.status_code == 404, got.text
    assert "mlp.onnx" in got.json()["error"]["message"]
    assert "file" not in got.json()["error"]["message"]


def test_the_library_takes_a_str_as_a_hub_reference(node_in_cwd: Running) -> None:
    node = node_in_cwd.node
    with pytest.raises(ModelNotFound):
        node.infer("mlp.onnx", {"x": np.ones((1, 8), np.float32)})
    with pytest.raises(ModelNotFound):
        node.chat("tiny.gguf", {"messages": [{"role": "user", "content": "Hi"}]})
    # A path object is a file, on purpose: the local caller asked for it.
    result = node.infer(Path("mlp.onnx"), {"x": np.ones((1, 8), np.float32)})
    assert result.bundle.receipt.model["name"] == "mlp"
