"""ZK results settled on chain: the verifier of a setup, the settlement contract, and
``zk.onchain``.

``contracts/InferenceSettlement.sol`` accepts a result only with a proof its circuit's
verifier (EZKL's, see :mod:`._zkverifier`) accepts, and records the model digest, a
commitment to the input and the output; a result settles once. :func:`onchain_check`
is the ``zk.onchain`` check of ``verify --rpc``: the verifier the contract names for
the bundle's setup runs exactly the code this machine builds from that setup, and it
accepts the bundle's proof; whether and where the result is settled is reported.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from eth_abi.abi import encode as abi_encode
from eth_utils.crypto import keccak

from .._canonical import check_digest
from .._checks import Check, failed, passed
from ..errors import Error, InputError
from ._contract import Contract, deploy_code
from ._zkverifier import EvmVerifier

if TYPE_CHECKING:
    from ..proofs.zk import ZkSetup
    from ..receipts import Bundle

__all__ = ["Circuit", "InferenceSettlement", "Settled", "ZkClaim", "deploy_verifier",
           "onchain_check"]  # fmt: skip

CHECK_ONCHAIN = "zk.onchain"
_ZERO = b"\0" * 32


def digest_bytes(digest: str) -> bytes:
    """``sha256:HEX`` as the 32 bytes a contract stores (InputError if malformed)."""
    return bytes.fromhex(check_digest(digest).split(":", 1)[1])


def _word(value: int) -> bytes:
    return value.to_bytes(32, "big")


@dataclass(frozen=True)
class ZkClaim:
    """What a ZK bundle asks the chain to accept: the proof and its instance column."""

    setup_digest: str
    proof: bytes
    instances: tuple[int, ...]
    receipt_digest: str

    @classmethod
    def from_bundle(cls, bundle: Bundle) -> ZkClaim:
        """The claim of a bundle whose receipt carries a ZK proof (InputError if not)."""
        from ..proofs.zk import BN254_R, ZkProof, felt_to_int
        from ..receipts import receipt_digest

        part = bundle.proofs.get("zk")
        if not isinstance(part, dict) or not isinstance(part.get("proof"), dict):
            raise InputError("the bundle carries no zk proof (prove with --proof zk)")
        proof = ZkProof.from_json(part["proof"])
        column = tuple(felt_to_int(f) % BN254_R for f in proof.instances)
        return cls(proof.setup_digest, proof.proof, column, receipt_digest(bundle))

    @property
    def id(self) -> bytes:
        """The contract's ``settlementId``: one circuit and one instance column."""
        encoded = abi_encode(["bytes32", "uint256[]"],
                             [digest_bytes(self.setup_digest), list(self.instances)])  # fmt: skip
        return bytes(keccak(encoded))


@dataclass(frozen=True)
class Circuit:
    """A circuit as the settlement contract registers it."""

    verifier: str
    model_digest: bytes
    params_hash: bytes
    input_hashes: int
    params: int
    public_inputs: int
    outputs: int

    @classmethod
    def of(cls, setup: ZkSetup, verifier: str) -> Circuit:
        """The registration of ``setup``'s circuit verified by the contract at ``verifier``."""
        from ..proofs.zk import BN254_R, felt_to_int, layout

        where = layout(setup)
        n = [s.stop - s.start for s in (where.input_hashes, where.param_hashes,
                                        where.public_inputs, where.outputs)]  # fmt: skip
        params = [felt_to_int(f) % BN254_R for f in setup.param_hash or ()][: n[1]]
        # What the contract compares the weight-hash instances with (hashed weights).
        hashed = hashlib.sha256(b"".join(_word(p) for p in params)).digest() if n[1] else _ZERO
        return cls(verifier, digest_bytes(setup.model_digest), hashed, *n)

    def as_tuple(self) -> tuple[Any, ...]:
        return (self.verifier, self.model_digest, self.params_hash, self.input_hashes,
                self.params, self.public_inputs, self.outputs)  # fmt: skip


