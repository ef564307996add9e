"""One small interface for every proof system.

A proof system adds a record to the receipt's ``proofs`` list when the node
runs a model (``prove``) and turns that record into a :class:`Check` at
verification time (``verify``). Systems never know about HTTP or storage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from .._checks import Check
from ..receipts import Receipt


@dataclass(frozen=True)
class ProveContext:
    """What a proof system may look at when the node runs a model."""

    model_digest: str
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray]
    runtime: dict[str, Any]


@dataclass(frozen=True)
class VerifyContext:
    """What a verifier has: the receipt, and whatever material the user supplied."""

    receipt: Receipt
    model_bytes: bytes | None
    inputs: dict[str, np.ndarray] | None
    required: bool
    # Opens a receipt whose subject is a salted commitment to the output.
    salt: bytes | None = None
    # The outputs the node claimed (checked against the receipt before use), and the
    # policy's tolerance for a re-run on other hardware (None: bit-identical only).
    claimed: Mapping[str, np.ndarray] | None = None
    tolerance: OnnxTolerance | None = None


@dataclass(frozen=True)
class OnnxTolerance:
    """How far a re-run's float outputs may be from the node's: each element within
    ``max_abs`` or within ``max_ulp`` units in the last place (integer and boolean
    outputs must be equal). Set by a policy's ``reexecution.onnx``.

    Example::

        OnnxTolerance(max_abs=1e-5, max_ulp=64)
    """

    max_abs: float = 0.0
    max_ulp: int = 0


class ProofSystem(Protocol):
    """A way of showing an output is right: signature, re-execution, zk, tee."""

    type: str

    def prove(self, ctx: ProveContext) -> dict[str, Any]: ...

    def verify(self, record: dict[str, Any] | None, ctx: VerifyContext) -> Check: ...
