"""The node's Oblivious HTTP gateway on a real node on loopback: an inference sealed to
the node's key, one-shot or chunked, is served, its bundle verifies, and replayed,
altered, stale or misdirected requests are refused."""

from __future__ import annotations

import json
from collections.abc import Iterator
from email.utils import formatdate
from pathlib import Path

import httpx
import pytest

from inferproof.confidential import (
    BinaryRequest,
    ChunkedClientRequest,
    ClientRequest,
    ResponseReader,
    decode_response,
    encapsulate_chunked_request,
    encapsulate_request,
    encode_request,
    parse_key_configs,
)
from inferproof.receipts import Bundle
from inferproof.testing import credit_risk_model
from inferproof.verify import Policy
from tests.node.conftest import Running, pushed, start

GATEWAY = "/.well-known/ohttp-gateway"
ROW = {"X": [[52.0, 0.41, 34.0, 2.0]]}


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start(tmp_path_factory.mktemp("ohttp") / "node")
    try:
        pushed(running, credit_risk_model()[0], name="credit", version="1")
        yield running
    finally:
        running.stop()


def _sealed(node: Running, path: str = "/v1/infer", date: str | None = None,
            body: bytes | None = None) -> ClientRequest:  # fmt: skip
    with node.http(auth=False) as http:
        keys = http.get(GATEWAY)
    assert keys.headers["content-type"] == "application/ohttp-keys"
    (config,) = parse_key_configs(keys.content)
    headers = [("authorization", f"Bearer {node.token}"), ("content-type", "application/json")]
    if date is not False:
        headers.append(("date", date or formatdate(usegmt=True)))
    content = (
        body if body is not None else json.dumps({"model": "credit:1", "inputs": ROW}).encode()
    )
    message = BinaryRequest("POST", "http", "node", path, tuple(headers), content)
    return encapsulate_request(config, encode_request(message))


def _post(node: Running, sealed: bytes, kind: str = "message/ohttp-req") -> httpx.Response:
    with node.http(auth=False) as http:
        return http.post(GATEWAY, content=sealed, headers={"content-type": kind})


def test_a_sealed_inference_is_served_and_its_bundle_verifies(node: Running) -> None:
    sealed = _sealed(node)
    answer = _post(node, sealed.encapsulated)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "message/ohttp-res"
    # What the relay and the node's HTTP layer see carries no plaintext.
    assert b"credit" not in sealed.encapsulated and b"bundle" not in answer.content
    inner = decode_response(sealed.open_response(answer.content))
    assert inner.status == 200, inner.content
    body = json.loads(inner.content)
    bundle = Bundle.from_json(body["bundle"])
    report = node.node.verifier(Policy(require_log=True)).check(bundle)
    assert report.verified, report.first_failure
    assert bundle.receipt.model_digest.startswith("sha256:")


def test_a_replayed_request_is_refused(node: Running) -> None:
    sealed = _sealed(node)
    assert _post(node, sealed.encapsulated).status_code == 200
    again = _post(node, sealed.encapsulated)
    assert again.status_code == 400 and "a replay" in again.json()["error"]["message"]


def test_an_altered_request_is_refused(node: Running) -> None:
    wire = bytearray(_sealed(node).encapsulated)
    wire[-1] ^= 1
    answer = _post(node, bytes(wire))
    assert answer.status_code == 400
    assert "does not open with this gateway's key" in answer.json()["error"]["message"]


@pytest.mark.parametrize(
    ("date", "says"),
    [
        (False, "no Date header"),
        ("Mon, 27 Jul 2009 12:28:53 GMT", "more than 300 s from now"),
        ("yesterday", "not an HTTP date"),
    ],
)
def test_an_undated_or_stale_request_is_refused(node: Running, date: object, says: str) -> None:
    answer = _post(node, _sealed(node, date=date).encapsulated)  # type: ignore[arg-type]
    assert answer.status_code == 400 and says in answer.json()["error"]["message"]


def test_only_the_api_is_reachable_through_the_gateway(node: Running) -> None:
    sealed = _sealed(node, path="/explore")
    answer = _post(node, sealed.encapsulated)
    assert answer.status_code == 200  # the gateway answered; the answer inside refuses
    assert decode_response(sealed.open_response(answer.content)).status == 403


