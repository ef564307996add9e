"""The node registry on a real EVM (anvil): a node registers through an account and is
discovered; entries are per (node key, registrant), so nobody can replace or squat
another's; a signature made for another registrant, chain, registry or endpoint, or
any one-bit change of a signed field, is rejected by discovery with the reason; the
contract refuses oversized or unprintable fields by name.

The identity documents here carry no real evidence: the registry binds a document's
digest, and checking its evidence is the attest package's job (tests/attest).
"""

from __future__ import annotations

import base64
import json
import re
from dataclasses import replace
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferproof._keys import raw_public
from inferproof.attest import NodeIdentity
from inferproof.attest._identity import IDENTITY_MEDIA_TYPE
from inferproof.chain import (
    NodeRegistry,
    Registration,
    artifact,
    compile_contract,
    discover,
    match_identity,
    sign_registration,
    verify_registration,
)
from inferproof.chain._tools import CONTRACTS
from inferproof.errors import Error, InputError, VerificationError

ENDPOINT = "https://node.example:8443/inferproof"
BAD_SIGNATURE = "signature does not verify"


def _identity(
    key: Ed25519PrivateKey, platform: str = "tdx", when: str = "2025-07-01"
) -> NodeIdentity:
    return NodeIdentity.from_json({
        "mediaType": IDENTITY_MEDIA_TYPE, "platform": platform, "provider": "test",
        "node_key": base64.b64encode(raw_public(key.public_key())).decode(), "nonce": None,
        "evidence": base64.b64encode(b"not real evidence").decode(), "collateral": [],
        "produced_at": f"{when}T00:00:00Z",
    })  # fmt: skip


def _node() -> tuple[Ed25519PrivateKey, NodeIdentity]:
    key = Ed25519PrivateKey.generate()
    return key, _identity(key)


def _deploy(chain: Any) -> NodeRegistry:
    return NodeRegistry.deploy(chain.web3, chain.accounts[0])


def _sign(key: Ed25519PrivateKey, ident: NodeIdentity, reg: NodeRegistry, by: str,
          **over: Any) -> bytes:  # fmt: skip
    fields: dict[str, Any] = {"chain_id": int(reg.web3.eth.chain_id), "registry": reg.address,
                              "registrant": by, "identity": ident.digest,
                              "platform": ident.platform, "endpoint": ENDPOINT}  # fmt: skip
    return sign_registration(key, **{**fields, **over})


def test_the_build_is_reproducible() -> None:
    built = compile_contract("NodeRegistry")
    assert built == artifact("NodeRegistry"), "contracts/NodeRegistry.json is stale"
    committed = (CONTRACTS / "NodeRegistry.json").read_text()
    assert committed == json.dumps(built, indent=1) + "\n"  # CheckpointAnchor.json's layout


def test_register_and_discover(chain: Any) -> None:
    reg = _deploy(chain)
    operator = chain.accounts[1]
    key, ident = _node()
    receipt = reg.register(ident, ENDPOINT, key, sender=operator)
    (entry,) = reg.entries()
    assert entry == Registration(
        node_key=ident.node_key, registrant=operator, identity=ident.digest, platform="tdx",
        endpoint=ENDPOINT, signature=entry.signature, block=receipt["blockNumber"],
    )  # fmt: skip
    found = discover(reg, chain_id=31337)
    assert found.verified == (entry,) and found.rejected == () and not found.truncated
    match_identity(entry, ident)  # the document fetched from the endpoint is the one named
    with pytest.raises(VerificationError, match="not the registered one"):
        match_identity(entry, _identity(key, when="2025-08-01"))  # a re-attested document
    with pytest.raises(Error, match="not chain 1"):
        discover(reg, chain_id=1)


def test_re_registering_replaces_only_the_senders_entry(chain: Any) -> None:
    reg = _deploy(chain)
    key, ident = _node()
    reg.register(ident, ENDPOINT, key, sender=chain.accounts[1])
    reg.register(ident, "https://moved.example", key, sender=chain.accounts[1])
    (entry,) = reg.entries()
    assert entry.endpoint == "https://moved.example"
    assert discover(reg).verified == (entry,)


def test_a_second_registrant_does_not_replace_the_first(chain: Any) -> None:
    reg = _deploy(chain)
    owner, squatter, second = chain.accounts[1:4]
    key, ident = _node()
    reg.register(ident, ENDPOINT, key, sender=owner)
    # The squatter sends the node's key with its own endpoint; it cannot sign as the node.
    forged = Ed25519PrivateKey.generate().sign(b"anything")
    reg.submit(ident.node_key, ident.digest, "tdx", "https://evil.example", forged, sender=squatter)
    # The node's real signature copied under the squatter's account fails too.
    reg.submit(ident.node_key, ident.digest, "tdx", ENDPOINT, _sign(key, ident, reg, owner),
               sender=squatter)  # fmt: skip
    entries = {e.registrant: e for e in reg.entries()}
    assert set(entries) == {owner, squatter} and entries[owner].endpoint == ENDPOINT
    found = discover(reg)
    assert [e.registrant for e in found.verified] == [owner]
    assert [(r.registration.registrant, BAD_SIGNATURE in r.reason) for r in found.rejected] == [
        (squatter, True)
    ]
    # A node may consent to a second operator: both are then discovered.
    reg.register(ident, "https://second.example", key, sender=second)
    assert {e.registrant for e in discover(reg).verified} == {owner, second}


