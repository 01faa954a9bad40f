"""Reading ONNX models: bytes to a checked ModelProto, external data loaded, nodes ordered.

Everything here refuses bad input with a ModelError that says what is wrong and where;
nothing here raises anything else for any bytes it is given.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import numpy as np
import onnx
from google.protobuf.descriptor import FieldDescriptor
from google.protobuf.message import DecodeError, Message
from onnx import TensorProto, numpy_helper
from onnx.external_data_helper import load_external_data_for_tensor, uses_external_data

from ..types import DataType, ErrorCode

OLDEST_OPSET = 7
"""The oldest opset of the default domain the importers are written for."""

ONNX_DATATYPES = {
    TensorProto.FLOAT: DataType.FLOAT,
    TensorProto.UINT8: DataType.UINT8,
    TensorProto.INT8: DataType.INT8,
    TensorProto.UINT16: DataType.UINT16,
    TensorProto.INT16: DataType.INT16,
    TensorProto.INT32: DataType.INT32,
    TensorProto.INT64: DataType.INT64,
    TensorProto.BOOL: DataType.BOOL,
    TensorProto.FLOAT16: DataType.HALF,
    TensorProto.DOUBLE: DataType.DOUBLE,
    TensorProto.UINT32: DataType.UINT32,
    TensorProto.UINT64: DataType.UINT64,
    TensorProto.BFLOAT16: DataType.BF16,
    TensorProto.FLOAT8E4M3FN: DataType.FP8,
    TensorProto.FLOAT8E4M3FNUZ: DataType.FP8_E4M3FNUZ,
    TensorProto.FLOAT8E5M2: DataType.FP8_E5M2,
    TensorProto.FLOAT8E5M2FNUZ: DataType.FP8_E5M2FNUZ,
    TensorProto.INT4: DataType.INT4,
    TensorProto.UINT4: DataType.UINT4,
    TensorProto.FLOAT4E2M1: DataType.FP4,
    TensorProto.FLOAT8E8M0: DataType.E8M0,
    **{
        getattr(TensorProto, name): datatype
        for name, datatype in (
            ("INT2", DataType.INT2),
            ("UINT2", DataType.UINT2),
            ("FLOAT6E2M3", DataType.FP6_E2M3),
            ("FLOAT6E3M2", DataType.FP6_E3M2),
        )
        if hasattr(TensorProto, name)
    },
}
"""ONNX element types tensorplan computes in (sub-byte ones stored a value per byte, see
docs/dtypes.md); the others (strings, complex) are refused by name."""

DEFAULT_DOMAINS = ("", "ai.onnx")


class ModelError(Exception):
    """A model that cannot be imported; `code` is the parser's ErrorCode."""

    def __init__(
        self,
        code: ErrorCode,
        desc: str,
        node: int = -1,
        node_name: str = "",
        node_operator: str = "",
    ) -> None:
        super().__init__(desc)
        self.code = code
        self.desc = desc
        self.node = node
        self.node_name = node_name
        self.node_operator = node_operator


def load_model(data: bytes | bytearray | memoryview, path: str | None = None) -> onnx.ModelProto:
    """The model in `data`, with external data read from next to `path` (or the working
    directory); ModelError when the bytes are not a usable ONNX model."""
    raw = bytes(data)
    if not raw:
        raise ModelError(ErrorCode.MODEL_DESERIALIZE_FAILED, "the model is empty (0 bytes)")
    model = onnx.ModelProto()
    try:
        model.ParseFromString(raw)
    except (DecodeError, ValueError, RuntimeError) as error:
        raise ModelError(
            ErrorCode.MODEL_DESERIALIZE_FAILED,
            f"the {len(raw)} bytes are not an ONNX model (protobuf decoding failed: {error}); "
            "is the file truncated or of another format?",
        ) from None
    if model.ir_version <= 0 or not model.HasField("graph"):
        raise ModelError(
            ErrorCode.MODEL_DESERIALIZE_FAILED,
            f"the {len(raw)} bytes decode to no ONNX model (no IR version or no graph); "
            "is the file truncated or of another format?",
        )
    _check_text(model)
    base_dir = os.path.dirname(os.path.abspath(path)) if path else os.getcwd()
    load_external_data(model, base_dir)
    return model


def _check_text(model: onnx.ModelProto) -> None:
    """ModelError for a string field that is not valid UTF-8 (protobuf gives such a field as
    bytes, not str, and names must be text everywhere after this)."""
    pending: list[Message] = [model]
    while pending:
        message = pending.pop()
        for field, value in message.ListFields():
            if field.type == FieldDescriptor.TYPE_MESSAGE:
                pending.extend(value if field.is_repeated else [value])
            elif field.type == FieldDescriptor.TYPE_STRING:
                for text in value if field.is_repeated else [value]:
                    if not isinstance(text, str):
                        raise ModelError(
                            ErrorCode.MODEL_DESERIALIZE_FAILED,
                            f"field '{field.full_name}' holds {_text(text)!r}, which is not "
                            "valid UTF-8 (ONNX strings are UTF-8)",
                        )


