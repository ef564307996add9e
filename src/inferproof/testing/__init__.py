"""Small real models for tests, demos and benchmarks, built here and never downloaded.

- :func:`credit_risk_model`: a scikit-learn logistic regression on synthetic
  applicants, converted to ONNX (the demo's model).
- :func:`mlp_model`: a float32 MLP of any layer sizes, built with onnx's helpers.
- :func:`volatility_model`: realised volatility of a window of prices (the workflow
  demo's model).
- :func:`serve_loopback`: a plain HTTP server on loopback (test feeds, webhook receivers).
- :func:`write_tiny_llama` / :func:`tiny_llama_gguf`: a tiny random llama GGUF that
  llama.cpp loads and answers with (gibberish, but real, deterministic output): for
  fast unit tests.
- :func:`smollm2_gguf`: the path of SmolLM2-135M-Instruct (Q4_1), a real small chat
  model installed from PyPI by the README's commands (the chat demo's model).

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
from ._http import LoopbackHandler, serve_loopback
from ._onnx import FEATURES, credit_risk_model, mlp_model, volatility_model
from ._smollm2 import (
    SMOLLM2_DIGEST,
    SMOLLM2_DISTRIBUTION,
    SMOLLM2_FILE,
    SMOLLM2_QUESTION,
    SMOLLM2_SYSTEM,
    requantise_gguf,
    smollm2_gguf,
)

__all__ = [
    "CHATML_TEMPLATE",
    "FEATURES",
    "SMOLLM2_DIGEST",
    "SMOLLM2_DISTRIBUTION",
    "SMOLLM2_FILE",
    "SMOLLM2_QUESTION",
    "SMOLLM2_SYSTEM",
    "SPECIAL_TOKENS",
    "LoopbackHandler",
    "TinyLlamaConfig",
    "credit_risk_model",
    "mlp_model",
    "requantise_gguf",
    "serve_loopback",
    "smollm2_gguf",
    "tiny_llama_gguf",
    "volatility_model",
    "write_tiny_llama",
]
