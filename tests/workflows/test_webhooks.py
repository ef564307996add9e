"""Signed webhooks (Standard Webhooks, scheme v1a): delivered to a real receiver on
loopback and verified there; tampering, stale times, retries, redirects, a fixed vector."""

from __future__ import annotations

import base64
import socket
import stat
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from inferproof._keys import raw_public
from inferproof.engine import Home
from inferproof.errors import InputError, VerificationError
from inferproof.workflows import (
    Delivery,
    WebhookSigner,
    deliver,
    new_message_id,
    verify_webhook,
)

BODY = b'{"type":"alert.fired","data":{"workflow":"prices","value":0.93}}'
NOW = 1_700_000_000


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class Receiver:
    url: str
    # path -> answers given in turn (the last one repeats): (status, extra headers)
    routes: dict[str, list[tuple[int, dict[str, str]]]] = field(default_factory=dict)
    requests: list[Received] = field(default_factory=list)

    def at(self, path: str) -> list[Received]:
        return [r for r in self.requests if r.path == path]


class _Hook(BaseHTTPRequestHandler):
    receiver: ClassVar[Receiver]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        rx = self.receiver
        count = len(rx.at(self.path))
        rx.requests.append(Received(self.path, dict(self.headers.items()), body))
        answers = rx.routes.get(self.path, [(404, {})])
        status, headers = answers[min(count, len(answers) - 1)]
        self.send_response(status)
        for k, v in headers.items():
            self.send_header(k, v)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture()
def receiver() -> Iterator[Receiver]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Hook)
    rx = Receiver(f"http://127.0.0.1:{httpd.server_address[1]}")
    httpd.RequestHandlerClass = type("Handler", (_Hook,), {"receiver": rx})
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield rx
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture()
def signer() -> WebhookSigner:
    return WebhookSigner.generate()


class Clock:
    """A fake clock and sleep: ``now`` moves on by ``step`` each read; sleeps are kept."""

    def __init__(self, start: int = NOW, step: int = 10) -> None:
        self.t, self.step, self.slept = start - step, step, []

    def now(self) -> float:
        self.t += self.step
        return float(self.t)

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)


def _signed(signer: WebhookSigner, body: bytes = BODY, ts: int = NOW) -> dict[str, str]:
    return signer.headers(body, msg_id="msg_" + "ab" * 16, timestamp=ts)


def _flip(text: str, index: int = -1) -> str:
    chars = list(text)
    chars[index] = chr(ord(chars[index]) ^ 1)
    return "".join(chars)


def _check_of(headers: dict[str, str], body: bytes, key: bytes, now: int = NOW) -> str:
    with pytest.raises(VerificationError) as info:
        verify_webhook(headers, body, key, now=now)
    return info.value.check


# --- delivery to a real receiver ------------------------------------------------------


def test_a_delivered_webhook_verifies_at_the_receiver(receiver, signer) -> None:
    receiver.routes["/hook"] = [(204, {})]
    clock = Clock()
    got = deliver(receiver.url + "/hook", BODY, signer, now=clock.now, sleep=clock.sleep)
    assert got == Delivery(receiver.url + "/hook", got.msg_id, 204, 1, None) and got.ok
    [req] = receiver.at("/hook")
    assert req.body == BODY and req.headers["content-type"] == "application/json"
    assert req.headers["webhook-id"] == got.msg_id and req.headers["webhook-timestamp"] == str(NOW)
    assert verify_webhook(req.headers, req.body, signer.public_key, now=NOW + 3) == got.msg_id
    assert clock.slept == []