def test_the_inner_request_needs_its_own_token(node: Running) -> None:
    with node.http(auth=False) as http:
        (config,) = parse_key_configs(http.get(GATEWAY).content)
    message = BinaryRequest("POST", "http", "node", "/v1/infer",
                            (("content-type", "application/json"), ("date", formatdate(usegmt=True))),
                            json.dumps({"model": "credit:1", "inputs": ROW}).encode())  # fmt: skip
    sealed = encapsulate_request(config, encode_request(message))
    inner = decode_response(sealed.open_response(_post(node, sealed.encapsulated).content))
    assert inner.status == 401


def test_a_request_of_another_media_type_is_refused(node: Running) -> None:
    answer = _post(node, _sealed(node).encapsulated, kind="application/json")
    assert answer.status_code == 415


def test_the_key_configuration_is_the_nodes_own_key(node: Running, tmp_path: Path) -> None:
    from inferproof.confidential import Gateway

    with node.http(auth=False) as http:
        (config,) = parse_key_configs(http.get(GATEWAY).content)
    assert config.public_key == Gateway(node.node.home.ohttp_key()).config.public_key
    assert (node.home / "keys" / "ohttp.key").stat().st_mode & 0o077 == 0


# -- chunked requests (draft-ietf-ohai-chunked-ohttp-08) ---------------------------------

CHUNKED = "message/ohttp-chunked-req"


def _chunked(node: Running, path: str = "/v1/infer") -> ChunkedClientRequest:
    with node.http(auth=False) as http:
        (config,) = parse_key_configs(http.get(GATEWAY).content)
    headers = (("authorization", f"Bearer {node.token}"), ("content-type", "application/json"),
               ("date", formatdate(usegmt=True)))  # fmt: skip
    content = json.dumps({"model": "credit:1", "inputs": ROW}).encode()
    message = BinaryRequest("POST", "http", "node", path, headers, content)
    return encapsulate_chunked_request(config, encode_request(message))


def _opened(sealed: ChunkedClientRequest, wire: bytes) -> tuple[int, bytes]:
    chunks, inner = sealed.response_reader(), ResponseReader()
    body = [piece for chunk in chunks.feed(wire) for piece in inner.feed(chunk)]
    body += inner.feed(chunks.close())
    assert inner.close() is None  # the indeterminate-length form, read as it came
    assert inner.status is not None
    return inner.status, b"".join(body)


def test_a_chunked_inference_is_served_and_its_bundle_verifies(node: Running) -> None:
    sealed = _chunked(node)
    answer = _post(node, sealed.encapsulated, CHUNKED)
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "message/ohttp-chunked-res"
    assert b"bundle" not in answer.content
    status, body = _opened(sealed, answer.content)
    assert status == 200
    bundle = Bundle.from_json(json.loads(body)["bundle"])
    assert node.node.verifier(Policy(require_log=True)).check(bundle).verified


def test_a_replayed_chunked_request_is_refused(node: Running) -> None:
    sealed = _chunked(node)
    assert _post(node, sealed.encapsulated, CHUNKED).status_code == 200
    again = _post(node, sealed.encapsulated, CHUNKED)
    assert again.status_code == 400 and "a replay" in again.json()["error"]["message"]


def test_every_flipped_bit_of_a_chunked_request_is_refused(node: Running) -> None:
    wire = _chunked(node).encapsulated
    for i in range(0, len(wire) * 8, 7):  # every seventh bit: header, enc, lengths, tags
        bad = bytearray(wire)
        bad[i // 8] ^= 1 << (i % 8)
        answer = _post(node, bytes(bad), CHUNKED)
        assert answer.status_code == 400, i
        assert "not an Oblivious HTTP request" in answer.json()["error"]["message"]


def test_the_two_forms_do_not_open_as_each_other(node: Running) -> None:
    """The HPKE info labels differ (RFC 9458 section 4.3; the draft's section 6.1): a
    chunked request posted as one-shot, or one-shot as chunked, does not open."""
    assert _post(node, _chunked(node).encapsulated).status_code == 400
    assert _post(node, _sealed(node).encapsulated, CHUNKED).status_code == 400


def test_a_chunked_request_beyond_the_api_gets_a_sealed_refusal(node: Running) -> None:
    sealed = _chunked(node, path="/explore")
    answer = _post(node, sealed.encapsulated, CHUNKED)
    assert answer.status_code == 200
    assert _opened(sealed, answer.content)[0] == 403
