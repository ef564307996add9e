"""Output proof by deterministic re-execution.

The node records the determinism settings it ran under; a verifier holding the
model and the input re-runs it under the same settings and requires the same
output digest, bit for bit. Bit-identity holds for the same onnxruntime build
and CPU instruction set; the receipt records both so a mismatch is explainable.

On other hardware or another onnxruntime the last bits of float outputs may
differ. A policy can then accept a re-run within a tolerance (``reexecution.onnx``:
``max_abs`` and ``max_ulp``): the re-run is compared with the outputs the node
claimed, once those are shown to hash to (or open) the receipt's subject, and the
check says "within tolerance" with the largest errors, never "identical".
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._checks import Check, failed, not_checked, passed
from ..errors import InputError
from ..runtime import OnnxModel, output_opens, tensors_digest
from ._base import OnnxTolerance, ProveContext, VerifyContext

CHECK = "output.reexecution"


class Reexecution:
    """Re-run the model and compare output digests. See the module docs."""

    type = "reexecution"

    def prove(self, ctx: ProveContext) -> dict[str, Any]:
        return {"type": self.type, "settings": ctx.runtime.get("settings", {})}

    def verify(self, record: dict[str, Any] | None, ctx: VerifyContext) -> Check:
        if record is None:
            # A ZK receipt's answer is the circuit's output, not the float run's: it
            # claims no re-execution, and none is made.
            return _absent(ctx, "the receipt claims no re-execution proof")
        if ctx.model_bytes is None:
            return _absent(ctx, "model file not available (give --model or push it to the hub)")
        if ctx.inputs is None:
            return _absent(ctx, "input not available (private input: give --input and --opening)")
        try:
            model = OnnxModel(ctx.model_bytes)
            outputs = model.run(model.conform(ctx.inputs))
        except InputError as exc:
            return failed(CHECK, f"cannot re-execute the model on the input: {exc}")
        digest = tensors_digest(outputs)
        committed = ctx.receipt.parameters.get("output") == "committed"
        if committed and ctx.salt is None:
            return _absent(ctx, "the output is committed to with a salt: give the opening")
        if _opens(ctx, digest):
            if committed:
                return passed(
                    CHECK, "re-executed: the output opens the receipt's salted commitment"
                )
            return passed(CHECK, f"re-executed: bit-identical output {digest}")
        runtime = ctx.receipt.runtime
        where = (
            f"node ran {runtime.get('engine')} {runtime.get('version')} on {runtime.get('machine')}"
        )
        claimed = ctx.claimed
        if claimed is None or not _opens(ctx, tensors_digest(dict(claimed))):
            if committed:
                return failed(
                    CHECK, "the re-executed output does not open the receipt's commitment"
                )
            return failed(
                CHECK,
                f"re-executed output {digest} differs from the receipt's "
                f"{ctx.receipt.output_digest} ({where})",
            )
        err = output_error(claimed, outputs)
        tol = ctx.tolerance
        if tol is not None and err.within(tol):
            return passed(
                CHECK,
                f"re-executed: within tolerance, {err} (policy: max_abs {tol.max_abs}, "
                f"max_ulp {tol.max_ulp}; {where})",
            )
        policy = "bit-identical" if tol is None else f"max_abs {tol.max_abs}, max_ulp {tol.max_ulp}"
        return failed(CHECK, f"re-executed output differs: {err} (policy: {policy}; {where})")


def _opens(ctx: VerifyContext, digest: str) -> bool:
    """``digest`` is the receipt's subject, or opens its salted commitment."""
    if ctx.receipt.parameters.get("output") == "committed":
        return ctx.salt is not None and output_opens(ctx.receipt.output_digest, digest, ctx.salt)
    return digest == ctx.receipt.output_digest


class OutputError:
    """The largest differences between claimed and re-executed outputs."""

    def __init__(self) -> None:
        self.max_abs, self.max_ulp, self.exact_mismatch = 0.0, 0, ""
        self._pairs: list[tuple[np.ndarray, np.ndarray]] = []

    def within(self, tol: OnnxTolerance) -> bool:
        if self.exact_mismatch:
            return False
        for a, b in self._pairs:
            close = np.abs(a - b) <= tol.max_abs
            if not (close | (_ulps(a, b) <= tol.max_ulp)).all():
                return False
        return True

    def __str__(self) -> str:
        if self.exact_mismatch:
            return self.exact_mismatch
        return f"max abs error {self.max_abs:.3g}, max {self.max_ulp} ULP"


def output_error(claimed: Any, rerun: dict[str, np.ndarray]) -> OutputError:
    """Compare two sets of named tensors: names, shapes and dtypes must agree,
    non-float tensors exactly, float tensors by absolute and ULP error."""
    err = OutputError()
    if set(claimed) != set(rerun):
        err.exact_mismatch = (
            f"output names {sorted(rerun)} differ from the claimed {sorted(claimed)}"
        )
        return err
    for name in sorted(rerun):
        a, b = np.asarray(claimed[name]), np.asarray(rerun[name])
        if a.shape != b.shape or a.dtype != b.dtype:
            err.exact_mismatch = (
                f"output {name!r} is {b.dtype}{list(b.shape)}, claimed {a.dtype}{list(a.shape)}"
            )
            return err
        if a.dtype.kind != "f":
            if not np.array_equal(a, b):
                err.exact_mismatch = f"output {name!r} ({a.dtype}) differs exactly"
                return err
            continue
        err._pairs.append((a, b))
        if a.size:
            err.max_abs = max(err.max_abs, float(np.nanmax(np.abs(a.astype(np.float64) - b))))
            err.max_ulp = max(err.max_ulp, int(_ulps(a, b).max()))
    return err


def _ulps(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Units in the last place between same-dtype floats (NaN or inf against a number:
    the largest distance). Floats map to integers in order: sign and magnitude to
    two's complement, so adjacent floats are one apart."""
    size = a.dtype.itemsize
    view = {2: "<i2", 4: "<i4", 8: "<i8"}[size]
    top = (1 << (8 * size - 1)) - 1

    def ordered(x: np.ndarray) -> np.ndarray:
        i = np.ascontiguousarray(x).view(view).astype(np.int64)
        return np.where(i < 0, -(i & top), i).astype(np.float64)

    d = np.abs(ordered(a) - ordered(b))
    bad = np.isnan(a) | np.isnan(b)
    same_nan = np.isnan(a) & np.isnan(b)
    return np.where(bad & ~same_nan, float(top), d)


def _absent(ctx: VerifyContext, why: str) -> Check:
    if ctx.required:
        return failed(CHECK, f"required by the policy, but {why}")
    return not_checked(CHECK, why)
