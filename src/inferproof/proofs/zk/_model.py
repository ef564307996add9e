"""What the engine needs to know of an ONNX model: its inputs, and tensors for EZKL."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import onnx

from ...errors import InputError

# Largest tensor element count accepted as one model input; far above what a
# circuit can prove (a 2^20-row circuit holds ~1M values) and a guard on JSON size.
MAX_INPUT_ELEMENTS = 1 << 22


def model_inputs(model_bytes: bytes) -> list[tuple[str, list[int | str]]]:
    """The graph's real inputs (initializers excluded) with their declared dims."""
    try:
        model = onnx.load_from_string(model_bytes)
    except Exception as exc:  # protobuf raises DecodeError and others
        raise InputError(f"model is not a readable ONNX file: {exc}") from exc
    _check_provable(model)
    inits = {t.name for t in model.graph.initializer}
    out: list[tuple[str, list[int | str]]] = []
    for value in model.graph.input:
        if value.name in inits:
            continue
        dims: list[int | str] = []
        for d in value.type.tensor_type.shape.dim:
            dims.append(d.dim_param if d.dim_param else int(d.dim_value) if d.dim_value else "?")
        out.append((value.name, dims))
    if not out:
        raise InputError("model has no inputs")
    return out


# Operator domains EZKL's ONNX front end (tract-onnx) reads: the standard operators.
# scikit-learn's converters emit ai.onnx.ml operators (Scaler, LinearClassifier,
# TreeEnsembleClassifier...), which tract does not implement.
_PROVABLE_DOMAINS = frozenset({"", "ai.onnx"})


def _check_provable(model: onnx.ModelProto) -> None:
    """Refuse, with what to do, a model EZKL cannot compile (before any work)."""
    foreign = sorted(
        {f"{n.domain}.{n.op_type}" for n in model.graph.node if n.domain not in _PROVABLE_DOMAINS}
    )
    if not foreign:
        return
    ml = any(f.startswith("ai.onnx.ml.") for f in foreign)
    hint = (
        "these are scikit-learn's ONNX operators: export the model with standard ONNX "
        "operators instead (a linear model is MatMul, Add and Sigmoid; see "
        "inferproof.testing.credit_risk_model for one written that way), or train it "
        "as a small neural network"
        if ml
        else "EZKL proves models made of the standard ONNX operators only"
    )
    raise InputError(f"EZKL cannot prove operator(s) {', '.join(foreign)}: {hint}")


def resolve_shapes(
    declared: Sequence[tuple[str, list[int | str]]],
    samples: Sequence[Mapping[str, np.ndarray]],
) -> tuple[tuple[tuple[int, ...], ...], dict[str, int]]:
    """Input shapes fixed by the samples, and the symbolic dims (e.g. batch) they set."""
    if not samples:
        raise InputError("setup needs at least one sample input for calibration")
    names = [n for n, _ in declared]
    variables: dict[str, int] = {}
    shapes: list[tuple[int, ...]] = []
    for name, dims in declared:
        shape = None
        for i, sample in enumerate(samples):
            if set(sample) != set(names):
                raise InputError(f"sample input {i} has tensors {sorted(sample)}, not {names}")
            got = tuple(int(d) for d in np.shape(sample[name]))
            if shape is not None and got != shape:
                raise InputError(f"sample inputs disagree on the shape of {name!r}")
            shape = got
        assert shape is not None
        if len(shape) != len(dims):
            raise InputError(f"input {name!r} has {len(dims)} dims, the sample has {shape}")
        for want, have in zip(dims, shape, strict=True):
            if isinstance(want, str):
                if want != "?" and variables.setdefault(want, have) != have:
                    raise InputError(f"symbolic dim {want!r} takes two values in the samples")
            elif want != have:
                raise InputError(f"input {name!r} must have shape {dims}, not {shape}")
        shapes.append(shape)
    return tuple(shapes), variables


def ordered_tensors(
    names: Sequence[str], shapes: Sequence[tuple[int, ...]], inputs: Mapping[str, np.ndarray]
) -> list[np.ndarray]:
    """Inputs in the model's order, checked against the set-up shapes.

    Values are rounded to float32 (EZKL reads float model inputs as F32) and held as
    float64, so the prover's quantisation and the verifier's see the same numbers.
    """
    if set(inputs) != set(names):
        raise InputError(f"inputs are {sorted(inputs)}; the circuit takes {list(names)}")
    out = []
    for name, shape in zip(names, shapes, strict=True):
        array = np.asarray(inputs[name])
        if array.dtype.kind not in "fiub":
            raise InputError(f"input {name!r} has dtype {array.dtype}; numbers expected")
        if tuple(array.shape) != tuple(shape):
            raise InputError(f"input {name!r} has shape {array.shape}; the circuit takes {shape}")
        if array.size > MAX_INPUT_ELEMENTS:
            raise InputError(f"input {name!r} is too large ({array.size} elements)")
        as_float = array.astype(np.float32).astype(np.float64)
        if not np.all(np.isfinite(as_float)):
            raise InputError(f"input {name!r} holds NaN or infinity")
        out.append(as_float)
    return out


def write_data(path: Path, tensors_per_sample: Sequence[Sequence[np.ndarray]]) -> None:
    """EZKL's input file: one flat list per model input, samples concatenated.

    EZKL splits a longer list into chunks of the input's size for calibration.
    """
    n_inputs = len(tensors_per_sample[0])
    data = [
        [float(v) for sample in tensors_per_sample for v in sample[i].reshape(-1)]
        for i in range(n_inputs)
    ]
    path.write_text(json.dumps({"input_data": data}))
