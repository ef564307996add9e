"""``output.fingerprint``: an LLM answer checked with one prefill, on any machine.

The node commits, per answer position, to the answer's token ids and the top
logits of the row it sampled from (``runtime/_llm_fingerprint.py``). The verifier:

1. checks the fingerprint against the receipt (its digest, or for a private
   request its salted commitment, opened by the opening's salt);
2. replays the token ids through the request's stop rules: they must spell the
   signed answer exactly (text, finish reason, token count), so a truncated or
   extended answer, or tokens that do not match the text, fail here;
3. runs one batched prefill of prompt + answer with the model file, at its own
   settings (threads, batch sizes, CPU features need not be the node's), and
   compares the top logits at every position with the committed ones: any
   position off by more than ``max_abs``, or the answer's mean difference above
   ``mean_abs``, fails (a different model, quantisation or prompt);
4. replays the sampler chain on its own logits: a greedy answer's tokens must
   be the argmax, a seeded answer's the token the seeded draw picks, each up
   to near-ties within ``tie`` (``_llm_sampling.py``), which are reported.

The thresholds are calibrated in docs/llm.md from measured differences between
honest runs on different settings and builds, and between the model and its
re-quantisations; bench/bench_fingerprint.py re-measures them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from .._checks import Check, failed, not_checked, passed
from ..errors import InputError
from ..receipts import Receipt
from ..runtime import (
    ChatOpening,
    ChatOutput,
    ChatRequest,
    Fingerprint,
    LlamaModel,
    LlamaSettings,
    fingerprint_opens,
)
from ..runtime import fingerprint_values as top_values
from ._llm_sampling import Chain
from ._request import model_mismatch, render_prompt

CHECK = "output.fingerprint"
# Half a fixed-point step (runtime/_llm_fingerprint.py SCALE = 64) and float slack:
# a difference this small is the fingerprint's own rounding.
ROUNDING = 0.5 / 64 + 1e-6


@dataclass(frozen=True)
class Tolerance:
    """How far a verifier's prefill may differ from the node's committed logits.

    ``max_abs`` bounds any position, ``mean_abs`` the answer's mean, ``tie`` the
    logit gap a token may have to the sampler's pick (a near-tie). A node that
    decodes in pairs on the verifier's build and CPU features gives logits the
    prefill reproduces exactly (runtime/_llm_decode.py), so the ``same_build_*``
    bounds, a few fixed-point steps, apply there. A node that misreports its build
    or decoding only gets the general bounds, never looser ones.

    Defaults from docs/llm.md (SmolLM2-135M Q4_1, 60 honest answers of up to 256
    tokens verified across thread counts, batch sizes, context sizes and an AVX2 build
    against the node's AVX-512 one: differences up to 2.44 at a position, 0.20 on an
    answer's mean; argmax gaps of near-ties up to about 0.5).

    Example::

        Tolerance(max_abs=4.0, mean_abs=0.3, tie=1.0)
    """

    max_abs: float = 4.0
    mean_abs: float = 0.3
    tie: float = 1.0
    same_build_max_abs: float = 0.05
    same_build_mean_abs: float = 0.02

    def bounds(self, same_build: bool) -> tuple[float, float]:
        """(per position, mean) for a verifier on the node's build or another."""
        if same_build:
            return self.same_build_max_abs, self.same_build_mean_abs
        return self.max_abs, self.mean_abs


@dataclass(frozen=True)
class Comparison:
    """What the prefill found, position by position (for reports and benchmarks)."""

    positions: int
    max_abs: np.ndarray[Any, Any]  # per position: largest |difference| of the top values
    mean_abs: np.ndarray[Any, Any]  # per position: mean |difference|
    greedy: bool
    picks_ok: int
    near_ties: tuple[tuple[int, float], ...]
    bad_pick: tuple[int, float] | None
    seconds: float = 0.0
    tokens: tuple[int, ...] = field(default=())

    def verdict(self, tol: Tolerance, same_build: bool = False) -> str | None:
        """Why the answer fails, or None when it passes."""
        max_abs, mean_abs = tol.bounds(same_build)
        where = " (same build as the node)" if same_build else ""
        # A model file whose logits are NaN or infinite would otherwise slip through
        # every "greater than the bound" comparison below.
        broken = np.flatnonzero(~np.isfinite(self.max_abs))
        if broken.size:
            return (
                f"position {int(broken[0])}: the verifier's prefill gave non-finite logits "
                f"({broken.size} of {self.positions} positions)"
            )
        over = np.flatnonzero(self.max_abs > max_abs)
        if over.size:
            i = int(over[0])
            return (
                f"first disagreeing position {i}: top logits differ by {self.max_abs[i]:.3f} "
                f"(tolerance {max_abs}{where}); {over.size} of {self.positions} positions over"
            )
        mean = float(self.mean_abs.mean())
        if mean > mean_abs:
            worst = int(np.argmax(self.mean_abs))
            return (
                f"the top logits differ by {mean:.3f} on average over {self.positions} "
                f"positions (tolerance {mean_abs}{where}; largest at position {worst}): "
                "another model, quantisation or prompt"
            )
        if self.bad_pick is not None:
            i, margin = self.bad_pick
            if self.greedy:
                return (
                    f"position {i}: token {self.tokens[i]} is not the argmax (off by "
                    f"{margin:.4f} logits, beyond the near-tie tolerance {tol.tie})"
                )
            return (
                f"position {i}: token {self.tokens[i]} is not the token the seeded draw "
                f"picks (off by {margin:.4f} in probability, beyond the near-tie margin "
                "this position's logit difference allows)"
            )
        return None

    @property
    def identical(self) -> bool:
        """The prefill gave the node's logits up to the fixed point's rounding."""
        return bool(self.max_abs.max() <= ROUNDING)

    def summary(self, tol: Tolerance, same_build: bool = False) -> str:
        d = self.max_abs
        max_abs, mean_abs = tol.bounds(same_build)
        ties = ", ".join(f"{i} ({m:.3f})" for i, m in self.near_ties[:5])
        more = f" and {len(self.near_ties) - 5} more" if len(self.near_ties) > 5 else ""
        kind = "greedy argmax" if self.greedy else "seeded draw"
        label = "bit-identical" if self.identical else "within tolerance"
        return (
            f"{label}: prefill of {self.positions} positions, top-logit difference max "
            f"{d.max():.3f}, p99 {np.percentile(d, 99):.3f}, median {np.median(d):.3f}, "
            f"mean {self.mean_abs.mean():.3f} (tolerance {max_abs} / {mean_abs}"
            f"{', same build as the node' if same_build else ''}); "
            f"{kind}: {self.picks_ok} of {self.positions} exact"
            + (f", near-ties at {ties}{more}" if self.near_ties else ", no near-ties")
        )


def compare(
    llm: LlamaModel, request: ChatRequest, prompt: tuple[int, ...], fp: Fingerprint, tie: float
) -> Comparison:
    """Prefill ``prompt`` + the fingerprint's tokens and compare at every position."""
    import time

    n = len(fp.tokens)
    node = fp.logits()
    max_abs, mean_abs = np.zeros(n), np.zeros(n)
    chain = Chain(request, n)
    ties: list[tuple[int, float]] = []
    bad: list[tuple[int, float]] = []
    ok = 0

    def each(i: int, row: np.ndarray[Any, Any]) -> None:
        nonlocal ok
        diff = np.abs(top_values(row).astype(np.float64) - node[i])
        if not np.isfinite(diff).all():
            diff[:] = np.inf  # NaN compares false with every bound: make it fail (verdict)
        max_abs[i], mean_abs[i] = diff.max(), diff.mean()
        pick = chain.check(i, row, fp.tokens[i], tie, float(max_abs[i]))
        if pick.ok:
            ok += 1
        elif pick.near:
            ties.append((i, pick.margin))
        elif not bad:
            bad.append((i, pick.margin))

    start = time.process_time()
    llm.prefill(prompt, fp.tokens, each)
    seconds = time.process_time() - start
    return Comparison(
        n,
        max_abs,
        mean_abs,
        chain.greedy,
        ok,
        tuple(ties),
        bad[0] if bad else None,
        seconds,
        fp.tokens,
    )


def fingerprint_of(
    receipt: Receipt, carried: Any, opening: ChatOpening | None
) -> Fingerprint | str:
    """The fingerprint the receipt commits to, or why there is none to check."""
    entry = next((p for p in receipt.proofs if p.get("type") == "fingerprint"), None)
    if entry is None:
        return "the receipt commits to no fingerprint (made before fingerprints, or relayed)"
    salt = opening.salt if opening is not None else None
    if "commitment" in entry:
        if opening is None or opening.fingerprint is None:
            return "private request: the fingerprint is in the opening; give the opening"
        carried = opening.fingerprint
    if carried is None:
        return "the bundle carries no fingerprint (proofs.fingerprint)"
    fp = Fingerprint.from_json(carried)
    if "commitment" in entry:
        assert salt is not None
        if not fingerprint_opens(str(entry["commitment"]), fp.digest, salt):
            raise InputError("the opening's fingerprint does not open the receipt's commitment")
    elif entry.get("digest") != fp.digest:
        raise InputError(
            f"the fingerprint hashes to {fp.digest}, the signed receipt says {entry.get('digest')}"
        )
    if entry.get("positions") != len(fp.tokens):
        raise InputError("the fingerprint's positions differ from the signed count")
    return fp


def fingerprint_check(
    receipt: Receipt,
    carried: Any,
    request: ChatRequest,
    output: ChatOutput,
    model: bytes | Path,
    *,
    opening: ChatOpening | None = None,
    tolerance: Tolerance | None = None,
    required: bool = False,
) -> Check:
    """``output.fingerprint`` (module docs). ``carried`` is the bundle's
    ``proofs.fingerprint``; a private receipt's comes from ``opening``.

    Example::

        check = fingerprint_check(bundle.receipt, bundle.proofs.get("fingerprint"),
                                  request, output, Path("model.gguf"))
    """
    tol = tolerance or Tolerance()
    try:
        fp = fingerprint_of(receipt, carried, opening)
    except InputError as exc:
        return failed(CHECK, str(exc))
    if isinstance(fp, str):
        return (
            failed(CHECK, f"required by the policy, but {fp}")
            if required
            else not_checked(CHECK, fp)
        )
    if (wrong := model_mismatch(receipt, model)) is not None:
        return failed(CHECK, wrong)
    try:
        llm = _load(model, output.prompt_tokens + len(fp.tokens))
    except InputError as exc:
        return failed(CHECK, f"cannot load the model: {exc}")
    try:
        return _check(llm, receipt, request, output, fp, tol)
    except InputError as exc:
        return failed(CHECK, f"cannot prefill the request: {exc}")
    finally:
        llm.close()


def _load(model: bytes | Path, needed: int) -> LlamaModel:
    """The model at the verifier's own settings, with room for prompt + answer."""
    probe = LlamaSettings()
    ctx = -(-needed // 256) * 256
    return LlamaModel(model, LlamaSettings(n_ctx=0, n_batch=probe.n_batch), max_ctx=ctx)


def _check(
    llm: LlamaModel,
    receipt: Receipt,
    request: ChatRequest,
    output: ChatOutput,
    fp: Fingerprint,
    tol: Tolerance,
) -> Check:
    same = same_build(receipt.runtime, llm.runtime_info())
    found, why = assess(llm, request, output, fp, tol, same)
    if why is not None or found is None:
        return failed(CHECK, why or "no comparison made")
    return passed(CHECK, found.summary(tol, same))


def assess(
    llm: LlamaModel,
    request: ChatRequest,
    output: ChatOutput,
    fp: Fingerprint,
    tol: Tolerance,
    same: bool,
) -> tuple[Comparison | None, str | None]:
    """Steps 2 to 4 of the module docs on a loaded model: the comparison (None when
    it never got to the prefill) and why the answer fails (None when it passes).
    Raises :class:`InputError` for a request the model cannot render."""
    # The prefill needs room for prompt + answer only, not for max_tokens.
    prompt = render_prompt(llm, request, output.prompt_tokens, answer_room=False)
    if isinstance(prompt, str):
        return None, prompt
    if len(prompt.tokens) + len(fp.tokens) > llm.n_ctx + 1:
        return None, "prompt and answer do not fit the model's context"
    replayed = llm.replay(request, prompt, fp.tokens)
    if (replayed.text, replayed.finish_reason, replayed.completion_tokens) != (
        output.text,
        output.finish_reason,
        output.completion_tokens,
    ):
        return None, (
            "the fingerprint's tokens spell a different answer from the signed one "
            f"({replayed.completion_tokens} tokens, finish {replayed.finish_reason!r})"
        )
    found = compare(llm, request, prompt.tokens, fp, tol.tie)
    return found, found.verdict(tol, same)


def same_build(node: dict[str, Any], here: dict[str, Any]) -> bool:
    """The node says it ran this llama.cpp build on these CPU features and decoded in
    pairs (``decode: "paired"``, ``n_ubatch`` >= 2): its logits came from the kernels
    this verifier's prefill uses. Only then do the same-build bounds apply."""
    keys = ("engine", "version", "llama_cpp", "cpu_features", "machine")
    settings = node.get("settings")
    if not isinstance(settings, dict) or settings.get("decode") != "paired":
        return False
    ubatch = settings.get("n_ubatch")
    return all(node.get(k) == here.get(k) for k in keys) and isinstance(ubatch, int) and ubatch >= 2


__all__ = [
    "CHECK",
    "Comparison",
    "Tolerance",
    "assess",
    "compare",
    "fingerprint_check",
    "fingerprint_of",
    "same_build",
]