def test_retries_on_503_keep_the_id_and_sign_each_attempt_afresh(receiver, signer) -> None:
    receiver.routes["/flaky"] = [(503, {}), (503, {}), (200, {})]
    clock = Clock()
    got = deliver(receiver.url + "/flaky", BODY, signer, now=clock.now, sleep=clock.sleep)
    assert got.ok and got.status == 200 and got.attempts == 3 and got.error is None
    reqs = receiver.at("/flaky")
    assert len(reqs) == 3 and {r.headers["webhook-id"] for r in reqs} == {got.msg_id}
    stamps = [int(r.headers["webhook-timestamp"]) for r in reqs]
    assert stamps == [NOW, NOW + 10, NOW + 20]
    assert len({r.headers["webhook-signature"] for r in reqs}) == 3
    for r, ts in zip(reqs, stamps, strict=True):
        assert verify_webhook(r.headers, r.body, signer.public_key, now=ts) == got.msg_id
    assert clock.slept == [0.5, 1.0]


def test_failing_every_attempt_returns_the_last_answer(receiver, signer) -> None:
    receiver.routes["/down"] = [(500, {})]
    clock = Clock()
    got = deliver(
        receiver.url + "/down", BODY, signer, attempts=4, now=clock.now, sleep=clock.sleep
    )
    assert not got.ok and got.status == 500 and got.attempts == 4 and got.error == "answered 500"
    assert len(receiver.at("/down")) == 4 and clock.slept == [0.5, 1.0, 2.0]


def test_a_429_is_retried_after_its_retry_after(receiver, signer) -> None:
    receiver.routes["/busy"] = [
        (429, {"Retry-After": "3"}),
        (429, {"Retry-After": "3600"}),
        (202, {}),
    ]
    clock = Clock()
    got = deliver(receiver.url + "/busy", BODY, signer, now=clock.now, sleep=clock.sleep)
    assert got.ok and got.attempts == 3 and clock.slept == [3.0, 10.0]  # capped at 10 s


def test_no_retry_on_400(receiver, signer) -> None:
    receiver.routes["/bad"] = [(400, {}), (200, {})]
    clock = Clock()
    got = deliver(receiver.url + "/bad", BODY, signer, now=clock.now, sleep=clock.sleep)
    assert not got.ok and got.status == 400 and got.attempts == 1 and got.error == "answered 400"
    assert len(receiver.at("/bad")) == 1 and clock.slept == []


def test_a_redirect_is_a_failure_and_is_not_followed(receiver, signer) -> None:
    receiver.routes["/moved"] = [(302, {"Location": receiver.url + "/target"})]
    receiver.routes["/target"] = [(200, {})]
    clock = Clock()
    got = deliver(receiver.url + "/moved", BODY, signer, now=clock.now, sleep=clock.sleep)
    assert not got.ok and got.status == 302 and got.attempts == 1
    assert got.error is not None and "redirect" in got.error
    assert len(receiver.at("/moved")) == 1 and receiver.at("/target") == []


def test_an_unreachable_port_is_a_failed_delivery_not_an_exception(signer) -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # closed when the block ends: nothing listens there
    clock = Clock()
    got = deliver(f"http://127.0.0.1:{port}/hook", BODY, signer, attempts=2, timeout=2.0,
                  now=clock.now, sleep=clock.sleep)  # fmt: skip
    assert not got.ok and got.status is None and got.attempts == 2
    assert got.error is not None and "Connect" in got.error and clock.slept == [0.5]


def test_a_large_answer_is_not_read_whole(signer) -> None:
    sent: list[int] = []

    def big(chunks: int) -> Iterator[bytes]:
        for _ in range(chunks):
            sent.append(1)
            yield b"x" * 16384

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, content=big(1000))

    got = deliver("http://hook.test/", BODY, signer, transport=httpx.MockTransport(handler))
    assert got.ok and len(sent) <= 5  # 64 KiB is four chunks, then reading stops


@pytest.mark.parametrize(
    "url", ["ftp://example.com/hook", "file:///etc/passwd", "example.com/hook", "http://", ""]
)
def test_only_http_urls_are_delivered_to(signer, url: str) -> None:
    with pytest.raises(InputError):
        deliver(url, BODY, signer)


def test_bad_arguments_are_input_errors(signer) -> None:
    with pytest.raises(InputError):
        deliver("http://127.0.0.1:1/", BODY, signer, attempts=0)
    with pytest.raises(InputError):
        deliver("http://127.0.0.1:1/", "text", signer)
    with pytest.raises(InputError):
        signer.headers(BODY, msg_id="msg.with.dots", timestamp=NOW)
    with pytest.raises(InputError):
        signer.headers(BODY, msg_id=new_message_id(), timestamp=-1)
    with pytest.raises(InputError):
        verify_webhook(_signed(signer), BODY, b"short", now=NOW)


