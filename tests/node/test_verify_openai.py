"""verify_openai: the receipt on an official ``openai`` client's answer, verified.

The real ``openai`` client talks to real nodes on loopback serving the tiny GGUF; what
a hostile node could change is changed on the answer the client received.
"""

from __future__ import annotations

import asyncio
import copy
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import inferproof
from inferproof.client import AsyncClient, Client, verify_openai
from inferproof.errors import InputError, VerificationError
from inferproof.verify import Policy

from ._chat import STRICT, openai_for, serving, tiny_gguf
from .conftest import Running

ASK: dict[str, Any] = {
    "model": "tiny",
    "messages": [{"role": "user", "content": "What is the capital of France?"}],
    "temperature": 0,
    "max_tokens": 12,
}


@pytest.fixture()
def chat_node(make_node: Callable[..., Running]) -> Running:
    return serving(make_node, tiny_gguf())


def _headers(nonce: str, private: bool = False) -> dict[str, str]:
    return {"Inferproof-Nonce": nonce, "Inferproof-Private": "true" if private else "false"}


def _ask(running: Running, nonce: str, private: bool = False, **extra: Any) -> Any:
    body = {**ASK, **extra}
    return openai_for(running).chat.completions.create(
        **body, extra_headers=_headers(nonce, private)
    )


def _client(running: Running, tmp_path: Path, **kw: Any) -> Client:
    return Client(running.url, token=running.token, home=tmp_path / "client", **kw)


def _statuses(report: Any) -> dict[str, str]:
    return {c.name: c.status.value for c in report.checks}


def test_a_chat_completion_verifies_with_a_client(chat_node: Running, tmp_path: Path) -> None:
    nonce = secrets.token_hex(16)
    answer = _ask(chat_node, nonce)
    assert type(answer).__name__ == "ChatCompletion"
    with _client(chat_node, tmp_path) as client:
        report = verify_openai(answer, client=client, nonce=nonce, request=ASK)
    assert report.verified
    checks = _statuses(report)
    for name in ("signature", "output.digest", "input", "nonce", "log.inclusion"):
        assert checks[name] == "passed", name
    for name in ("log.consistency", "model.requested", "input.requested"):
        assert checks[name] == "passed", name
    assert report.receipt.nonce == nonce


def test_offline_with_a_trust_root_and_a_strict_policy(chat_node: Running, tmp_path: Path) -> None:
    nonce = secrets.token_hex(16)
    answer = _ask(chat_node, nonce)
    report = verify_openai(
        answer.to_dict(),
        trust=chat_node.node.trust_root(),
        policy=STRICT,
        nonce=nonce,
        model="tiny",
        model_file=tiny_gguf(),
    )
    checks = {c.name: c for c in report.checks}
    assert checks["output.fingerprint"].detail.startswith("bit-identical: prefill of")
    assert checks["model.requested"].passed
    assert checks["input.requested"].status.value == "not_checked"  # no request given
    assert checks["log.consistency"].status.value == "not_checked"  # no memory offline


def test_an_edited_text_fails_output_digest(chat_node: Running, tmp_path: Path) -> None:
    nonce = secrets.token_hex(16)
    answer = _ask(chat_node, nonce)
    answer.choices[0].message.content = "The capital of France is Paris."
    as_dict = _ask(chat_node, nonce2 := secrets.token_hex(16)).to_dict()
    as_dict["choices"][0]["message"]["content"] += "!"
    with _client(chat_node, tmp_path) as client:
        with pytest.raises(VerificationError) as exc:
            verify_openai(answer, client=client, nonce=nonce, request=ASK)
        with pytest.raises(VerificationError) as offline:
            verify_openai(as_dict, trust=client.trust_root(), nonce=nonce2)
    assert exc.value.check == offline.value.check == "output.digest"
    assert "the answer shows 'The capital of France is Paris.'" in exc.value.detail


def test_an_edited_bundle_fails_output_digest(chat_node: Running, tmp_path: Path) -> None:
    nonce = secrets.token_hex(16)
    edited = _ask(chat_node, nonce).to_dict()
    edited["inferproof"]["bundle"]["outputs"]["text"] = "Paris."
    edited["choices"][0]["message"]["content"] = "Paris."
    with _client(chat_node, tmp_path) as client, pytest.raises(VerificationError) as exc:
        verify_openai(edited, client=client, nonce=nonce)
    assert exc.value.check == "output.digest" and "hashes to" in exc.value.detail


