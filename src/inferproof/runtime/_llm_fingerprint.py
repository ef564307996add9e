"""The LLM answer fingerprint: what the node commits to while generating.

For every answer position (each new token, and the end-of-generation token that
stopped the answer) the node keeps the ``k`` largest logits of the row it sampled
from, sorted, as 16-bit fixed point. The receipt commits to the answer's token
ids and these values; a verifier recomputes them with one batched prefill of
prompt + answer and compares within a tolerance (``proofs/llm_fingerprint.py``).

Why these numbers: the top logits are the part of the model's output that decides
the answer, they depend on every weight and every earlier token (a different
model, quantisation, prompt or answer moves them), and a sorted list is
continuous in the logits, so two near-equal candidates that swap places on
another machine change it by no more than their gap. Sixteen bits at 1/64 cover
logits of +-512 with a rounding error of 1/128, far below the differences
between machines (about 0.1 to 0.7 on SmolLM2, docs/llm.md). With ``k = 4`` a
chunk of 32 positions is 256 bytes (TOPLOC, the design this follows, uses 258
bytes per 32 tokens for the top-128 values of the last hidden state).

The encoding is exact and strict: token ids are little-endian uint32, values
little-endian int16 row by row, each chunk of ``CHUNK`` positions one canonical
base64 string, so one fingerprint has one JSON form and one digest.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._canonical import canonical_json, decode_b64, sha256_digest
from ..errors import InputError

SCHEME = "inferproof.llm-fingerprint.v1"
TOP_K = 4
SCALE = 64
CHUNK = 32
# One position per new token plus the stop token; the node's cap is 4096 new
# tokens (runtime MAX_TOKENS_CAP), this leaves room for a node that raises it.
MAX_POSITIONS = 1 << 16
# Domain separation from the output and input commitments made with the same salt.
_COMMIT_PREFIX = b"inferproof/fingerprint-commitment/v1\x00"
_KEYS = {"scheme", "k", "scale", "chunk", "tokens", "values"}


def quantise(values: np.ndarray[Any, Any]) -> np.ndarray[Any, np.dtype[np.int16]]:
    """Logits to the fixed point the fingerprint stores (rounded, saturating)."""
    q = np.rint(np.asarray(values, dtype=np.float64) * SCALE)
    return np.clip(q, -(1 << 15), (1 << 15) - 1).astype(np.int16)


# Rows are scanned in blocks of this many logits: a block's maximum costs one
# vectorised pass, and only the few blocks whose maxima lead can hold the top k.
_BLOCK = 256


def top_values(row: np.ndarray[Any, Any], k: int = TOP_K) -> np.ndarray[Any, Any]:
    """The ``k`` largest entries of ``row``, largest first.

    The node does this at every token, so it must cost little next to a decode
    step (a partial sort of SmolLM2's 49,152 logits took about 150 to 250 us, 2 to 3%
    of a step; this takes about a tenth of that). The ``k`` largest values lie in
    the ``k`` blocks with the largest maxima: each block holding one of them has a
    maximum at least the k-th largest value, and at most ``k`` blocks' maxima (all
    distinct entries) are above it, ties included. So only those blocks, and the
    ragged tail, are sorted. A NaN counts as larger than any number, as in
    ``np.partition``, so a row with one is never passed as finite.
    """
    n = row.shape[-1]
    full = n - n % _BLOCK
    if full // _BLOCK <= k:
        return np.sort(np.partition(row, n - k)[-k:])[::-1]
    blocks = row[:full].reshape(-1, _BLOCK)
    lead = np.argpartition(blocks.max(axis=1), blocks.shape[0] - k)[-k:]
    pool = np.concatenate([blocks[lead].ravel(), row[full:]])
    return np.sort(np.partition(pool, pool.size - k)[-k:])[::-1]


@dataclass(frozen=True)
class Fingerprint:
    """Token ids of the answer and the top-``k`` logits at each of its positions.

    Example::

        fp = Fingerprint.from_json(bundle.proofs["fingerprint"])
        print(len(fp.tokens), fp.values.shape, fp.digest)
    """

    tokens: tuple[int, ...]
    raw: bytes  # positions x TOP_K little-endian int16, fixed point 1/SCALE

    @property
    def values(self) -> np.ndarray[Any, np.dtype[np.int16]]:
        """The stored values, one row of ``TOP_K`` per position."""
        return np.frombuffer(self.raw, dtype="<i2").reshape(-1, TOP_K)

    def logits(self) -> np.ndarray[Any, np.dtype[np.float64]]:
        return self.values.astype(np.float64) / SCALE

    def to_json(self) -> dict[str, Any]:
        raw = self.values
        return {
            "scheme": SCHEME,
            "k": TOP_K,
            "scale": SCALE,
            "chunk": CHUNK,
            "tokens": _b64(np.asarray(self.tokens, dtype="<u4").tobytes()),
            "values": [_b64(raw[i : i + CHUNK].tobytes()) for i in range(0, len(raw), CHUNK)],
        }

    @property
    def digest(self) -> str:
        """``sha256`` of the RFC 8785 form: what the receipt commits to."""
        return sha256_digest(canonical_json(self.to_json()))

    @property
    def size(self) -> int:
        """Bytes of fingerprint values (token ids excluded: they are the answer)."""
        return len(self.raw)

    @classmethod
    def from_json(cls, obj: Any) -> Fingerprint:
        """Read a fingerprint from an untrusted bundle, strictly."""
        if not isinstance(obj, dict) or set(obj) != _KEYS:
            raise InputError(f"fingerprint must have exactly {sorted(_KEYS)}")
        if obj["scheme"] != SCHEME:
            raise InputError(f"fingerprint scheme must be {SCHEME}")
        if obj["k"] != TOP_K or obj["scale"] != SCALE or obj["chunk"] != CHUNK:
            raise InputError(f"fingerprint must have k={TOP_K}, scale={SCALE}, chunk={CHUNK}")
        raw = decode_b64(obj["tokens"], "fingerprint tokens", canonical=True)
        if not 0 < len(raw) <= 4 * MAX_POSITIONS or len(raw) % 4:
            raise InputError(f"fingerprint tokens must be 1 to {MAX_POSITIONS} uint32 values")
        tokens = tuple(int(t) for t in np.frombuffer(raw, dtype="<u4"))
        chunks = obj["values"]
        n = len(tokens)
        if not isinstance(chunks, list) or len(chunks) != -(-n // CHUNK):
            raise InputError(f"fingerprint values must be {-(-n // CHUNK)} chunks of {CHUNK}")
        rows = []
        for i, chunk in enumerate(chunks):
            data = decode_b64(chunk, f"fingerprint chunk {i}", canonical=True)
            want = min(CHUNK, n - i * CHUNK) * TOP_K * 2
            if len(data) != want:
                raise InputError(f"fingerprint chunk {i} must be {want} bytes")
            rows.append(data)
        return cls(tokens, b"".join(rows))


def commit_fingerprint(digest: str, salt: bytes) -> str:
    """``sha256(prefix || salt || digest)``: a private receipt's fingerprint entry."""
    return "sha256:" + hashlib.sha256(_COMMIT_PREFIX + salt + digest.encode()).hexdigest()


def fingerprint_opens(commitment: str, digest: str, salt: bytes) -> bool:
    """True when ``salt`` opens ``commitment`` to ``digest`` (constant time)."""
    return hmac.compare_digest(commit_fingerprint(digest, salt), commitment)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


class Recorder:
    """Collects the fingerprint while the node decodes (one :meth:`add` per token)."""

    def __init__(self) -> None:
        self._tokens: list[int] = []
        self._rows: list[np.ndarray[Any, Any]] = []

    def add(self, token: int, row: np.ndarray[Any, Any]) -> None:
        self._tokens.append(token)
        self._rows.append(top_values(row))

    def result(self) -> Fingerprint | None:
        if not self._tokens:
            return None
        values = quantise(np.stack(self._rows)).astype("<i2")
        return Fingerprint(tuple(self._tokens), values.tobytes())


__all__ = [
    "CHUNK",
    "SCHEME",
    "TOP_K",
    "Fingerprint",
    "Recorder",
    "commit_fingerprint",
    "fingerprint_opens",
    "quantise",
    "top_values",
]
