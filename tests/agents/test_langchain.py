"""The LangChain components with real LangChain objects: a runnable chain, streaming,
a tool call, and the callback handler's run record."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from langchain_core.messages import AIMessage, AIMessageChunk, HumanMessage, ToolMessage
from langchain_core.output_parsers import StrOutputParser
from langchain_core.prompts import ChatPromptTemplate
from langchain_core.utils.function_calling import convert_to_openai_tool

from inferproof import Client, LocalNode, VerificationError
from inferproof.errors import InputError
from inferproof.integrations import LocalBackend, RemoteBackend
from inferproof.integrations.langchain import ReceiptCollector, VerifiedChatModel, model_tools
from inferproof.receipts import Bundle, receipt_digest
from inferproof.verify import RunVerifier, TrustRoot

X = [[52.0, 0.41, 34.0, 2.0]]


@pytest.fixture()
def backend(agent_node):  # type: ignore[no-untyped-def]
    return LocalBackend(agent_node)


def test_a_chain_answers_with_its_receipt_and_the_collector_records_it(backend, agent_node) -> None:
    llm = VerifiedChatModel(backend=backend, model="tiny", max_tokens=8)
    collector = ReceiptCollector(backend, agent={"name": "test"})
    prompt = ChatPromptTemplate.from_messages([("system", "Be brief."), ("user", "{q}")])
    text = (prompt | llm | StrOutputParser()).invoke({"q": "Why?"}, {"callbacks": [collector]})
    message = (prompt | llm).invoke({"q": "Why?"}, {"callbacks": [collector]})
    assert isinstance(message, AIMessage) and message.content == text  # greedy: the same
    meta = message.response_metadata["inferproof"]
    bundle = Bundle.from_json(meta["bundle"])
    assert meta["receipt_digest"] == receipt_digest(bundle)
    assert meta["verification"]["verified"] is True
    assert bundle.outputs["text"] == text
    # The request the receipt signs is the chain's prompt.
    assert [m["role"] for m in bundle.inputs["messages"]] == ["system", "user"]
    record = collector.record()
    assert len(record.bundles) == 2 and record.statement.agent["framework"] == "langchain"
    RunVerifier.for_audit(agent_node.verifier()).verify(record)


def test_streaming_yields_the_text_then_the_receipt(backend) -> None:
    llm = VerifiedChatModel(backend=backend, model="tiny", max_tokens=10)
    chunks = list(llm.stream([HumanMessage("Tell me more")]))
    assert all(isinstance(c, AIMessageChunk) for c in chunks)
    whole = chunks[0]
    for c in chunks[1:]:
        whole = whole + c
    meta = whole.response_metadata["inferproof"]
    assert meta["verification"]["verified"] is True
    assert Bundle.from_json(meta["bundle"]).outputs["text"] == whole.content
    assert len(chunks) > 2  # token by token, not one piece


def test_a_tool_per_model_with_a_schema_from_its_signature(backend) -> None:
    [tool] = model_tools(backend)
    assert tool.name == "infer_credit"
    assert "X: float32[?, 4]" in tool.description
    # What a tool-calling chat model is given to bind the tool (OpenAI's function format).
    spec = convert_to_openai_tool(tool)["function"]
    assert spec["name"] == "infer_credit" and spec["parameters"]["required"] == ["X"]
    assert spec["parameters"]["properties"]["X"]["description"] == "X: float32[?, 4]"
    message = tool.invoke({"name": tool.name, "args": {"X": X}, "id": "c1", "type": "tool_call"})
    assert isinstance(message, ToolMessage) and message.tool_call_id == "c1"
    content = json.loads(message.content)
    assert content["verified"] is True and len(content["outputs"]["probabilities"][0]) == 2
    assert message.artifact["receipt_digest"] == content["receipt_digest"]


def test_the_collector_sees_tool_calls(backend, agent_node) -> None:
    [tool] = model_tools(backend)
    collector = ReceiptCollector(backend)
    for i in range(2):
        call = {"name": tool.name, "args": {"X": X}, "id": f"c{i}", "type": "tool_call"}
        tool.invoke(call, {"callbacks": [collector]})
    assert len(collector.receipts) == 2
    report = RunVerifier.for_audit(agent_node.verifier()).verify(collector.record())
    assert [c.tool for c in report.calls] == ["infer", "infer"]


def test_bad_tool_arguments_and_messages_raise_our_input_error(backend) -> None:
    [tool] = model_tools(backend)
    with pytest.raises(InputError, match=r"has shape \[1, 3\]"):
        tool.invoke({"X": [[1.0, 2.0, 3.0]]})
    llm = VerifiedChatModel(backend=backend, model="tiny")
    with pytest.raises(InputError, match="ToolMessage cannot be sent"):
        llm.invoke([ToolMessage("x", tool_call_id="1")])
    with pytest.raises(InputError, match="unknown chat parameter"):
        llm.invoke("hi", logprobs=True)


def test_a_receipt_that_fails_verification_raises(remote, tmp_path: Path) -> None:
    with LocalNode(tmp_path / "stranger") as stranger:
        trust = TrustRoot.from_keys(node_keys=[stranger.public_key])
    with Client(remote.url, token=remote.token, trust=trust) as client:
        backend = RemoteBackend(client)
        llm = VerifiedChatModel(backend=backend, model="tiny", max_tokens=6)
        with pytest.raises(VerificationError, match=r"^signature"):
            llm.invoke("Hello")
        with pytest.raises(VerificationError, match=r"^signature"):
            list(llm.stream("Hello"))
        [tool] = model_tools(backend)
        with pytest.raises(VerificationError, match=r"^signature"):
            tool.invoke({"X": X})


def test_remote_chat_and_stream_verify(remote) -> None:
    with Client(remote.url, token=remote.token) as client:
        backend = RemoteBackend(client)
        llm = VerifiedChatModel(backend=backend, model="tiny", max_tokens=6)
        message = llm.invoke("Hello")
        chunks = list(llm.stream("Hello"))
        streamed = chunks[0]
        for c in chunks[1:]:
            streamed = streamed + c
        collector = ReceiptCollector(backend)
        llm.invoke("Hello", config={"callbacks": [collector]})
        report = client.check_run(collector.record())
    assert message.response_metadata["inferproof"]["verification"]["verified"]
    assert streamed.response_metadata["inferproof"]["verification"]["verified"]
    assert report.verified
