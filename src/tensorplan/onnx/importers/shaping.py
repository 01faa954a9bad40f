"""ONNX ops that move data or compute shapes: constants, reshapes, transposes, slices,
gathers, concatenation, expansion, and the shape queries.

Shapes are built as shape tensors (IShapeLayer and arithmetic on it), so dynamic dims
work; the builder folds them to constants wherever the shapes are static.
"""

from __future__ import annotations

import math

import numpy as np

from ...network.tensor import ITensor
from ...ops.base import MAX_HOST_VALUE_BYTES, UNKNOWN
from ...plan.format import MAX_TENSOR_BYTES
from ...types import (
    DataType,
    ElementWiseOperation,
    ErrorCode,
    FillOperation,
    GatherMode,
    ReduceOperation,
    SampleMode,
)
from ..context import ImportContext, OnnxNode
from ..model import datatype_of

E = ElementWiseOperation


def normalize_axis(node: OnnxNode, axis: int, rank: int, what: str = "axis") -> int:
    """An ONNX axis in [-rank, rank) as an index; ModelError naming the node otherwise."""
    if not -rank <= axis < rank:
        raise node.error(ErrorCode.INVALID_NODE, f"{what} {axis} is out of range for rank {rank}")
    return axis % rank


def axes_attr_or_input(
    ctx: ImportContext, node: OnnxNode, since: int, index: int = 1
) -> list[int] | None:
    """Axes given as the 'axes' attribute before opset `since`, as input `index` from it."""
    if node.opset < since:
        return node.attr("axes", "ints", None)
    if node.input(index) is None:
        return None
    return [int(a) for a in ctx.require_value(node, index).reshape(-1)]


# -- constants ----------------------------------------------------------------------------------


def constant(ctx: ImportContext, node: OnnxNode) -> ITensor:
    for name, kind in (("value_float", "float"), ("value_int", "int")):
        if node.has(name):
            dtype = np.float32 if kind == "float" else np.int64
            return ctx.constant(np.array(node.attr(name, kind), dtype=dtype))
    for name, kind in (("value_floats", "floats"), ("value_ints", "ints")):
        if node.has(name):
            dtype = np.float32 if kind == "floats" else np.int64
            return ctx.constant(np.array(node.attr(name, kind), dtype=dtype))
    if node.has("value"):
        return ctx.constant(node.attr("value", "tensor"))
    if node.has("sparse_value"):
        raise node.unsupported("sparse constants are not supported")
    raise node.error(
        ErrorCode.UNSUPPORTED_NODE_ATTR,
        "a Constant needs one of value, value_float(s) or value_int(s) (strings are not supported)",
    )


def constant_of_shape(ctx: ImportContext, node: OnnxNode) -> ITensor:
    fill = node.attr("value", "tensor", np.zeros(1, dtype=np.float32))
    shape = ctx.cast(node.inputs[0], DataType.INT64)
    rank = ctx.shape(shape)[0] if ctx.rank(shape) else 0
    if rank == UNKNOWN:
        raise node.error(
            ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "the shape input's length must be known"
        )
    seed = ctx.constant(np.asarray(fill).reshape((1,) * rank))
    if rank == 0:
        return ctx.identity(seed)
    # a stride-0 slice repeats the seed to exactly `shape` (zeros included, unlike Expand)
    layer = ctx.network.add_slice(seed, (0,) * rank, (1,) * rank, (0,) * rank)
    layer.set_input(2, shape)
    return layer.get_output(0)


# -- reshapes -----------------------------------------------------------------------------------


def reshape(ctx: ImportContext, node: OnnxNode) -> ITensor:
    layer = ctx.network.add_shuffle(node.inputs[0])
    layer.set_input(1, ctx.cast(node.inputs[1], DataType.INT64))
    if node.attr("allowzero", "int", 0):
        layer.zero_is_placeholder = False
    return layer.get_output(0)


