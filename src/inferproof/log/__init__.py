"""The transparency log: RFC 9162 Merkle proofs, C2SP notes, checkpoints, tiles, witnesses.

The log knows nothing of receipts; it logs bytes. Typical use::

    from inferproof.log import Log, SignerKey, verify_tlog_proof

    signer = SignerKey.generate("example.com/log")
    with Log.open(Path("log.sqlite"), signer) as log:
        result = log.append(b"entry bytes")
        text = result.tlog_proof().encode()
    verify_tlog_proof(text, b"entry bytes", signer.verifier())

See docs/log.md for formats, witnesses and serving tiles.
"""

from ._checkpoint import Checkpoint, Cosignature, SignedCheckpoint, TlogProof, open_checkpoint
from ._copy import compare_logs, copy_log
from ._default import load_or_create_key, open_default_log
from ._log import AppendResult, AuditResult, BatchResult, Log, PendingAppend
from ._merkle import (
    EMPTY_ROOT,
    MemoryTree,
    NodeReader,
    consistency_proof,
    hash_children,
    hash_leaf,
    inclusion_proof,
    root_hash,
    verify_consistency,
    verify_inclusion,
)
from ._note import (
    ALG_COSIGNATURE_V1,
    ALG_ED25519,
    Note,
    NoteSignature,
    SignerKey,
    VerifiedNote,
    VerifierKey,
    b64encode,
    open_note,
    sign_note,
)
from ._store import LogStore, SQLiteLogStore, StoreWriter
from ._tiles import (
    MAX_TILE_LEVEL,
    TILE_WIDTH,
    TileClient,
    TileEntry,
    bundle_path,
    encode_bundle,
    served_tiles,
    tile_levels,
    tile_path,
    tile_widths,
)
from ._verify import (
    COSIGNATURE_CLOCK_SKEW,
    PROOF_ATTEMPTS,
    CheckpointMemory,
    LogProofResult,
    verify_tlog_proof,
)
from ._witness import (
    CosignOutcome,
    Witness,
    WitnessEndpoint,
    cosign_checkpoint,
    make_server,
)

__all__ = [
    "ALG_COSIGNATURE_V1",
    "ALG_ED25519",
    "COSIGNATURE_CLOCK_SKEW",
    "EMPTY_ROOT",
    "MAX_TILE_LEVEL",
    "PROOF_ATTEMPTS",
    "TILE_WIDTH",
    "AppendResult",
    "AuditResult",
    "BatchResult",
    "Checkpoint",
    "CheckpointMemory",
    "CosignOutcome",
    "Cosignature",
    "Log",
    "LogProofResult",
    "LogStore",
    "MemoryTree",
    "NodeReader",
    "Note",
    "NoteSignature",
    "PendingAppend",
    "SQLiteLogStore",
    "SignedCheckpoint",
    "SignerKey",
    "StoreWriter",
    "TileClient",
    "TileEntry",
    "TlogProof",
    "VerifiedNote",
    "VerifierKey",
    "Witness",
    "WitnessEndpoint",
    "b64encode",
    "bundle_path",
    "compare_logs",
    "consistency_proof",
    "copy_log",
    "cosign_checkpoint",
    "encode_bundle",
    "hash_children",
    "hash_leaf",
    "inclusion_proof",
    "load_or_create_key",
    "make_server",
    "open_checkpoint",
    "open_default_log",
    "open_note",
    "root_hash",
    "served_tiles",
    "sign_note",
    "tile_levels",
    "tile_path",
    "tile_widths",
    "verify_consistency",
    "verify_inclusion",
    "verify_tlog_proof",
]
