"""Reference models for the ZK benchmarks and tests, built locally (no downloads).

Each builder returns ``(onnx_bytes, sample_inputs)``: deterministic weights from a
seeded generator and a few sample inputs for calibration. The first input
dimension is the symbolic ``batch_size`` so the same model can be set up for
batches (EZKL binds it through its ``variables`` run argument).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

Built = tuple[bytes, list[dict[str, np.ndarray]]]

# ONNX opset and IR version EZKL 23 (tract) loads without complaint.
_OPSET = 13
_IR_VERSION = 8


def _finish(graph: onnx.GraphProto) -> bytes:
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", _OPSET)])
    model.ir_version = _IR_VERSION
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def _samples(
    shape: tuple[int, ...], n: int, seed: int, name: str = "x"
) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed + 1000)
    return [{name: rng.normal(size=shape).astype(np.float32)} for _ in range(n)]


def mlp(sizes: tuple[int, ...], *, seed: int = 0, batch: int = 1, perturb: float = 0.0) -> Built:
    """A ReLU MLP with layer widths ``sizes`` (e.g. (16, 32, 4): 676 parameters).

    ``perturb`` adds that much to one weight: the same architecture with other weights.
    """
    rng = np.random.default_rng(seed)
    inits, nodes, prev = [], [], "x"
    for i, (din, dout) in enumerate(itertools.pairwise(sizes)):
        w = (rng.normal(size=(din, dout)) / np.sqrt(din)).astype(np.float32)
        b = (rng.normal(size=dout) * 0.1).astype(np.float32)
        if i == 0 and perturb:
            w[0, 0] += perturb
        inits += [numpy_helper.from_array(w, f"W{i}"), numpy_helper.from_array(b, f"b{i}")]
        last = i == len(sizes) - 2
        gemm_out = "y" if last else f"z{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"W{i}", f"b{i}"], [gemm_out]))
        if not last:
            nodes.append(helper.make_node("Relu", [gemm_out], [f"h{i}"]))
        prev = f"h{i}"
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch_size", sizes[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch_size", sizes[-1]])],
        inits,
    )
    return _finish(graph), _samples((batch, sizes[0]), 3, seed)


def cnn(*, seed: int = 0, batch: int = 1) -> Built:
    """A small CNN on 1x28x28: two stride-2 3x3 convolutions (4, 8 channels), a dense 10."""
    rng = np.random.default_rng(seed)
    c1 = (rng.normal(size=(4, 1, 3, 3)) / 3).astype(np.float32)
    c2 = (rng.normal(size=(8, 4, 3, 3)) / 6).astype(np.float32)
    w = (rng.normal(size=(8 * 6 * 6, 10)) / 17).astype(np.float32)
    arrays = {
        "C1": c1, "c1b": np.zeros(4, np.float32), "C2": c2, "c2b": np.zeros(8, np.float32),
        "W": w, "b": np.zeros(10, np.float32), "shape": np.array([-1, 288], np.int64),
    }  # fmt: skip
    nodes = [
        helper.make_node("Conv", ["x", "C1", "c1b"], ["a1"], kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("Relu", ["a1"], ["r1"]),
        helper.make_node("Conv", ["r1", "C2", "c2b"], ["a2"], kernel_shape=[3, 3], strides=[2, 2]),
        helper.make_node("Relu", ["a2"], ["r2"]),
        helper.make_node("Reshape", ["r2", "shape"], ["f"]),
        helper.make_node("Gemm", ["f", "W", "b"], ["y"]),
    ]
    graph = helper.make_graph(
        nodes,
        "cnn",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch_size", 1, 28, 28])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch_size", 10])],
        [numpy_helper.from_array(v, k) for k, v in arrays.items()],
    )
    return _finish(graph), _samples((batch, 1, 28, 28), 2, seed)


def sklearn_mlp(*, seed: int = 0, batch: int = 1) -> Built:
    """A scikit-learn MLPRegressor (8 -> 16 -> 1) trained on synthetic data, via skl2onnx."""
    from skl2onnx import to_onnx
    from sklearn.neural_network import MLPRegressor

    rng = np.random.default_rng(seed)
    x = rng.normal(size=(256, 8)).astype(np.float32)
    y = x @ rng.normal(size=8) + 0.5 * np.tanh(x[:, 0])
    reg = MLPRegressor(hidden_layer_sizes=(16,), max_iter=2000, random_state=seed).fit(x, y)
    model = to_onnx(reg, x[:1], target_opset=_OPSET)
    model.ir_version = _IR_VERSION
    # skl2onnx names the batch dim "N"/None; name it batch_size like the others.
    for value in [*model.graph.input, *model.graph.output]:
        dim = value.type.tensor_type.shape.dim[0]
        dim.dim_param = "batch_size"
    name = model.graph.input[0].name
    return bytes(model.SerializeToString()), _samples((batch, 8), 3, seed, name)


REFERENCE: dict[str, Callable[[], Built]] = {
    "mlp-700": lambda: mlp((16, 32, 4)),
    "mlp-10k": lambda: mlp((64, 128, 12)),
    "mlp-40k": lambda: mlp((128, 256, 32)),
    "cnn-28x28": cnn,
    "sklearn-mlp": sklearn_mlp,
}


def parameter_count(model_bytes: bytes) -> int:
    """Number of weights (float initializers) in a model."""
    model = onnx.load_from_string(model_bytes)
    return sum(
        int(np.prod(t.dims)) for t in model.graph.initializer if t.data_type == TensorProto.FLOAT
    )
