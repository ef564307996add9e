"""Model uploads stream to disk under a cap the node's operator sets (issue 12)."""

from __future__ import annotations

from collections.abc import Callable

from typer.testing import CliRunner

from inferproof.cli import app
from inferproof.node import NodeConfig
from inferproof.testing import mlp_model, tiny_llama_gguf

from .conftest import Running


def test_the_cap_is_the_operators_and_named(make_node: Callable[..., Running]) -> None:
    gguf = tiny_llama_gguf()
    running = make_node(NodeConfig(max_model_bytes=len(gguf) - 1))
    with running.http() as http:
        raw = http.post("/v1/models", params={"name": "tiny"}, content=gguf,
                        headers={"content-type": "application/octet-stream"})  # fmt: skip
        form = http.post("/v1/models", params={"name": "tiny"},
                         files={"model": ("m", gguf)})  # fmt: skip
        small = http.post("/v1/models", params={"name": "mlp"}, content=mlp_model((8, 2)),
                          headers={"content-type": "application/octet-stream"})  # fmt: skip
    for refused in (raw, form):
        assert refused.status_code == 413
        message = refused.json()["error"]["message"]
        assert f"{len(gguf) - 1}-byte cap" in message and "--max-model-bytes" in message
    assert small.status_code == 201
    assert not list((running.home / "node" / "uploads").iterdir())  # no upload left behind


def test_a_raised_cap_takes_a_bigger_model(make_node: Callable[..., Running]) -> None:
    gguf = tiny_llama_gguf()
    running = make_node(NodeConfig(max_model_bytes=len(gguf)))
    with running.http() as http:
        got = http.post("/v1/models", params={"name": "tiny"}, content=gguf,
                        headers={"content-type": "application/octet-stream"})  # fmt: skip
    assert got.status_code == 201, got.text
    assert got.json()["format"] == "gguf"


def test_serve_options_are_checked() -> None:
    runner = CliRunner()
    for args, needle in [
        (["--max-model-bytes", "0"], "--max-model-bytes"),
        (["--chat-threads", "0"], "--chat-threads"),
        (["--max-context", "4"], "--max-context must be at least 16"),
        (["--chat-timeout", "0"], "chat_timeout must be > 0"),
    ]:
        result = runner.invoke(app, ["serve", "--port", "0", *args])
        assert result.exit_code == 2, (args, result.output)
        assert needle in result.output + result.stderr