def load_external_data(model: onnx.ModelProto, base_dir: str) -> None:
    """Read every tensor stored outside the model into it; ModelError naming the tensor."""
    for tensor in all_tensors(model.graph):
        if not uses_external_data(tensor):
            continue
        try:
            load_external_data_for_tensor(tensor, base_dir)
        # RuntimeError: onnx's C++ file checks (std::filesystem: a name too long, ...)
        except (OSError, ValueError, RuntimeError, onnx.checker.ValidationError) as error:
            location = next((e.value for e in tensor.external_data if e.key == "location"), "")
            raise ModelError(
                ErrorCode.INVALID_VALUE,
                f"tensor '{tensor.name}' keeps its data in the external file '{location}', "
                f"which could not be read from '{base_dir}' ({error}); pass the model's path "
                "so its data files can be found next to it",
            ) from None


def all_tensors(graph: onnx.GraphProto) -> Iterator[TensorProto]:
    """Initializers and tensor attributes of the graph and its subgraphs."""
    yield from graph.initializer
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.HasField("t"):
                yield attribute.t
            yield from attribute.tensors
            if attribute.HasField("g"):
                yield from all_tensors(attribute.g)
            for subgraph in attribute.graphs:
                yield from all_tensors(subgraph)


def to_array(tensor: TensorProto, what: str) -> np.ndarray:
    """A tensor's values; ModelError naming it when they are missing or malformed."""
    if tensor.data_type not in ONNX_DATATYPES:
        name = TensorProto.DataType.Name(tensor.data_type) if _known(tensor.data_type) else "?"
        raise ModelError(
            ErrorCode.UNSUPPORTED_NODE_DATATYPE,
            f"{what} has element type {name} ({tensor.data_type}), which tensorplan does not "
            "support",
        )
    try:
        array = numpy_helper.to_array(tensor)
    except (ValueError, TypeError, RuntimeError, IndexError) as error:
        raise ModelError(
            ErrorCode.INVALID_VALUE, f"{what} holds malformed data ({error})"
        ) from None
    return np.asarray(array)


def datatype_of(elem_type: int, what: str) -> DataType:
    """The DataType of an ONNX element type; ModelError for types tensorplan lacks."""
    if elem_type in ONNX_DATATYPES:
        return ONNX_DATATYPES[elem_type]
    name = TensorProto.DataType.Name(elem_type) if _known(elem_type) else str(elem_type)
    raise ModelError(
        ErrorCode.UNSUPPORTED_NODE_DATATYPE,
        f"{what} has element type {name}, which tensorplan does not support",
    )


def onnx_type_of(dtype: DataType) -> int:
    """The ONNX element type of a DataType."""
    return next(key for key, value in ONNX_DATATYPES.items() if value == dtype)


def topological_order(graph: onnx.GraphProto, known: set[str]) -> list[int]:
    """Node indices in an order where every input is produced before it is read.

    `known` holds the names available before any node runs (graph inputs, initializers).
    ModelError naming the node for an input nothing produces and for cycles.
    """
    producer: dict[str, int] = {}
    for index, node in enumerate(graph.node):
        for name in node.output:
            if name:
                producer.setdefault(name, index)
    for index, node in enumerate(graph.node):
        for name in node.input:
            if name and name not in known and name not in producer:
                raise ModelError(
                    ErrorCode.INVALID_GRAPH,
                    f"input '{name}' of node {index} is not a graph input, an initializer "
                    "or the output of any node",
                    index,
                    node.name,
                    node.op_type,
                )
    order: list[int] = []
    state = [0] * len(graph.node)  # 0 new, 1 on the current path, 2 done
    for root in range(len(graph.node)):
        if state[root]:
            continue
        stack = [(root, False)]
        while stack:
            index, expanded = stack.pop()
            if expanded:
                state[index] = 2
                order.append(index)
                continue
            if state[index] == 2:
                continue
            state[index] = 1
            stack.append((index, True))
            for name in reversed(graph.node[index].input):
                before = producer.get(name) if name not in known else None
                if before is None or state[before] == 2:
                    continue
                if state[before] == 1:
                    node = graph.node[index]
                    raise ModelError(
                        ErrorCode.INVALID_GRAPH,
                        f"the graph has a cycle: node {index} reads '{name}', an output of node "
                        f"{before}, which depends on an output of node {index}",
                        index,
                        node.name,
                        node.op_type,
                    )
                stack.append((before, False))
    return order


def _text(value: str | bytes) -> str:
    """A protobuf string field as text (protobuf gives bytes for invalid UTF-8)."""
    return value if isinstance(value, str) else value.decode("utf-8", errors="replace")


def _known(elem_type: int) -> bool:
    return elem_type in TensorProto.DataType.values()
