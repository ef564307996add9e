"""The top-k selection both node and verifier run at every position, and a model file
whose logits are not numbers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inferproof.proofs.llm_fingerprint import Tolerance, compare
from inferproof.runtime import Fingerprint, LlamaModel, fingerprint_values

from .conftest import ask, variant


def _by_full_sort(row: np.ndarray, k: int = 4) -> np.ndarray:
    return np.sort(row)[::-1][:k]


def _rows(n: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Random rows, and rows made to trip a block-wise search: ties, the top values
    crowded into one block, in the ragged tail, infinities."""
    normal = rng.standard_normal(n).astype(np.float32)
    ties = rng.integers(-2, 3, n).astype(np.float32)
    flat = np.ones(n, np.float32)
    flat[rng.integers(0, n, 3)] = 2.0
    crowded = rng.standard_normal(n).astype(np.float32)
    crowded[:4] = [9, 8, 7, 6]
    tail = rng.standard_normal(n).astype(np.float32)
    tail[-3:] = [5, 6, 7]
    infinite = rng.standard_normal(n).astype(np.float32)
    infinite[rng.integers(0, n, 2)] = np.inf
    infinite[rng.integers(0, n, 2)] = -np.inf
    return [normal, ties, flat, crowded, tail, infinite, -np.abs(normal)]


@pytest.mark.parametrize("n", [4, 5, 255, 256, 257, 1024, 1279, 1280, 1281, 32000, 49152])
def test_top_values_are_those_of_a_full_sort(n: int) -> None:
    rng = np.random.default_rng(n)
    for _ in range(20):
        for row in _rows(n, rng):
            got = fingerprint_values(row)
            assert got.dtype == row.dtype
            assert np.array_equal(got, _by_full_sort(row)), (n, got, _by_full_sort(row))


def test_a_nan_counts_as_the_largest_value() -> None:
    row = np.random.default_rng(0).standard_normal(49152).astype(np.float32)
    row[1000] = np.nan
    got = fingerprint_values(row)
    assert np.isnan(got[0]) and np.isfinite(got[1:]).all()
    assert np.array_equal(got[1:], _by_full_sort(np.delete(row, 1000), 3))


def test_a_model_whose_logits_are_not_finite_fails(
    chat_node, tmp_path: Path, llm: LlamaModel
) -> None:
    # A hostile publisher's model file whose every weight is NaN: NaN differences
    # compare false with every bound, so without a finiteness check any fingerprint
    # would pass the comparison against it.
    result = chat_node.chat("tiny", ask(max_tokens=12))
    fp = Fingerprint.from_json(result.bundle.proofs["fingerprint"])
    broken = LlamaModel(variant(tmp_path, weight_scale=float("nan")))
    try:
        _, prompt = broken.prepare(result.request, enforce_cap=False)
        found = compare(broken, result.request, prompt.tokens, fp, 1.0)
    finally:
        broken.close()
    verdict = found.verdict(Tolerance())
    assert verdict is not None
    assert verdict.startswith("position 0: the verifier's prefill gave non-finite logits")
    assert f"({len(fp.tokens)} of {len(fp.tokens)} positions)" in verdict
    # The same answer against the real model passes: the failure is the model's.
    _, prompt = llm.prepare(result.request, enforce_cap=False)
    assert compare(llm, result.request, prompt.tokens, fp, 1.0).verdict(Tolerance()) is None
