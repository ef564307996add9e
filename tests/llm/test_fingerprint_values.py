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


# -- batches without a lone row -------------------------------------------------------


@pytest.mark.parametrize("n_batch", [1, 2, 3, 7, 8, 32, 64, 65])
@pytest.mark.parametrize("n_ubatch", [1, 2, 7, 32])
def test_chunks_never_leave_a_row_alone_in_its_micro_batch(n_batch: int, n_ubatch: int) -> None:
    from inferproof.runtime._llm_decode import _chunks

    n_ubatch = min(n_ubatch, n_batch)
    for n in range(1, 140):
        chunks = _chunks(n, n_batch, n_ubatch)
        assert [c[0] for c in chunks] == [0, *np.cumsum([c[1] for c in chunks])[:-1]]
        assert sum(c[1] for c in chunks) == n
        for _, size, pad in chunks:
            rows = size + pad
            assert size > 0 and rows <= n_batch
            if n_ubatch > 1:  # llama.cpp splits rows into micro-batches of n_ubatch
                assert rows % n_ubatch != 1, (n, n_batch, n_ubatch, chunks)


def test_a_paired_answer_is_bit_identical_when_the_last_chunk_is_one_row(tmp_path: Path) -> None:
    # SmolLM2's quantised kernels give a lone row other logits than a batched one:
    # a prefill whose last chunk is one row would miss the paired node's by up to
    # about 0.26 (bench_fingerprint.py, 200 answers), were the row not padded.
    from inferproof.runtime import LlamaSettings, parse_request
    from inferproof.testing import SMOLLM2_SYSTEM, smollm2_gguf

    body = {"messages": [{"role": "system", "content": SMOLLM2_SYSTEM},
                         {"role": "user", "content": "Name three colours."}],
            "temperature": 0, "max_tokens": 24, "model": "smollm2"}  # fmt: skip
    node = LlamaModel(smollm2_gguf(), LlamaSettings(decode="paired"))
    try:
        request = parse_request(body, "chat").request.bind("sha256:" + "0" * 64, max_tokens=24)
        req, prompt = node.prepare(request, enforce_cap=False)
        fp = node.generate(req, prompt).fingerprint
    finally:
        node.close()
    assert fp is not None
    rows = len(prompt.tokens) + len(fp.tokens) - 1
    for n_batch in (rows - 1, rows - 2):  # last chunks of one row, then of two
        verifier = LlamaModel(smollm2_gguf(), LlamaSettings(n_batch=n_batch, n_ubatch=n_batch))
        try:
            found = compare(verifier, req, prompt.tokens, fp, 1.0)
        finally:
            verifier.close()
        assert found.identical, (n_batch, float(found.max_abs.max()))


# -- the seeded draw at the top-p boundary ----------------------------------------------


def _chain(seed: int, n: int):  # type: ignore[no-untyped-def]
    from types import SimpleNamespace

    from inferproof.proofs._llm_sampling import Chain
    from inferproof.runtime._llm_request import Sampling

    sampling = Sampling(temperature=0.8, top_p=0.95, seed=seed)
    return Chain(SimpleNamespace(sampling=sampling), n)  # type: ignore[arg-type]


def _row(head: list[float]) -> np.ndarray:
    # A tail of about 4% of the mass, as a real vocabulary has (SmolLM2's 49,152 logits).
    row = np.full(1000, 19.9, np.float32)
    row[: len(head)] = head
    return row


def test_a_token_just_outside_the_nucleus_is_a_near_tie_when_the_draw_picks_it() -> None:
    from inferproof.proofs._llm_sampling import uniform_draws

    u = uniform_draws(7, 400)
    high = int(np.flatnonzero(u > 0.998)[0])
    low = int(np.flatnonzero(u < 0.5)[0])
    # Two head tokens hold 95.5% of the mass (the nucleus ends with them, top-p 0.95);
    # the third (rank 2) is outside by a little, as another machine's logits may make it.
    row = _row([29.58, 29.12, 25.34])
    chain = _chain(7, 400)
    for i in range(max(high, low) + 1):
        pick = chain.check(i, row, 2 if i in (high, low) else 0, 1.0, 0.3)
        if i == high:
            assert not pick.ok and pick.near, pick  # the draw reaches it: accepted, reported
        if i == low:
            assert not pick.ok and not pick.near, pick  # the draw lands on the head: refused


def test_a_token_deep_in_the_tail_is_refused_whatever_the_draw() -> None:
    from inferproof.proofs._llm_sampling import uniform_draws

    u = uniform_draws(7, 400)
    high = int(np.flatnonzero(u > 0.998)[0])
    row = _row([29.58, 29.12, 25.34])
    chain = _chain(7, 400)
    for i in range(high + 1):  # token 600: most of the tail's mass stands above it
        pick = chain.check(i, row, 600 if i == high else 0, 1.0, 0.3)
    assert not pick.ok and not pick.near
