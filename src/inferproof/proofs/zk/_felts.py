"""Field elements as EZKL writes them, and the quantisation between floats and them.

EZKL (Halo2 over BN254) writes a field element as 64 lowercase hex digits of its
32-byte little-endian encoding. Quantised values are signed integers ``q`` stored as
``q mod r``; a float ``x`` at scale ``s`` is ``q = round(x * 2**s)``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np

from ...errors import InputError

# Order of the BN254 scalar field, the field Halo2-KZG circuits in EZKL work over
# (EIP-196/197; also halo2curves bn256::Fr::MODULUS).
BN254_R = 21888242871839275222246405745257275088548364400416034343698204186575808495617

_FELT_RE = re.compile(r"^[0-9a-f]{64}$")


def check_felt(text: object, what: str = "field element") -> str:
    """Return ``text`` if it is a canonical EZKL field element, else raise InputError."""
    if not isinstance(text, str) or not _FELT_RE.match(text):
        raise InputError(f"{what} is not 64 lowercase hex digits: {text!r:.80}")
    if int.from_bytes(bytes.fromhex(text), "little") >= BN254_R:
        raise InputError(f"{what} is not reduced modulo the BN254 scalar field order")
    return text


def felt_to_int(felt: str) -> int:
    """The signed integer a field element stands for (values above r/2 are negative)."""
    value = int.from_bytes(bytes.fromhex(check_felt(felt)), "little")
    return value - BN254_R if value > BN254_R // 2 else value


def int_to_felt(value: int) -> str:
    """The field element of a signed integer, in EZKL's little-endian hex."""
    return (value % BN254_R).to_bytes(32, "little").hex()


def dequantise(values: Sequence[int], scale: int) -> np.ndarray:
    """Floats of quantised integers at ``scale`` (exact: the values are k / 2**scale)."""
    return np.asarray(values, dtype=np.float64) / float(2**scale)


def quantise(tensor: np.ndarray, scale: int) -> list[int]:
    """Quantise a float tensor the way EZKL does for its inputs.

    EZKL rounds ``x * 2**scale`` half away from zero (Rust's ``f64::round``: 1.5 -> 2,
    -1.5 -> -2), as measured against ``ezkl.float_to_felt`` 23.0.5; the tests compare
    the two.
    """
    flat = np.asarray(tensor, dtype=np.float64).reshape(-1)
    if not np.all(np.isfinite(flat)):
        raise InputError("input tensor holds NaN or infinity; it cannot be quantised")
    product = flat * float(2**scale)
    scaled = np.sign(product) * np.floor(np.abs(product) + 0.5)
    if np.any(np.abs(scaled) >= 2**63):
        raise InputError("input value too large to quantise at this scale")
    return [int(v) for v in scaled]
