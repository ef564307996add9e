"""ZK results on chain: EZKL's verifier built here, the settlement contract, zk.onchain.

Real parts only: a real EZKL setup and proof (a tiny MLP, dev SRS, the small lookup
decomposition of tests/zk), EZKL's own generated Solidity verifier compiled by the
pinned solc-js, a real anvil.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import numpy as np
import pytest
from eth_utils.crypto import keccak

from inferproof import LocalNode
from inferproof._checks import CheckStatus
from inferproof.chain import (
    InferenceSettlement,
    ZkClaim,
    build_verifier,
    compile_contract,
    deploy_verifier,
    onchain_check,
)
from inferproof.chain._tools import CONTRACTS, artifact
from inferproof.errors import Error, InputError
from inferproof.receipts import receipt_digest
from inferproof.runtime import NamedInputs

from ..zk.conftest import DECOMP, make_model

R = 21888242871839275222246405745257275088548364400416034343698204186575808495617


@pytest.fixture(scope="module")
def zk_node(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalNode, Any]]:
    node = LocalNode(tmp_path_factory.mktemp("zkchain"))
    model = make_model(seed=5)
    node.push(model.data, name="tiny", version="1")
    node.zk_setup("tiny:1", [NamedInputs(s) for s in model.samples], dev_srs=True,
                  decomp=DECOMP)  # fmt: skip
    yield node, model
    node.close()


def _x(seed: int) -> dict[str, np.ndarray]:
    return {"x": np.random.default_rng(seed).uniform(-1, 1, (1, 8)).astype(np.float32)}


@pytest.fixture(scope="module")
def deployed(chain: Any, zk_node: tuple[LocalNode, Any]) -> dict[str, Any]:
    node, _ = zk_node
    (setup,) = node.zk_setups("tiny:1")
    built = build_verifier(setup, node.hub.blobs)
    owner = chain.accounts[0]
    settlement = InferenceSettlement.deploy(chain.web3, owner)
    verifier = deploy_verifier(chain.web3, owner, built)
    settlement.register(setup, verifier, sender=owner)
    return {"setup": setup, "built": built, "settlement": settlement, "verifier": verifier}


def test_committed_build_is_the_fresh_build() -> None:
    assert compile_contract("InferenceSettlement") == artifact("InferenceSettlement"), (
        "contracts/InferenceSettlement.json is stale"
    )
    source = (CONTRACTS / "InferenceSettlement.sol").read_bytes()
    assert (
        artifact("InferenceSettlement")["source"] == "sha256:" + hashlib.sha256(source).hexdigest()
    )


def test_the_verifier_build_is_reproducible_and_is_ezkls(
    zk_node: tuple[LocalNode, Any], deployed: dict[str, Any]
) -> None:
    """Two builds give the same code (a verifier elsewhere rebuilds it to compare), the
    source is EZKL's Halo2 verifier, and the chain runs exactly the built runtime."""
    from inferproof.chain import _zkverifier

    node, _ = zk_node
    _zkverifier._BUILT.clear()
    again = build_verifier(deployed["setup"], node.hub.blobs)
    assert again == deployed["built"]
    assert "contract Halo2Verifier" in again.source and "function verifyProof" in again.source
    code = bytes(deployed["settlement"].web3.eth.get_code(deployed["verifier"]))
    assert bytes(keccak(code)) == again.code_hash


