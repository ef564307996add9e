"""The node registry from Python (web3.py): register a node, list the entries, discover
the nodes whose registration verifies (issue 16).

The contract (``contracts/NodeRegistry.sol``) maps a node key, the node's 32-byte
Ed25519 public key, to the digest of its identity document, its platform and its
endpoint. The EVM cannot check an Ed25519 signature, so the chain cannot tell who
holds a node key: an entry is kept per (node key, registrant account), nobody can
replace another's, and each carries the node's signature over the statement

    b"inferproof/node-registration/v1\\0" + JCS({chain, registry, registrant,
                                                 node_key, identity, platform, endpoint})

(RFC 8785 canonical JSON; ``chain`` is CAIP-2, ``eip155:<chain id>``; addresses are
lowercase hex; ``node_key`` is base64 as in the identity document). :func:`discover`
returns the entries whose signature verifies for this chain, this registry and the
account that registered them, and lists every other entry with the reason it was
rejected. A registration someone copies to another registry, chain or account, or
alters by one bit, fails.

What a verified registration proves: the holder of the node key says it is reachable
at the endpoint and names that identity document. It is not an attestation: fetch
the document from the endpoint and check it with :func:`match_identity` and
:func:`~inferproof.attest.verify_identity_evidence`. The statement has no expiry of
its own; its freshness is the identity document's ``produced_at``, which the
attestation policy's maximum age bounds.

The registry itself may be hostile (any address can be passed here): nothing it
returns is trusted, strings are read as bytes and checked here, and at most
:data:`MAX_ENTRIES` entries are read, reported as ``truncated`` when there are more.
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from .._canonical import canonical_json, check_digest
from .._keys import raw_public
from ..attest import PLATFORMS, NodeIdentity
from ..errors import Error, InputError, VerificationError
from ._contract import Contract

__all__ = [
    "MAX_ENTRIES",
    "Discovery",
    "NodeRegistry",
    "Registration",
    "Rejected",
    "discover",
    "match_identity",
    "registration_statement",
    "sign_registration",
    "verify_registration",
]

NAME = "NodeRegistry"
STATEMENT_PREFIX = b"inferproof/node-registration/v1\0"
# The contract's bounds (NodeRegistry.sol gives their reasons), checked again here:
# the registry at hand may not be our contract.
MAX_PLATFORM = 32
MAX_ENDPOINT = 512
SIGNATURE_LENGTH = 64
# At most this many entries are read by one enumeration. Each is one eth_call of at
# most ~1 KiB; a thousand takes seconds on a local node and about a minute on a slow
# public RPC, while a hostile or spammed registry could hold millions (an entry costs
# only gas). Discovering given node keys (``keys=``) is not limited by spam elsewhere.
MAX_ENTRIES = 1000
# Keys or registrants fetched per call of the contract's paged views.
_PAGE = 100
_CHECK = "node-registration"


@dataclass(frozen=True)
class Registration:
    """One registry entry as read from the chain, not yet verified (see
    :func:`verify_registration`). ``registrant`` is the account that sent it;
    ``block`` the block it was last registered in (not signed)."""

    node_key: bytes
    registrant: str
    identity: str
    platform: str
    endpoint: str
    signature: bytes
    block: int


@dataclass(frozen=True)
class Rejected:
    """An entry :func:`discover` did not accept, with the reason."""

    registration: Registration
    reason: str


@dataclass(frozen=True)
class Discovery:
    """What :func:`discover` found: the verified registrations, the rejected ones with
    their reasons, and whether more entries exist than were read."""

    verified: tuple[Registration, ...]
    rejected: tuple[Rejected, ...]
    truncated: bool


def registration_statement(
    *,
    chain_id: int,
    registry: str,
    registrant: str,
    node_key: bytes,
    identity: str,
    platform: str,
    endpoint: str,
) -> bytes:
    """The exact bytes a node signs to register (module docs); InputError on a field
    that cannot be registered.

    Example::

        msg = registration_statement(chain_id=1, registry=reg.address, registrant=me,
                                     node_key=key, identity=doc.digest,
                                     platform="tdx", endpoint="https://node.example")
    """
    for what, value in (("platform", platform), ("endpoint", endpoint)):
        if not isinstance(value, str):
            raise InputError(f"the {what} is not a string")
    problem = _field_problem(node_key, identity, platform, endpoint)
    if problem:
        raise InputError(problem)
    if not isinstance(chain_id, int) or chain_id <= 0:
        raise InputError(f"chain id {chain_id!r} is not a positive integer")
    statement = {
        "chain": f"eip155:{chain_id}",
        "registry": _address(registry, "registry"),
        "registrant": _address(registrant, "registrant"),
        "node_key": base64.b64encode(node_key).decode(),
        "identity": identity,
        "platform": platform,
        "endpoint": endpoint,
    }
    return STATEMENT_PREFIX + canonical_json(statement)


def sign_registration(
    signer: Ed25519PrivateKey,
    *,
    chain_id: int,
    registry: str,
    registrant: str,
    identity: str,
    platform: str,
    endpoint: str,
) -> bytes:
    """The node's 64-byte signature registering it through ``registrant``'s account,
    for a node whose key is elsewhere than the account sending the transaction.

    Example::

        sig = sign_registration(node_key, chain_id=1, registry=reg.address,
                                registrant=operator, identity=doc.digest,
                                platform=doc.platform, endpoint="https://node.example")
        reg.submit(raw_public(node_key.public_key()), doc.digest, doc.platform,
                   "https://node.example", sig, sender=operator)
    """
    message = registration_statement(
        chain_id=chain_id, registry=registry, registrant=registrant,
        node_key=raw_public(signer.public_key()), identity=identity,
        platform=platform, endpoint=endpoint,
    )  # fmt: skip
    return signer.sign(message)


def verify_registration(registration: Registration, *, chain_id: int, registry: str) -> None:
    """Check that ``registration`` was signed by its node key for this chain, this
    registry and its registrant; VerificationError (check ``node-registration``)
    naming what is wrong.

    Example::

        verify_registration(entry, chain_id=1, registry=reg.address)
    """
    r = registration
    problem = _field_problem(r.node_key, r.identity, r.platform, r.endpoint)
    if problem:
        raise VerificationError(_CHECK, problem)
    if len(r.signature) != SIGNATURE_LENGTH:
        raise VerificationError(_CHECK, f"the signature is {len(r.signature)} bytes, not 64")
    try:
        message = registration_statement(
            chain_id=chain_id, registry=registry, registrant=r.registrant,
            node_key=r.node_key, identity=r.identity, platform=r.platform,
            endpoint=r.endpoint,
        )  # fmt: skip
        Ed25519PublicKey.from_public_bytes(r.node_key).verify(r.signature, message)
    except InputError as exc:
        raise VerificationError(_CHECK, str(exc)) from None
    except (InvalidSignature, ValueError):
        raise VerificationError(
            _CHECK,
            "the node key's signature does not verify for this chain, registry, "
            "registrant and entry",
        ) from None


def match_identity(registration: Registration, identity: NodeIdentity) -> None:
    """Check that ``identity`` (fetched from the endpoint) is the document the
    registration names, for its node key and platform; VerificationError if not.
    The document's evidence is checked apart
    (:func:`~inferproof.attest.verify_identity_evidence`).

    Example::

        match_identity(entry, NodeIdentity.from_json(fetched["attestation"]))
    """
    if identity.digest != registration.identity:
        raise VerificationError(_CHECK, "the identity document is not the registered one")
    if identity.node_key != registration.node_key:
        raise VerificationError(_CHECK, "the identity document binds another node key")
    if identity.platform != registration.platform:
        raise VerificationError(_CHECK, "the identity document is for another platform")


def discover(
    registry: NodeRegistry,
    *,
    chain_id: int | None = None,
    keys: Iterable[bytes] | None = None,
    limit: int = MAX_ENTRIES,
) -> Discovery:
    """The registrations in ``registry`` whose node signature verifies for this chain,
    this registry and their registrant; every other entry is in ``rejected`` with its
    reason. ``chain_id``, when given, must be the RPC's chain (Error otherwise);
    ``keys`` limits discovery to those node keys; at most ``limit`` entries are read.

    Example::

        found = discover(NodeRegistry(w3, address), chain_id=1)
        for entry in found.verified:
            print(entry.endpoint, entry.platform, entry.identity)
        for bad in found.rejected:
            print("ignored", bad.registration.registrant, bad.reason)
    """
    got = int(registry.web3.eth.chain_id)
    if chain_id is not None and got != chain_id:
        raise Error(f"the RPC is chain {got}, not chain {chain_id}")
    entries, truncated = registry.read(keys=keys, limit=limit)
    verified: list[Registration] = []
    rejected: list[Rejected] = []
    for entry in entries:
        try:
            verify_registration(entry, chain_id=got, registry=registry.address)
        except VerificationError as exc:
            rejected.append(Rejected(entry, exc.detail))
        else:
            verified.append(entry)
    return Discovery(tuple(verified), tuple(rejected), truncated)


class NodeRegistry(Contract):
    """One deployed node registry contract (module docs).

    Example::

        reg = NodeRegistry.deploy(w3, deployer)
        reg.register(identity, "https://node.example", node_key, sender=operator)
        print(reg.entries())
    """

    NAME = NAME

    def __init__(self, web3: Any, address: str, abi: Sequence[dict[str, Any]] | None = None):
        super().__init__(web3, address, abi)
        # The same ABI with its outputs' strings read as bytes (the same ABI encoding):
        # a hostile registry's invalid UTF-8 is then checked here, not a decoding crash.
        self._reader = web3.eth.contract(address=address, abi=_strings_as_bytes(self._abi))

    def register(
        self, identity: NodeIdentity, endpoint: str, signer: Ed25519PrivateKey, *, sender: str
    ) -> Any:
        """Register the node of ``identity`` at ``endpoint`` from account ``sender``,
        signed here by ``signer`` (the node key the identity binds); the receipt.

        Example::

            reg.register(node.identity, "https://node.example", node_key, sender=operator)
        """
        if raw_public(signer.public_key()) != identity.node_key:
            raise InputError("the identity document binds another key than the signer's")
        signature = sign_registration(
            signer, chain_id=int(self.web3.eth.chain_id), registry=self.address,
            registrant=sender, identity=identity.digest, platform=identity.platform,
            endpoint=endpoint,
        )  # fmt: skip
        return self.submit(identity.node_key, identity.digest, identity.platform, endpoint,
                           signature, sender=sender)  # fmt: skip

    def submit(
        self, node_key: bytes, identity: str, platform: str, endpoint: str, signature: bytes,
        *, sender: str,
    ) -> Any:  # fmt: skip
        """Send an entry whose signature was made elsewhere (:func:`sign_registration`);
        the receipt. The signature is not checked here: :func:`discover` does.

        Example::

            reg.submit(key, doc.digest, "tdx", "https://node.example", sig, sender=operator)
        """
        if len(node_key) != 32:
            raise InputError("a node key is 32 bytes (Ed25519)")
        digest = bytes.fromhex(check_digest(identity, "identity")[len("sha256:") :])
        fn = self.contract.functions.register(node_key, digest, platform, endpoint, signature)
        return self.send(fn, sender)

    def deregister(self, node_key: bytes, *, sender: str) -> Any:
        """Remove ``sender``'s entry for ``node_key``; the receipt. Others' entries stay.

        Example::

            reg.deregister(key, sender=operator)
        """
        return self.send(self.contract.functions.deregister(node_key), sender)

    def entries(
        self, *, keys: Iterable[bytes] | None = None, limit: int = MAX_ENTRIES
    ) -> tuple[Registration, ...]:
        """Every entry (of ``keys`` only, if given), unverified, at most ``limit``.

        Example::

            for entry in reg.entries():
                print(entry.node_key.hex(), entry.registrant, entry.endpoint)
        """
        return self.read(keys=keys, limit=limit)[0]

    def read(
        self, *, keys: Iterable[bytes] | None = None, limit: int = MAX_ENTRIES
    ) -> tuple[tuple[Registration, ...], bool]:
        """The entries (as :meth:`entries`) and whether there were more than ``limit``.
        All calls read one block, so entries moved by a concurrent removal are
        neither skipped nor read twice."""
        if limit < 0:
            raise InputError("the limit must not be negative")
        block = int(self.web3.eth.block_number)
        wanted = self._keys(block) if keys is None else _unique(bytes(k) for k in keys)
        out: list[Registration] = []
        for n, key in enumerate(wanted):
            if n == limit:  # a hostile registry's keys without entries count too
                return tuple(out), True
            if len(key) != 32:
                raise InputError("a node key is 32 bytes (Ed25519)")
            for registrant in self._registrants(key, block):
                if len(out) == limit:
                    return tuple(out), True
                out.append(self._entry(key, registrant, block))
        return tuple(out), False

    def _keys(self, block: int) -> Iterator[bytes]:
        count = self._count(self._reader.functions.keyCount(), block)
        pages = (self._reader.functions.keys(start, _PAGE) for start in range(0, count, _PAGE))
        return (bytes(k) for k in self._paged(pages, block))

    def _registrants(self, key: bytes, block: int) -> Iterator[str]:
        count = self._count(self._reader.functions.registrantCount(key), block)
        fns = self._reader.functions
        pages = (fns.registrants(key, start, _PAGE) for start in range(0, count, _PAGE))
        return (str(a) for a in self._paged(pages, block))

    def _paged(self, pages: Iterable[Any], block: int) -> Iterator[Any]:
        """The items of the paged view calls ``pages``, each once. A page with nothing
        new ends the listing: ours never returns one before its count, while a hostile
        registry could claim a huge count and answer empty or repeated pages."""
        seen: set[Any] = set()
        for fn in pages:
            fresh = [x for x in dict.fromkeys(self._view(fn, block)[:_PAGE]) if x not in seen]
            if not fresh:
                return
            seen.update(fresh)
            yield from fresh

    def _entry(self, key: bytes, registrant: str, block: int) -> Registration:
        digest, platform, endpoint, signature, number = self._view(
            self._reader.functions.entry(key, registrant), block
        )
        # surrogateescape keeps invalid UTF-8 visible as non-ASCII, which verification
        # refuses: only printable ASCII can be registered.
        return Registration(
            node_key=key, registrant=registrant, identity="sha256:" + bytes(digest).hex(),
            platform=bytes(platform).decode("utf-8", "surrogateescape"),
            endpoint=bytes(endpoint).decode("utf-8", "surrogateescape"),
            signature=bytes(signature), block=int(number),
        )  # fmt: skip

    def _view(self, fn: Any, block: int) -> Any:
        with self._refused():
            return fn.call(block_identifier=block)

    def _count(self, fn: Any, block: int) -> int:
        return int(self._view(fn, block))


def _field_problem(node_key: bytes, identity: str, platform: str, endpoint: str) -> str | None:
    """Why these fields cannot be registered, or None."""
    if len(node_key) != 32:
        return "the node key is not 32 bytes (Ed25519)"
    try:
        check_digest(identity, "the identity")
    except InputError as exc:
        return str(exc)
    if platform not in PLATFORMS:
        return f"unknown platform {platform[:MAX_PLATFORM]!r}"
    if not 0 < len(endpoint) <= MAX_ENDPOINT or not _printable(endpoint):
        return f"the endpoint is not printable ASCII of 1 to {MAX_ENDPOINT} characters"
    url = urlsplit(endpoint)
    try:
        url.port  # noqa: B018 - raises ValueError on a port that is not a number in range
    except ValueError:
        return "the endpoint's port is not valid"
    if url.scheme not in ("http", "https") or not url.hostname:
        return "the endpoint is not an http(s) URL with a host"
    if "@" in url.netloc or url.query or url.fragment or "?" in endpoint or "#" in endpoint:
        # user@host reads like another host to a person; a base URL needs neither.
        return "the endpoint must have no user info, query or fragment"
    return None


def _printable(text: str) -> bool:
    return all("\x21" <= c <= "\x7e" for c in text)


def _address(value: str, what: str) -> str:
    if not (isinstance(value, str) and len(value) == 42 and value[:2] in ("0x", "0X")):
        raise InputError(f"the {what} is not a 20-byte hex address")
    try:
        bytes.fromhex(value[2:])
    except ValueError:
        raise InputError(f"the {what} is not a 20-byte hex address") from None
    return "0x" + value[2:].lower()


def _unique(items: Iterable[bytes]) -> list[bytes]:
    return list(dict.fromkeys(items))


def _strings_as_bytes(abi: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    out = copy.deepcopy(list(abi))
    for item in out:
        for output in item.get("outputs", []):
            if output.get("type") == "string":
                output["type"] = output["internalType"] = "bytes"
    return out
