"""A ``str`` path works wherever a path is taken; ``bytes`` always mean content."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inferproof import Bundle, LocalNode
from inferproof.client import Client
from inferproof.errors import InputError
from inferproof.testing import mlp_model

from ..node.conftest import Running


def test_library_paths_may_be_str(tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(mlp_model((8, 2)))
    with LocalNode(str(tmp_path / "home")) as node:
        record = node.push(str(model), name="m")
        assert record.size == model.stat().st_size
        bundle = node.infer("m", {"x": np.ones((1, 8), np.float32)}).bundle
        bundle.write(str(tmp_path / "b.json"))
        assert Bundle.read(str(tmp_path / "b.json")).envelope == bundle.envelope
        with pytest.raises(InputError, match="does not exist"):
            node.push(str(tmp_path / "absent.onnx"), name="x")


def test_client_push_of_a_str_uploads_the_file(running: Running, tmp_path: Path) -> None:
    model = tmp_path / "m.onnx"
    model.write_bytes(mlp_model((8, 2)))
    with Client(running.url, token=running.token, home=tmp_path / "c") as client:
        record = client.push(str(model), name="m", version="1")
        assert record.size == model.stat().st_size
        with pytest.raises(InputError, match="does not exist"):
            client.push(str(tmp_path / "absent.onnx"), name="x")


def test_more_public_paths_may_be_str(tmp_path: Path) -> None:
    import json

    from inferproof.hub import LocalBlobStore
    from inferproof.node import TokenStore
    from inferproof.verify import TrustRoot, load_policy

    store = LocalBlobStore(str(tmp_path / "blobs"))
    assert store.get(store.put(b"x")) == b"x"
    tokens = TokenStore(str(tmp_path / "home"))
    assert tokens.check(tokens.create("t")) is not None
    policy = tmp_path / "policy.json"
    policy.write_text(json.dumps({"version": 1}))
    trust = TrustRoot.from_directory(str(tmp_path / "trust"))
    assert load_policy(str(policy), trust)[0] == trust
    with Client("http://127.0.0.1:9", home=str(tmp_path / "c")) as client:
        assert client.url == "http://127.0.0.1:9"
