"""Openings of private inputs: the salt that opens a receipt's input commitment.

Only the caller receives it; it is written to a 0600 file beside the bundle.
"""

from __future__ import annotations

from pathlib import Path

from .._canonical import canonical_json, parse_json
from .._files import write_private
from ..errors import InputError
from ._onnx import SALT_SCHEME

__all__ = ["load_opening", "save_opening"]


def save_opening(path: Path, salt: bytes) -> None:
    """Write the private-input opening (the salt) to a 0600 file."""
    body = {"scheme": SALT_SCHEME, "salt": salt.hex()}
    if path.exists():
        path.unlink()
    write_private(path, canonical_json(body) + b"\n")


def load_opening(path: Path) -> bytes:
    """Read the salt from an opening file written by :func:`save_opening`."""
    if not path.is_file():
        raise InputError(f"opening file {path} does not exist")
    obj = parse_json(path.read_bytes(), "opening", 4096)
    salt = obj.get("salt") if isinstance(obj, dict) else None
    if not isinstance(obj, dict) or obj.get("scheme") != SALT_SCHEME or not isinstance(salt, str):
        raise InputError(f"{path} is not an inferproof input opening")
    try:
        raw = bytes.fromhex(salt)
    except ValueError as exc:
        raise InputError(f"{path}: salt is not hex") from exc
    if len(raw) != 32:
        raise InputError(f"{path}: salt must be 32 bytes")
    return raw
