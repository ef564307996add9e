"""Openings of private receipts: the salt that opens a receipt's commitments, and
the outputs a committed receipt keeps out of its bundle.

Only the caller receives it; the CLI writes it to a 0600 file beside the bundle.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .._canonical import canonical_json, parse_json
from .._files import write_private
from ..errors import InputError
from ..receipts import Bundle
from ..runtime import decode_tensors, encode_tensors
from ._onnx import OUTPUT_COMMITTED, SALT_SCHEME

__all__ = ["Opening", "load_opening", "opening_json", "save_opening"]

# An opening holds a salt and, for a committed output, the output tensors: bounded
# like a bundle's outputs (receipts/_bundle.py caps a whole bundle at 64 MiB).
MAX_OPENING_BYTES = 64 * 1024 * 1024


@dataclass(frozen=True)
class Opening:
    """The salt of a private receipt, and its outputs when the receipt commits to them."""

    salt: bytes
    outputs: dict[str, np.ndarray] | None = None


def opening_json(
    salt: bytes | None, bundle: Bundle, outputs: Mapping[str, np.ndarray]
) -> dict[str, Any]:
    """The opening of a private inference as JSON (the node's answer to its caller,
    the CLI's file): the salt, and the outputs when the receipt commits to them."""
    if salt is None:
        raise InputError("this inference has no opening (nothing in it is private)")
    body: dict[str, Any] = {"scheme": SALT_SCHEME, "salt": salt.hex()}
    if bundle.receipt.parameters.get("output") == OUTPUT_COMMITTED:
        body["outputs"] = encode_tensors(outputs)
    return body


def parse_opening(obj: Any, what: str) -> Opening:
    """Check an opening's JSON form; bad ones raise :class:`InputError` naming ``what``."""
    salt = obj.get("salt") if isinstance(obj, dict) else None
    if not isinstance(obj, dict) or obj.get("scheme") != SALT_SCHEME or not isinstance(salt, str):
        raise InputError(f"{what} is not an inferproof opening")
    unknown = set(obj) - {"scheme", "salt", "outputs"}
    if unknown:
        raise InputError(f"{what}: unknown field(s) {sorted(unknown)}")
    try:
        raw = bytes.fromhex(salt)
    except ValueError as exc:
        raise InputError(f"{what}: salt is not hex") from exc
    if len(raw) != 32:
        raise InputError(f"{what}: salt must be 32 bytes")
    outputs = obj.get("outputs")
    return Opening(raw, None if outputs is None else decode_tensors(outputs, f"{what} outputs"))


def save_opening(
    path: Path, salt: bytes | None, bundle: Bundle, outputs: Mapping[str, np.ndarray]
) -> None:
    """Write the opening of a private inference to a 0600 file."""
    if path.exists():
        path.unlink()
    write_private(path, canonical_json(opening_json(salt, bundle, outputs)) + b"\n")


def load_opening(path: Path) -> Opening:
    """Read an opening file written by :func:`save_opening`."""
    if not path.is_file():
        raise InputError(f"opening file {path} does not exist")
    return parse_opening(parse_json(path.read_bytes(), "opening", MAX_OPENING_BYTES), str(path))
