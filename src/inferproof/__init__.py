"""inferproof: verifiable AI inference.

Run a model, get a receipt, let anyone verify it offline.

Example::

    import numpy as np
    from inferproof import LocalNode

    with LocalNode() as node:
        node.push("model.onnx", name="risk")
        result = node.infer("risk", {"x": np.ones((1, 4), np.float32)})
        node.verifier().verify(result.bundle)

Against a node over HTTP, :class:`Client` (or :class:`AsyncClient`) verifies every
answer before returning it; :class:`Verifier` checks any bundle offline.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ._version import __version__
from .errors import Error, InputError, VerificationError

if TYPE_CHECKING:
    from .client import AsyncClient, Client, verify_openai
    from .engine import LocalNode
    from .receipts import Bundle
    from .verify import Policy, TrustRoot, Verifier

__all__ = [
    "AsyncClient",
    "Bundle",
    "Client",
    "Error",
    "InputError",
    "LocalNode",
    "Policy",
    "TrustRoot",
    "VerificationError",
    "Verifier",
    "__version__",
    "verify_openai",
]

# Lazy: ``import inferproof`` (and inferproof.errors) must not load onnxruntime,
# llama.cpp or httpx; each name's module is imported on first use.
_LAZY = {
    "AsyncClient": "client",
    "Bundle": "receipts",
    "Client": "client",
    "LocalNode": "engine",
    "Policy": "verify",
    "TrustRoot": "verify",
    "Verifier": "verify",
    "verify_openai": "client",
}


def __getattr__(name: str) -> object:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'inferproof' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
