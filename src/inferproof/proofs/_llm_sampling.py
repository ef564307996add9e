"""llama.cpp's sampler chain, re-derived from a verifier's logits.

The node samples with llama-cpp-python's chain (``runtime/_llm.py``): penalties,
top-k, typical (always 1, a no-op), top-p, min-p, temperature, then a seeded
draw; temperature 0 is greedy. This module replays that chain on the logits of
the verifier's prefill and says, for each answer position, whether the node's
token is the one the chain picks, and how close the call was. The filters and
the draw follow llama.cpp's ``src/llama-sampler.cpp`` (the version pinned in the
lock): candidate order, float32 probabilities, a double-precision running sum.

The draw: llama.cpp's ``dist`` sampler takes one ``uniform_real_distribution<
double>`` value per position from ``std::mt19937(seed)``, which C++ defines as
``generate_canonical<double, 53>``: two 32-bit outputs ``a, b``, ``(a + b * 2^32) /
2^64`` (C++ [rand.util.canonical]). numpy's legacy ``RandomState(seed)`` seeds
the same generator the same way (``init_genrand``), so the values are
reproduced exactly here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..runtime import ChatRequest

# llama-cpp-python's window for repetition penalties (runtime PENALTY_LAST_N).
PENALTY_LAST_N = 64
# A seeded draw's near-tie margin: the logit error at a position is taken as four times
# what the fingerprint comparison saw there (its top values are sorted, which can hide
# part of a swap, and tokens below the top four are not compared) plus 0.1, at most the
# tie tolerance. Calibrated in bench/bench_fingerprint.py: with twice the difference
# plus 2/64, one seeded answer of 60 from the AVX2 build missed by 0.054 at a position.
NOISE_FACTOR = 4.0
NOISE_FLOOR = 0.1
_TWO32 = float(1 << 32)
_TWO64 = float(1 << 64)


def uniform_draws(seed: int, n: int) -> np.ndarray[Any, np.dtype[np.float64]]:
    """The first ``n`` values of ``uniform_real_distribution<double>(0, 1)`` on
    ``std::mt19937(seed)`` (module docs)."""
    gen = np.random.RandomState(seed & 0xFFFFFFFF)._bit_generator
    raw = np.asarray(gen.random_raw(2 * n), dtype=np.float64).reshape(n, 2)
    u = (raw[:, 0] + raw[:, 1] * _TWO32) / _TWO64
    # libstdc++ and libc++ return the largest double below 1 when rounding reaches 1.
    return np.minimum(u, math.nextafter(1.0, 0.0))


@dataclass(frozen=True)
class Pick:
    """One position's verdict: ``ok`` (the node's token is the chain's pick),
    ``near`` (it is not, but the margin is within the tolerance: a near-tie), and
    ``margin``: how far the token is from being picked (logits, or probability for
    a seeded draw), 0 when it is the pick."""

    ok: bool
    near: bool
    margin: float


class Chain:
    """The request's sampler chain over a verifier's logits, position by position.

    Example::

        chain = Chain(request, n_positions=len(tokens))
        for i, row in enumerate(rows):
            pick = chain.check(i, row, tokens[i], tolerance=1.0)
    """

    def __init__(self, request: ChatRequest, n_positions: int) -> None:
        self._s = request.sampling
        self.greedy = self._s.temperature <= 0
        seed = self._s.seed if self._s.seed is not None else 0
        self._u = None if self.greedy else uniform_draws(seed, n_positions)
        self._history: list[int] = []

    def check(
        self, i: int, row: np.ndarray[Any, Any], token: int, tolerance: float, noise: float
    ) -> Pick:
        """Check ``token`` at position ``i`` against ``row``, then accept it (as llama.cpp
        does: its penalties count the answer's tokens, not the prompt's).

        ``tolerance`` bounds a greedy near-tie's logit gap; ``noise`` is how far this
        position's top logits are from the node's (the fingerprint comparison), which
        sizes a seeded draw's near-tie margin (never beyond ``tolerance``)."""
        logits = self._penalised(np.array(row, dtype=np.float32))
        try:
            if self.greedy:
                return _greedy(logits, token, tolerance)
            assert self._u is not None
            eps = min(tolerance, NOISE_FACTOR * noise + NOISE_FLOOR)
            return self._draw(logits, token, float(self._u[i]), eps)
        finally:
            self._history.append(token)

    def _penalised(self, logits: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
        s = self._s
        if s.repeat_penalty == 1.0 and s.frequency_penalty == 0 and s.presence_penalty == 0:
            return logits
        recent = self._history[-PENALTY_LAST_N:]
        if not recent:
            return logits
        ids, counts = np.unique(np.asarray(recent, dtype=np.int64), return_counts=True)
        values = logits[ids]
        values = np.where(
            values <= 0,
            values * np.float32(s.repeat_penalty),
            values / np.float32(s.repeat_penalty),
        )
        values -= counts.astype(np.float32) * np.float32(s.frequency_penalty) + np.float32(
            s.presence_penalty
        )
        logits[ids] = values.astype(np.float32)
        return logits

    def _draw(self, logits: np.ndarray[Any, Any], token: int, u: float, eps: float) -> Pick:
        ids, values, cut, ordered = self._filter(logits)
        where = np.flatnonzero(ids == token)
        if where.size == 0:
            return self._filtered(logits, token, u, eps, float(cut - logits[token]))
        t = float(self._s.temperature)
        scaled = (values / np.float32(t)).astype(np.float32)
        p = np.exp(scaled - scaled.max(), dtype=np.float32).astype(np.float64)
        cum = np.cumsum(p)
        total = float(cum[-1])
        j = int(where[0])
        lo, hi = (float(cum[j - 1]) if j else 0.0) / total, float(cum[j]) / total
        if lo < u <= hi or (j == 0 and u <= hi):
            return Pick(True, False, 0.0)
        miss = lo - u if u <= lo else u - hi
        edge = lo if u <= lo else hi
        margin = _boundary_shift(edge, 2 * eps / t)
        if ordered:
            # In a sorted list, candidates within 2 eps of the token may stand on either
            # side of it on the node: their mass may move the boundary too.
            near = np.abs(values - values[j]) <= 2 * eps
            near[j] = False
            margin += float(p[near].sum()) / total
        return Pick(False, miss <= margin, miss)

    def _filtered(
        self, logits: np.ndarray[Any, Any], token: int, u: float, eps: float, gap: float
    ) -> Pick:
        """A token the verifier's filters removed: a near-tie when its logit is within
        the logit error of the filter's threshold (top-k, min-p or top-p alike). A
        token further below a top-p threshold may still be one: the nucleus ends where
        the cumulative probability reaches ``top_p``, and near that boundary a small
        change of the head's logits moves it past tail tokens, so the token is a
        near-tie when (1) the probability of the tokens above it could be below
        ``top_p`` on the node, moved by no more than
        the logit error allows (:func:`_boundary_shift`), and (2) the seeded draw picks
        it from the smallest nucleus that holds it (a larger one only moves its share
        down, towards the draw). The tokens above it are taken as the verifier orders
        them: allowing near-equal ones to swap too would let a dense tail's every token
        through at a late draw."""
        s = self._s
        order = np.argsort(-logits, kind="stable")
        if s.top_k > 0:
            order = order[: s.top_k]
        rank = np.flatnonzero(order == token)
        floor = float(logits.max()) + math.log(s.min_p) if s.min_p > 0 else -math.inf
        if gap <= 2 * eps or s.top_p >= 1.0 or rank.size == 0 or float(logits[token]) < floor:
            return Pick(False, gap <= 2 * eps, gap)
        j = int(rank[0])
        values = logits[order].astype(np.float64)
        p = np.exp(values - values[0])
        above = float(p[:j].sum()) / float(p.sum())
        if above - _boundary_shift(above, 2 * eps) >= s.top_p:
            return Pick(False, False, gap)
        t = float(s.temperature)
        q = np.exp((values[: j + 1] - values[0]) / t)
        lo = float(q[:j].sum()) / float(q.sum())
        if u > lo - _boundary_shift(lo, 2 * eps / t):
            return Pick(False, True, gap)
        return Pick(False, False, lo - u)

    def _filter(self, logits: np.ndarray[Any, Any]) -> tuple[Any, Any, float, bool]:
        """Candidates after top-k, top-p and min-p, in llama.cpp's order, the lowest
        logit that survived (the threshold a filtered token missed), and whether the
        list is sorted."""
        s = self._s
        ids = np.arange(logits.shape[0])
        values = logits
        ordered = False
        if s.top_k > 0:
            keep = np.argsort(-values, kind="stable")[: s.top_k]
            ids, values, ordered = ids[keep], values[keep], True
        if s.top_p < 1.0:
            if not ordered:
                order = np.argsort(-values, kind="stable")
                ids, values, ordered = ids[order], values[order], True
            p = np.exp(values - values[0], dtype=np.float32)
            p = (p / p.sum(dtype=np.float32)).astype(np.float32)
            cum = np.cumsum(p, dtype=np.float32)
            last = int(np.searchsorted(cum >= np.float32(s.top_p), True)) + 1
            ids, values = ids[:last], values[:last]
        if s.min_p > 0:
            floor = np.float32(values.max() + np.float32(math.log(s.min_p)))
            keep = np.flatnonzero(values >= floor)
            if ordered and keep.size:
                keep = np.arange(max(1, int(keep[-1]) + 1))
            ids, values = ids[keep], values[keep]
        return ids, values, float(values.min()), ordered


def _boundary_shift(c: float, x: float) -> float:
    """How far a cumulative probability ``c`` can move when every logit moves by at
    most ``x / 2`` (in units of temperature): ``c`` rises most when the mass below the
    boundary gains ``e^(x/2)`` and the rest loses it, which gives
    ``c (1 - c) (e^x - 1) / (1 + c (e^x - 1))``."""
    g = math.expm1(x)
    return c * (1.0 - c) * g / (1.0 + c * g)


def _greedy(logits: np.ndarray[Any, Any], token: int, tol: float) -> Pick:
    best = float(logits.max())
    gap = best - float(logits[token])
    if gap <= 0:
        return Pick(True, False, 0.0)
    return Pick(False, gap <= tol, gap)


__all__ = ["Chain", "Pick", "uniform_draws"]
