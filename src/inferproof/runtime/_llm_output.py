"""What a chat receipt commits to on the output side, and the opening of a private one.

The output is the exact answer text, why generation stopped and the token counts,
as one JSON object; its digest (over RFC 8785 bytes) is the receipt's subject.
For a private request the subject is a salted commitment to that digest instead,
with the same 32-byte salt that hides the request, under its own domain prefix.
The *opening* (salt, canonical request, output) goes only to the requester, who
can hand it to a verifier.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .._canonical import canonical_json, parse_json, sha256_digest
from .._files import write_private
from ..errors import InputError
from ._llm_request import ChatRequest

# The same scheme name as private tensor inputs (receipts/_statement.py): a 32-byte
# salt, SHA-256, and a domain prefix per committed value.
SALT_SCHEME = "salted-sha256-v1"
SALT_BYTES = 32
# Domain separation: an output commitment can never be confused with the input
# commitment (prefix "inferproof/input-commitment/v1\0") made with the same salt.
_OUTPUT_PREFIX = b"inferproof/output-commitment/v1\x00"
FINISH_REASONS = ("stop", "length", "content_filter")
MAX_OPENING_BYTES = 16 * 1024 * 1024


def commit_output(output_digest: str, salt: bytes) -> str:
    """``sha256(prefix || salt || output_digest)``: the subject of a private chat receipt."""
    return "sha256:" + hashlib.sha256(_OUTPUT_PREFIX + salt + output_digest.encode()).hexdigest()


def output_opens(commitment: str, output_digest: str, salt: bytes) -> bool:
    """True when ``salt`` opens ``commitment`` to ``output_digest`` (constant time)."""
    return hmac.compare_digest(commit_output(output_digest, salt), commitment)


def _count(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < 1 << 31:
        raise InputError(f"chat output {name} must be a non-negative integer")
    return value


@dataclass(frozen=True)
class ChatOutput:
    """The answer a receipt commits to.

    Example::

        out = ChatOutput("Paris.", "stop", prompt_tokens=12, completion_tokens=3)
        assert out.digest.startswith("sha256:")
    """

    text: str
    finish_reason: str
    prompt_tokens: int
    completion_tokens: int

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "finish_reason": self.finish_reason,
            "usage": {
                "prompt_tokens": self.prompt_tokens,
                "completion_tokens": self.completion_tokens,
            },
        }

    @property
    def digest(self) -> str:
        return sha256_digest(canonical_json(self.to_json()))

    @classmethod
    def from_json(cls, obj: Any) -> ChatOutput:
        """Read an output back (from a bundle or an opening), strictly."""
        if not isinstance(obj, dict) or set(obj) != {"text", "finish_reason", "usage"}:
            raise InputError("chat output must have exactly text, finish_reason and usage")
        usage = obj["usage"]
        if not isinstance(usage, dict) or set(usage) != {"prompt_tokens", "completion_tokens"}:
            raise InputError("chat output usage must have prompt_tokens and completion_tokens")
        if not isinstance(obj["text"], str):
            raise InputError("chat output text must be a string")
        if obj["finish_reason"] not in FINISH_REASONS:
            raise InputError(f"chat output finish_reason must be one of {FINISH_REASONS}")
        return cls(
            obj["text"],
            obj["finish_reason"],
            _count(usage["prompt_tokens"], "prompt_tokens"),
            _count(usage["completion_tokens"], "completion_tokens"),
        )


@dataclass(frozen=True)
class ChatOpening:
    """What opens a private chat receipt: the salt, the canonical request, the output.

    Example::

        opening.save(Path("answer.opening"))       # 0600
        again = ChatOpening.load(Path("answer.opening"))
    """

    salt: bytes
    request: ChatRequest
    output: ChatOutput
    # The answer's fingerprint (runtime/_llm_fingerprint.py), private like the answer:
    # its token ids are the answer. The receipt holds only a salted commitment to it.
    fingerprint: dict[str, Any] | None = None

    def to_json(self) -> dict[str, Any]:
        out = {
            "scheme": SALT_SCHEME,
            "salt": self.salt.hex(),
            "request": self.request.to_json(),
            "output": self.output.to_json(),
        }
        if self.fingerprint is not None:
            out["fingerprint"] = self.fingerprint
        return out

    @classmethod
    def from_json(cls, obj: Any) -> ChatOpening:
        keys = {"scheme", "salt", "request", "output"}
        if not isinstance(obj, dict) or not keys <= set(obj) <= keys | {"fingerprint"}:
            raise InputError("not a chat opening (scheme, salt, request, output[, fingerprint])")
        fingerprint = obj.get("fingerprint")
        if fingerprint is not None and not isinstance(fingerprint, dict):
            raise InputError("chat opening fingerprint must be an object")
        if obj["scheme"] != SALT_SCHEME:
            raise InputError(f"chat opening scheme must be {SALT_SCHEME}")
        salt = obj["salt"]
        try:
            raw = bytes.fromhex(salt) if isinstance(salt, str) else b""
        except ValueError:
            raw = b""
        if len(raw) != SALT_BYTES or raw.hex() != salt:
            raise InputError(f"chat opening salt must be {SALT_BYTES} bytes in lowercase hex")
        request, output = ChatRequest.from_json(obj["request"]), ChatOutput.from_json(obj["output"])
        return cls(raw, request, output, fingerprint)

    def save(self, path: str | os.PathLike[str]) -> None:
        path = Path(path)
        """Write the opening to a new 0600 file (it holds the private request)."""
        if path.exists():
            path.unlink()
        write_private(path, canonical_json(self.to_json()) + b"\n")

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> ChatOpening:
        path = Path(path)
        if not path.is_file():
            raise InputError(f"opening file {path} does not exist")
        return cls.from_json(parse_json(path.read_bytes(), "chat opening", MAX_OPENING_BYTES))
