"""Receipts: in-toto statements in DSSE envelopes, canonical bytes, bundles."""

from __future__ import annotations

from ._bundle import BUNDLE_MEDIA_TYPE, Bundle
from ._dsse import pae, sign_envelope, verify_envelope
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
)

__all__ = [
    "BUNDLE_MEDIA_TYPE",
    "MAX_NONCE_CHARS",
    "PREDICATE_TYPE",
    "STATEMENT_TYPE",
    "Bundle",
    "Receipt",
    "build_statement",
    "commit_input",
    "opens",
    "pae",
    "parse_statement",
    "receipt_from_statement",
    "sign_envelope",
    "verify_envelope",
]
