"""Chat receipts: what an LLM answer's receipt states, handed to the issuer.

The receipt's input is the digest of the canonical request (messages or prompt,
model digest, every sampling parameter, seed, max tokens, stop strings); its
subject is the digest of the output (exact text, finish reason, token counts). A
private request puts salted commitments in both places and hands the opening to
the caller only.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

from ..errors import InputError
from ..hub import Hub, ModelRecord
from ..receipts import MAX_NONCE_CHARS, Bundle, commit_input, receipt_digest
from ..runtime import (
    CHAT_SALT_BYTES,
    CHAT_SALT_SCHEME,
    FINGERPRINT_SCHEME,
    ChatOpening,
    ChatOutput,
    ChatRequest,
    Fingerprint,
    commit_fingerprint,
    commit_output,
)
from ._issue import Claim, Issuer
from ._models import model_block

__all__ = ["ChatIssue", "check_nonce", "extra", "receipt_digest", "sign_chat"]


def check_nonce(nonce: str | None) -> None:
    """The statement builder checks this too; checking first saves a wasted generation."""
    if nonce is not None and not 0 < len(nonce) <= MAX_NONCE_CHARS:
        raise InputError(f"nonce must be 1 to {MAX_NONCE_CHARS} characters")


@dataclass(frozen=True)
class ChatIssue:
    """Everything a chat receipt states besides the request and output."""

    record: ModelRecord | None
    model_block: dict[str, Any]
    runtime: dict[str, Any]
    proofs: list[dict[str, Any]]
    mode: str
    started: str
    finished: str


def sign_chat(
    issuer: Issuer,
    hub: Hub,
    issue: ChatIssue,
    request: ChatRequest,
    output: ChatOutput,
    *,
    private: bool,
    nonce: str | None,
    fingerprint: Fingerprint | None = None,
) -> tuple[Bundle, ChatOpening | None]:
    """State the chat receipt and have ``issuer`` sign, bundle and log it.

    The answer's ``fingerprint`` goes in the bundle (the receipt commits to its
    digest), or for a private request in the opening (the receipt commits to it
    salted): its token ids are the answer."""
    fmt = str(issue.model_block.get("format", "gguf"))
    model, signature = model_block(hub, issue.record, issue.model_block, fmt)
    salt = os.urandom(CHAT_SALT_BYTES) if private else None
    if salt is not None:
        input_claim = {"commitment": commit_input(request.digest, salt), "scheme": CHAT_SALT_SCHEME}
        subject = commit_output(output.digest, salt)
    else:
        input_claim, subject = {"digest": request.digest}, output.digest
    proofs, carried = list(issue.proofs), {}
    if fingerprint is not None:
        entry: dict[str, Any] = {"type": "fingerprint", "scheme": FINGERPRINT_SCHEME}
        if salt is not None:
            entry["commitment"] = commit_fingerprint(fingerprint.digest, salt)
        else:
            entry["digest"] = fingerprint.digest
            carried["fingerprint"] = fingerprint.to_json()
        proofs.append({**entry, "positions": len(fingerprint.tokens)})
    claim = Claim(
        output_digest=subject,
        model=model,
        input_block=input_claim,
        runtime=issue.runtime,
        nonce=nonce,
        started=issue.started,
        finished=issue.finished,
        parameters={
            "task": request.task,
            "mode": issue.mode,
            "finish_reason": output.finish_reason,
            "usage": output.to_json()["usage"],
        },
        proofs=proofs,
    )
    bundle = issuer.issue(
        claim,
        outputs={} if salt else output.to_json(),
        inputs=None if salt else request.to_json(),
        model_signature=signature,
        proofs=carried,
    )
    if salt is None:
        return bundle, None
    fp_json = fingerprint.to_json() if fingerprint is not None else None
    return bundle, ChatOpening(salt, request, output, fp_json)


def extra(bundle: Bundle, opening: ChatOpening | None) -> dict[str, Any]:
    """The response's ``inferproof`` field: receipt digest, bundle, opening if private."""
    fields: dict[str, Any] = {"receipt_digest": receipt_digest(bundle), "bundle": bundle.to_json()}
    if opening is not None:
        fields["opening"] = opening.to_json()
    return fields
