"""What an ONNX file may ask of the machine that loads it: nothing but its own bytes.

A model file is hostile input: anyone with a write token can push one, and every
verifier that re-executes a receipt loads the model the node names. ONNX lets a
tensor keep its data in an *external* file (``TensorProto.data_location =
EXTERNAL`` with a ``location`` key, ONNX IR spec, "External Tensor Data"), and
onnxruntime resolves a relative location against the process's working directory
when the model is given as bytes: one inference then returns any readable file
(the node's signing key) as an output tensor. So before onnxruntime sees a model,
every tensor in it (initializers, sparse initializers, tensor-valued attributes
such as a ``Constant``'s ``value``, in the main graph, every subgraph of ``If``,
``Loop`` and ``Scan``, and every model-local function) must hold its data inline,
and every operator must come from a domain onnxruntime implements itself: a
custom-op domain would need a library loaded from a file, which we never allow.
The ONNX-format check also keeps onnxruntime from sniffing the bytes as its own
ORT flatbuffer format, which this inspection does not read.
"""

from __future__ import annotations

from collections.abc import Iterator

import onnx
from google.protobuf.message import DecodeError

from ..errors import InputError

__all__ = ["ALLOWED_DOMAINS", "check_self_contained"]

# Operator domains onnxruntime's CPU provider implements from its own code: the
# ONNX standard ops ("" is the same domain as "ai.onnx") and the traditional-ML ops
# that scikit-learn converters emit. None of their kernels opens a file.
ALLOWED_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})
# Nested graphs are walked with an explicit stack; this bounds a hostile nesting
# (a legitimate model nests control flow a few levels deep at most).
MAX_GRAPHS = 100_000


def _parse(data: bytes) -> onnx.ModelProto:
    model = onnx.ModelProto()
    try:
        model.ParseFromString(data)
    except (DecodeError, ValueError, RuntimeError) as exc:
        raise InputError(f"not a loadable ONNX model: not an ONNX protobuf ({exc})") from None
    if not model.HasField("graph"):
        raise InputError("not a loadable ONNX model: it has no graph")
    return model


def _attribute_tensors(attr: onnx.AttributeProto) -> Iterator[onnx.TensorProto]:
    if attr.HasField("t"):
        yield attr.t
    yield from attr.tensors
    for sparse in (*([attr.sparse_tensor] if attr.HasField("sparse_tensor") else []),
                   *attr.sparse_tensors):  # fmt: skip
        yield sparse.values
        yield sparse.indices


def _attribute_graphs(attr: onnx.AttributeProto) -> Iterator[onnx.GraphProto]:
    if attr.HasField("g"):
        yield attr.g
    yield from attr.graphs


def _nodes(
    model: onnx.ModelProto,
) -> Iterator[tuple[str, onnx.NodeProto | None, onnx.TensorProto | None]]:
    """Every node (with the graph it is in) and every tensor, in the whole model."""
    graphs: list[tuple[str, onnx.GraphProto]] = [("main graph", model.graph)]
    nodes: list[tuple[str, onnx.NodeProto]] = [
        (f"function {f.name!r}", n) for f in model.functions for n in f.node
    ]
    seen = 0
    while graphs or nodes:
        if graphs:
            where, graph = graphs.pop()
            seen += 1
            if seen > MAX_GRAPHS:
                raise InputError(f"the model nests more than {MAX_GRAPHS} graphs")
            for init in graph.initializer:
                yield where, None, init
            for sparse in graph.sparse_initializer:
                yield where, None, sparse.values
                yield where, None, sparse.indices
            nodes.extend((where, n) for n in graph.node)
            continue
        where, node = nodes.pop()
        yield where, node, None
        for attr in node.attribute:
            for tensor in _attribute_tensors(attr):
                yield where, node, tensor
            inner = f"subgraph of {node.op_type} {node.name!r}"
            graphs.extend((inner, g) for g in _attribute_graphs(attr))


def _external(tensor: onnx.TensorProto) -> bool:
    return tensor.data_location == onnx.TensorProto.EXTERNAL or len(tensor.external_data) > 0


def check_self_contained(data: bytes) -> None:
    """Refuse an ONNX model that references anything outside its own bytes.

    Raises :class:`InputError` for tensors with external data, operators from
    domains onnxruntime does not implement itself (custom ops), and bytes that are
    not an ONNX protobuf at all.

    Example::

        check_self_contained(Path("model.onnx").read_bytes())   # or InputError
    """
    model = _parse(data)
    local = {f.domain for f in model.functions}
    for where, node, tensor in _nodes(model):
        if tensor is not None and _external(tensor):
            location = next((e.value for e in tensor.external_data if e.key == "location"), "")
            raise InputError(
                f"model tensor {tensor.name!r} ({where}) keeps its data in an external file "
                f"{location[:80]!r}: only self-contained models are accepted (re-save the "
                "model with onnx.save(model, path, save_as_external_data=False))"
            )
        if node is not None and node.domain not in ALLOWED_DOMAINS | local:
            raise InputError(
                f"model operator {node.op_type!r} ({where}) is from domain {node.domain!r}: "
                f"only {sorted(ALLOWED_DOMAINS - {''})} and the standard ONNX ops are accepted "
                "(custom operators would need a library loaded from a file)"
            )
