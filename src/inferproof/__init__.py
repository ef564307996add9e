"""inferproof: verifiable AI inference.

Run a model, get a receipt, let anyone verify it offline.

Example::

    from inferproof import LocalNode
    node = LocalNode()
    node.push(Path("model.onnx"), name="risk")
    result = node.infer("risk", {"x": np.ones((1, 4), np.float32)})
    node.verifier().verify(result.bundle)
"""

from __future__ import annotations

from .errors import Error, InputError, VerificationError

__version__ = "0.1.0"

__all__ = [
    "Bundle",
    "Error",
    "InputError",
    "LocalNode",
    "Policy",
    "TrustRoot",
    "VerificationError",
    "Verifier",
    "__version__",
]


def __getattr__(name: str) -> object:
    # Lazy: importing inferproof.errors must not load onnxruntime.
    if name == "LocalNode":
        from ._local import LocalNode

        return LocalNode
    if name == "Bundle":
        from .receipts import Bundle

        return Bundle
    if name in ("Policy", "TrustRoot", "Verifier"):
        from . import verify

        return getattr(verify, name)
    raise AttributeError(name)
