"""What importers work with: the ONNX node being imported, and the network being written.

`OnnxNode` gives an importer its inputs as network tensors and its attributes, checked by
type. `ImportContext` holds the tensors of every ONNX value imported so far and the
helpers that lower ONNX semantics onto TensorRT layers: constants, casts, numpy-style
broadcasting (TensorRT needs equal ranks), and shape arithmetic on shape tensors, which
the builder folds to constants wherever shapes are static.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import onnx
import torch
from onnx import AttributeProto

from ..network.definition import INetworkDefinition
from ..network.tensor import ITensor
from ..ops.base import UNKNOWN, TensorMeta
from ..plan.format import MAX_RANK
from ..types import (
    DataType,
    ElementWiseOperation,
    ErrorCode,
    FillOperation,
    ReduceOperation,
    UnaryOperation,
    Weights,
    nptype,
)
from .model import ModelError, datatype_of, to_array

_ATTRIBUTE_KINDS = {
    "int": AttributeProto.INT,
    "float": AttributeProto.FLOAT,
    "string": AttributeProto.STRING,
    "tensor": AttributeProto.TENSOR,
    "graph": AttributeProto.GRAPH,
    "ints": AttributeProto.INTS,
    "floats": AttributeProto.FLOATS,
    "strings": AttributeProto.STRINGS,
}


class OnnxNode:
    """One ONNX node as an importer sees it: inputs as tensors (None where omitted),
    attributes read by type, and the opset version its domain is imported at."""

    def __init__(
        self, proto: onnx.NodeProto, index: int, opset: int, inputs: list[ITensor | None]
    ) -> None:
        self.proto = proto
        self.index = index
        self.opset = opset
        self.inputs = inputs
        self.op_type = proto.op_type
        self._attributes = {attribute.name: attribute for attribute in proto.attribute}

    @property
    def num_outputs(self) -> int:
        """How many outputs the model uses (trailing omitted ones not counted)."""
        names = list(self.proto.output)
        while names and not names[-1]:
            names.pop()
        return len(names)

    def input(self, index: int) -> ITensor | None:
        return self.inputs[index] if index < len(self.inputs) else None

    def has(self, name: str) -> bool:
        return name in self._attributes

    def attr(self, name: str, kind: str, default: Any = None) -> Any:
        """The attribute `name` of type `kind` (int, float, string, ints, floats, strings,
        tensor, graph), or `default` when absent; ModelError for a wrong type."""
        attribute = self._attributes.get(name)
        if attribute is None:
            return default
        expected = _ATTRIBUTE_KINDS[kind]
        if attribute.type != expected:
            raise self.error(
                ErrorCode.UNSUPPORTED_NODE_ATTR,
                f"attribute '{name}' must be of type {AttributeProto.AttributeType.Name(expected)},"
                f" got {AttributeProto.AttributeType.Name(attribute.type)}",
            )
        if kind == "int":
            return int(attribute.i)
        if kind == "float":
            return float(attribute.f)
        if kind == "string":
            return attribute.s.decode("utf-8", errors="replace")
        if kind == "ints":
            return [int(v) for v in attribute.ints]
        if kind == "floats":
            return [float(v) for v in attribute.floats]
        if kind == "strings":
            return [s.decode("utf-8", errors="replace") for s in attribute.strings]
        if kind == "tensor":
            return to_array(attribute.t, f"attribute '{name}'")
        return attribute.g

    def error(self, code: ErrorCode, desc: str) -> ModelError:
        """A ModelError about this node (raise it)."""
        return ModelError(code, desc, self.index, self.proto.name, self.op_type)

    def unsupported(self, desc: str) -> ModelError:
        return self.error(ErrorCode.UNSUPPORTED_NODE, desc)


class NeedsConstant(ModelError):
    """An input whose values must be known when the network is built; `sources` are the
    graph inputs they come from (a backend that knows them may make them constants)."""

    def __init__(self, node: OnnxNode, index: int, sources: set[str]) -> None:
        name = node.proto.input[index]
        super().__init__(
            ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
            f"input {index} ('{name}') must be known when the network is built (an "
            "initializer, a Constant, or computed from shapes): TensorRT has no layer that "
            "takes it as a run-time tensor",
            node.index,
            node.proto.name,
            node.op_type,
        )
        self.sources = sources


class ImportContext:
    """The network being written and the tensor of every ONNX value imported so far."""

    def __init__(self, network: INetworkDefinition, producers: dict[str, onnx.NodeProto]):
        self.network = network
        self.tensors: dict[str, ITensor] = {}
        self.graph_inputs: set[str] = set()
        self._producers = producers

    # -- reading what is known ----------------------------------------------------------------

    def meta(self, tensor: ITensor) -> TensorMeta:
        """What shape inference knows of `tensor`; ModelError when it failed."""
        if tensor._producer is None:
            return self.network._input_meta(tensor)
        self.network._infer_in_order(tensor)
        meta = self.network._meta(tensor)
        if meta is None:
            failed = self.network._failed_layer(tensor)
            detail = self.network._errors.get(failed, "") if failed is not None else ""
            raise ModelError(
                ErrorCode.INVALID_NODE, f"shape inference failed for '{tensor.name}': {detail}"
            )
        return meta

    def shape(self, tensor: ITensor) -> tuple[int, ...]:
        """The network-level shape (-1 for dims known only at run time)."""
        return self.meta(tensor).shape

    def rank(self, tensor: ITensor) -> int:
        return len(self.shape(tensor))

    def dtype(self, tensor: ITensor) -> DataType:
        return self.meta(tensor).dtype

    def value(self, tensor: ITensor | None) -> np.ndarray | None:
        """The values of `tensor` when known at build time (constants and what shapes give)."""
        if tensor is None or tensor._producer is None:
            return None
        value = self.meta(tensor).value
        if value is None:
            return None
        if value.dtype == torch.bfloat16 or not _numpy_has(value.dtype):
            value = value.float()
        return value.numpy()

    def require_value(self, node: OnnxNode, index: int) -> np.ndarray:
        """The build-time values of input `index`; NeedsConstant when they are not known."""
        value = self.value(node.input(index))
        if value is None:
            raise NeedsConstant(node, index, self.sources(node.proto.input[index]))
        return value

    def add_producer(self, proto: onnx.NodeProto) -> None:
        """Record the node making its outputs (function bodies' and subgraphs' nodes), so
        that `sources` traces values through them."""
        for name in proto.output:
            if name:
                self._producers.setdefault(name, proto)

    def sources(self, name: str) -> set[str]:
        """The graph inputs the ONNX value `name` depends on."""
        found, pending, seen = set(), [name], set()
        while pending:
            current = pending.pop()
            if current in seen:
                continue
            seen.add(current)
            if current in self.graph_inputs:
                found.add(current)
            elif current in self._producers:
                pending.extend(i for i in self._producers[current].input if i)
        return found

    # -- making tensors -----------------------------------------------------------------------

    def constant(self, array: Any, dtype: DataType | None = None) -> ITensor:
        """A constant layer holding `array` (as `dtype` when given)."""
        array = np.asarray(array)
        if dtype is None:
            dtype = _DATATYPE_OF_NUMPY.get(array.dtype)
        if dtype is None:  # ml_dtypes arrays (bfloat16, float8) as onnx.numpy_helper makes them
            try:
                elem_type = onnx.helper.np_dtype_to_tensor_dtype(array.dtype)
            except (KeyError, ValueError, TypeError):
                elem_type = 0
            dtype = datatype_of(elem_type, f"a constant of numpy type {array.dtype}")
        try:
            stored = np.require(array.astype(nptype(dtype)), requirements="C")  # keeps 0-d
        except TypeError:  # BF16 and FP8: stored as FLOAT, converted by a cast
            return self.cast(self.constant(array.astype(np.float32)), dtype)
        layer = self.network.add_constant(stored.shape, Weights(stored.reshape(-1)))
        return layer.get_output(0)

    def scalar_like(self, value: float, like: ITensor, rank: int | None = None) -> ITensor:
        """A constant of `like`'s type with `rank` (default: like's rank) size-1 dims."""
        rank = self.rank(like) if rank is None else rank
        return self.constant(np.full((1,) * rank, value), self.dtype(like))

    def cast(self, tensor: ITensor, dtype: DataType) -> ITensor:
        if self.dtype(tensor) == dtype:
            return tensor
        return self.network.add_cast(tensor, dtype).get_output(0)

    def identity(self, tensor: ITensor) -> ITensor:
        return self.network.add_identity(tensor).get_output(0)

    # -- pointwise ------------------------------------------------------------------------------

    def binary(self, a: ITensor, b: ITensor, op: ElementWiseOperation) -> ITensor:
        """An elementwise layer with ONNX's numpy broadcasting (ranks aligned first)."""
        a, b = self.align_ranks([a, b])
        return self.network.add_elementwise(a, b, op).get_output(0)

    def unary(self, tensor: ITensor, op: UnaryOperation) -> ITensor:
        return self.network.add_unary(tensor, op).get_output(0)

    def select(self, condition: ITensor, then: ITensor, otherwise: ITensor) -> ITensor:
        condition, then, otherwise = self.align_ranks([condition, then, otherwise])
        return self.network.add_select(condition, then, otherwise).get_output(0)

    def align_ranks(self, tensors: Sequence[ITensor], rank: int | None = None) -> list[ITensor]:
        """The tensors with leading size-1 dims added up to the largest rank (or `rank`)."""
        rank = max(self.rank(t) for t in tensors) if rank is None else rank
        return [self.prepend_ones(t, rank - self.rank(t)) for t in tensors]

    def prepend_ones(self, tensor: ITensor, count: int) -> ITensor:
        if count <= 0:
            return tensor
        shape = self.shape(tensor)
        layer = self.network.add_shuffle(tensor)
        layer.zero_is_placeholder = False  # the dims are all given; a 0 is an empty dim
        if UNKNOWN not in shape:
            layer.reshape_dims = _within_max_rank((1,) * count + tuple(shape))
        else:
            ones = self.constant(np.ones(count, dtype=np.int64))
            layer.set_input(1, self.concat([ones, self.shape_of(tensor)]))
        return layer.get_output(0)

    # -- shapes -------------------------------------------------------------------------------

    def reshape(self, tensor: ITensor, dims: ITensor | Sequence[int]) -> ITensor:
        """A shuffle to `dims` (a shape tensor, or values where 0 copies and -1 infers)."""
        layer = self.network.add_shuffle(tensor)
        if isinstance(dims, ITensor):
            layer.set_input(1, dims)
        else:
            layer.reshape_dims = _within_max_rank(tuple(int(d) for d in dims))
        return layer.get_output(0)

    def transpose(self, tensor: ITensor, perm: Sequence[int]) -> ITensor:
        layer = self.network.add_shuffle(tensor)
        layer.first_transpose = tuple(perm)
        return layer.get_output(0)

    def shape_of(self, tensor: ITensor) -> ITensor:
        """The shape as a 1-D INT64 tensor (a constant when static)."""
        shape = self.shape(tensor)
        if UNKNOWN not in shape:
            return self.constant(np.array(shape, dtype=np.int64))
        return self.network.add_shape(tensor).get_output(0)

    def dims(self, shape: ITensor, start: int, end: int | None = None) -> ITensor:
        """Elements [start, end) of a 1-D shape tensor."""
        length = self.shape(shape)[0]
        end = length if end is None else end
        return self.slice(shape, [start], [max(end - start, 0)], [1])

    def dims_product(self, shape: ITensor, start: int, end: int | None = None) -> ITensor:
        """The product of elements [start, end) of a 1-D shape tensor, as a 1-element tensor."""
        part = self.dims(shape, start, end)
        if self.shape(part)[0] == 0:
            return self.constant(np.ones(1, dtype=np.int64))
        return self.reduce(part, ReduceOperation.PROD, [0], keep_dims=True)

    def concat(self, tensors: Sequence[ITensor], axis: int = 0) -> ITensor:
        if len(tensors) == 1:
            return tensors[0]
        layer = self.network.add_concatenation(list(tensors))
        layer.axis = axis
        return layer.get_output(0)

    def slice(
        self,
        tensor: ITensor,
        start: Sequence[int],
        size: Sequence[int] | ITensor,
        stride: Sequence[int],
    ) -> ITensor:
        """A strict-bounds slice; `size` may be a shape tensor."""
        if isinstance(size, ITensor):
            layer = self.network.add_slice(tensor, start, [0] * len(start), stride)
            layer.set_input(2, size)
        else:
            layer = self.network.add_slice(tensor, start, size, stride)
        return layer.get_output(0)

    def reduce(
        self, tensor: ITensor, op: ReduceOperation, axes: Sequence[int], keep_dims: bool
    ) -> ITensor:
        mask = 0
        for axis in axes:
            mask |= 1 << axis
        return self.network.add_reduce(tensor, op, mask, keep_dims).get_output(0)

    def expand(self, tensor: ITensor, shape: ITensor) -> ITensor:
        """`tensor` broadcast to `shape` (a 1-D INT64 tensor of its rank or more), ONNX
        Expand's rule: each output dim is the larger of the two (one of them being 1)."""
        rank = self.shape(shape)[0]
        tensor = self.align_ranks([tensor], rank)[0]
        own = self.shape_of(tensor)
        size = self.binary(own, shape, ElementWiseOperation.MAX)
        one = self.constant(np.ones(rank, dtype=np.int64))
        zero = self.constant(np.zeros(rank, dtype=np.int64))
        # stride 1 along real dims, 0 along the size-1 dims being broadcast: max(min(d-1, 1), 0)
        below = self.binary(own, one, ElementWiseOperation.SUB)
        stride = self.binary(
            self.binary(below, one, ElementWiseOperation.MIN), zero, ElementWiseOperation.MAX
        )
        layer = self.network.add_slice(tensor, [0] * rank, [0] * rank, [1] * rank)
        layer.set_input(2, size)
        layer.set_input(3, stride)
        return layer.get_output(0)

    def squeeze(self, tensor: ITensor, axes: Sequence[int]) -> ITensor:
        """Remove the (size-1) dims at `axes` (normalized, non-negative)."""
        rank = self.rank(tensor)
        kept = [axis for axis in range(rank) if axis not in axes]
        shape = self.shape(tensor)
        if UNKNOWN not in shape:
            return self.reshape(tensor, [shape[axis] for axis in kept])
        indices = self.constant(np.array(kept, dtype=np.int64))
        return self.reshape(tensor, self.gather(self.shape_of(tensor), indices, 0))

    def unsqueeze(self, tensor: ITensor, axes: Sequence[int]) -> ITensor:
        """Insert size-1 dims at `axes` (normalized for the output rank)."""
        shape = list(self.shape(tensor))
        out_rank = len(shape) + len(axes)
        if UNKNOWN not in shape:
            dims = iter(shape)
            return self.reshape(tensor, [1 if a in axes else next(dims) for a in range(out_rank)])
        pieces, taken = [], 0
        whole = self.shape_of(tensor)
        one = self.constant(np.ones(1, dtype=np.int64))
        for axis in range(out_rank):
            if axis in axes:
                pieces.append(one)
            else:
                pieces.append(self.dims(whole, taken, taken + 1))
                taken += 1
        return self.reshape(tensor, self.concat(pieces))

    def positions(self, length: int, axis: int, rank: int, dtype: DataType) -> ITensor:
        """0, 1, ..., length - 1 along `axis` of a rank-`rank` tensor, size 1 elsewhere: a
        LINSPACE fill, folded by the builder where small and computed at run time otherwise,
        so that no array sized by the model is made while importing."""
        shape = [length if a == axis else 1 for a in range(rank)]
        layer = self.network.add_fill(shape, FillOperation.LINSPACE, dtype)
        layer.alpha, layer.beta = 0, 1
        return layer.get_output(0)

    def diagonal_offsets(self, rows: int, columns: int) -> ITensor:
        """column - row of every element of a rows x columns matrix (INT64)."""
        row = self.positions(rows, 0, 2, DataType.INT64)
        column = self.positions(columns, 1, 2, DataType.INT64)
        return self.binary(column, row, ElementWiseOperation.SUB)

    def gather(self, tensor: ITensor, indices: ITensor, axis: int) -> ITensor:
        return self.network.add_gather(tensor, indices, axis).get_output(0)


