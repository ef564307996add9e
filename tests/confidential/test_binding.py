"""The node key's signature over its Oblivious HTTP keys, as the identity serves it, and
a client that checks it before it seals anything."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferproof._keys import raw_public
from inferproof.attest import OHTTP_BINDING_CONTEXT, check_ohttp_binding, sign_ohttp_binding
from inferproof.client import Client
from inferproof.client._ohttp import bind_gateway
from inferproof.confidential import (
    BinaryResponse,
    Gateway,
    encode_response,
    open_chunked_request,
    parse_key_configs,
)
from inferproof.errors import VerificationError
from inferproof.verify import TrustRoot
from tests.node.conftest import Running, start


@pytest.fixture(scope="module")
def node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    running = start(tmp_path_factory.mktemp("binding") / "node")
    try:
        yield running
    finally:
        running.stop()


def _identity(node: Running) -> dict[str, object]:
    with node.http(auth=False) as http:
        body: dict[str, object] = http.get("/v1/identity").json()
    return body


def test_the_identity_binds_the_gateway_keys_to_the_node_key(node: Running) -> None:
    ident = _identity(node)
    ohttp = ident["ohttp"]
    assert isinstance(ohttp, dict)
    keys, binding = base64.b64decode(ohttp["keys"]), base64.b64decode(ohttp["binding"])
    check_ohttp_binding(node.node.public_key, keys, binding)
    with node.http(auth=False) as http:
        assert http.get("/.well-known/ohttp-gateway").content == keys
    (config,) = parse_key_configs(keys)
    assert config.public_key == Gateway(node.node.home.ohttp_key()).config.public_key


def test_every_flipped_bit_of_the_keys_or_the_binding_is_refused(node: Running) -> None:
    ohttp = _identity(node)["ohttp"]
    assert isinstance(ohttp, dict)
    keys, binding = base64.b64decode(ohttp["keys"]), base64.b64decode(ohttp["binding"])
    for which in ("keys", "binding"):
        data = keys if which == "keys" else binding
        for i in range(len(data) * 8):
            bad = bytearray(data)
            bad[i // 8] ^= 1 << (i % 8)
            k, b = (bytes(bad), binding) if which == "keys" else (keys, bytes(bad))
            with pytest.raises(VerificationError) as caught:
                check_ohttp_binding(node.node.public_key, k, b)
            assert caught.value.check == "ohttp.key_binding"


def test_the_binding_is_domain_separated(node: Running) -> None:
    """The signed bytes start with a context line no other signed format of the node
    starts with (a DSSE PAE starts 'DSSEv1', a checkpoint with its origin)."""
    key = Ed25519PrivateKey.generate()
    keys = b"\x00\x01x"
    signature = sign_ohttp_binding(key, keys)
    key.public_key().verify(signature, OHTTP_BINDING_CONTEXT + keys)
    with pytest.raises(VerificationError):
        check_ohttp_binding(raw_public(key.public_key()), keys, key.sign(keys))


def _evil_relay(ident: dict[str, object]) -> httpx.MockTransport:
    """A man in the middle posing as the relay: it hands out its own gateway keys,
    opens what is sealed to them and answers ``ident`` to every request."""
    attacker = Gateway(b"\x07" * 32)
    config = attacker.config.encode()
    keys = len(config).to_bytes(2, "big") + config

    def handle(request: httpx.Request) -> httpx.Response:
        if request.method == "GET":
            return httpx.Response(
                200, content=keys, headers={"content-type": "application/ohttp-keys"}
            )
        _, writer = open_chunked_request(attacker, request.read())
        answer = BinaryResponse(
            200, (("content-type", "application/json"),), json.dumps(ident).encode()
        )
        return httpx.Response(200, content=b"".join(writer.whole(encode_response(answer))),
                              headers={"content-type": "message/ohttp-chunked-res"})  # fmt: skip

    return httpx.MockTransport(handle)


def _forged_identity(node: Running, signer: Ed25519PrivateKey, named: bytes) -> httpx.MockTransport:
    """The node's identity with the attacker's gateway keys, signed by ``signer`` and
    naming ``named`` as the node key, served by a man-in-the-middle relay."""
    attacker = Gateway(b"\x07" * 32).config.encode()
    keys = len(attacker).to_bytes(2, "big") + attacker
    ident = {**_identity(node), "node_key": base64.b64encode(named).decode(),
             "ohttp": {"keys": base64.b64encode(keys).decode(),
                       "binding": base64.b64encode(sign_ohttp_binding(signer, keys)).decode()}}  # fmt: skip
    return _evil_relay(ident)


RELAY = "http://relay.invalid/"


def test_keys_not_signed_by_the_named_node_key_are_refused(node: Running) -> None:
    attacker = Ed25519PrivateKey.generate()
    forged = _forged_identity(node, attacker, node.node.public_key)
    with pytest.raises(VerificationError, match="did not sign these Oblivious HTTP keys"):
        bind_gateway(node.url, RELAY, transport=forged)


def test_keys_the_relay_swapped_in_are_refused(node: Running) -> None:
    """The relay hands out its own keys and answers the node's real identity, whose
    signed keys are the node's: the client sees the keys differ and seals nothing more."""
    with pytest.raises(VerificationError, match="not the one the node signed") as caught:
        bind_gateway(node.url, RELAY, transport=_evil_relay(_identity(node)))
    assert caught.value.check == "ohttp.key_binding"


def test_a_node_key_the_client_does_not_trust_is_refused_before_sealing(
    node: Running, tmp_path: Path
) -> None:
    attacker = Ed25519PrivateKey.generate()
    named = raw_public(attacker.public_key())
    forged = _forged_identity(node, attacker, named)  # self-consistent, but not this node
    with pytest.raises(VerificationError, match="does not trust"):
        bind_gateway(node.url, RELAY, transport=forged, trusted={node.node.public_key})
    # The client's trust root names the real node: a confidential client refuses.
    trust = TrustRoot.from_keys([node.node.public_key])
    with pytest.raises(VerificationError, match="does not trust"):
        Client(node.url, node.token, trust=trust, home=tmp_path, transport=forged,
               confidential=True, relay=RELAY)  # fmt: skip


def test_a_pinned_identity_is_what_the_binding_is_checked_against(
    node: Running, tmp_path: Path
) -> None:
    with Client(node.url, node.token, home=tmp_path) as first:
        first.checkpoint()  # pins this node's identity on first use
    forged = _forged_identity(node, Ed25519PrivateKey.generate(), b"\x01" * 32)
    with pytest.raises(VerificationError, match="does not trust"):
        Client(node.url, node.token, home=tmp_path, transport=forged, confidential=True,
               relay=RELAY)  # fmt: skip
    assert (
        json.loads(next((tmp_path / "known_nodes").glob("*.json")).read_text())["url"] == node.url
    )
