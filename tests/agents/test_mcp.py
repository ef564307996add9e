"""The MCP server, driven by the official SDK's own client: in process, over stdio (a
real ``inferproof mcp`` subprocess) and over streamable HTTP (a real server on loopback)."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
import uvicorn
from mcp import Client, StdioServerParameters

from inferproof import Bundle, LocalNode
from inferproof import Client as NodeClient
from inferproof.integrations import LocalBackend, RemoteBackend, Tools
from inferproof.integrations.mcp import create_server, http_app
from inferproof.node._serve import bind, url_of
from inferproof.receipts import RunRecord, receipt_digest
from inferproof.verify import RunVerifier, TrustRoot

X = [[52.0, 0.41, 34.0, 2.0]]
INFER = {"model": "credit:latest", "inputs": {"X": X}}


def _server(node: LocalNode):  # type: ignore[no-untyped-def]
    tools = Tools(LocalBackend(node))
    return tools, create_server(tools)


def _call(server: Any, *calls: tuple[str, dict[str, Any]]) -> list[Any]:
    async def go() -> list[Any]:
        async with Client(server) as c:
            return [await c.call_tool(name, args) for name, args in calls]

    return anyio.run(go)


def test_tools_and_their_schemas_come_from_the_models(agent_node) -> None:
    _, server = _server(agent_node)

    async def go() -> Any:
        async with Client(server) as c:
            return await c.list_tools()

    tools = {t.name: t for t in anyio.run(go).tools}
    assert sorted(tools) == ["chat", "infer", "list_models", "log_lookup", "run_record",
                             "show_receipt", "verify_bundle"]  # fmt: skip
    schema = tools["infer"].input_schema
    assert schema["properties"]["model"]["enum"] == ["credit:latest"]
    inputs = schema["properties"]["inputs"]["anyOf"][0]
    assert inputs["properties"]["X"]["description"] == "X: float32[?, 4]"
    row = {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4}
    assert inputs["properties"]["X"]["items"] == row  # any number of rows of 4
    assert tools["chat"].input_schema["properties"]["model"]["enum"] == ["tiny:latest"]


def test_an_answer_comes_with_its_verified_receipt(agent_node) -> None:
    tools, server = _server(agent_node)
    [infer, chat] = _call(server, ("infer", INFER), ("chat", {"model": "tiny", "prompt": "Hi",
                                                               "max_tokens": 6}))  # fmt: skip
    for result in (infer, chat):
        assert not result.is_error
        got = result.structured_content
        assert json.loads(result.content[0].text) == got
        bundle = tools.backend.bundle_for(got["receipt_digest"])
        assert bundle is not None and receipt_digest(bundle) == got["receipt_digest"]
        assert got["verification"]["verified"] is True
        checks = {c["name"]: c["status"] for c in got["verification"]["checks"]}
        assert checks["signature"] == "passed" and checks["log.inclusion"] == "passed"
        assert checks["nonce"] == "passed"
    out = infer.structured_content
    assert len(out["outputs"]["probabilities"][0]) == 2 and out["log_index"] == 0
    assert chat.structured_content["text"] == tools.backend.bundle_for(
        chat.structured_content["receipt_digest"]).outputs["text"]  # fmt: skip
    assert [out["run"]["call"], chat.structured_content["run"]["call"]] == [0, 1]


@pytest.mark.parametrize(
    ("name", "args", "message"),
    [
        ("infer", {"model": "credit"}, "bad arguments: missing argument(s) ['inputs']"),
        ("infer", {**INFER, "x": 1}, "bad arguments: unknown argument(s) ['x']"),
        ("infer", {"model": "credit", "inputs": {"X": [[1, 2, 3]]}}, "has shape [1, 3]"),
        ("infer", {"model": "nope", "inputs": {"X": X}}, "bad arguments: no model"),
        ("infer", {"model": "credit", "inputs": {"X": "text"}}, "bad arguments:"),
        ("infer", {"model": "credit", "inputs": []}, "inputs must be an object"),
        ("chat", {"model": "tiny"}, "give a prompt or messages"),
        ("chat", {"model": "tiny", "prompt": "a", "messages": []}, "give a prompt or messages"),
        ("chat", {"model": "tiny", "prompt": "a", "temperature": -1}, "bad arguments:"),
        ("chat", {"model": "tiny", "messages": [{"role": "x"}]}, "bad arguments:"),
        ("show_receipt", {"receipt_digest": "sha256:" + "0" * 64}, "no receipt"),
        ("show_receipt", {"receipt_digest": "nope"}, "bad arguments:"),
        ("log_lookup", {"receipt_digest": "sha256:" + "1" * 64}, "bad arguments: no receipt"),
        ("verify_bundle", {"bundle": {"mediaType": "x"}}, "bad arguments: not an inferproof"),
        ("run_record", {"extra": True}, "unknown argument(s) ['extra']"),
        ("no_such_tool", {}, "unknown tool 'no_such_tool'"),
    ],
)
def test_bad_arguments_are_tool_errors_and_the_server_stays_up(
    agent_node, name: str, args: dict[str, Any], message: str
) -> None:
    tools, server = _server(agent_node)
    bad, good = _call(server, (name, args), ("infer", INFER))
    assert bad.is_error and bad.structured_content is None
    assert message in bad.content[0].text
    assert not good.is_error
    assert len(tools.run) == 1  # a failed call joins no run


def test_verify_show_and_look_up_a_receipt(agent_node) -> None:
    tools, server = _server(agent_node)
    [first] = _call(server, ("infer", INFER))
    digest = first.structured_content["receipt_digest"]
    bundle = tools.backend.bundle_for(digest).to_json()
    forged = copy.deepcopy(bundle)
    forged["outputs"]["probabilities"]["data"][0] += 0.25  # the signed answer, changed
    ok, bad, shown, found = _call(
        server,
        ("verify_bundle", {"bundle": bundle}),
        ("verify_bundle", {"bundle": forged}),
        ("show_receipt", {"receipt_digest": digest}),
        ("log_lookup", {"receipt_digest": digest}),
    )
    assert ok.structured_content["verified"] is True
    assert not bad.is_error and bad.structured_content["verified"] is False
    failed = [c["name"] for c in bad.structured_content["checks"] if c["status"] == "failed"]
    assert failed == ["output.digest"]
    view = shown.structured_content
    assert view["model"]["name"] == "credit" and view["bundle"] == bundle and view["verified"]
    look = found.structured_content
    assert look["log_index"] == 0 and look["checkpoint"]["size"] >= 1
    assert look["checkpoint"]["origin"] == agent_node.log.origin
    assert look["inclusion"].startswith("verified")


def test_resources_are_the_models_and_the_receipts(agent_node) -> None:
    _, server = _server(agent_node)

    async def go() -> tuple[Any, Any, Any, Any]:
        async with Client(server) as c:
            answer = await c.call_tool("infer", INFER)
            listed = await c.list_resources()
            digest = answer.structured_content["receipt_digest"]
            receipt = await c.read_resource(f"inferproof://receipts/{digest}")
            models = await c.read_resource("inferproof://models")
            return answer, listed, receipt, models

    answer, listed, receipt, models = anyio.run(go)
    digest = answer.structured_content["receipt_digest"]
    assert [str(r.uri) for r in listed.resources] == [
        "inferproof://models", f"inferproof://receipts/{digest}"]  # fmt: skip
    assert receipt_digest(Bundle.loads(receipt.contents[0].text)) == digest
    assert json.loads(models.contents[0].text)["tensor_models"][0]["model"] == "credit:latest"


def test_the_run_record_tool_signs_every_call_so_far(agent_node) -> None:
    _, server = _server(agent_node)
    results = _call(server, ("infer", INFER), ("infer", {"model": "x", "inputs": {}}),
                    ("chat", {"model": "tiny", "prompt": "Hi", "max_tokens": 4}),
                    ("run_record", {}))  # fmt: skip
    got = results[-1].structured_content
    assert got["calls"] == 2
    record = RunRecord.from_json(got["record"])
    report = RunVerifier.for_audit(agent_node.verifier()).verify(record)
    assert [c.tool for c in report.calls] == ["infer", "chat"]
    assert [c.receipt for c in report.calls] == [
        results[0].structured_content["receipt_digest"],
        results[2].structured_content["receipt_digest"],
    ]


def test_an_answer_whose_receipt_fails_is_withheld(remote, tmp_path: Path) -> None:
    # The agent's client trusts another node's key: the receipt's signature fails.
    with LocalNode(tmp_path / "stranger") as stranger:
        trust = TrustRoot.from_keys(node_keys=[stranger.public_key])
    client = NodeClient(remote.url, token=remote.token, trust=trust)
    tools = Tools(RemoteBackend(client))
    [result] = _call(create_server(tools), ("infer", INFER))
    client.close()
    text = result.content[0].text
    assert result.is_error and result.structured_content is None
    assert text.startswith("verification failed: check signature failed:")
    assert "the answer is withheld" in text and "probabilities" not in text
    assert len(tools.run) == 0


def test_a_remote_node_behind_the_server(remote) -> None:
    client = NodeClient(remote.url, token=remote.token)
    tools = Tools(RemoteBackend(client))
    server = create_server(tools)
    answer, found, record = _call(server, ("infer", INFER), ("log_lookup", {}), ("run_record", {}))
    assert not answer.is_error and answer.structured_content["verification"]["verified"]
    digest = answer.structured_content["receipt_digest"]
    [found] = _call(server, ("log_lookup", {"receipt_digest": digest}))
    assert found.structured_content["log_index"] == answer.structured_content["log_index"]
    assert "consistent" in found.structured_content["inclusion"]
    [record] = _call(server, ("run_record", {}))
    report = client.check_run(RunRecord.from_json(record.structured_content["record"]))
    assert report.verified and report.statement.node_id == remote.node.node_id
    client.close()


def _seed_home(home: Path, credit_model: Any, tmp_path: Path) -> None:
    from inferproof.testing import tiny_llama_gguf

    with LocalNode(home) as node:
        (tmp_path / "c.onnx").write_bytes(credit_model[0])
        (tmp_path / "t.gguf").write_bytes(tiny_llama_gguf())
        node.push(tmp_path / "c.onnx", name="credit")
        node.push(tmp_path / "t.gguf", name="tiny")


def test_over_stdio_with_a_run_record_on_exit(home: Path, credit_model, tmp_path: Path) -> None:
    _seed_home(home, credit_model, tmp_path)
    record = tmp_path / "run.json"
    env = {**os.environ, "INFERPROOF_HOME": str(home)}
    params = StdioServerParameters(
        command=sys.executable, args=["-m", "inferproof", "mcp", "--record", str(record)], env=env
    )

    async def go() -> list[Any]:
        async with Client(params) as c:
            names = [t.name for t in (await c.list_tools()).tools]
            bad = await c.call_tool("infer", {"model": "credit"})
            good = await c.call_tool("infer", INFER)
            return [names, bad, good]

    names, bad, good = anyio.run(go)
    assert "infer" in names and bad.is_error and not good.is_error
    deadline = time.monotonic() + 30
    while not record.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    cli = [sys.executable, "-m", "inferproof", "run", "verify", str(record)]
    ok = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stderr
    assert "1 call(s): VERIFIED" in ok.stdout
    obj = json.loads(record.read_text())
    obj["calls"] = []
    record.write_text(json.dumps(obj))
    bad_run = subprocess.run(cli, env=env, capture_output=True, text=True, timeout=120)
    assert bad_run.returncode == 1
    assert "error: run record NOT verified: run.calls:" in bad_run.stderr
    assert "Traceback" not in bad_run.stderr


def test_over_streamable_http(agent_node) -> None:
    _, server = _server(agent_node)
    sock = bind("127.0.0.1", 0)
    config = uvicorn.Config(http_app(server), log_level="warning", lifespan="on")
    web = uvicorn.Server(config)
    thread = threading.Thread(target=web.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    url = url_of(sock) + "/mcp"
    deadline = time.monotonic() + 30
    while not web.started and time.monotonic() < deadline:
        time.sleep(0.02)
    try:

        async def go() -> list[Any]:
            async with Client(url) as c:
                return [await c.call_tool("infer", {"model": "credit"}),
                        await c.call_tool("infer", INFER)]  # fmt: skip

        bad, good = anyio.run(go)
        assert bad.is_error and "missing argument(s) ['inputs']" in bad.content[0].text
        assert not good.is_error and good.structured_content["verification"]["verified"]
        # DNS-rebinding protection: a foreign Host header is refused.
        refused = httpx.post(url, json={}, headers={"Host": "evil.example"})
        assert refused.status_code in (403, 421)
    finally:
        web.should_exit = True
        thread.join(30)


def test_inferproof_mcp_with_node_over_stdio(remote, tmp_path: Path) -> None:
    env = {**os.environ, "INFERPROOF_HOME": str(tmp_path / "agent-home"),
           "INFERPROOF_TOKEN": remote.token}  # fmt: skip
    args = ["-m", "inferproof", "mcp", "--node", remote.url]
    params = StdioServerParameters(command=sys.executable, args=args, env=env)

    async def go() -> list[Any]:
        async with Client(params) as c:
            return [await c.call_tool("infer", INFER), await c.call_tool("run_record", {})]

    answer, record = anyio.run(go)
    assert not answer.is_error, answer.content[0].text
    assert answer.structured_content["verification"]["verified"]
    signed = RunRecord.from_json(record.structured_content["record"])
    assert signed.statement.node_id == remote.node.node_id and len(signed.bundles) == 1