# --- verification ---------------------------------------------------------------------


def test_flipping_one_bit_of_the_body_or_any_header_is_rejected(signer) -> None:
    key = signer.public_key
    headers = _signed(signer)
    assert verify_webhook(headers, BODY, key, now=NOW) == "msg_" + "ab" * 16
    body = bytes([BODY[0], BODY[1] ^ 1, *BODY[2:]])
    assert _check_of(headers, body, key) == "webhook.signature"
    for name in ("webhook-id", "webhook-timestamp"):  # still well formed, now signed wrong
        assert _check_of(headers | {name: _flip(headers[name])}, BODY, key) == "webhook.signature"
    scheme, encoded = headers["webhook-signature"].split(",")
    raw = bytearray(base64.b64decode(encoded))
    raw[10] ^= 0x01
    bad = f"{scheme},{base64.b64encode(bytes(raw)).decode()}"
    assert _check_of(headers | {"webhook-signature": bad}, BODY, key) == "webhook.signature"
    flipped_text = headers | {"webhook-signature": _flip(headers["webhook-signature"], 10)}
    assert _check_of(flipped_text, BODY, key) == "webhook.signature"


def test_a_wrong_key_is_rejected(signer) -> None:
    other = WebhookSigner.generate()
    assert _check_of(_signed(signer), BODY, other.public_key) == "webhook.signature"


@pytest.mark.parametrize("offset", [-301, 301, -(10**6), 10**6])
def test_stale_and_future_timestamps_are_rejected(signer, offset: int) -> None:
    headers = _signed(signer, ts=NOW + offset)
    assert _check_of(headers, BODY, signer.public_key) == "webhook.timestamp"


def test_the_tolerance_edges_and_a_custom_tolerance(signer) -> None:
    key = signer.public_key
    for offset in (-300, 300):
        verify_webhook(_signed(signer, ts=NOW + offset), BODY, key, now=NOW)
    with pytest.raises(VerificationError, match=r"^webhook\.timestamp"):
        verify_webhook(_signed(signer, ts=NOW - 31), BODY, key, now=NOW, tolerance=30)


@pytest.mark.parametrize("name", ["webhook-id", "webhook-timestamp", "webhook-signature"])
def test_missing_or_empty_headers_are_rejected(signer, name: str) -> None:
    headers = _signed(signer)
    missing = {k: v for k, v in headers.items() if k != name}
    assert _check_of(missing, BODY, signer.public_key) == "webhook.headers"
    assert _check_of(headers | {name: ""}, BODY, signer.public_key) == "webhook.headers"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("webhook-timestamp", "+1700000000"),
        ("webhook-timestamp", " 1700000000"),
        ("webhook-timestamp", "1700000000.5"),
        ("webhook-timestamp", "1_700_000_000"),
        ("webhook-timestamp", "１７００００００００"),  # fullwidth digits: int() would take them
        ("webhook-id", "msg.1700000000"),
        ("webhook-id", "m" * 257),
        ("webhook-signature", "v1a," + "A" * 5000),
        ("webhook-signature", " ".join(["v1a,AAAA"] * 17)),
    ],
)
def test_malformed_and_oversized_headers_are_rejected(signer, name: str, value: str) -> None:
    assert _check_of(_signed(signer) | {name: value}, BODY, signer.public_key) == "webhook.headers"


def test_header_names_are_matched_in_any_case_but_only_once(signer) -> None:
    headers = _signed(signer)
    shouting = {k.upper(): v for k, v in headers.items()} | {"Content-Type": "application/json"}
    assert verify_webhook(shouting, BODY, signer.public_key, now=NOW) == headers["webhook-id"]
    twice = headers | {"Webhook-Id": headers["webhook-id"]}
    assert _check_of(twice, BODY, signer.public_key) == "webhook.headers"


