"""Deprecated: moved to :mod:`inferproof.testing` (this alias goes in 0.3).

The README of 0.1 told users to import ``write_tiny_llama`` from here.
"""

from __future__ import annotations

import warnings
from typing import Any

_MOVED = ("TinyLlamaConfig", "tiny_llama_gguf", "write_tiny_llama")


def __getattr__(name: str) -> Any:
    if name not in _MOVED:
        raise AttributeError(name)
    warnings.warn(
        f"inferproof.runtime._llm_fixture.{name} moved to inferproof.testing.{name}",
        DeprecationWarning,
        stacklevel=2,
    )
    from .. import testing

    return getattr(testing, name)
