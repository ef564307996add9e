"""Streaming chat over chunked Oblivious HTTP, client -> relay -> node on loopback, each
a real HTTP server: SmolLM2's answer streams through sealed a chunk at a time, the relay
forwards only ciphertext, and a stream cut short or altered on the way never verifies.

The hostile relay of the last tests is an httpx transport in the client's path that
edits the real sealed bytes (the attacker is simulated, the node and our code are not).
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

from inferproof.client import Client
from inferproof.confidential._chunked import _read_varint
from inferproof.errors import InputError, VerificationError
from inferproof.testing import SMOLLM2_QUESTION, SMOLLM2_SYSTEM, credit_risk_model, smollm2_gguf
from tests.confidential._relay import Relay, relay_for
from tests.node._chat import tiny_gguf
from tests.node.conftest import Running, pushed, start

# The response nonce's length: max(Nn, Nk) of AES-128-GCM (RFC 9458 section 4.4).
NONCE = 16
GREEDY = {"temperature": 0, "max_tokens": 24}
# The chat demo's question (testing/_smollm2.py), answered "The capital of France is Paris."
QUESTION = [
    {"role": "system", "content": SMOLLM2_SYSTEM},
    {"role": "user", "content": SMOLLM2_QUESTION},
]


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start(tmp_path_factory.mktemp("stream") / "node")
    try:
        with running.http() as http:
            for name, model in (("smol", smollm2_gguf().read_bytes()), ("long", tiny_gguf(True))):
                answer = http.post("/v1/models", params={"name": name}, content=model,
                                   headers={"content-type": "application/octet-stream"})  # fmt: skip
                assert answer.status_code == 201, answer.text
        pushed(running, credit_risk_model()[0], name="credit", version="1")
        yield running
    finally:
        running.stop()


@pytest.fixture(scope="module")
def relay(node: Running) -> Iterator[Relay]:
    with relay_for(node) as running:
        yield running


def _client(node: Running, relay: Relay, home: Path, **kw: object) -> Client:
    return Client(node.url, node.token, home=home, confidential=True, relay=relay.url, **kw)  # type: ignore[arg-type]


def test_smollm2_streams_through_the_relay_verified(
    node: Running, relay: Relay, tmp_path: Path
) -> None:
    before = len(relay.forwarded.sent)
    with _client(node, relay, tmp_path) as client:
        with client.chat_stream("smol", QUESTION, **GREEDY) as stream:
            deltas = list(stream)
        plain = client.chat("smol", QUESTION, **GREEDY)  # the same question, one answer
        scored = client.infer("credit:1", {"X": [[52.0, 0.41, 34.0, 2.0]]})
    answer = stream.answer
    assert answer is not None and answer.report is not None and answer.report.verified
    assert len(deltas) > 1 and "".join(deltas) == answer.text == plain.text
    assert "Paris" in answer.text
    checks = {c.name: c for c in answer.report.checks}
    # A software node: what binds the gateway key is said, and not counted as a pass.
    assert checks["confidential"].status.value == "not_checked"
    assert "software node" in checks["confidential"].detail
    assert scored.report is not None and scored.report.verified
    # What the relay forwarded names nothing of the question, the model or the token.
    for body in relay.posted(before):
        for secret in (b"capital", b"France", b"Paris", b"smol", node.token.encode(), b"/v1/"):
            assert secret not in body
    assert not any("France" in line or "smol" in line for line in relay.lines)
    # The public log holds the receipts: digests and commitments, no prompt or answer.
    with node.http(auth=False) as http:
        size = int(http.get("/v1/log/checkpoint").text.splitlines()[1])
        assert 0 < size < 256
        entries = http.get(f"/v1/log/tile/entries/000.p/{size}").content
    # ...while the entries do hold this answer's signed receipt (its DSSE signature).
    signature = answer.bundle.envelope["signatures"][0]["sig"]
    assert signature.encode() in entries or base64.b64decode(signature) in entries
    for plain_text in (SMOLLM2_QUESTION, answer.text, "Paris", "France"):
        assert plain_text.encode() not in entries, plain_text


def test_deltas_arrive_before_the_answer_ends(node: Running, relay: Relay, tmp_path: Path) -> None:
    """The first delta is in the client's hands while the node is still writing: the
    relay logs an answer only when its stream ends, and it has not yet logged this one.
    (This model runs to max_tokens, thousands of tokens a second: the end is far off.)"""
    with _client(node, relay, tmp_path) as client:
        client.chat("long", "Hi", temperature=0, max_tokens=2)  # trust and log in place
        logged = len(relay.lines)
        stream = client.chat_stream("long", "Hi", temperature=0, max_tokens=3000)
        first = next(iter(stream))
        assert len(relay.lines) == logged, "the answer had ended before its first delta"
        rest = list(stream)
        stream.close()
    assert first and rest
    assert stream.answer is not None and stream.answer.report is not None
    assert stream.answer.report.verified
    # The stream's own line, once it ended: the long answer (then the log's proof).
    sizes = [int(line.split(", ")[1].split()[0]) for line in relay.lines[logged:]]
    assert max(sizes) > 100_000, relay.lines[logged:]


class _Hostile(httpx.BaseTransport):
    """The path to the relay, in the attacker's hands: once armed, ``edit`` rewrites the
    next sealed answer (the streamed chat's); what comes before passes untouched."""

    def __init__(self, edit: Callable[[bytes], bytes]) -> None:
        self.inner, self.edit, self.armed = httpx.HTTPTransport(), edit, False

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        answer = self.inner.handle_request(request)
        if request.method != "POST" or not self.armed:
            return answer
        self.armed = False
        body = answer.read()
        headers = [(k, v) for k, v in answer.headers.items() if k != "content-length"]
        return httpx.Response(answer.status_code, headers=headers, content=self.edit(body))


def _attacked(node: Running, relay: Relay, home: Path, edit: Callable[[bytes], bytes]) -> None:
    """A streamed chat whose sealed answer ``edit`` rewrote on the way; the client has
    first answered one honest chat (identity, trust and log all in place)."""
    hostile = _Hostile(edit)
    with _client(node, relay, home, transport=hostile) as client:
        client.chat("smol", QUESTION, **GREEDY)
        hostile.armed = True
        with client.chat_stream("smol", QUESTION, **GREEDY) as stream:
            try:
                list(stream)
            except VerificationError:
                with pytest.raises(InputError, match="has not ended verified"):
                    _ = stream.answer  # nothing of the cut answer is handed over
                raise


def _flip(at: Callable[[int], int]) -> Callable[[bytes], bytes]:
    def edit(body: bytes) -> bytes:
        out = bytearray(body)
        out[at(len(body))] ^= 0x01
        return bytes(out)

    return edit


@pytest.mark.parametrize(
    ("edit", "why"),
    [
        (lambda b: b[: len(b) - 20], "ohttp.response"),  # the final chunk cut off
        (lambda b: b[: len(b) // 2], "ohttp.response"),  # cut in the middle
        (_flip(lambda n: n // 2), "ohttp.response"),  # a bit flipped in a content chunk
        (_flip(lambda n: n - 1), "ohttp.response"),  # a bit of the final chunk's tag
        (_flip(lambda n: 3), "ohttp.response"),  # the response nonce
    ],
)
def test_a_stream_cut_or_altered_on_the_way_never_verifies(
    node: Running, relay: Relay, tmp_path: Path, edit: Callable[[bytes], bytes], why: str
) -> None:
    with pytest.raises(VerificationError) as caught:
        _attacked(node, relay, tmp_path, edit)
    assert caught.value.check == why


def test_a_stream_with_its_chunks_reordered_is_refused(
    node: Running, relay: Relay, tmp_path: Path
) -> None:
    def swap(body: bytes) -> bytes:
        # The response nonce, then length-prefixed sealed chunks: swap the second and
        # third (two content chunks of the stream).
        at, chunks = NONCE, []
        while (read := _read_varint(body, at)) is not None and read[0]:
            size, start = read
            chunks.append(body[at : start + size])
            at = start + size
        assert len(chunks) >= 3
        head, a, b = chunks[0], chunks[1], chunks[2]
        cut = NONCE + len(head)
        return body[:cut] + b + a + body[cut + len(a) + len(b) :]

    with pytest.raises(VerificationError) as caught:
        _attacked(node, relay, tmp_path, swap)
    assert caught.value.check == "ohttp.response"
