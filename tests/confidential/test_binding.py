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
from inferproof.client._ohttp import bound_key_config
from inferproof.confidential import Gateway, parse_key_configs
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


def _forged_identity(node: Running, signer: Ed25519PrivateKey, named: bytes) -> httpx.MockTransport:
    """A man in the middle: the node's identity with its own gateway keys, signed by
    ``signer`` and naming ``named`` as the node key."""
    attacker = Gateway(b"\x07" * 32).config.encode()
    keys = len(attacker).to_bytes(2, "big") + attacker
    ident = {**_identity(node), "node_key": base64.b64encode(named).decode(),
             "ohttp": {"keys": base64.b64encode(keys).decode(),
                       "binding": base64.b64encode(sign_ohttp_binding(signer, keys)).decode()}}  # fmt: skip
    return httpx.MockTransport(lambda request: httpx.Response(200, json=ident))


def test_keys_not_signed_by_the_named_node_key_are_refused(node: Running) -> None:
    attacker = Ed25519PrivateKey.generate()
    forged = _forged_identity(node, attacker, node.node.public_key)
    with pytest.raises(VerificationError, match="did not sign these Oblivious HTTP keys"):
        bound_key_config(node.url, forged)


def test_a_node_key_the_client_does_not_trust_is_refused_before_sealing(
    node: Running, tmp_path: Path
) -> None:
    attacker = Ed25519PrivateKey.generate()
    named = raw_public(attacker.public_key())
    forged = _forged_identity(node, attacker, named)  # self-consistent, but not this node
    with pytest.raises(VerificationError, match="does not trust"):
        bound_key_config(node.url, forged, trusted={node.node.public_key})
    # The client's trust root names the real node: a confidential client refuses.
    trust = TrustRoot.from_keys([node.node.public_key])
    with pytest.raises(VerificationError, match="does not trust"):
        Client(node.url, node.token, trust=trust, home=tmp_path, transport=forged,
               confidential=True, relay="http://127.0.0.1:9/")  # fmt: skip


def test_a_pinned_identity_is_what_the_binding_is_checked_against(
    node: Running, tmp_path: Path
) -> None:
    with Client(node.url, node.token, home=tmp_path) as first:
        first.checkpoint()  # pins this node's identity on first use
    forged = _forged_identity(node, Ed25519PrivateKey.generate(), b"\x01" * 32)
    with pytest.raises(VerificationError, match="does not trust"):
        Client(node.url, node.token, home=tmp_path, transport=forged, confidential=True,
               relay="http://127.0.0.1:9/")  # fmt: skip
    assert (
        json.loads(next((tmp_path / "known_nodes").glob("*.json")).read_text())["url"] == node.url
    )
