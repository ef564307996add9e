"""The fuzz targets' names and the inferproof packages each one's coverage is taken from.

Kept apart from the targets (and free of inferproof imports) because the atheris
engine needs it before anything of inferproof is imported: only the packages
named here are instrumented, which keeps each fuzzing process's start-up short
(instrumenting all of inferproof takes about three seconds).
"""

from __future__ import annotations

COVERAGE: dict[str, tuple[str, ...]] = {
    "bundle": ("inferproof",),
    "statement": ("inferproof",),
    "tlog_proof": ("inferproof.log",),
    "note": ("inferproof.log",),
    "gguf": ("inferproof.runtime",),
    "request": ("inferproof.node", "inferproof.runtime", "inferproof._canonical"),
    "tensors": ("inferproof.runtime", "inferproof._canonical"),
    "npy": ("inferproof.runtime",),
    "model_signature": ("inferproof.hub", "inferproof._canonical"),
    "canonical_json": ("inferproof._canonical",),
}
NAMES = tuple(COVERAGE)
