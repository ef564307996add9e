"""The receipt: an in-toto Statement v1 whose predicate says what ran, where, and why.

Spec: in-toto/attestation spec/v1/statement.md. The subject is the output
tensors' digest; the predicate type is ours.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from .._canonical import canonical_json, check_digest, parse_json
from ..errors import InputError

STATEMENT_TYPE = "https://in-toto.io/Statement/v1"
PREDICATE_TYPE = "https://inferproof.dev/receipt/v1"
# Domain separation for the salted input commitment, so the hash cannot be
# confused with any other sha256 in the receipt.
_COMMIT_PREFIX = b"inferproof/input-commitment/v1\x00"
SALT_BYTES = 32  # 256-bit salt: the commitment hides low-entropy (tabular) inputs
MAX_NONCE_CHARS = 256
MAX_STATEMENT_BYTES = 1024 * 1024


def utc_now() -> str:
    """The current time as a receipt writes it: RFC 3339, UTC, microseconds."""
    return datetime.now(UTC).isoformat(timespec="microseconds").replace("+00:00", "Z")


def commit_input(input_digest: str, salt: bytes) -> str:
    """The salted commitment ``sha256(prefix || salt || input_digest)`` to an input."""
    return "sha256:" + hashlib.sha256(_COMMIT_PREFIX + salt + input_digest.encode()).hexdigest()


def opens(commitment: str, input_digest: str, salt: bytes) -> bool:
    """True when ``salt`` opens ``commitment`` to ``input_digest`` (constant-time compare)."""
    return hmac.compare_digest(commit_input(input_digest, salt), commitment)


@dataclass(frozen=True)
class Receipt:
    """The parsed, typed predicate of a receipt statement."""

    statement: dict[str, Any]
    output_digest: str
    model: dict[str, Any]
    input: dict[str, Any]
    runtime: dict[str, Any]
    environment: dict[str, Any]
    proofs: tuple[dict[str, Any], ...]
    node_id: str
    nonce: str | None
    started: str
    finished: str
    parameters: dict[str, Any]

    @property
    def model_digest(self) -> str:
        return str(self.model["digest"])

    @property
    def input_digest(self) -> str | None:
        value = self.input.get("digest")
        return str(value) if value else None

    @property
    def input_commitment(self) -> str | None:
        value = self.input.get("commitment")
        return str(value) if value else None


def build_statement(
    *,
    output_digest: str,
    model: dict[str, Any],
    input_block: dict[str, Any],
    runtime: dict[str, Any],
    environment: dict[str, Any],
    proofs: list[dict[str, Any]],
    node_id: str,
    nonce: str | None,
    started: str,
    finished: str,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Assemble a receipt statement (a plain dict, ready for canonical bytes)."""
    if nonce is not None and (not nonce or len(nonce) > MAX_NONCE_CHARS):
        raise InputError(f"nonce must be 1 to {MAX_NONCE_CHARS} characters")
    return {
        "_type": STATEMENT_TYPE,
        "subject": [{"name": "output", "digest": {"sha256": output_digest.split(":", 1)[1]}}],
        "predicateType": PREDICATE_TYPE,
        "predicate": {
            "model": model,
            "input": input_block,
            "parameters": parameters or {},
            "runtime": runtime,
            "environment": environment,
            "proofs": proofs,
            "node": {"id": node_id},
            "nonce": nonce,
            "time": {"started": started, "finished": finished},
        },
    }


def _obj(value: Any, what: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise InputError(f"receipt {what} must be an object")
    return value


def parse_statement(payload: bytes) -> Receipt:
    """Parse and check the shape of a receipt statement; require canonical bytes."""
    statement = parse_json(payload, "receipt statement", MAX_STATEMENT_BYTES)
    st = _obj(statement, "statement")
    if canonical_json(st) != payload:
        raise InputError("receipt statement is not in RFC 8785 canonical form")
    return receipt_from_statement(st)


def statement_parts(
    st: dict[str, Any], predicate_type: str, what: str, subject: str
) -> tuple[str, dict[str, Any]]:
    """An in-toto Statement v1 of ``predicate_type`` with exactly one subject: its
    subject digest and its predicate object (``what`` and ``subject`` name them in errors)."""
    if st.get("_type") != STATEMENT_TYPE or st.get("predicateType") != predicate_type:
        raise InputError(f"payload is not an inferproof {what} (in-toto Statement v1)")
    subjects = st.get("subject")
    if not isinstance(subjects, list) or len(subjects) != 1:
        raise InputError(f"{what} must have exactly one subject ({subject})")
    sha = _obj(_obj(subjects[0], "subject").get("digest"), "subject digest").get("sha256")
    digest = check_digest(f"sha256:{sha}", f"{what} subject digest")
    return digest, _obj(st.get("predicate"), "predicate")


def receipt_from_statement(st: dict[str, Any]) -> Receipt:
    """Type a statement already in memory (the node's own, just built)."""
    output_digest, pred = statement_parts(st, PREDICATE_TYPE, "receipt", "the output")
    model = _obj(pred.get("model"), "model")
    check_digest(model.get("digest"), "model digest")
    input_block = _obj(pred.get("input"), "input")
    if ("digest" in input_block) == ("commitment" in input_block):
        raise InputError("receipt input must hold exactly one of digest or commitment")
    check_digest(input_block.get("digest") or input_block.get("commitment"), "input digest")
    times = _obj(pred.get("time"), "time")
    nonce = pred.get("nonce")
    if nonce is not None and not isinstance(nonce, str):
        raise InputError("receipt nonce must be a string or null")
    proofs = pred.get("proofs")
    if not isinstance(proofs, list) or not all(isinstance(p, dict) for p in proofs):
        raise InputError("receipt proofs must be a list of objects")
    return Receipt(
        statement=st,
        output_digest=output_digest,
        model=model,
        input=input_block,
        runtime=_obj(pred.get("runtime"), "runtime"),
        environment=_obj(pred.get("environment"), "environment"),
        proofs=tuple(proofs),
        node_id=str(_obj(pred.get("node"), "node").get("id")),
        nonce=nonce,
        started=str(times.get("started")),
        finished=str(times.get("finished")),
        parameters=_obj(pred.get("parameters", {}), "parameters"),
    )