@dataclass(frozen=True)
class Settled:
    """A settled result: what the contract recorded, and the block it landed in."""

    id: bytes
    setup_digest: bytes
    model_digest: bytes
    input_commitment: bytes
    receipt_digest: bytes
    submitter: str
    block: int
    outputs: tuple[int, ...]


class InferenceSettlement(Contract):
    """One deployed settlement contract (module docs).

    Example::

        settlement = InferenceSettlement.deploy(w3, owner)
        settlement.register(setup, deploy_verifier(w3, owner, built), sender=owner)
        settlement.settle(ZkClaim.from_bundle(bundle), sender=anyone)
    """

    NAME = "InferenceSettlement"

    def register(self, setup: ZkSetup, verifier: str, *, sender: str) -> Any:
        fn = self.contract.functions.registerCircuit(
            digest_bytes(setup.digest()), Circuit.of(setup, verifier).as_tuple()
        )
        return self.send(fn, sender)

    def circuit(self, setup_digest: str) -> Circuit | None:
        got = self.call(self.contract.functions.circuits(digest_bytes(setup_digest)))
        if int(got[0], 16) == 0:
            return None
        return Circuit(str(got[0]), bytes(got[1]), bytes(got[2]), *(int(x) for x in got[3:7]))

    def settled(self, claim: ZkClaim) -> Settled | None:
        got = self.call(self.contract.functions.settlements(claim.id))
        if int(got[5]) == 0:
            return None
        outputs = self.call(self.contract.functions.outputsOf(claim.id))
        return Settled(claim.id, bytes(got[0]), bytes(got[1]), bytes(got[2]), bytes(got[3]),
                       str(got[4]), int(got[5]), tuple(int(x) for x in outputs))  # fmt: skip

    def settle(self, claim: ZkClaim, *, sender: str) -> Any:
        """Settle ``claim`` (the chain checks the proof); its transaction receipt."""
        fn = self.contract.functions.settle(
            digest_bytes(claim.setup_digest), claim.proof, list(claim.instances),
            digest_bytes(claim.receipt_digest),
        )  # fmt: skip
        return self.send(fn, sender)


def deploy_verifier(web3: Any, sender: str, built: EvmVerifier) -> str:
    """Deploy a built verifier from ``sender``; its address."""
    return deploy_code(web3, sender, list(built.abi), built.bytecode)


def onchain_check(claim: ZkClaim, built: EvmVerifier, settlement: InferenceSettlement) -> Check:
    """``zk.onchain`` (module docs); ``built`` is this machine's build of the setup."""
    if built.setup_digest != claim.setup_digest:
        return failed(CHECK_ONCHAIN, "the verifier built here is for another setup")
    circuit = settlement.circuit(claim.setup_digest)
    where = f"settlement contract {settlement.address}"
    if circuit is None:
        return failed(CHECK_ONCHAIN, f"no verifier is registered for setup "
                      f"{claim.setup_digest} in the {where}")  # fmt: skip
    code = bytes(settlement.web3.eth.get_code(circuit.verifier))
    if bytes(keccak(code)) != built.code_hash:
        return failed(CHECK_ONCHAIN, f"the verifier at {circuit.verifier} is not the one EZKL "
                      f"and solc build for setup {claim.setup_digest}")  # fmt: skip
    verifier = settlement.web3.eth.contract(address=circuit.verifier, abi=list(built.abi))
    try:
        ok = bool(verifier.functions.verifyProof(claim.proof, list(claim.instances)).call())
    except Exception:  # web3's ContractLogicError and kin: the verifier reverts on a bad proof
        ok = False
    if not ok:
        return failed(CHECK_ONCHAIN, f"the on-chain verifier {circuit.verifier} rejects the proof")
    return passed(CHECK_ONCHAIN, f"the on-chain verifier {circuit.verifier} accepts the proof; "
                  + _settled_note(claim, settlement))  # fmt: skip


def _settled_note(claim: ZkClaim, settlement: InferenceSettlement) -> str:
    try:
        done = settlement.settled(claim)
    except Error:
        return "settlement not readable"
    if done is None:
        return "the result is not settled"
    depth = int(settlement.web3.eth.block_number) - done.block + 1
    return f"settled in block {done.block} ({depth} confirmation(s))"
