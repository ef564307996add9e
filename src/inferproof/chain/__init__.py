"""EVM: the log's checkpoints anchored in a contract that refuses a forked log, ZK
results settled only with a proof the chain checks, and a registry of nodes (issue 16).

Nothing here is needed to verify a bundle offline; the chain is extra evidence.
web3.py and the EVM tools (anvil, solc) come with the ``chain`` extra and the npm lock.

Example::

    from inferproof.chain import Anvil, CheckpointAnchor
    with Anvil() as chain:
        anchor = CheckpointAnchor.deploy(chain.web3, chain.accounts[0])
"""

from __future__ import annotations

from ._anchor import CheckpointAnchor
from ._anvil import Anvil
from ._flow import AnchorResult, ChainConfig, anchor_log, anchored_check, connect, load_key
from ._registry import (
    MAX_ENTRIES,
    Discovery,
    NodeRegistry,
    Registration,
    Rejected,
    discover,
    match_identity,
    registration_statement,
    sign_registration,
    verify_registration,
)
from ._schedule import AnchorSchedule, anchoring
from ._sent import AnchorStatus, SentAnchor, anchor_status, last_sent, wait_confirmations
from ._settlement import (
    Circuit,
    InferenceSettlement,
    Settled,
    ZkClaim,
    deploy_verifier,
    onchain_check,
)
from ._tools import anvil_binary, artifact, compile_contract, node_modules
from ._zkverifier import EvmVerifier, build_verifier

__all__ = [
    "MAX_ENTRIES",
    "AnchorResult",
    "AnchorSchedule",
    "AnchorStatus",
    "Anvil",
    "ChainConfig",
    "CheckpointAnchor",
    "Circuit",
    "Discovery",
    "EvmVerifier",
    "InferenceSettlement",
    "NodeRegistry",
    "Registration",
    "Rejected",
    "SentAnchor",
    "Settled",
    "ZkClaim",
    "anchor_log",
    "anchor_status",
    "anchored_check",
    "anchoring",
    "anvil_binary",
    "artifact",
    "build_verifier",
    "compile_contract",
    "connect",
    "deploy_verifier",
    "discover",
    "last_sent",
    "load_key",
    "match_identity",
    "node_modules",
    "onchain_check",
    "registration_statement",
    "sign_registration",
    "verify_registration",
    "wait_confirmations",
]
