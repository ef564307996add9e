"""Receipts: in-toto statements in DSSE envelopes, canonical bytes, bundles."""

from __future__ import annotations

from ._bundle import BUNDLE_MEDIA_TYPE, Bundle
from ._dsse import envelope_payload, pae, sign_envelope, verify_envelope
from ._runrecord import (
    MAX_RUN_CALLS,
    RUN_PREDICATE_TYPE,
    RUN_RECORD_MEDIA_TYPE,
    RunCall,
    RunRecord,
    RunStatement,
    build_run_statement,
    chain,
    chain_head,
    chain_link,
    check_run_id,
    parse_run_statement,
    receipt_digest,
)
from ._runrecorder import RunRecorder, RunSigner
from ._statement import (
    MAX_NONCE_CHARS,
    PREDICATE_TYPE,
    STATEMENT_TYPE,
    Receipt,
    build_statement,
    commit_input,
    opens,
    parse_statement,
    receipt_from_statement,
    statement_parts,
    utc_now,
)

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "MAX_NONCE_CHARS",
    "MAX_RUN_CALLS",
    "PREDICATE_TYPE",
    "RUN_PREDICATE_TYPE",
    "RUN_RECORD_MEDIA_TYPE",
    "STATEMENT_TYPE",
    "Bundle",
    "Receipt",
    "RunCall",
    "RunRecord",
    "RunRecorder",
    "RunSigner",
    "RunStatement",
    "build_run_statement",
    "build_statement",
    "chain",
    "chain_head",
    "chain_link",
    "check_run_id",
    "commit_input",
    "envelope_payload",
    "opens",
    "pae",
    "parse_run_statement",
    "parse_statement",
    "receipt_digest",
    "receipt_from_statement",
    "sign_envelope",
    "statement_parts",
    "utc_now",
    "verify_envelope",
]
