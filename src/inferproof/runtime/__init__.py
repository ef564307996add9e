"""Deterministic model execution and tensor encoding (no signing, no logging)."""

from __future__ import annotations

from ._onnx import DETERMINISM, OnnxModel, conform, engine_info
from ._tensors import (
    NamedInputs,
    Tensors,
    decode_tensors,
    encode_tensors,
    load_tensors,
    parse_json_tensors,
    parse_npz_tensors,
    tensors_digest,
)

__all__ = [
    "DETERMINISM",
    "NamedInputs",
    "OnnxModel",
    "Tensors",
    "conform",
    "decode_tensors",
    "encode_tensors",
    "engine_info",
    "load_tensors",
    "parse_json_tensors",
    "parse_npz_tensors",
    "tensors_digest",
]