def test_a_proof_settles_once_and_zk_onchain_passes(
    zk_node: tuple[LocalNode, Any], deployed: dict[str, Any], chain: Any
) -> None:
    node, _ = zk_node
    bundle = node.infer("tiny:1", _x(1), mode="zk").bundle
    claim = ZkClaim.from_bundle(bundle)
    settlement: InferenceSettlement = deployed["settlement"]
    before = onchain_check(claim, deployed["built"], settlement)
    assert before.status is CheckStatus.PASSED and "not settled" in before.detail
    receipt = settlement.settle(claim, sender=chain.accounts[3])
    done = settlement.settled(claim)
    assert done is not None and done.block == receipt["blockNumber"]
    assert done.submitter == chain.accounts[3]
    assert done.model_digest.hex() == deployed["setup"].model_digest.removeprefix("sha256:")
    assert "sha256:" + done.receipt_digest.hex() == receipt_digest(bundle)
    # The recorded output is the circuit's: the proof's output instances, as field
    # elements, which are the bundle's outputs at the circuit's scale.
    scale = 2.0 ** deployed["setup"].output_scales[0]
    signed = [v - R if v > R // 2 else v for v in done.outputs]
    assert np.allclose(
        np.array(signed) / scale, np.asarray(bundle_outputs(node, bundle)), atol=1e-9
    )
    # The input commitment: SHA-256 of the public input instances, 32 bytes each.
    n_out = len(done.outputs)
    inputs = claim.instances[: len(claim.instances) - n_out]
    assert (
        done.input_commitment
        == hashlib.sha256(b"".join(v.to_bytes(32, "big") for v in inputs)).digest()
    )
    after = onchain_check(claim, deployed["built"], settlement)
    assert after.status is CheckStatus.PASSED and f"settled in block {done.block}" in after.detail
    with pytest.raises(Error, match="AlreadySettled"):
        settlement.settle(claim, sender=chain.accounts[3])


def bundle_outputs(node: LocalNode, bundle: Any) -> Any:
    from inferproof.runtime import decode_tensors

    return decode_tensors(bundle.outputs, "outputs")["y"].ravel()


@pytest.mark.parametrize("where", ["proof", "output", "input"])
def test_the_contract_refuses_a_tampered_result(
    zk_node: tuple[LocalNode, Any], deployed: dict[str, Any], chain: Any, where: str
) -> None:
    """A flipped proof bit, another output or another input: the chain's verifier
    rejects it, so nothing is recorded; zk.onchain fails the same claim."""
    node, _ = zk_node
    claim = ZkClaim.from_bundle(node.infer("tiny:1", _x(2), mode="zk").bundle)
    if where == "proof":
        raw = bytearray(claim.proof)
        raw[100] ^= 0x01
        bad = replace(claim, proof=bytes(raw))
    else:
        column = list(claim.instances)
        column[-1 if where == "output" else 0] = (column[-1 if where == "output" else 0] + 1) % R
        bad = replace(claim, instances=tuple(column))
    settlement: InferenceSettlement = deployed["settlement"]
    with pytest.raises(Error, match="InvalidProof"):
        settlement.settle(bad, sender=chain.accounts[2])
    assert settlement.settled(bad) is None
    check = onchain_check(bad, deployed["built"], settlement)
    assert check.status is CheckStatus.FAILED and "rejects the proof" in check.detail


def test_registration_is_the_owners_and_final(
    deployed: dict[str, Any], chain: Any, zk_node: tuple[LocalNode, Any]
) -> None:
    settlement: InferenceSettlement = deployed["settlement"]
    with pytest.raises(Error, match="NotOwner"):
        settlement.register(deployed["setup"], deployed["verifier"], sender=chain.accounts[1])
    with pytest.raises(Error, match="AlreadyRegistered"):
        settlement.register(deployed["setup"], deployed["verifier"], sender=chain.accounts[0])
    # An address with no code cannot be registered as a verifier.
    other = replace(deployed["setup"], vk_digest="sha256:" + "0" * 64)
    with pytest.raises(Error, match="NoVerifierCode"):
        settlement.register(other, chain.accounts[5], sender=chain.accounts[0])


def test_zk_onchain_fails_for_a_verifier_that_is_not_the_circuits(
    zk_node: tuple[LocalNode, Any], deployed: dict[str, Any], chain: Any
) -> None:
    """An owner who registers another contract (here: the anchor contract, or a verifier
    of another circuit) cannot make zk.onchain pass: the code is compared with the build."""
    from inferproof.chain import CheckpointAnchor

    node, _ = zk_node
    claim = ZkClaim.from_bundle(node.infer("tiny:1", _x(3), mode="zk").bundle)
    owner = chain.accounts[0]
    rogue = InferenceSettlement.deploy(chain.web3, owner)
    stranger = CheckpointAnchor.deploy(chain.web3, owner)
    rogue.register(deployed["setup"], stranger.address, sender=owner)
    check = onchain_check(claim, deployed["built"], rogue)
    assert check.status is CheckStatus.FAILED and "is not the one EZKL" in check.detail
    empty = InferenceSettlement.deploy(chain.web3, owner)
    check = onchain_check(claim, deployed["built"], empty)
    assert check.status is CheckStatus.FAILED and "no verifier is registered" in check.detail


def test_a_claim_needs_a_zk_bundle(zk_node: tuple[LocalNode, Any]) -> None:
    node, _ = zk_node
    plain = node.infer("tiny:1", _x(4)).bundle
    with pytest.raises(InputError, match="no zk proof"):
        ZkClaim.from_bundle(plain)


def test_the_wrong_instance_count_is_refused(
    zk_node: tuple[LocalNode, Any], deployed: dict[str, Any], chain: Any
) -> None:
    node, _ = zk_node
    claim = ZkClaim.from_bundle(node.infer("tiny:1", _x(5), mode="zk").bundle)
    short = replace(claim, instances=claim.instances[:-1])
    with pytest.raises(Error, match="WrongInstanceCount"):
        deployed["settlement"].settle(short, sender=chain.accounts[2])


def test_an_unregistered_circuit_is_refused(zk_node: tuple[LocalNode, Any], chain: Any) -> None:
    node, _ = zk_node
    claim = ZkClaim.from_bundle(node.infer("tiny:1", _x(6), mode="zk").bundle)
    empty = InferenceSettlement.deploy(chain.web3, chain.accounts[0])
    with pytest.raises(Error, match="UnknownCircuit"):
        empty.settle(claim, sender=chain.accounts[2])


def test_hashed_weights_must_be_the_setups(chain: Any, tmp_path_factory: Any) -> None:
    """With hashed weights the weights are public instances, not in the verifying key:
    the contract compares them with the setup's recorded hash, so a proof over other
    weights of the same architecture (which the verifier alone would accept) is refused."""
    node = LocalNode(tmp_path_factory.mktemp("zkhashed"))
    try:
        model = make_model(seed=8)
        node.push(model.data, name="h", version="1")
        setup = node.zk_setup("h:1", [NamedInputs(s) for s in model.samples], dev_srs=True,
                              decomp=DECOMP, param_visibility="hashed")  # fmt: skip
        built = build_verifier(setup, node.hub.blobs)
        owner = chain.accounts[0]
        settlement = InferenceSettlement.deploy(chain.web3, owner)
        settlement.register(setup, deploy_verifier(chain.web3, owner, built), sender=owner)
        circuit = settlement.circuit(setup.digest())
        assert circuit is not None and circuit.params == len(setup.param_hash or ())
        claim = ZkClaim.from_bundle(node.infer("h:1", _x(1), mode="zk").bundle)
        column = list(claim.instances)
        column[circuit.input_hashes] = (column[circuit.input_hashes] + 1) % R
        with pytest.raises(Error, match="WrongWeights"):
            settlement.settle(replace(claim, instances=tuple(column)), sender=owner)
        settlement.settle(claim, sender=owner)
        assert settlement.settled(claim) is not None
    finally:
        node.close()


def test_every_sampled_bit_flip_of_proof_or_instances_is_rejected_on_chain(
    zk_node: tuple[LocalNode, Any], deployed: dict[str, Any]
) -> None:
    """One bit flipped in the proof (a byte in every 31, so every 32-byte word is hit
    at some offset) or any public instance changed: the deployed verifier rejects it."""
    node, _ = zk_node
    claim = ZkClaim.from_bundle(node.infer("tiny:1", _x(9), mode="zk").bundle)
    settlement: InferenceSettlement = deployed["settlement"]
    assert onchain_check(claim, deployed["built"], settlement).status is CheckStatus.PASSED
    accepted = []
    for i in range(0, len(claim.proof), 31):
        raw = bytearray(claim.proof)
        raw[i] ^= 1 << (i % 8)
        check = onchain_check(replace(claim, proof=bytes(raw)), deployed["built"], settlement)
        if check.status is CheckStatus.PASSED:
            accepted.append(f"proof byte {i}")
    for j in range(len(claim.instances)):
        column = list(claim.instances)
        column[j] ^= 1
        check = onchain_check(replace(claim, instances=tuple(column)), deployed["built"],
                              settlement)  # fmt: skip
        if check.status is CheckStatus.PASSED:
            accepted.append(f"instance {j}")
    assert accepted == []


@pytest.mark.parametrize("bad", ["sha256:" + "z" * 64, "sha256:" + "0" * 63, "md5:" + "0" * 64])
def test_a_malformed_digest_is_an_input_error(bad: str) -> None:
    from inferproof.chain._settlement import digest_bytes

    with pytest.raises(InputError, match="is not a sha256"):
        digest_bytes(bad)