_DATATYPE_OF_NUMPY = {
    np.dtype(np.float32): DataType.FLOAT,
    np.dtype(np.float16): DataType.HALF,
    np.dtype(np.float64): DataType.DOUBLE,
    np.dtype(np.int8): DataType.INT8,
    np.dtype(np.int16): DataType.INT16,
    np.dtype(np.int32): DataType.INT32,
    np.dtype(np.int64): DataType.INT64,
    np.dtype(np.uint8): DataType.UINT8,
    np.dtype(np.uint16): DataType.UINT16,
    np.dtype(np.uint32): DataType.UINT32,
    np.dtype(np.uint64): DataType.UINT64,
    np.dtype(np.bool_): DataType.BOOL,
}


def _within_max_rank(dims: tuple[int, ...]) -> tuple[int, ...]:
    """`dims`, or ModelError when they are more than a tensor may have."""
    if len(dims) > MAX_RANK:
        raise ModelError(
            ErrorCode.INVALID_NODE,
            f"the output would have {len(dims)} dimensions; at most {MAX_RANK} are supported "
            "(MAX_RANK)",
        )
    return dims


def _numpy_has(dtype: torch.dtype) -> bool:
    try:
        torch.empty(0, dtype=dtype).numpy()
    except TypeError:
        return False
    return True
