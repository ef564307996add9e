"""Output proof by deterministic re-execution.

The node records the determinism settings it ran under; a verifier holding the
model and the input re-runs it under the same settings and requires the same
output digest, bit for bit. Bit-identity holds for the same onnxruntime build
and CPU instruction set; the receipt records both so a mismatch is explainable.
"""

from __future__ import annotations

from typing import Any

from .._checks import Check, failed, not_checked, passed
from ..errors import InputError
from ..runtime import OnnxModel, output_opens, tensors_digest
from ._base import ProveContext, VerifyContext

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
        if ctx.receipt.parameters.get("output") == "committed":
            return _committed(ctx, digest)
        if digest != ctx.receipt.output_digest:
            runtime = ctx.receipt.runtime
            return failed(
                CHECK,
                f"re-executed output {digest} differs from the receipt's "
                f"{ctx.receipt.output_digest} (node ran {runtime.get('engine')} "
                f"{runtime.get('version')} on {runtime.get('machine')})",
            )
        return passed(CHECK, f"re-executed: identical output {digest}")


def _committed(ctx: VerifyContext, digest: str) -> Check:
    """Re-execution of a private receipt: the re-run output must open its commitment."""
    if ctx.salt is None:
        return _absent(ctx, "the output is committed to with a salt: give the opening")
    if not output_opens(ctx.receipt.output_digest, digest, ctx.salt):
        return failed(CHECK, "the re-executed output does not open the receipt's commitment")
    return passed(CHECK, "re-executed: the output opens the receipt's salted commitment")


def _absent(ctx: VerifyContext, why: str) -> Check:
    if ctx.required:
        return failed(CHECK, f"required by the policy, but {why}")
    return not_checked(CHECK, why)