def flatten(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x = node.inputs[0]
    rank = ctx.rank(x)
    axis = node.attr("axis", "int", 1)
    axis = axis if axis == rank else normalize_axis(node, axis, rank)
    shape = ctx.shape_of(x)
    dims = ctx.concat([ctx.dims_product(shape, 0, axis), ctx.dims_product(shape, axis)])
    return ctx.reshape(x, dims)


def transpose(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x = node.inputs[0]
    rank = ctx.rank(x)
    perm = node.attr("perm", "ints", list(reversed(range(rank))))
    if sorted(perm) != list(range(rank)):
        raise node.error(ErrorCode.INVALID_NODE, f"perm {perm} is not a permutation of rank {rank}")
    return ctx.transpose(x, perm)


def squeeze(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x = node.inputs[0]
    shape = ctx.shape(x)
    axes = axes_attr_or_input(ctx, node, 13)
    if axes is None:
        if UNKNOWN in shape:
            raise node.error(
                ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                "Squeeze without axes needs every dimension known at build time",
            )
        axes = [axis for axis, d in enumerate(shape) if d == 1]
    axes = sorted({normalize_axis(node, a, len(shape), "axes value") for a in axes})
    for axis in axes:
        if shape[axis] not in (1, UNKNOWN):
            raise node.error(
                ErrorCode.INVALID_NODE,
                f"cannot squeeze axis {axis} of size {shape[axis]} (shape {list(shape)})",
            )
    return ctx.squeeze(x, axes)


def unsqueeze(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x = node.inputs[0]
    axes = axes_attr_or_input(ctx, node, 13)
    if axes is None:
        raise node.error(ErrorCode.INVALID_NODE, "Unsqueeze needs axes")
    out_rank = ctx.rank(x) + len(axes)
    normalized = {normalize_axis(node, a, out_rank, "axes value") for a in axes}
    if len(normalized) != len(axes):
        raise node.error(ErrorCode.INVALID_NODE, f"axes {axes} repeat an axis")
    return ctx.unsqueeze(x, sorted(normalized))


def depth_to_space(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x = node.inputs[0]
    n, c, h, w = _static_nchw(ctx, node, x)
    b = node.attr("blocksize", "int", 0)
    if b <= 0 or c % (b * b):
        raise node.error(ErrorCode.INVALID_NODE, f"blocksize {b} does not divide {c} channels")
    if node.attr("mode", "string", "DCR") == "CRD":
        shuffled = ctx.transpose(ctx.reshape(x, (n, c // (b * b), b, b, h, w)), (0, 1, 4, 2, 5, 3))
    else:
        shuffled = ctx.transpose(ctx.reshape(x, (n, b, b, c // (b * b), h, w)), (0, 3, 4, 1, 5, 2))
    return ctx.reshape(shuffled, (n, c // (b * b), h * b, w * b))


def space_to_depth(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x = node.inputs[0]
    n, c, h, w = _static_nchw(ctx, node, x)
    b = node.attr("blocksize", "int", 0)
    if b <= 0 or h % b or w % b:
        raise node.error(ErrorCode.INVALID_NODE, f"blocksize {b} does not divide {h}x{w}")
    blocks = ctx.reshape(x, (n, c, h // b, b, w // b, b))
    # DCR (the default): block offsets lead the channels; CRD (opset 25): channels lead
    crd = node.attr("mode", "string", "DCR") == "CRD"
    order = (0, 1, 3, 5, 2, 4) if crd else (0, 3, 5, 1, 2, 4)
    return ctx.reshape(ctx.transpose(blocks, order), (n, c * b * b, h // b, w // b))


def _static_nchw(ctx: ImportContext, node: OnnxNode, x: ITensor) -> tuple[int, ...]:
    shape = ctx.shape(x)
    if len(shape) != 4 or UNKNOWN in shape:
        raise node.error(
            ErrorCode.UNSUPPORTED_NODE_SHAPE,
            f"needs a 4-D input with dimensions known at build time, got {list(shape)}",
        )
    return shape


# -- joining and splitting ----------------------------------------------------------------------


def concat(ctx: ImportContext, node: OnnxNode) -> ITensor:
    inputs = [t for t in node.inputs if t is not None]
    rank = ctx.rank(inputs[0])
    axis = normalize_axis(node, node.attr("axis", "int", 0), rank)
    if len(inputs) == 1:
        return ctx.identity(inputs[0])
    return ctx.concat(inputs, axis)


def split(ctx: ImportContext, node: OnnxNode) -> list[ITensor]:
    x = node.inputs[0]
    shape = ctx.shape(x)
    axis = normalize_axis(node, node.attr("axis", "int", 0), len(shape))
    count = len(node.proto.output)
    if node.opset < 13:
        sizes = node.attr("split", "ints", None)
    else:
        sizes = None
        if node.input(1) is not None:
            sizes = [int(v) for v in ctx.require_value(node, 1).reshape(-1)]
    dim = shape[axis]
    if sizes is None:
        if dim == UNKNOWN:
            raise node.error(
                ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                f"splitting axis {axis} needs its size known at build time",
            )
        parts = node.attr("num_outputs", "int", count)
        if parts != count:
            raise node.error(
                ErrorCode.INVALID_NODE,
                f"num_outputs is {parts} but the node has {count} outputs",
            )
        chunk = math.ceil(dim / parts)
        sizes = [min(chunk, dim - chunk * i) for i in range(parts)]
    elif len(sizes) != count:
        raise node.error(
            ErrorCode.INVALID_NODE,
            f"split gives {len(sizes)} sizes but the node has {count} outputs",
        )
    if dim != UNKNOWN and sum(sizes) != dim:
        raise node.error(
            ErrorCode.INVALID_NODE, f"split sizes {sizes} do not add up to dimension {dim}"
        )
    outputs, start = [], 0
    for size in sizes:
        layer = ctx.network.add_slice(x, [start], [size], [1])
        layer.axes = (axis,)
        outputs.append(layer.get_output(0))
        start += size
    return outputs


# -- slicing and gathering ----------------------------------------------------------------------


def slice_(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """ONNX Slice: starts and ends clamped to each dim (Slice-1 attributes, Slice-10 inputs)."""
    x = node.inputs[0]
    shape = ctx.shape(x)
    rank = len(shape)
    if node.opset < 10:
        starts = node.attr("starts", "ints", [])
        ends = node.attr("ends", "ints", [])
        axes = node.attr("axes", "ints", list(range(len(starts))))
        steps = [1] * len(starts)
    else:
        starts_v, ends_v = ctx.value(node.input(1)), ctx.value(node.input(2))
        if starts_v is None or ends_v is None or UNKNOWN in shape:
            return _dynamic_slice(ctx, node)
        starts = [int(v) for v in starts_v.reshape(-1)]
        ends = [int(v) for v in ends_v.reshape(-1)]
        axes = list(range(len(starts)))
        if node.input(3) is not None:
            axes = [int(v) for v in ctx.require_value(node, 3).reshape(-1)]
        steps = [1] * len(starts)
        if node.input(4) is not None:
            steps = [int(v) for v in ctx.require_value(node, 4).reshape(-1)]
    if not len(starts) == len(ends) == len(axes) == len(steps):
        raise node.error(
            ErrorCode.INVALID_NODE,
            f"starts {starts}, ends {ends}, axes {axes} and steps {steps} differ in length",
        )
    begin, size, stride = [0] * rank, list(shape), [1] * rank
    for start, end, axis, step in zip(starts, ends, axes, steps, strict=True):
        axis = normalize_axis(node, axis, rank, "axes value")
        dim = shape[axis]
        if step == 0:
            raise node.error(ErrorCode.INVALID_NODE, "a slice step must not be 0")
        if dim == UNKNOWN:
            raise node.error(
                ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                f"slicing axis {axis} needs its size known at build time",
            )
        first, count = _slice_range(start, end, step, dim)
        begin[axis], size[axis], stride[axis] = first, count, step
    return ctx.network.add_slice(x, begin, size, stride).get_output(0)


def _dynamic_slice(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """ONNX Slice-10+ with run-time starts/ends or dims: clamping done on INT64 shape tensors."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    count = ctx.shape(node.inputs[1])[0]
    if count == UNKNOWN:
        raise node.error(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "starts needs a known length")
    axes = list(range(count))
    if node.input(3) is not None:
        axes = [int(v) for v in ctx.require_value(node, 3).reshape(-1)]
    steps = [1] * count
    if node.input(4) is not None:
        steps = [int(v) for v in ctx.require_value(node, 4).reshape(-1)]
    if not count == len(axes) == len(steps) == ctx.shape(node.inputs[2])[0]:
        raise node.error(ErrorCode.INVALID_NODE, "starts, ends, axes and steps differ in length")
    starts = ctx.cast(node.inputs[1], DataType.INT64)
    ends = ctx.cast(node.inputs[2], DataType.INT64)
    dims = ctx.shape_of(x)

    def const(v: int) -> ITensor:
        return ctx.constant(np.array([v], dtype=np.int64))

    def clamp(v: ITensor, low: ITensor, high: ITensor) -> ITensor:
        return ctx.binary(ctx.binary(v, low, E.MAX), high, E.MIN)

    begin = [const(0)] * rank
    size = [ctx.dims(dims, axis, axis + 1) for axis in range(rank)]
    stride = [1] * rank
    for k, (axis, step) in enumerate(zip(axes, steps, strict=True)):
        axis = normalize_axis(node, axis, rank, "axes value")
        if step == 0:
            raise node.error(ErrorCode.INVALID_NODE, "a slice step must not be 0")
        dim = size[axis]
        bounds = []
        for v in (ctx.dims(starts, k, k + 1), ctx.dims(ends, k, k + 1)):
            wrapped = ctx.select(ctx.binary(v, const(0), E.LESS), ctx.binary(v, dim, E.SUM), v)
            if step > 0:
                bounds.append(clamp(wrapped, const(0), dim))
            else:
                bounds.append(clamp(wrapped, const(-1), ctx.binary(dim, const(1), E.SUB)))
        first, last = bounds
        span = ctx.binary(last, first, E.SUB) if step > 0 else ctx.binary(first, last, E.SUB)
        span = ctx.binary(span, const(abs(step) - 1), E.SUM)
        n = ctx.binary(ctx.binary(span, const(abs(step)), E.FLOOR_DIV), const(0), E.MAX)
        begin[axis] = ctx.select(ctx.binary(n, const(0), E.GREATER), first, const(0))
        size[axis], stride[axis] = n, step
    layer = ctx.network.add_slice(x, [0] * rank, [0] * rank, stride)
    layer.set_input(1, ctx.concat(begin))
    layer.set_input(2, ctx.concat(size))
    return layer.get_output(0)


def _slice_range(start: int, end: int, step: int, dim: int) -> tuple[int, int]:
    """The first index and element count of an ONNX slice of a dim (numpy's rules)."""
    start = start + dim if start < 0 else start
    end = end + dim if end < 0 else end
    if step > 0:
        start, end = min(max(start, 0), dim), min(max(end, 0), dim)
        count = max(0, -(-(end - start) // step))
    else:
        start, end = min(max(start, -1), dim - 1), min(max(end, -1), dim - 1)
        count = max(0, -(-(start - end) // -step))
    return (start if count else 0), count


def gather(ctx: ImportContext, node: OnnxNode) -> ITensor:
    data, indices = node.inputs
    axis = normalize_axis(node, node.attr("axis", "int", 0), ctx.rank(data))
    return ctx.gather(data, indices, axis)


def gather_elements(ctx: ImportContext, node: OnnxNode) -> ITensor:
    data, indices = node.inputs
    layer = ctx.network.add_gather_v2(data, indices, GatherMode.ELEMENT)
    layer.axis = normalize_axis(node, node.attr("axis", "int", 0), ctx.rank(data))
    return layer.get_output(0)


def gather_nd(ctx: ImportContext, node: OnnxNode) -> ITensor:
    data, indices = node.inputs
    layer = ctx.network.add_gather_v2(data, indices, GatherMode.ND)
    layer.num_elementwise_dims = node.attr("batch_dims", "int", 0)
    return layer.get_output(0)


# -- shapes -------------------------------------------------------------------------------------


def shape(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x = node.inputs[0]
    rank = ctx.rank(x)
    whole = ctx.network.add_shape(x).get_output(0)
    start = node.attr("start", "int", 0)
    end = node.attr("end", "int", rank)
    start = min(max(start + rank if start < 0 else start, 0), rank)
    end = min(max(end + rank if end < 0 else end, 0), rank)
    if (start, end) == (0, rank):
        return whole
    return ctx.dims(whole, start, max(start, end))


def size(ctx: ImportContext, node: OnnxNode) -> ITensor:
    whole = ctx.network.add_shape(node.inputs[0]).get_output(0)
    if ctx.rank(node.inputs[0]) == 0:
        return ctx.constant(np.array(1, dtype=np.int64))
    return ctx.reduce(whole, ReduceOperation.PROD, [0], keep_dims=False)


def expand(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x, target = node.inputs
    target = ctx.cast(target, DataType.INT64)
    rank = max(ctx.rank(x), ctx.shape(target)[0])
    target = ctx.align_ranks([target], 1)[0]
    if ctx.shape(target)[0] < rank:  # the shape is shorter than the input: pad it with 1s
        ones = ctx.constant(np.ones(rank - ctx.shape(target)[0], dtype=np.int64))
        target = ctx.concat([ones, target])
    return ctx.expand(x, target)


def tile(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x, repeats = node.inputs
    rank = ctx.rank(x)
    size = ctx.binary(ctx.shape_of(x), ctx.cast(repeats, DataType.INT64), E.PROD)
    layer = ctx.network.add_slice(x, [0] * rank, [0] * rank, [1] * rank)
    layer.set_input(2, size)
    layer.mode = SampleMode.WRAP
    return layer.get_output(0)


def range_(ctx: ImportContext, node: OnnxNode) -> ITensor:
    integer = ctx.dtype(node.inputs[0]) in (DataType.INT32, DataType.INT64)
    if integer and any(ctx.value(node.input(i)) is None for i in range(3)):
        return _dynamic_range(ctx, node)
    start, limit, delta = (ctx.require_value(node, i).reshape(()) for i in range(3))
    if delta == 0:
        raise node.error(ErrorCode.INVALID_VALUE, "Range's delta must not be 0")
    with np.errstate(all="ignore"):  # overflow and inf are refused below
        steps = (limit - start) / delta
    count = max(math.ceil(steps), 0) if np.isfinite(steps) else None
    if count is None or count * start.dtype.itemsize > MAX_TENSOR_BYTES:
        raise node.error(
            ErrorCode.INVALID_VALUE,
            f"Range from {start} to {limit} by {delta} has {steps} elements, over the "
            f"{MAX_TENSOR_BYTES} bytes a tensor may have (MAX_TENSOR_BYTES)",
        )
    dtype = ctx.dtype(node.inputs[0])
    if count * start.dtype.itemsize > MAX_HOST_VALUE_BYTES:  # too big to fold: a run-time fill
        layer = ctx.network.add_fill([count], FillOperation.LINSPACE, dtype)
        layer.alpha, layer.beta = start.item(), delta.item()
        return layer.get_output(0)
    values = (
        start + np.arange(count, dtype=np.float64 if start.dtype.kind == "f" else np.int64) * delta
    )
    return ctx.constant(values.astype(start.dtype), dtype)


def _dynamic_range(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """Integer Range from run-time scalars: a LINSPACE fill of max(ceil((limit - start) / delta), 0)."""
    start, limit, delta = (ctx.reshape(t, [1]) for t in node.inputs[:3])
    dtype = ctx.dtype(node.inputs[0])  # integer: ceil(a / b) as -floor(-a / b)
    negated = ctx.binary(ctx.binary(start, limit, E.SUB), delta, E.FLOOR_DIV)
    count = ctx.binary(ctx.constant(np.zeros(1), dtype), negated, E.SUB)
    count = ctx.binary(ctx.cast(count, DataType.INT64), ctx.constant(np.zeros(1, np.int64)), E.MAX)
    layer = ctx.network.add_fill([0], FillOperation.LINSPACE, dtype)
    layer.set_input(0, count)
    layer.set_input(1, ctx.reshape(start, []))
    layer.set_input(2, delta)
    return layer.get_output(0)


def eye_like(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x = node.inputs[0]
    shape = ctx.shape(x)
    if len(shape) != 2 or UNKNOWN in shape:
        raise node.error(
            ErrorCode.UNSUPPORTED_NODE_SHAPE,
            f"needs a 2-D input of dimensions known at build time, got {list(shape)}",
        )
    dtype = ctx.dtype(x)
    if node.has("dtype"):
        dtype = datatype_of(node.attr("dtype", "int"), "the 'dtype' attribute")
    offsets = ctx.diagonal_offsets(*shape)
    k = ctx.constant(np.array([[node.attr("k", "int", 0)]], dtype=np.int64))
    return ctx.cast(ctx.binary(offsets, k, E.EQUAL), dtype)


def trilu(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """The upper or lower triangle: a build-time mask and a select."""
    x = node.inputs[0]
    shape = ctx.shape(x)
    if UNKNOWN in shape[-2:]:
        raise node.error(
            ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
            "the last two dimensions must be known at build time",
        )
    k = int(ctx.require_value(node, 1).reshape(())) if node.input(1) is not None else 0
    rows, columns = shape[-2:]
    if rows * columns == 0:
        return ctx.identity(x)  # an empty matrix is its own triangle
    k = min(max(k, -rows), columns)  # the same mask, and k - 1 and k + 1 fit in int64
    offsets = ctx.diagonal_offsets(rows, columns)  # kept: column - row >= k (upper), <= k (lower)
    if node.attr("upper", "int", 1):
        mask = ctx.binary(offsets, ctx.constant(np.array([[k - 1]], np.int64)), E.GREATER)
    else:
        mask = ctx.binary(offsets, ctx.constant(np.array([[k + 1]], np.int64)), E.LESS)
    zero = ctx.scalar_like(0, x)
    return ctx.select(mask, x, zero)


IMPORTERS = {
    "Constant": constant,
    "ConstantOfShape": constant_of_shape,
    "Reshape": reshape,
    "Flatten": flatten,
    "Transpose": transpose,
    "Squeeze": squeeze,
    "Unsqueeze": unsqueeze,
    "DepthToSpace": depth_to_space,
    "SpaceToDepth": space_to_depth,
    "Concat": concat,
    "Split": split,
    "Slice": slice_,
    "Gather": gather,
    "GatherElements": gather_elements,
    "GatherND": gather_nd,
    "Shape": shape,
    "Size": size,
    "Expand": expand,
    "Tile": tile,
    "Range": range_,
    "EyeLike": eye_like,
    "Trilu": trilu,
}
