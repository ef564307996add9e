"""OpenAI-shaped request bodies in, canonical requests out: every rejection names the field."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import pytest
import rfc8785

from inferproof.errors import InputError
from inferproof.runtime._llm_request import ChatRequest, Sampling, parse_request

MODEL = "sha256:" + "ab" * 32


def _chat(**extra: Any) -> dict[str, Any]:
    return {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], **extra}


def test_defaults_are_openais() -> None:
    parsed = parse_request(_chat(), "chat")
    assert parsed.model_ref == "tiny" and not parsed.stream
    s = parsed.request.sampling
    assert (s.temperature, s.top_p, s.presence_penalty, s.frequency_penalty) == (1.0, 1.0, 0.0, 0.0)
    assert (s.top_k, s.min_p, s.repeat_penalty, s.seed) == (0, 0.0, 1.0, None)
    assert parsed.request.max_tokens is None


def test_canonical_form_and_digest() -> None:
    parsed = parse_request(
        _chat(temperature=0.5, seed=7, stop="\n\n", max_completion_tokens=9, user="u1"), "chat"
    )
    req = parsed.request.bind(MODEL, max_tokens=9)
    expected = {
        "task": "chat",
        "model": MODEL,
        "max_tokens": 9,
        "sampling": {
            "temperature": 0.5,
            "top_p": 1,
            "top_k": 0,
            "min_p": 0,
            "repeat_penalty": 1,
            "presence_penalty": 0,
            "frequency_penalty": 0,
            "seed": 7,
        },
        "stop": ["\n\n"],
        "messages": [{"role": "user", "content": "Hi"}],
    }
    assert json.loads(json.dumps(req.to_json())) == expected
    assert req.digest == "sha256:" + hashlib.sha256(rfc8785.dumps(expected)).hexdigest()
    assert ChatRequest.from_json(json.loads(json.dumps(req.to_json()))) == req


def test_text_parts_are_joined() -> None:
    content = [{"type": "text", "text": "Hello, "}, {"type": "text", "text": "world"}]
    parsed = parse_request(_chat(messages=[{"role": "user", "content": content}]), "chat")
    assert parsed.request.messages == (("user", "Hello, world"),)


def test_completion_body() -> None:
    parsed = parse_request(
        {
            "model": "tiny",
            "prompt": "Once",
            "stream": True,
            "stream_options": {"include_usage": True},
        },
        "completion",
    )
    assert parsed.request.prompt == "Once" and parsed.stream and parsed.include_usage
    assert "messages" not in parsed.request.bind(MODEL, max_tokens=3).to_json()


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ([], "must be a JSON object"),
        (_chat(tools=[]), r"unsupported parameter\(s\) \['tools'\]"),
        ({"messages": [{"role": "user", "content": "x"}]}, "model must be a non-empty string"),
        (_chat(messages=[]), "messages must be a non-empty list"),
        (_chat(messages="hi"), "messages must be a non-empty list"),
        (_chat(messages=["hi"]), r"messages\[0\] must be an object"),
        (_chat(messages=[{"role": "tool", "content": "x"}]), r"messages\[0\].role must be one of"),
        (_chat(messages=[{"role": "user"}]), r"messages\[0\] has no content"),
        (
            _chat(messages=[{"role": "user", "content": 5}]),
            "must be a string or a list of text parts",
        ),
        (_chat(messages=[{"role": "user", "content": "x", "name": "bob"}]), r"\['name'\]"),
        (
            _chat(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]),
            "only text parts are supported",
        ),
        (_chat(messages=[{"role": "user", "content": "x" * (1024 * 1024 + 1)}]), "over the cap"),
        (_chat(n=2), "n must be 1"),
        (_chat(stream="yes"), "stream must be true or false"),
        (_chat(stream_options={"include_usage": True}), "only allowed with stream: true"),
        (_chat(stream=True, stream_options={"x": 1}), "unsupported parameter"),
        (_chat(max_tokens=5, max_completion_tokens=5), "not both"),
        (_chat(max_tokens=0), "max_tokens must be between 1"),
        (_chat(max_tokens=2.5), "max_tokens must be an integer"),
        (_chat(temperature=2.5), "temperature must be between 0 and 2"),
        (_chat(temperature="hot"), "temperature must be a number"),
        (_chat(temperature=True), "temperature must be a number"),
        (_chat(top_p=0), "top_p must be above 0"),
        (_chat(seed=-1), "seed must be between 0"),
        (_chat(seed=2**32 - 1), "seed must be between 0"),
        (_chat(stop=["a", "b", "c", "d", "e"]), "up to 4 strings"),
        (_chat(stop=[""]), "each stop sequence"),
        (_chat(user=5), "user must be a string"),
        ({"model": "tiny", "prompt": ["a", "b"]}, "prompt must be one string"),
    ],
)
def test_rejections(body: Any, message: str) -> None:
    task = "completion" if isinstance(body, dict) and "prompt" in body else "chat"
    with pytest.raises(InputError, match=message):
        parse_request(body, task)


def test_relay_refuses_llama_only_parameters() -> None:
    with pytest.raises(InputError, match=r"top_k: llama\.cpp parameter"):
        parse_request(_chat(top_k=40), "chat", relay=True)
    assert parse_request(_chat(top_k=40), "chat").extensions == ("top_k",)


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda o: o.update(extra=1), "unsupported parameter"),
        (lambda o: o.update(task="image"), "task must be one of"),
        (lambda o: o.update(model="tiny"), "not a sha256"),
        (lambda o: o["sampling"].pop("seed"), "lacks"),
        (lambda o: o["sampling"].update(temperature=9), "temperature must be between"),
        (lambda o: o.update(max_tokens=-1), "max_tokens must be between"),
        (lambda o: o.update(template_time=5), "template_time must be YYYY"),
        (lambda o: o.update(template_time="2024-02-30T00:00:00Z"), "template_time must be YYYY"),
        (lambda o: o.update(template_time="yesterday"), "template_time must be YYYY"),
        (lambda o: o.update(stop="x"), "not in canonical form"),
    ],
)
def test_canonical_request_is_read_strictly(edit: Any, message: str) -> None:
    obj = json.loads(
        json.dumps(ChatRequest("chat", MODEL, (("user", "Hi"),), None, 5, Sampling()).to_json())
    )
    edit(obj)
    with pytest.raises(InputError, match=message):
        ChatRequest.from_json(obj)