def test_one_valid_signature_among_several_is_accepted(signer) -> None:
    headers = _signed(signer)
    old = _signed(WebhookSigner.generate())["webhook-signature"]
    hmac = "v1,K5oZfzN95Z9UVu1EsfQmfVNQhnkZ2pj9o9NDN/H/pI4="
    for listed in (
        f"{old} {headers['webhook-signature']}",
        f"{hmac} {old}  {headers['webhook-signature']}",
        f"v1a,not-base64!! {headers['webhook-signature']} garbage",
    ):
        got = verify_webhook(
            headers | {"webhook-signature": listed}, BODY, signer.public_key, now=NOW
        )
        assert got == headers["webhook-id"]
    only_others = headers | {"webhook-signature": f"{hmac} {old}"}
    assert _check_of(only_others, BODY, signer.public_key) == "webhook.signature"


# --- a known-answer vector, built from the spec's text ---------------------------------

# RFC 8032 section 7.1, TEST 1: a published Ed25519 key pair.
RFC8032_SECRET = bytes.fromhex("9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60")
RFC8032_PUBLIC = bytes.fromhex("d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a")
# The spec's example ("Signature scheme"): its id, timestamp and minified payload.
SPEC_ID = "msg_2KWPBgLlAfxdpx2AI54pPJ85f4W"
SPEC_TS = 1674087231
SPEC_BODY = (
    b'{"type":"contact.created","timestamp":"2022-11-03T20:26:10.344522Z",'
    b'"data":{"id":"1f81eb52-5198-4599-803e-771906343485"}}'
)
# Ed25519 (deterministic) of that content under that key, computed once with
# `cryptography` alone and fixed here.
SPEC_SIGNATURE = (
    "pbpYBMlty2hExn4zt0UTGb6BaP2Vq5AfyzjB9GGV3x/wCJKd8UjOCf8Qhaji6TKY9C5eNMnlF0GG4udaO6B7Ag=="
)


def test_a_known_answer_vector_from_the_spec_text() -> None:
    # The signed content exactly as the spec writes it: msg_id.timestamp.payload.
    content = b"msg_2KWPBgLlAfxdpx2AI54pPJ85f4W.1674087231." + SPEC_BODY
    Ed25519PublicKey.from_public_bytes(RFC8032_PUBLIC).verify(
        base64.b64decode(SPEC_SIGNATURE), content
    )
    signer = WebhookSigner(Ed25519PrivateKey.from_private_bytes(RFC8032_SECRET))
    assert signer.public_key == RFC8032_PUBLIC
    assert signer.key_text == "whpk_11qYAYKxCrfVS/7TyWQHOg7hcvPapiMlrwIaaPcHURo="
    assert signer.headers(SPEC_BODY, msg_id=SPEC_ID, timestamp=SPEC_TS) == {
        "webhook-id": SPEC_ID,
        "webhook-timestamp": "1674087231",
        "webhook-signature": "v1a," + SPEC_SIGNATURE,
    }
    headers = {"webhook-id": SPEC_ID, "webhook-timestamp": str(SPEC_TS),
               "webhook-signature": "v1a," + SPEC_SIGNATURE}  # fmt: skip
    assert verify_webhook(headers, SPEC_BODY, RFC8032_PUBLIC, now=SPEC_TS + 60) == SPEC_ID


def test_message_ids_are_msg_and_32_hex() -> None:
    ids = {new_message_id() for _ in range(100)}
    assert len(ids) == 100
    for i in ids:
        assert i.startswith("msg_") and len(i) == 36 and int(i[4:], 16) >= 0


# --- the webhook key of the home folder ------------------------------------------------


def test_the_home_webhook_key_is_its_own_0600_key(tmp_path) -> None:
    home = Home.open(tmp_path)
    key = home.webhook_key()
    path = tmp_path / "keys" / "webhook.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert raw_public(home.webhook_key().public_key()) == raw_public(key.public_key())
    assert raw_public(home.node_key().public_key()) != raw_public(key.public_key())
