"""inferproof: verifiable AI inference.

Run a model, get a receipt, let anyone verify it offline.
"""

from __future__ import annotations

from .errors import Error, InputError, VerificationError

__version__ = "0.1.0"

__all__ = ["Error", "InputError", "VerificationError", "__version__"]
