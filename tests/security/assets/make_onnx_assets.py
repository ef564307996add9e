"""Build the hostile ONNX models of review finding 11.1 (models that reach files).

Run from the repository root: ``python tests/security/assets/make_onnx_assets.py``.
Each model, loaded from bytes by onnxruntime without our guard, reads the file
``keys/node.key`` relative to the process's working directory (the node's signing
key when the node runs in its home folder) or needs a custom-op library.
"""

from __future__ import annotations

from pathlib import Path

import onnx
from onnx import TensorProto, helper

HERE = Path(__file__).parent
TARGET = "keys/node.key"
N = 119  # the length of an Ed25519 PKCS#8 PEM file, as inferproof writes node.key


def _external(name: str) -> TensorProto:
    tensor = TensorProto()
    tensor.name = name
    tensor.data_type = TensorProto.UINT8
    tensor.dims.append(N)
    tensor.data_location = TensorProto.EXTERNAL
    entry = tensor.external_data.add()
    entry.key, entry.value = "location", TARGET
    return tensor


def _model(graph: onnx.GraphProto, *opsets: tuple[str, int]) -> bytes:
    ops = [helper.make_opsetid(d, v) for d, v in (("", 13), *opsets)]
    model = helper.make_model(graph, opset_imports=ops)
    model.ir_version = 8
    return model.SerializeToString()


def _out() -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info("y", TensorProto.UINT8, [N])


def initializer() -> bytes:
    """An initializer whose data is the key file, returned by Identity."""
    node = helper.make_node("Identity", ["w"], ["y"])
    return _model(helper.make_graph([node], "steal", [], [_out()], [_external("w")]))


def constant() -> bytes:
    """A Constant node whose ``value`` attribute is the key file."""
    node = helper.make_node("Constant", [], ["y"])
    node.attribute.append(helper.make_attribute("value", _external("c")))
    return _model(helper.make_graph([node], "steal", [], [_out()]))


def subgraph() -> bytes:
    """The key file hidden in the ``then`` branch of an If."""
    inner = helper.make_graph(
        [helper.make_node("Identity", ["w"], ["y"])], "then", [], [_out()], [_external("w")]
    )
    other = helper.make_graph(
        [helper.make_node("Identity", ["z"], ["y"])],
        "else",
        [],
        [_out()],
        [helper.make_tensor("z", TensorProto.UINT8, [N], bytes(N), raw=True)],
    )
    cond = helper.make_tensor_value_info("cond", TensorProto.BOOL, [])
    node = helper.make_node("If", ["cond"], ["y"], then_branch=inner, else_branch=other)
    return _model(helper.make_graph([node], "steal", [cond], [_out()]))


def custom_op() -> bytes:
    """An operator from a custom domain (it would need a library loaded from a file)."""
    x = helper.make_tensor_value_info("x", TensorProto.FLOAT, [1])
    y = helper.make_tensor_value_info("y", TensorProto.FLOAT, [1])
    node = helper.make_node("ReadFile", ["x"], ["y"], domain="evil.example")
    return _model(helper.make_graph([node], "custom", [x], [y]), ("evil.example", 1))


ASSETS = {
    "review-onnx-external-initializer.onnx": initializer,
    "review-onnx-external-constant.onnx": constant,
    "review-onnx-external-subgraph.onnx": subgraph,
    "review-onnx-custom-op.onnx": custom_op,
}


if __name__ == "__main__":
    for name, build in ASSETS.items():
        (HERE / name).write_bytes(build())
        print(name)