def test_a_receipt_from_another_node_fails_the_signature(
    chat_node: Running, make_node: Callable[..., Running], tmp_path: Path
) -> None:
    other = serving(make_node, tiny_gguf(), name="other")
    nonce = secrets.token_hex(16)
    answer = _ask(other, nonce)
    with _client(chat_node, tmp_path) as client:
        client.trust_root()  # pins chat_node
        with pytest.raises(VerificationError) as exc:
            verify_openai(answer, client=client, nonce=nonce)
    with pytest.raises(VerificationError) as offline:
        verify_openai(answer, trust=chat_node.node.trust_root(), nonce=nonce)
    assert exc.value.check == offline.value.check == "signature"
    assert verify_openai(answer, trust=other.node.trust_root(), nonce=nonce).verified


def _stream(running: Running, nonce: str, **extra: Any) -> list[Any]:
    created = openai_for(running).chat.completions.create(
        **ASK, stream=True, extra_headers=_headers(nonce), **extra
    )
    return list(created)


def test_a_stream_verifies_from_its_chunks(chat_node: Running, tmp_path: Path) -> None:
    nonce, usage = secrets.token_hex(16), secrets.token_hex(16)
    chunks = _stream(chat_node, nonce)
    with_usage = _stream(chat_node, usage, stream_options={"include_usage": True})
    assert type(chunks[-1]).__name__ == "ChatCompletionChunk"
    assert "inferproof" in chunks[-1].model_extra
    request = {**ASK, "stream": True}
    with _client(chat_node, tmp_path) as client:
        report = verify_openai(chunks, client=client, nonce=nonce, request=request)
        counted = client.verify_openai(iter(with_usage), nonce=usage)
    assert report.verified and counted.verified
    assert _statuses(report)["input.requested"] == "passed"
    assert "the text shown is the signed answer" in next(
        c.detail for c in report.checks if c.name == "output.digest"
    )


def test_an_edited_stream_fails(chat_node: Running, tmp_path: Path) -> None:
    nonce = secrets.token_hex(16)
    chunks = _stream(chat_node, nonce)
    edited = copy.deepcopy(chunks)
    edited[1].choices[0].delta.content = "Paris"
    with _client(chat_node, tmp_path) as client:
        with pytest.raises(VerificationError) as exc:
            verify_openai(edited, client=client, nonce=nonce)
        with pytest.raises(VerificationError) as cut:
            verify_openai(chunks[:-1], client=client, nonce=nonce)
        with pytest.raises(VerificationError) as dropped:
            verify_openai([chunks[0], *chunks[2:]], client=client, nonce=nonce)
    assert exc.value.check == dropped.value.check == "output.digest"
    assert cut.value.check == "receipt"


def test_a_text_completion_verifies(chat_node: Running, tmp_path: Path) -> None:
    nonce = secrets.token_hex(16)
    ask = {"model": "tiny", "prompt": "Once upon a time", "temperature": 0, "max_tokens": 8}
    answer = openai_for(chat_node).completions.create(**ask, extra_headers=_headers(nonce))
    assert type(answer).__name__ == "Completion"
    with _client(chat_node, tmp_path) as client:
        report = verify_openai(answer, client=client, nonce=nonce, request=ask)
        answer.choices[0].text += "!"
        with pytest.raises(VerificationError) as exc:
            verify_openai(answer, client=client, nonce=nonce, request=ask)
    assert report.verified and _statuses(report)["input.requested"] == "passed"
    assert exc.value.check == "output.digest"


