"""Verified chat in the SDK: Client.chat / AsyncClient.chat and their streams.

Honest answers come from a real node on loopback serving the tiny GGUF. A hostile node
is played by an ``httpx.MockTransport`` in front of the real app in process (the
attacker is simulated, our code is not): it edits the text, answers another question,
replays an old answer, names another model, drops privacy, cuts the stream.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from starlette.testclient import TestClient

from inferproof import LocalNode
from inferproof.client import AsyncClient, ChatStream, Client
from inferproof.client._stream import SseParser
from inferproof.errors import Error, InputError, VerificationError
from inferproof.node import TokenStore, create_app
from inferproof.receipts import Bundle

from ._chat import STRICT, serving, sse_events, tiny_gguf
from .conftest import Running

URL = "http://node.invalid"  # never resolved: every request goes through the transport
_HOP = {"content-length", "content-encoding", "transfer-encoding", "connection"}
GREEDY: dict[str, Any] = {"temperature": 0, "max_tokens": 12}
EditRequest = Callable[[httpx.Request], tuple[str, dict[str, str], bytes]]
EditResponse = Callable[[httpx.Request, httpx.Response], httpx.Response]


@pytest.fixture()
def chat_node(make_node: Callable[..., Running]) -> Running:
    return serving(make_node, tiny_gguf())


def _client(running: Running, tmp_path: Path, **kw: Any) -> Client:
    return Client(running.url, token=running.token, home=tmp_path / "client", **kw)


def _statuses(report: Any) -> dict[str, str]:
    return {c.name: c.status.value for c in report.checks}


# -- honest answers over loopback -------------------------------------------------------


def test_chat_is_verified_and_names_its_receipt(chat_node: Running, tmp_path: Path) -> None:
    with _client(chat_node, tmp_path) as client:
        answer = client.chat("tiny", "What is the capital of France?", **GREEDY)
        stored = client.bundle(answer.bundle_id)
    assert answer.report is not None and answer.report.verified
    checks = _statuses(answer.report)
    for name in ("signature", "output.digest", "input", "nonce", "log.inclusion"):
        assert checks[name] == "passed", name
    for name in ("log.consistency", "model.requested", "input.requested"):
        assert checks[name] == "passed", name
    assert answer.text and answer.text == answer.response["choices"][0]["message"]["content"]
    assert answer.output is not None and answer.output.text == answer.text
    assert answer.request is not None
    assert answer.request.messages == (("user", "What is the capital of France?"),)
    assert answer.bundle.receipt.nonce == answer.nonce and len(answer.nonce) == 32
    assert stored.envelope == answer.bundle.envelope
    assert isinstance(answer.log_index, int) and answer.opening is None
    assert answer.receipt_digest == answer.response["inferproof"]["receipt_digest"]


def test_every_request_gets_a_fresh_nonce_unless_given(chat_node: Running, tmp_path: Path) -> None:
    with _client(chat_node, tmp_path) as client:
        first = client.chat("tiny", "Hi", **GREEDY)
        second = client.chat("tiny", "Hi", **GREEDY)
        mine = client.chat("tiny", "Hi", nonce="verifier-42", **GREEDY)
    assert first.nonce != second.nonce
    assert mine.nonce == mine.bundle.receipt.nonce == "verifier-42"
    assert first.text == second.text == mine.text  # greedy


def test_chat_stream_yields_deltas_then_verifies(chat_node: Running, tmp_path: Path) -> None:
    with _client(chat_node, tmp_path) as client:
        whole = client.chat("tiny", "Hi", **GREEDY)
        deltas, before_end = [], []
        with client.chat_stream("tiny", "Hi", **GREEDY) as stream:
            for delta in stream:
                deltas.append(delta)
                before_end.append(stream.verified)
        with pytest.raises(InputError, match="has not ended verified"):
            client.chat_stream("tiny", "Hi", **GREEDY).answer  # noqa: B018
    assert deltas and not any(before_end)  # yielded before the receipt verified
    assert stream.verified and stream.answer.text == "".join(deltas) == whole.text
    assert stream.answer.report is not None and stream.answer.report.verified
    assert _statuses(stream.answer.report)["input.requested"] == "passed"
    assert stream.answer.response["choices"][0]["message"]["content"] == whole.text
    assert stream.answer.bundle_id and stream.answer.nonce != whole.nonce


def test_chat_stream_of_chunks_ends_with_the_receipt(chat_node: Running, tmp_path: Path) -> None:
    with _client(chat_node, tmp_path) as client:
        stream = client.chat_stream(
            "tiny", "Hi", chunks=True, stream_options={"include_usage": True}, **GREEDY
        )
        chunks = list(stream)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert "inferproof" in chunks[-1] and chunks[-1]["usage"]["completion_tokens"] > 0
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == stream.answer.text


def test_verified_stream_yields_only_after_verification(chat_node: Running, tmp_path: Path) -> None:
    with _client(chat_node, tmp_path) as client:
        stream = client.chat_stream("tiny", "Hi", verified_stream=True, **GREEDY)
        first = next(stream)
        verified_at_first = stream.verified
        rest = list(stream)
    assert verified_at_first  # nothing came before the receipt verified
    assert first + "".join(rest) == stream.answer.text


def test_completions_whole_and_streamed(chat_node: Running, tmp_path: Path) -> None:
    with _client(chat_node, tmp_path) as client:
        whole = client.complete("tiny", "Once upon a time", **GREEDY)
        stream = client.complete_stream("tiny", "Once upon a time", **GREEDY)
        deltas = list(stream)
    assert whole.report is not None and whole.report.verified
    assert whole.bundle.receipt.parameters["task"] == "completion"
    assert whole.request is not None and whole.request.prompt == "Once upon a time"
    assert "".join(deltas) == stream.answer.text == whole.text


def test_private_chat_returns_the_opening(chat_node: Running, tmp_path: Path) -> None:
    with _client(chat_node, tmp_path) as client:
        answer = client.chat("tiny", "my secret question", private=True, **GREEDY)
        stream = client.chat_stream("tiny", "my secret question", private=True, **GREEDY)
        deltas = list(stream)
        stored = client.bundle(answer.bundle_id)
    assert answer.opening is not None and answer.report is not None
    assert answer.opening.request.messages == (("user", "my secret question"),)
    assert answer.text == answer.opening.output.text == "".join(deltas)
    assert answer.bundle.receipt.input_commitment is not None
    assert "my secret question" not in json.dumps(stored.to_json())
    assert _statuses(answer.report)["input.requested"] == "passed"
    assert stream.answer.opening is not None


def test_a_strict_policy_reexecutes_the_answer(chat_node: Running, tmp_path: Path) -> None:
    with _client(chat_node, tmp_path, policy=STRICT) as client:
        answer = client.chat("tiny", [{"role": "user", "content": "Hi"}], **GREEDY)
    assert answer.report is not None
    checks = {c.name: c for c in answer.report.checks}
    assert checks["output.fingerprint"].passed
    assert checks["output.fingerprint"].detail.startswith("bit-identical: prefill of")
    assert checks["model.digest"].passed  # the client fetched the GGUF, checked by digest


def test_a_whole_request_body_is_accepted(chat_node: Running, tmp_path: Path) -> None:
    body = {"model": "tiny", "messages": [{"role": "user", "content": "Hi"}], "seed": 7}
    with _client(chat_node, tmp_path) as client:
        answer = client.chat("tiny", body, temperature=0.8, max_tokens=6)
    assert answer.request is not None and answer.request.sampling.seed == 7
    assert answer.request.sampling.temperature == 0.8


def test_async_chat_and_stream_over_loopback(chat_node: Running, tmp_path: Path) -> None:
    async def main() -> tuple[Any, Any, list[str]]:
        async with AsyncClient(chat_node.url, token=chat_node.token, home=tmp_path / "c") as c:
            answers = await asyncio.gather(*(c.chat("tiny", "Hi", **GREEDY) for _ in range(2)))
            deltas = []
            async with c.chat_stream("tiny", "Hi", **GREEDY) as stream:
                async for delta in stream:
                    deltas.append(delta)
            return answers, stream, deltas

    answers, stream, deltas = asyncio.run(main())
    assert all(a.report is not None and a.report.verified for a in answers)
    assert len({a.receipt_digest for a in answers}) == 2
    assert stream.verified and stream.answer.text == "".join(deltas) == answers[0].text


def test_async_completion_and_chunks(chat_node: Running, tmp_path: Path) -> None:
    async def main() -> tuple[Any, list[dict[str, Any]], Any]:
        async with AsyncClient(chat_node.url, token=chat_node.token, home=tmp_path / "c") as c:
            whole = await c.complete("tiny", "Once", private=True, **GREEDY)
            stream = c.complete_stream("tiny", "Once", chunks=True, verified_stream=True, **GREEDY)
            return whole, [chunk async for chunk in stream], stream

    whole, chunks, stream = asyncio.run(main())
    assert whole.opening is not None and whole.report is not None and whole.report.verified
    assert chunks[-1]["inferproof"]["receipt_digest"] == stream.answer.receipt_digest
    assert "".join(c["choices"][0]["text"] for c in chunks if c["choices"]) == whole.text


def test_verify_false_returns_the_answer_without_a_report(
    chat_node: Running, tmp_path: Path
) -> None:
    with _client(chat_node, tmp_path, verify=False) as client:
        answer = client.chat("tiny", "Hi", **GREEDY)
        stream = client.chat_stream("tiny", "Hi", **GREEDY)
        list(stream)
    assert answer.report is None and answer.text
    assert stream.answer.report is None and not stream.verified
    assert not (tmp_path / "client" / "known_nodes").exists()  # nothing pinned


def test_a_node_error_is_raised_with_its_message(chat_node: Running, tmp_path: Path) -> None:
    with _client(chat_node, tmp_path) as client:
        with pytest.raises(InputError, match="404 model_not_found"):
            client.chat("nothing-here", "Hi")
        with pytest.raises(InputError, match="404 model_not_found"):
            list(client.chat_stream("nothing-here", "Hi"))
    with (
        Client(chat_node.url, home=tmp_path / "anon") as anonymous,
        pytest.raises(InputError, match="node answered 401"),
    ):
        anonymous.chat("tiny", "Hi")


# -- a hostile node: MockTransport in front of the real app in process ------------------


@pytest.fixture()
def app_node(tmp_path: Path) -> Iterator[tuple[TestClient, LocalNode]]:
    node = LocalNode(tmp_path / "node")
    node.push(tiny_gguf(), name="tiny")
    node.push(tiny_gguf(), name="other")
    token = TokenStore(node.home.root).create("tests")
    with TestClient(create_app(node)) as client:  # runs the app's lifespan
        client.headers["Authorization"] = f"Bearer {token}"
        yield client, node


def _forwarder(
    app: TestClient,
    edit: EditResponse = lambda _req, resp: resp,
    ask: EditRequest | None = None,
    chat_app: TestClient | None = None,
) -> httpx.MockTransport:
    """Forward each request to the app (chat requests to ``chat_app`` if given), with
    ``ask`` rewriting what is forwarded and ``edit`` the answer."""

    def handle(request: httpx.Request) -> httpx.Response:
        path = request.url.raw_path.decode()
        headers = {k: v for k, v in request.headers.items() if k.lower() not in {"host", *_HOP}}
        content = request.content
        if ask is not None and request.url.path.startswith("/v1/chat"):
            path, headers, content = ask(request)
        target = chat_app if chat_app is not None and "completions" in path else app
        got = target.request(request.method, path, headers=headers, content=content)
        kept = {k: v for k, v in got.headers.items() if k.lower() not in _HOP}
        return edit(request, httpx.Response(got.status_code, headers=kept, content=got.content))

    return httpx.MockTransport(handle)


def _rewrite(change: Callable[[dict[str, Any], dict[str, str]], None]) -> EditRequest:
    def ask(request: httpx.Request) -> tuple[str, dict[str, str], bytes]:
        body = json.loads(request.content)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in {"host", *_HOP}}
        change(body, headers)
        return request.url.raw_path.decode(), headers, json.dumps(body).encode()

    return ask


def _on_chat(fix: Callable[[dict[str, Any]], None]) -> EditResponse:
    """Edit a whole chat answer's JSON."""

    def edit(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if not request.url.path.startswith("/v1/chat"):
            return response
        body = json.loads(response.content)
        fix(body)
        return httpx.Response(response.status_code, headers=response.headers, json=body)

    return edit


def _on_stream(fix: Callable[[list[Any]], list[Any]]) -> EditResponse:
    """Edit a streamed answer's events (``[DONE]`` included)."""

    def edit(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if not request.url.path.startswith("/v1/chat"):
            return response
        events = fix(sse_events(response.text))
        data = b"".join(
            b"data: " + (e.encode() if isinstance(e, str) else json.dumps(e).encode()) + b"\n\n"
            for e in events
        )
        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=data)

    return edit


def _hostile(app_node: Any, tmp_path: Path, **kw: Any) -> Client:
    tc, _ = app_node
    return Client(URL, home=tmp_path / "c", transport=_forwarder(tc, **kw))


def _failed_check(run: Callable[[], object]) -> str:
    with pytest.raises(VerificationError) as exc:
        run()
    return exc.value.check


def test_honest_forwarder_verifies(app_node: Any, tmp_path: Path) -> None:
    with _hostile(app_node, tmp_path) as client:
        answer = client.chat("tiny", "Hi", **GREEDY)
        deltas = list(stream := client.chat_stream("tiny", "Hi", **GREEDY))
    assert answer.report is not None and answer.report.verified
    assert "".join(deltas) == stream.answer.text == answer.text


def _edit_text(body: dict[str, Any]) -> None:
    body["choices"][0]["message"]["content"] = "The capital of France is Paris."


def _edit_signed_text(body: dict[str, Any]) -> None:
    body["inferproof"]["bundle"]["outputs"]["text"] += "!"
    body["choices"][0]["message"]["content"] += "!"


def _edit_finish(body: dict[str, Any]) -> None:
    body["choices"][0]["finish_reason"] = "stop"


def _edit_usage(body: dict[str, Any]) -> None:
    body["usage"]["completion_tokens"] += 1


@pytest.mark.parametrize(
    ("fix", "check", "why"),
    [
        (_edit_text, "output.digest", "the answer shows"),
        (_edit_signed_text, "output.digest", "hashes to"),
        (_edit_finish, "output.digest", "finish reason"),
        (_edit_usage, "output.digest", "token counts"),
    ],
)
def test_an_edited_answer_fails(
    app_node: Any, tmp_path: Path, fix: Callable[[dict[str, Any]], None], check: str, why: str
) -> None:
    with (
        _hostile(app_node, tmp_path, edit=_on_chat(fix)) as client,
        pytest.raises(VerificationError) as exc,
    ):
        client.chat("tiny", "Hi", **GREEDY)
    assert exc.value.check == check and why in exc.value.detail


def _edit_delta(events: list[Any]) -> list[Any]:
    events[1]["choices"][0]["delta"]["content"] += " (edited)"
    return events


def test_an_edited_stream_fails_at_its_end(app_node: Any, tmp_path: Path) -> None:
    """The caller can tell: the iteration raises, ``verified`` stays False and
    ``answer`` refuses, after the edited text was yielded."""
    with _hostile(app_node, tmp_path, edit=_on_stream(_edit_delta)) as client:
        stream = client.chat_stream("tiny", "Hi", **GREEDY)
        seen: list[str] = []
        with pytest.raises(VerificationError) as exc:
            for delta in stream:
                seen.append(delta)
        held = client.chat_stream("tiny", "Hi", verified_stream=True, **GREEDY)
        none: list[str] = []
        with pytest.raises(VerificationError) as again:
            for delta in held:
                none.append(delta)
    assert exc.value.check == again.value.check == "output.digest"
    assert any("(edited)" in d for d in seen) and none == []
    assert not stream.verified and not held.verified
    with pytest.raises(InputError):
        stream.answer  # noqa: B018


def _cut_before_receipt(events: list[Any]) -> list[Any]:
    return [e for e in events if not (isinstance(e, dict) and "inferproof" in e)]


def _cut_short(events: list[Any]) -> list[Any]:
    return events[:2]


def _error_event(events: list[Any]) -> list[Any]:
    error = {"message": "the node is stopping", "type": "server_error", "code": "unavailable"}
    return [*events[:2], {"error": error}]


def _invalid_error_event(events: list[Any]) -> list[Any]:
    error = {"message": "max_tokens is too big", "type": "invalid_request_error", "code": None}
    return [*events[:2], {"error": error}]


def _odd_error_event(events: list[Any]) -> list[Any]:
    return [*events[:2], {"error": "boom"}]


def _not_an_object(events: list[Any]) -> list[Any]:
    return [events[0], [1, 2], *events[1:]]


def _not_json(events: list[Any]) -> list[Any]:
    return [events[0], "{not json", *events[1:]]


def _mixed_tasks(events: list[Any]) -> list[Any]:
    events[1]["object"] = "text_completion"
    return events


def _receipt_twice(events: list[Any]) -> list[Any]:
    extra = next(e for e in events if isinstance(e, dict) and "inferproof" in e)
    return [*events[:-2], {**events[1], "inferproof": extra["inferproof"]}, *events[-2:]]


@pytest.mark.parametrize(
    ("fix", "error", "match"),
    [
        (_cut_before_receipt, VerificationError, "receipt: the stream ended before its receipt"),
        (_cut_short, VerificationError, "receipt: the stream ended before its receipt"),
        (_error_event, Error, "unavailable: the node is stopping"),
        (_invalid_error_event, InputError, "invalid_request_error: max_tokens is too big"),
        (_odd_error_event, Error, "malformed error event"),
        (_not_an_object, InputError, "event that is not a JSON object"),
        (_not_json, InputError, "stream event"),
        (_mixed_tasks, InputError, "mixes chat and text completion chunks"),
        (_receipt_twice, VerificationError, "output.digest"),
    ],
)
def test_a_broken_stream_is_not_verified(
    app_node: Any, tmp_path: Path, fix: Callable[[list[Any]], list[Any]], error: type, match: str
) -> None:
    with _hostile(app_node, tmp_path, edit=_on_stream(fix)) as client:
        stream = client.chat_stream("tiny", "Hi", **GREEDY)
        with pytest.raises(error, match=match):
            list(stream)
    assert not stream.verified


def test_another_questions_receipt_fails_input_requested(app_node: Any, tmp_path: Path) -> None:
    """The node answers (and signs) an easier question than the one sent."""

    def easier(body: dict[str, Any], _headers: dict[str, str]) -> None:
        body["messages"] = [{"role": "user", "content": "Say hi"}]

    def cooler(body: dict[str, Any], _headers: dict[str, str]) -> None:
        body["max_tokens"] = 2

    for change, differs in ((easier, "messages"), (cooler, "max_tokens")):
        with _hostile(app_node, tmp_path, ask=_rewrite(change)) as client:
            with pytest.raises(VerificationError) as exc:
                client.chat("tiny", "A hard question", **GREEDY)
            with pytest.raises(VerificationError) as streamed:
                list(client.chat_stream("tiny", "A hard question", **GREEDY))
        assert exc.value.check == streamed.value.check == "input.requested"
        assert differs in exc.value.detail


def test_sampling_the_node_changed_fails_input_requested(app_node: Any, tmp_path: Path) -> None:
    def hotter(body: dict[str, Any], _headers: dict[str, str]) -> None:
        body["temperature"], body["seed"] = 1.5, 3

    with _hostile(app_node, tmp_path, ask=_rewrite(hotter)) as client:
        check = _failed_check(lambda: client.chat("tiny", "Hi", **GREEDY))
    assert check == "input.requested"


def test_a_replayed_answer_fails_the_nonce(app_node: Any, tmp_path: Path) -> None:
    old: list[httpx.Response] = []

    def replay(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if not request.url.path.startswith("/v1/chat"):
            return response
        if not old:
            old.append(response)
        return httpx.Response(200, headers=old[0].headers, content=old[0].content)

    with _hostile(app_node, tmp_path, edit=replay) as client:
        assert client.chat("tiny", "Hi", **GREEDY).report is not None
        check = _failed_check(lambda: client.chat("tiny", "Hi", **GREEDY))
    assert check == "nonce"


def test_another_models_receipt_fails_model_requested(app_node: Any, tmp_path: Path) -> None:
    def swap(body: dict[str, Any], _headers: dict[str, str]) -> None:
        body["model"] = "other"

    with (
        _hostile(app_node, tmp_path, ask=_rewrite(swap)) as client,
        pytest.raises(VerificationError) as exc,
    ):
        client.chat("tiny", "Hi", **GREEDY)
    assert exc.value.check == "model.requested"
    assert "asked for tiny" in exc.value.detail and "other" in exc.value.detail


@pytest.mark.parametrize(
    ("asked", "what"),
    [(True, "asked for a private receipt, got a public one"),
     (False, "asked for a public receipt, got a private one")],
)  # fmt: skip
def test_a_switched_privacy_fails_input_requested(
    app_node: Any, tmp_path: Path, asked: bool, what: str
) -> None:
    def flip(_body: dict[str, Any], headers: dict[str, str]) -> None:
        headers["inferproof-private"] = "false" if asked else "true"

    with (
        _hostile(app_node, tmp_path, ask=_rewrite(flip)) as client,
        pytest.raises(VerificationError) as exc,
    ):
        client.chat("tiny", "my secret", private=asked, **GREEDY)
    assert exc.value.check == "input.requested"
    assert what in exc.value.detail


def test_another_nodes_receipt_fails_the_signature(app_node: Any, tmp_path: Path) -> None:
    """The client pinned one node; the chat answers come from another."""
    stranger = LocalNode(tmp_path / "stranger")
    stranger.push(tiny_gguf(), name="tiny")
    token = TokenStore(stranger.home.root).create("t")
    tc, _ = app_node
    with TestClient(create_app(stranger)) as other:
        other.headers["Authorization"] = f"Bearer {token}"
        transport = _forwarder(tc, chat_app=other)
        with Client(URL, home=tmp_path / "c", transport=transport) as client:
            check = _failed_check(lambda: client.chat("tiny", "Hi", **GREEDY))
            streamed = _failed_check(lambda: list(client.chat_stream("tiny", "Hi", **GREEDY)))
    assert check == streamed == "signature"


@pytest.mark.parametrize(
    ("fix", "match"),
    [
        (lambda b: b.pop("inferproof"), "carries no receipt"),
        (lambda b: b["inferproof"].pop("bundle"), "has no bundle"),
        (lambda b: b["inferproof"].update(bundle_id="0" * 24), "two bundle ids"),
        (lambda b: b.update(choices=[]), "has no choice"),
        (lambda b: b.update(choices=b["choices"] * 2), r"one choice \(n=1\)"),
        (lambda b: b.update(choices=["text"]), "choice is not an object"),
        (lambda b: b["choices"][0]["message"].update(content=5), "text is not a string"),
        (lambda b: b.update(object="embedding"), "not an OpenAI answer"),
        (lambda b: b["inferproof"].update(opening={"salt": "00"}), "not a chat opening"),
        (lambda b: b["inferproof"].update(bundle={"mediaType": "x"}), "bundle"),
    ],
)
def test_a_malformed_answer_is_refused(
    app_node: Any, tmp_path: Path, fix: Callable[[dict[str, Any]], Any], match: str
) -> None:
    with (
        _hostile(app_node, tmp_path, edit=_on_chat(fix)) as client,
        pytest.raises(InputError, match=match),
    ):
        client.chat("tiny", "Hi", **GREEDY)


def test_a_malformed_bundle_id_is_refused(app_node: Any, tmp_path: Path) -> None:
    def edit(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if not request.url.path.startswith("/v1/chat"):
            return response
        body = json.loads(response.content)
        body["inferproof"]["bundle_id"] = "../../etc"
        return httpx.Response(200, json=body)  # and no Inferproof-Bundle-Id header

    with (
        _hostile(app_node, tmp_path, edit=edit) as client,
        pytest.raises(InputError, match=r"malformed bundle id '\.\./\.\./etc'"),
    ):
        client.chat("tiny", "Hi", **GREEDY)


def test_a_busy_node_is_retried_before_the_stream_starts(app_node: Any, tmp_path: Path) -> None:
    busy: list[str] = []

    def edit(request: httpx.Request, response: httpx.Response) -> httpx.Response:
        if request.url.path.startswith("/v1/chat") and len(busy) < 2:
            busy.append(request.url.path)
            return httpx.Response(429, headers={"retry-after": "0"}, json={"error": {
                "code": "busy", "message": "too many requests"}})  # fmt: skip
        return response

    with _hostile(app_node, tmp_path, edit=edit) as client:
        deltas = list(stream := client.chat_stream("tiny", "Hi", **GREEDY))
    assert len(busy) == 2 and stream.verified and "".join(deltas) == stream.answer.text


class _Broken(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body that breaks after its first event, as a dropped connection does."""

    def __init__(self, first: bytes) -> None:
        self.first = first

    def __iter__(self) -> Iterator[bytes]:
        yield self.first
        raise httpx.ReadError("connection reset")

    async def __aiter__(self) -> Any:
        yield self.first
        raise httpx.ReadError("connection reset")


def _breaking(app: TestClient) -> httpx.MockTransport:
    forward = _forwarder(app)

    def handle(request: httpx.Request) -> httpx.Response:
        response = forward.handle_request(request)
        if not request.url.path.startswith("/v1/chat"):
            return response
        first = response.read().split(b"\n\n")[0] + b"\n\n"
        return httpx.Response(200, headers=response.headers, stream=_Broken(first))

    return httpx.MockTransport(handle)


def test_a_broken_connection_mid_stream_is_an_error(app_node: Any, tmp_path: Path) -> None:
    tc, _ = app_node
    with Client(URL, home=tmp_path / "c", transport=_breaking(tc)) as client:
        stream = client.chat_stream("tiny", "Hi", **GREEDY)
        with pytest.raises(Error, match=r"the stream from the node at .* broke"):
            list(stream)
    assert not stream.verified


def test_async_a_broken_connection_mid_stream_is_an_error(app_node: Any, tmp_path: Path) -> None:
    tc, _ = app_node
    sync = _breaking(tc)

    async def handle(request: httpx.Request) -> httpx.Response:
        await request.aread()
        return sync.handle_request(request)

    async def main() -> Any:
        transport = httpx.MockTransport(handle)
        async with AsyncClient(URL, home=tmp_path / "c", transport=transport) as client:
            stream = client.chat_stream("tiny", "Hi", **GREEDY)
            with pytest.raises(Error, match=r"the stream from the node at .* broke"):
                async for _ in stream:
                    pass
            return stream

    assert not asyncio.run(main()).verified


def test_async_client_catches_an_edited_stream(tmp_path: Path) -> None:
    node = LocalNode(tmp_path / "node")
    node.push(tiny_gguf(), name="tiny")
    app = create_app(node)
    token = TokenStore(node.home.root).create("async")
    inner = httpx.ASGITransport(app=app)
    tamper = _on_stream(_edit_delta)

    async def handle(request: httpx.Request) -> httpx.Response:
        got = await inner.handle_async_request(request)
        content = await got.aread()
        kept = {k: v for k, v in got.headers.items() if k.lower() not in _HOP}
        return tamper(request, httpx.Response(got.status_code, headers=kept, content=content))

    async def main() -> tuple[list[str], str]:
        async with app.router.lifespan_context(app):
            transport = httpx.MockTransport(handle)
            async with AsyncClient(URL, token=token, home=tmp_path / "c", transport=transport) as c:
                seen: list[str] = []
                try:
                    async for delta in c.chat_stream("tiny", "Hi", **GREEDY):
                        seen.append(delta)
                except VerificationError as exc:
                    return seen, exc.check
        raise AssertionError("the edited stream verified")

    seen, check = asyncio.run(main())
    assert check == "output.digest" and seen


# -- bad arguments: refused before anything is sent -------------------------------------


def _refusing() -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        raise AssertionError(f"nothing should be sent, got {request.url}")

    return httpx.MockTransport(handle)


@pytest.mark.parametrize(
    ("call", "match"),
    [
        (lambda c: c.chat("tiny", "Hi", tools=[]), r"unsupported parameter\(s\) \['tools'\]"),
        (lambda c: c.chat("tiny", "Hi", temperature=3), "temperature must be between"),
        (lambda c: c.chat("tiny", "Hi", stream=True), "use chat_stream"),
        (lambda c: c.chat_stream("tiny", "Hi", stream=False), "use chat/complete"),
        (lambda c: c.chat("tiny", {"model": "other", "messages": []}), "names model 'other'"),
        (lambda c: c.chat("tiny", []), "messages must be a non-empty list"),
        (lambda c: c.chat("tiny", 42), "not int"),
        (lambda c: c.chat("", "Hi"), "model must be a name"),
        (lambda c: c.chat("tiny", "Hi", nonce=""), "nonce must be a string of 1 to"),
        (lambda c: c.chat("tiny", "Hi", nonce="n" * 300), "nonce must be a string of 1 to"),
        (lambda c: c.chat("tiny", "Hi", private="yes"), "private must be True or False"),
        (lambda c: c.complete("tiny", ["a", "b"]), "give a prompt"),
        (lambda c: c.complete("tiny", "Hi", messages=[]), r"unsupported parameter"),
    ],
)
def test_bad_arguments_are_refused_before_sending(
    tmp_path: Path, call: Callable[[Client], object], match: str
) -> None:
    with (
        Client(URL, home=tmp_path / "c", transport=_refusing()) as client,
        pytest.raises(InputError, match=match),
    ):
        call(client)


def test_the_stream_object_is_typed_and_lazy(tmp_path: Path) -> None:
    with Client(URL, home=tmp_path / "c", transport=_refusing()) as client:
        stream = client.chat_stream("tiny", "Hi")
        assert isinstance(stream, ChatStream)
        stream.close()  # never opened: nothing was sent


# -- the node URL and token from the environment ----------------------------------------


def _recording(seen: list[httpx.Request]) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json={"models": []})

    return httpx.MockTransport(handle)


def test_url_and_token_come_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERPROOF_NODE", "http://env-node.invalid/")
    monkeypatch.setenv("INFERPROOF_TOKEN", "env-token")
    seen: list[httpx.Request] = []
    with Client(home=tmp_path / "c", transport=_recording(seen)) as client:
        assert client.url == "http://env-node.invalid"
        with pytest.raises(InputError, match="malformed model record"):
            client.push(b"model", name="m")  # a write: it carries the token
    with Client("http://given.invalid", "given", home=tmp_path / "c",
                transport=_recording(seen)) as given:  # fmt: skip
        assert given.url == "http://given.invalid"
        with pytest.raises(InputError, match="malformed model record"):
            given.push(b"model", name="m")
    assert seen[0].url.host == "env-node.invalid"
    assert seen[0].headers["authorization"] == "Bearer env-token"
    assert seen[1].url.host == "given.invalid"
    assert seen[1].headers["authorization"] == "Bearer given"
    assert AsyncClient(home=tmp_path / "c").url == "http://env-node.invalid"


@pytest.mark.parametrize(
    ("env", "match"),
    [
        ({}, "no node URL: pass url=... or set INFERPROOF_NODE"),
        ({"INFERPROOF_NODE": ""}, "no node URL"),
        ({"INFERPROOF_NODE": "ftp://node"}, "must start with http:// or https://"),
    ],
)
def test_a_missing_or_bad_url_is_an_input_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, env: dict[str, str], match: str
) -> None:
    monkeypatch.delenv("INFERPROOF_NODE", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(InputError, match=match):
        Client(home=tmp_path / "c")
    with pytest.raises(InputError, match=match):
        AsyncClient(home=tmp_path / "c")


def test_an_empty_token_variable_sends_no_token(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("INFERPROOF_TOKEN", "")
    seen: list[httpx.Request] = []
    with (
        Client(URL, home=tmp_path / "c", transport=_recording(seen)) as client,
        pytest.raises(InputError, match="malformed model record"),
    ):
        client.push(b"model", name="m")
    assert "authorization" not in seen[0].headers


# -- the event-stream parser: a table with bad rows -------------------------------------


@pytest.mark.parametrize(
    ("pieces", "events"),
    [
        ([b"data: a\n\n"], ["a"]),
        ([b"data: a\r\n\r\ndata: b\n\n"], ["a", "b"]),
        ([b"da", b'ta: {"x"', b": 1}\n", b"\n"], ['{"x": 1}']),
        ([b"data: one\ndata: two\n\n"], ["one\ntwo"]),
        ([b": a comment\n\nevent: x\nid: 3\n\n"], []),
        ([b"data:no-space\n\n"], ["no-space"]),
        ([b"data: partial"], []),
        ([b"data: caf\xc3", b"\xa9\n\n"], ["café"]),
    ],
)
def test_sse_parser(pieces: list[bytes], events: list[str]) -> None:
    parser = SseParser()
    got = [e for piece in pieces for e in parser.feed(piece)]
    assert got == events


@pytest.mark.parametrize(
    ("pieces", "limit", "match"),
    [
        ([b"data: \xff\n\n"], 1000, "not UTF-8"),
        ([b"data: " + b"x" * 100], 64, "over the cap of 64 bytes"),
        ([b"data: x\n\n"] * 10, 64, "over the cap"),
    ],
)
def test_sse_parser_refuses(pieces: list[bytes], limit: int, match: str) -> None:
    parser = SseParser(limit)
    with pytest.raises(InputError, match=match):
        for piece in pieces:
            parser.feed(piece)


def test_a_stream_bundle_is_the_stored_one(chat_node: Running, tmp_path: Path) -> None:
    with _client(chat_node, tmp_path) as client:
        stream = client.chat_stream("tiny", "Hi", **GREEDY)
        list(stream)
        stored = client.bundle(stream.answer.bundle_id)
    assert Bundle.from_json(stored.to_json()).envelope == stream.answer.bundle.envelope