@pytest.mark.parametrize("field", ["registrant", "chain_id", "registry", "endpoint"])
def test_a_signature_made_for_something_else_is_rejected(chain: Any, field: str) -> None:
    reg = _deploy(chain)
    operator = chain.accounts[1]
    key, ident = _node()
    other = {"registrant": chain.accounts[2], "chain_id": 1, "registry": chain.accounts[3],
             "endpoint": "https://other.example"}[field]  # fmt: skip
    signature = _sign(key, ident, reg, operator, **{field: other})
    reg.submit(ident.node_key, ident.digest, "tdx", ENDPOINT, signature, sender=operator)
    found = discover(reg)
    assert found.verified == ()
    (rejected,) = found.rejected
    assert rejected.registration.registrant == operator
    assert rejected.reason == (
        "the node key's signature does not verify for this chain, registry, registrant and entry"
    )
    # The same entry, signed for what it is, is accepted: only the field made the difference.
    reg.submit(ident.node_key, ident.digest, "tdx", ENDPOINT, _sign(key, ident, reg, operator),
               sender=operator)  # fmt: skip
    assert len(discover(reg).verified) == 1


def _flip(data: bytes, bit: int) -> bytes:
    out = bytearray(data)
    out[bit // 8] ^= 1 << (bit % 8)
    return bytes(out)


def _flip_address(address: str, bit: int) -> str:
    return "0x" + _flip(bytes.fromhex(address[2:]), bit).hex()


def _flip_text(text: str, bit: int) -> str:
    return _flip(text.encode(), bit).decode("utf-8", "surrogateescape")  # as read from chain


def test_every_one_bit_flip_of_a_signed_field_fails(chain: Any) -> None:
    reg = _deploy(chain)
    operator = chain.accounts[1]
    key, ident = _node()
    reg.register(ident, ENDPOINT, key, sender=operator)
    (entry,) = reg.entries()
    at = {"chain_id": 31337, "registry": reg.address}
    verify_registration(entry, **at)  # the unflipped entry verifies
    flips: list[tuple[Registration, dict[str, Any]]] = []
    for name in ("node_key", "signature"):
        value = getattr(entry, name)
        flips += [(replace(entry, **{name: _flip(value, b)}), at) for b in range(len(value) * 8)]
    digest = bytes.fromhex(entry.identity[7:])
    flips += [(replace(entry, identity="sha256:" + _flip(digest, b).hex()), at) for b in range(256)]
    for name in ("platform", "endpoint"):
        text = getattr(entry, name)
        flips += [(replace(entry, **{name: _flip_text(text, b)}), at) for b in range(len(text) * 8)]
    flips += [(replace(entry, registrant=_flip_address(operator, b)), at) for b in range(160)]
    flips += [(entry, {**at, "registry": _flip_address(reg.address, b)}) for b in range(160)]
    flips += [(entry, {**at, "chain_id": 31337 ^ (1 << b)}) for b in range(64)]
    assert len(flips) == 256 + 512 + 256 + 8 * (3 + len(ENDPOINT)) + 2 * 160 + 64
    for flipped, where in flips:
        with pytest.raises(VerificationError) as exc:
            verify_registration(flipped, **where)
        assert exc.value.check == "node-registration", (flipped, where)


def test_flipped_fields_sent_on_chain_are_rejected(chain: Any) -> None:
    reg = _deploy(chain)
    operator = chain.accounts[1]
    key, ident = _node()
    sig = _sign(key, ident, reg, operator)
    digest = "sha256:" + _flip(bytes.fromhex(ident.digest[7:]), 5).hex()
    sent = [
        (_flip(ident.node_key, 200), ident.digest, "tdx", ENDPOINT, sig),
        (ident.node_key, digest, "tdx", ENDPOINT, sig),
        (ident.node_key, ident.digest, "tdx", _flip_text(ENDPOINT, 9 * 8), sig),  # 'o' -> 'n'
        (ident.node_key, ident.digest, "tdx", ENDPOINT, _flip(sig, 300)),
    ]
    for fields in sent:
        reg.submit(*fields, sender=operator)
        found = discover(reg)
        assert found.verified == (), fields
        assert BAD_SIGNATURE in found.rejected[0].reason
        reg.deregister(fields[0], sender=operator)
    reg.submit(ident.node_key, ident.digest, "tdx", ENDPOINT, sig, sender=operator)
    assert len(discover(reg).verified) == 1


def test_deregister_removes_only_the_senders_entry(chain: Any) -> None:
    reg = _deploy(chain)
    a, b = chain.accounts[1:3]
    nodes = [_node() for _ in range(3)]
    for key, ident in nodes:
        reg.register(ident, ENDPOINT, key, sender=a)
    first_key, first = nodes[0]
    reg.register(first, "https://b.example", first_key, sender=b)
    assert len(reg.entries()) == 4
    reg.deregister(first.node_key, sender=a)
    assert [(e.registrant, e.endpoint) for e in reg.entries(keys=[first.node_key])] == [
        (b, "https://b.example")
    ]
    with pytest.raises(Error, match="NodeRegistry contract refused: NotRegistered"):
        reg.deregister(first.node_key, sender=a)
    reg.deregister(first.node_key, sender=b)
    assert reg.call(reg.contract.functions.keyCount()) == 2
    left = {e.node_key for e in discover(reg).verified}
    assert left == {nodes[1][1].node_key, nodes[2][1].node_key}
    assert reg.entries(keys=[first.node_key]) == ()


@pytest.mark.parametrize(
    ("platform", "endpoint", "signature", "error"),
    [
        ("x" * 33, ENDPOINT, bytes(64), "PlatformTooLong"),
        ("tdx", "https://" + "a" * 505, bytes(64), "EndpointTooLong"),
        ("tdx", ENDPOINT, bytes(65), "BadSignatureLength"),
        ("tdx", ENDPOINT, bytes(63), "BadSignatureLength"),
        ("", ENDPOINT, bytes(64), "Empty"),
        ("tdx", "", bytes(64), "Empty"),
        ("tdx", "https://node.example/\x1b[2J", bytes(64), "NotPrintable"),
        ("tdx", "https://nöde.example", bytes(64), "NotPrintable"),
        ("td x", ENDPOINT, bytes(64), "NotPrintable"),
    ],
)
def test_the_contract_refuses_oversized_or_unprintable_fields(
    chain: Any, platform: str, endpoint: str, signature: bytes, error: str
) -> None:
    reg = _deploy(chain)
    key = bytes(range(32))
    with pytest.raises(Error, match=f"NodeRegistry contract refused: {error}$"):
        reg.submit(
            key, "sha256:" + "0" * 64, platform, endpoint, signature, sender=chain.accounts[1]
        )
    assert reg.entries() == ()


def test_the_bounds_themselves_are_accepted(chain: Any) -> None:
    reg = _deploy(chain)
    longest = "https://" + "a" * 504
    assert len(longest) == 512
    reg.submit(
        bytes(32), "sha256:" + "0" * 64, "x" * 32, longest, bytes(64), sender=chain.accounts[1]
    )
    (entry,) = reg.entries()
    assert (entry.platform, entry.endpoint) == ("x" * 32, longest)
    (rejected,) = discover(reg).rejected  # stored by the chain, refused by the client
    assert rejected.reason == "unknown platform 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx'"


def test_reading_is_capped_and_says_so(chain: Any) -> None:
    reg = _deploy(chain)
    nodes = [_node() for _ in range(3)]
    for key, ident in nodes:
        reg.register(ident, ENDPOINT, key, sender=chain.accounts[1])
    assert len(reg.entries(limit=2)) == 2
    found = discover(reg, limit=2)
    assert len(found.verified) == 2 and found.truncated
    assert not discover(reg, limit=3).truncated
    wanted = nodes[2][1].node_key
    assert [e.node_key for e in discover(reg, keys=[wanted], limit=1).verified] == [wanted]


@pytest.mark.parametrize(
    ("endpoint", "reason"),
    [
        ("ftp://node.example", "not an http(s) URL"),
        ("https://", "not an http(s) URL"),
        ("https://trusted.example@evil.example", "no user info"),
        ("https://node.example/?x=1", "no user info, query or fragment"),
        ("https://node.example/#top", "no user info, query or fragment"),
        ("https://node.example:99999", "port is not valid"),
    ],
)
def test_endpoints_must_be_plain_http_urls(chain: Any, endpoint: str, reason: str) -> None:
    reg = _deploy(chain)
    operator = chain.accounts[1]
    key, ident = _node()
    with pytest.raises(InputError, match=re.escape(reason)):
        reg.register(ident, endpoint, key, sender=operator)
    # Sent anyway (the contract only bounds it), discovery rejects it with the reason.
    reg.submit(ident.node_key, ident.digest, "tdx", endpoint, bytes(64), sender=operator)
    (rejected,) = discover(reg).rejected
    assert reason in rejected.reason


def test_register_refuses_an_identity_for_another_key(chain: Any) -> None:
    reg = _deploy(chain)
    _, ident = _node()
    with pytest.raises(InputError, match="binds another key"):
        reg.register(ident, ENDPOINT, Ed25519PrivateKey.generate(), sender=chain.accounts[1])
    assert reg.entries() == ()
