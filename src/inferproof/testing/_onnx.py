"""Small real models for the demo, the tests and the benchmarks (built, never downloaded)."""

from __future__ import annotations

__all__ = ["FEATURES", "credit_risk_model", "mlp_model", "volatility_model"]

import itertools
from typing import Any

import numpy as np

FEATURES = ("income_k", "debt_ratio", "age", "late_payments")


def credit_risk_model(seed: int = 7) -> tuple[bytes, dict[str, Any]]:
    """A logistic-regression credit-risk model trained with scikit-learn on synthetic
    applicants. Returns (ONNX bytes, a sample JSON input).

    The trained pipeline (standard scaling, then logistic regression) is written in
    standard ONNX operators, the scaler folded into the weights: ``probabilities =
    [1 - p, p]`` with ``p = sigmoid(X @ W + b)``, and ``label = argmax``. skl2onnx
    would emit ``ai.onnx.ml`` operators (``Scaler``, ``LinearClassifier``), which
    EZKL cannot prove; these it can, so the same model serves every mode."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    rng = np.random.default_rng(seed)
    n = 2000
    income = rng.normal(60, 20, n).clip(5, 250)
    debt = rng.beta(2, 5, n)
    age = rng.integers(18, 80, n).astype(float)
    late = rng.poisson(0.6, n).astype(float)
    score = -0.03 * income + 4.0 * debt - 0.02 * age + 0.9 * late + 0.5
    y = (score + rng.normal(0, 0.5, n) > 0).astype(np.int64)
    x = np.stack([income, debt, age, late], axis=1).astype(np.float32)
    pipe = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500)).fit(x, y)
    scaler, logistic = pipe.steps[0][1], pipe.steps[1][1]
    # (x - mean) / scale @ coef + intercept  ==  x @ (coef / scale) + (intercept - ...)
    weights = (logistic.coef_[0] / scaler.scale_).reshape(len(FEATURES), 1)
    bias = logistic.intercept_[0] - float(np.dot(scaler.mean_ / scaler.scale_, logistic.coef_[0]))
    sample = {"X": [[52.0, 0.41, 34.0, 2.0]]}
    return _logistic_onnx(weights.astype(np.float32), np.float32(bias)), sample


def _logistic_onnx(weights: np.ndarray, bias: np.float32) -> bytes:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    inits = [
        numpy_helper.from_array(weights, "W"),
        numpy_helper.from_array(np.array([bias], np.float32), "B"),
        numpy_helper.from_array(np.array([1.0], np.float32), "one"),
    ]
    nodes = [
        helper.make_node("MatMul", ["X", "W"], ["z"]),
        helper.make_node("Add", ["z", "B"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["p1"]),
        helper.make_node("Sub", ["one", "p1"], ["p0"]),
        helper.make_node("Concat", ["p0", "p1"], ["probabilities"], axis=1),
        helper.make_node("ArgMax", ["probabilities"], ["label"], axis=1, keepdims=0),
    ]
    graph = helper.make_graph(
        nodes,
        "credit_risk",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, ["N", len(FEATURES)])],
        [
            helper.make_tensor_value_info("label", TensorProto.INT64, ["N"]),
            helper.make_tensor_value_info("probabilities", TensorProto.FLOAT, ["N", 2]),
        ],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def mlp_model(sizes: tuple[int, ...], seed: int = 0) -> bytes:
    """A float32 MLP (Gemm + Relu layers) built with onnx's helper API."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(seed)
    nodes, inits = [], []
    prev = "x"
    for i, (n_in, n_out) in enumerate(itertools.pairwise(sizes)):
        w = (rng.standard_normal((n_in, n_out)) / np.sqrt(n_in)).astype(np.float32)
        b = (rng.standard_normal(n_out) * 0.01).astype(np.float32)
        inits += [numpy_helper.from_array(w, f"w{i}"), numpy_helper.from_array(b, f"b{i}")]
        out = f"h{i}"
        nodes.append(helper.make_node("Gemm", [prev, f"w{i}", f"b{i}"], [out]))
        if i < len(sizes) - 2:
            nodes.append(helper.make_node("Relu", [out], [f"r{i}"]))
            out = f"r{i}"
        prev = out
    nodes.append(helper.make_node("Identity", [prev], ["y"]))
    graph = helper.make_graph(
        nodes,
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", sizes[0]])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", sizes[-1]])],
        inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())


def volatility_model(window: int = 30) -> bytes:
    """Realised volatility of a price window: the population standard deviation of the
    log returns of ``closes`` float32[1, window], as ``volatility`` float32[1, 1]
    (per step, not annualised). Plain ONNX ops (Slice, Div, Log, ReduceMean, Sqrt)."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    def const(name: str, values: list[int]) -> Any:
        return numpy_helper.from_array(np.array(values, np.int64), name)

    inits = [const("s1", [1]), const("e1", [window]), const("s0", [0]),
             const("e0", [window - 1]), const("ax", [1])]  # fmt: skip
    nodes = [
        helper.make_node("Slice", ["closes", "s1", "e1", "ax"], ["later"]),
        helper.make_node("Slice", ["closes", "s0", "e0", "ax"], ["earlier"]),
        helper.make_node("Div", ["later", "earlier"], ["ratio"]),
        helper.make_node("Log", ["ratio"], ["returns"]),
        helper.make_node("ReduceMean", ["returns"], ["mean"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["returns", "mean"], ["dev"]),
        helper.make_node("Mul", ["dev", "dev"], ["sq"]),
        helper.make_node("ReduceMean", ["sq"], ["var"], axes=[1], keepdims=1),
        helper.make_node("Sqrt", ["var"], ["volatility"]),
    ]
    graph = helper.make_graph(
        nodes, "volatility",
        [helper.make_tensor_value_info("closes", TensorProto.FLOAT, [1, window])],
        [helper.make_tensor_value_info("volatility", TensorProto.FLOAT, [1, 1])],
        inits,
    )  # fmt: skip
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return bytes(model.SerializeToString())
