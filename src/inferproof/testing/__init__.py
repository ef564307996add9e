"""Small real models for tests, demos and benchmarks, built here and never downloaded.

- :func:`credit_risk_model`: a scikit-learn logistic regression on synthetic
  applicants, converted to ONNX (the demo's model).
- :func:`mlp_model`: a float32 MLP of any layer sizes, built with onnx's helpers.
- :func:`write_tiny_llama` / :func:`tiny_llama_gguf`: a tiny random llama GGUF that
  llama.cpp loads and answers with (gibberish, but real, deterministic output).

Example::

    from inferproof.testing import mlp_model, write_tiny_llama
    onnx_bytes = mlp_model((4, 16, 2))
    write_tiny_llama("tiny.gguf")
"""

from __future__ import annotations

from ._gguf import (
    CHATML_TEMPLATE,
    SPECIAL_TOKENS,
    TinyLlamaConfig,
    tiny_llama_gguf,
    write_tiny_llama,
)
from ._onnx import FEATURES, credit_risk_model, mlp_model

__all__ = [
    "CHATML_TEMPLATE",
    "FEATURES",
    "SPECIAL_TOKENS",
    "TinyLlamaConfig",
    "credit_risk_model",
    "mlp_model",
    "tiny_llama_gguf",
    "write_tiny_llama",
]
