"""Deterministic ONNX execution with onnxruntime.

Bit-reproducibility on one machine and one set of library versions needs the
session options that change the order of floating-point operations pinned:
one intra-op and one inter-op thread (a parallel reduction sums in a
thread-count-dependent order), sequential execution, and a fixed graph
optimisation level (fusions replace kernels). These settings are recorded in
every receipt so a verifier re-executes under the same ones.
"""

from __future__ import annotations

import platform
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import onnxruntime as ort

from ..errors import InputError
from ._onnx_guard import check_self_contained
from ._spec import TensorSpec
from ._tensors import ORT_TO_NUMPY, Tensors, _cast_exact

ENGINE = "onnxruntime"

# What a receipt records and a verifier must reproduce. "basic" optimisations are
# semantics-preserving rewrites (constant folding, redundant node removal); the
# "extended" and "layout" levels swap in fused, ISA-specific kernels.
DETERMINISM: dict[str, Any] = {
    "intra_op_num_threads": 1,
    "inter_op_num_threads": 1,
    "execution_mode": "sequential",
    "graph_optimization_level": "basic",
    "execution_providers": ["CPUExecutionProvider"],
    "use_deterministic_compute": True,
}


def engine_info() -> dict[str, Any]:
    """The runtime block of a receipt: engine, version, pinned settings, CPU arch."""
    return {
        "engine": ENGINE,
        "version": ort.__version__,
        "machine": platform.machine(),
        "settings": dict(DETERMINISM),
    }


def _session_options() -> ort.SessionOptions:
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = DETERMINISM["intra_op_num_threads"]
    opts.inter_op_num_threads = DETERMINISM["inter_op_num_threads"]
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    opts.use_deterministic_compute = True
    opts.log_severity_level = 3  # errors only: warnings would clutter the CLI
    # Only the ONNX protobuf format, which check_self_contained() has inspected:
    # onnxruntime would otherwise also accept its own ORT flatbuffer format from bytes.
    opts.add_session_config_entry("session.load_model_format", "ONNX")
    return opts


def _specs(args: list[Any], kind: str) -> tuple[TensorSpec, ...]:
    out = []
    for arg in args:
        dtype = ORT_TO_NUMPY.get(arg.type)
        if dtype is None:
            raise InputError(
                f"model {kind} {arg.name!r} has type {arg.type}; only tensors are supported "
                "(for scikit-learn classifiers convert with options={'zipmap': False})"
            )
        shape = tuple(d if isinstance(d, int) and d >= 0 else None for d in arg.shape)
        out.append(TensorSpec(arg.name, dtype, shape))
    return tuple(out)


@dataclass(frozen=True)
class OnnxSignature:
    inputs: tuple[TensorSpec, ...]
    outputs: tuple[TensorSpec, ...]


class OnnxModel:
    """An ONNX model loaded into a deterministic onnxruntime session.

    Example::

        model = OnnxModel(Path("model.onnx").read_bytes())
        outputs = model.run({"x": np.zeros((1, 4), np.float32)})
    """

    def __init__(self, model_bytes: bytes) -> None:
        """Load ``model_bytes``; a model that references files or custom operators is
        refused before onnxruntime sees it (see :mod:`._onnx_guard`)."""
        check_self_contained(model_bytes)
        try:
            self._session = ort.InferenceSession(
                model_bytes, sess_options=_session_options(), providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises several private exception types
            raise InputError(f"not a loadable ONNX model: {_first_line(exc)}") from exc
        self.signature = OnnxSignature(
            _specs(self._session.get_inputs(), "input"),
            _specs(self._session.get_outputs(), "output"),
        )
        self._output_names = [o.name for o in self.signature.outputs]
        # An InferenceSession is safe to call from several threads, but with one
        # intra-op thread each, serialising keeps a single run's cost predictable.
        self._lock = threading.Lock()

    def conform(
        self, inputs: Mapping[str, np.ndarray], untyped: frozenset[str] = frozenset()
    ) -> Tensors:
        """Check names, dtypes and shapes against the signature; cast plain JSON numbers."""
        return conform(inputs, self.signature.inputs, untyped)

    def run(self, inputs: Mapping[str, np.ndarray]) -> Tensors:
        """Run on inputs already checked by :meth:`conform`; return named outputs."""
        try:
            with self._lock:
                values = self._session.run(self._output_names, dict(inputs))
        except Exception as exc:  # onnxruntime's own error types are not public
            raise InputError(f"inference failed: {_first_line(exc)}") from exc
        return {n: np.asarray(v) for n, v in zip(self._output_names, values, strict=True)}


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def conform(
    inputs: Mapping[str, np.ndarray],
    specs: tuple[TensorSpec, ...],
    untyped: frozenset[str] = frozenset(),
) -> Tensors:
    """Return ``inputs`` matched to ``specs`` or raise :class:`InputError` naming the problem.

    Tensors named in ``untyped`` came from plain JSON lists: they are cast to the
    model's dtype when every value fits exactly. All others must match exactly.
    """
    expected = {s.name: s for s in specs}
    missing = sorted(set(expected) - set(inputs))
    unknown = sorted(set(inputs) - set(expected))
    if missing or unknown:
        parts = []
        if missing:
            parts.append(f"missing input(s) {missing}")
        if unknown:
            parts.append(f"unknown input(s) {unknown}")
        raise InputError("; ".join(parts) + f"; the model takes {sorted(expected)}")
    out: Tensors = {}
    for name, spec in expected.items():
        arr = inputs[name]
        if str(arr.dtype) != spec.dtype:
            if name not in untyped:
                raise InputError(
                    f"input {name!r} has dtype {arr.dtype}, the model expects {spec.dtype}"
                )
            arr = _cast_exact(name, arr, spec.dtype)
        if len(arr.shape) != len(spec.shape) or any(
            want is not None and want != got
            for want, got in zip(spec.shape, arr.shape, strict=True)
        ):
            want_text = ["?" if d is None else d for d in spec.shape]
            raise InputError(
                f"input {name!r} has shape {list(arr.shape)}, the model expects {want_text}"
            )
        out[name] = np.ascontiguousarray(arr)
    return out