def test_a_private_answer_verifies_with_its_opening(chat_node: Running, tmp_path: Path) -> None:
    nonce = secrets.token_hex(16)
    answer = _ask(chat_node, nonce, private=True)
    assert "opening" in answer.model_extra["inferproof"]
    with _client(chat_node, tmp_path) as client:
        report = verify_openai(answer, client=client, nonce=nonce, request=ASK)
        without = answer.to_dict()
        del without["inferproof"]["opening"]
        with pytest.raises(VerificationError) as exc:
            verify_openai(without, client=client, nonce=nonce, request=ASK)
        with pytest.raises(VerificationError) as unopened:
            verify_openai(without, trust=client.trust_root(), policy=Policy(), request=ASK)
    assert report.verified and _statuses(report)["input.requested"] == "passed"
    assert report.receipt.input_commitment is not None
    assert exc.value.check == "input"  # the policy requires the request: give the opening
    # A policy not requiring it leaves "input" not checked, but the request sent cannot
    # be compared either: the answer is not returned as verified.
    assert unopened.value.check == "input.requested"


@pytest.mark.parametrize(
    ("kwargs", "check"),
    [
        ({}, "nonce"),  # the default policy requires the nonce sent
        ({"nonce": "another"}, "nonce"),
        ({"model": "other"}, "model.requested"),
        ({"request": {**ASK, "max_tokens": 99}}, "input.requested"),
        ({"request": {**ASK, "messages": [{"role": "user", "content": "Hi"}]}}, "input.requested"),
    ],
)
def test_what_was_asked_must_match(
    chat_node: Running, tmp_path: Path, kwargs: dict[str, Any], check: str
) -> None:
    nonce = secrets.token_hex(16)
    answer = _ask(chat_node, nonce)
    kwargs = {"nonce": nonce, **kwargs} if kwargs != {} else {}
    with _client(chat_node, tmp_path) as client, pytest.raises(VerificationError) as exc:
        verify_openai(answer, client=client, **kwargs)
    assert exc.value.check == check


def test_a_weaker_policy_reports_what_it_did_not_check(chat_node: Running) -> None:
    answer = _ask(chat_node, secrets.token_hex(16))
    report = verify_openai(answer, trust=chat_node.node.trust_root(), policy=Policy())
    checks = _statuses(report)
    assert report.verified and checks["nonce"] == "not_checked"
    assert checks["model.requested"] == checks["input.requested"] == "not_checked"


def test_the_async_client_verifies_too(chat_node: Running, tmp_path: Path) -> None:
    nonce = secrets.token_hex(16)
    answer = _ask(chat_node, nonce)

    async def main() -> Any:
        async with AsyncClient(chat_node.url, home=tmp_path / "c") as client:
            with pytest.raises(InputError, match=r"await client\.verify_openai"):
                verify_openai(answer, client=client, nonce=nonce)
            return await client.verify_openai(answer, nonce=nonce, request=ASK)

    assert asyncio.run(main()).verified


@pytest.mark.parametrize(
    ("response", "kwargs", "match"),
    [
        ("ok", {"trust": "t"}, "give a client=, or the trust root"),
        ("ok", {}, "give a client=, or the trust root"),
        ("ok", {"client": True, "policy": Policy()}, "not both"),
        (42, {"trust": True}, "give an openai answer"),
        ("text", {"trust": True}, "give an openai answer"),
        ({"object": "list"}, {"trust": True}, "not an OpenAI answer"),
        ("no-receipt", {"trust": True}, "carries no receipt"),
        ([{"object": "chat.completion.chunk", "choices": [], "x": 1}], {"trust": True}, "receipt"),
        ("ok", {"trust": True, "request": ["not", "a", "body"]}, "request must be"),
        ("ok", {"trust": True, "request": {**ASK, "tools": []}}, "unsupported parameter"),
    ],
)
def test_bad_arguments(
    chat_node: Running, tmp_path: Path, response: Any, kwargs: dict[str, Any], match: str
) -> None:
    nonce = secrets.token_hex(16)
    answer = _ask(chat_node, nonce).to_dict()
    if response == "ok":
        response = answer
    elif response == "no-receipt":
        response = {k: v for k, v in answer.items() if k != "inferproof"}
    with _client(chat_node, tmp_path) as client:
        if kwargs.get("client") is True:
            kwargs["client"] = client
        if kwargs.get("trust") is True:
            kwargs["trust"] = client.trust_root()
        with pytest.raises((InputError, VerificationError), match=match):
            verify_openai(response, nonce=nonce, **kwargs)


def test_it_is_public_at_the_top() -> None:
    assert inferproof.verify_openai is verify_openai
