"""The node key's signature over its Oblivious HTTP keys: what binds the HPKE key to
the node a receipt names.

The node's Ed25519 key is the one hardware attestation binds (``_binding``), so a
signature by it over the gateway's key configuration carries that binding over to the
HPKE key: whoever holds the attested key vouches for the decryption key, and a client
checks the signature, under the node key it trusts, before it seals anything.

The signed bytes are domain-separated: a fixed context line, then the
``application/ohttp-keys`` body. No DSSE envelope (its PAE starts ``DSSEv1``), signed
note (text lines ending in a newline and a signature block) or webhook (signed by
another key) begins with this line, so the signature is not any of those.
"""

from __future__ import annotations

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from ..errors import InputError, VerificationError

__all__ = [
    "OHTTP_BINDING_CONTEXT",
    "check_ohttp_binding",
    "ohttp_binding_message",
    "sign_ohttp_binding",
]

OHTTP_BINDING_CONTEXT = b"inferproof ohttp-keys binding v1\n"
CHECK = "ohttp.key_binding"


def ohttp_binding_message(keys: bytes) -> bytes:
    """The bytes the node key signs for ``keys`` (an ``application/ohttp-keys`` body)."""
    return OHTTP_BINDING_CONTEXT + keys


def sign_ohttp_binding(node_key: Ed25519PrivateKey, keys: bytes) -> bytes:
    """The node key's signature binding ``keys`` to it."""
    return node_key.sign(ohttp_binding_message(keys))


def check_ohttp_binding(node_public_key: bytes, keys: bytes, signature: bytes) -> None:
    """Raise :class:`VerificationError` (``ohttp.key_binding``) unless ``signature`` is the
    node key's over ``keys``.

    Example::

        check_ohttp_binding(pinned_node_key, identity_keys, identity_binding)
    """
    try:
        key = Ed25519PublicKey.from_public_bytes(node_public_key)
    except ValueError as exc:
        raise InputError(f"a node key is 32 bytes of Ed25519: {exc}") from None
    try:
        key.verify(signature, ohttp_binding_message(keys))
    except InvalidSignature:
        raise VerificationError(
            CHECK, "the node key did not sign these Oblivious HTTP keys: not this node's"
        ) from None
