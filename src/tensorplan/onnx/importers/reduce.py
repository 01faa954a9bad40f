"""ONNX reductions, arg-max/min, top-k and the softmax family."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ...network.tensor import ITensor
from ...types import (
    DataType,
    ElementWiseOperation,
    ErrorCode,
    ReduceOperation,
    TopKOperation,
    UnaryOperation,
)
from ..context import ImportContext, OnnxNode
from .pointwise import in_float
from .shaping import axes_attr_or_input, normalize_axis

E = ElementWiseOperation
R = ReduceOperation
U = UnaryOperation

_REDUCE_TYPES = frozenset(
    {DataType.FLOAT, DataType.HALF, DataType.BF16, DataType.INT32, DataType.INT64}
)


def reduce_type(ctx: ImportContext, x: ITensor) -> DataType:
    """A type the reduce and top-k layers take for x: its own, FLOAT for DOUBLE, INT32 for
    the small integers."""
    dtype = ctx.dtype(x)
    if dtype in _REDUCE_TYPES:
        return dtype
    return DataType.FLOAT if dtype == DataType.DOUBLE else DataType.INT32


def in_reduce_type(
    ctx: ImportContext, x: ITensor, compute: Callable[[ITensor], ITensor]
) -> ITensor:
    """`compute(x)` in `reduce_type`, cast back to x's type. BOOL comes back as "> 0", so
    that an empty ReduceMax (the integer minimum) is False and an empty ReduceMin True."""
    dtype = ctx.dtype(x)
    result = compute(ctx.cast(x, reduce_type(ctx, x)))
    if dtype == DataType.BOOL:
        return ctx.binary(result, ctx.scalar_like(0, result), E.GREATER)
    return ctx.cast(result, dtype)


# -- reductions ---------------------------------------------------------------------------------


def _reduction(
    op: ReduceOperation,
    before: UnaryOperation | str | None = None,
    after: UnaryOperation | None = None,
) -> Callable[[ImportContext, OnnxNode], ITensor]:
    """A reduce layer, with an optional pointwise step before ('square', or a unary op) and
    a unary op after (ReduceL2 = sqrt of the sum of squares, ReduceLogSum = log of sum)."""

    def importer(ctx: ImportContext, node: OnnxNode) -> ITensor:
        x = node.inputs[0]
        rank = ctx.rank(x)
        since = 13 if node.op_type == "ReduceSum" else 18
        axes = axes_attr_or_input(ctx, node, since)
        keep = bool(node.attr("keepdims", "int", 1))
        if not axes:
            if node.attr("noop_with_empty_axes", "int", 0):
                return ctx.identity(x)
            axes = list(range(rank))
        axes = sorted({normalize_axis(node, a, rank, "axes value") for a in axes})
        if after is not None:
            return in_float(ctx, x, lambda t: _reduce(ctx, t, op, axes, keep, before, after))
        return in_reduce_type(ctx, x, lambda t: _reduce(ctx, t, op, axes, keep, before, after))

    return importer


def _reduce(
    ctx: ImportContext,
    x: ITensor,
    op: ReduceOperation,
    axes: list[int],
    keep: bool,
    before: UnaryOperation | str | None,
    after: UnaryOperation | None,
) -> ITensor:
    if before == "square":
        x = ctx.binary(x, x, E.PROD)
    elif before is not None:
        x = ctx.unary(x, before)
    result = ctx.reduce(x, op, axes, keep) if axes else ctx.identity(x)
    return ctx.unary(result, after) if after is not None else result


def reduce_log_sum_exp(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """log(sum(exp(x - max))) + max, which does not overflow where exp(x) would."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    axes = axes_attr_or_input(ctx, node, 18)
    keep = bool(node.attr("keepdims", "int", 1))
    if not axes:
        if node.attr("noop_with_empty_axes", "int", 0):
            return ctx.identity(x)
        axes = list(range(rank))
    axes = sorted({normalize_axis(node, a, rank, "axes value") for a in axes})

    def compute(t: ITensor) -> ITensor:
        if not axes:
            return ctx.identity(t)
        peak = ctx.reduce(t, R.MAX, axes, True)
        # an all -inf slice would give nan (-inf - -inf): shift by 0 there instead
        finite = ctx.unary(ctx.unary(peak, U.ISINF), U.NOT)
        shift = ctx.select(finite, peak, ctx.scalar_like(0, peak))
        total = ctx.reduce(ctx.unary(ctx.binary(t, shift, E.SUB), U.EXP), R.SUM, axes, True)
        result = ctx.binary(ctx.unary(total, U.LOG), shift, E.SUM)
        return result if keep else ctx.squeeze(result, axes)

    return in_float(ctx, x, compute)


# -- arg-max/min and top-k ----------------------------------------------------------------------


def _arg(op: TopKOperation) -> Callable[[ImportContext, OnnxNode], ITensor]:
    def importer(ctx: ImportContext, node: OnnxNode) -> ITensor:
        x = node.inputs[0]
        shape = ctx.shape(x)
        axis = normalize_axis(node, node.attr("axis", "int", 0), len(shape))
        keep = node.attr("keepdims", "int", 1)
        last = node.attr("select_last_index", "int", 0)
        if last:
            if shape[axis] < 0:
                raise node.error(
                    ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
                    "select_last_index needs the axis size known at build time",
                )
            layer = ctx.network.add_slice(x, [shape[axis] - 1], [shape[axis]], [-1])
            layer.axes = (axis,)
            x = layer.get_output(0)
        indices = _topk(ctx, ctx.cast(x, reduce_type(ctx, x)), op, 1, axis)[1]
        indices = ctx.cast(indices, DataType.INT64)
        if last:  # index in the reversed axis -> index in the original one
            size = ctx.constant(np.full((1,) * len(shape), shape[axis] - 1, dtype=np.int64))
            indices = ctx.binary(size, indices, E.SUB)
        return indices if keep else ctx.squeeze(indices, [axis])

    return importer


def _topk(
    ctx: ImportContext, x: ITensor, op: TopKOperation, k: int | ITensor, axis: int
) -> list[ITensor]:
    layer = ctx.network.add_topk(x, op, k if isinstance(k, int) else 1, 1 << axis)
    if isinstance(k, ITensor):
        layer.set_input(1, k)
    return [layer.get_output(0), layer.get_output(1)]


def topk(ctx: ImportContext, node: OnnxNode) -> list[ITensor]:
    x = node.inputs[0]
    axis = normalize_axis(node, node.attr("axis", "int", -1), ctx.rank(x))
    if node.opset < 10:
        k: int | ITensor = node.attr("k", "int", 1)
    else:
        known = ctx.value(node.inputs[1])
        if known is not None:
            k = int(known.reshape(-1)[0])
        else:
            k = ctx.reshape(ctx.cast(node.inputs[1], DataType.INT64), ())
    largest = node.attr("largest", "int", 1)
    op = TopKOperation.MAX if largest else TopKOperation.MIN
    values, indices = _topk(ctx, ctx.cast(x, reduce_type(ctx, x)), op, k, axis)
    return [ctx.cast(values, ctx.dtype(x)), ctx.cast(indices, DataType.INT64)]


# -- softmax family -----------------------------------------------------------------------------


def _softmax_axis(ctx: ImportContext, node: OnnxNode) -> tuple[ITensor, int, ITensor | None]:
    """The tensor to normalize, its axis, and the shape to restore: before opset 13 the
    input is coerced to 2-D at `axis` (default 1); from 13 one axis (default -1)."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    if node.opset >= 13:
        return x, normalize_axis(node, node.attr("axis", "int", -1), rank), None
    axis = node.attr("axis", "int", 1)
    axis = axis if axis == rank else normalize_axis(node, axis, rank)
    shape = ctx.shape_of(x)
    flat = ctx.concat([ctx.dims_product(shape, 0, axis), ctx.dims_product(shape, axis)])
    return ctx.reshape(x, flat), 1, shape


def softmax(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x, axis, restore = _softmax_axis(ctx, node)

    def compute(t: ITensor) -> ITensor:
        layer = ctx.network.add_softmax(t)
        layer.axes = 1 << axis
        return layer.get_output(0)

    y = in_float(ctx, x, compute)
    return y if restore is None else ctx.reshape(y, restore)


def log_softmax(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """x - max - log(sum(exp(x - max))), exact where log(softmax(x)) would underflow."""
    x, axis, restore = _softmax_axis(ctx, node)

    def compute(t: ITensor) -> ITensor:
        shifted = ctx.binary(t, ctx.reduce(t, R.MAX, [axis], True), E.SUB)
        total = ctx.reduce(ctx.unary(shifted, U.EXP), R.SUM, [axis], True)
        return ctx.binary(shifted, ctx.unary(total, U.LOG), E.SUB)

    y = in_float(ctx, x, compute)
    return y if restore is None else ctx.reshape(y, restore)


def hardmax(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """1 at the first maximum along the axis, 0 elsewhere."""
    x, axis, restore = _softmax_axis(ctx, node)
    shape = ctx.shape(x)
    if shape[axis] < 0:
        raise node.error(
            ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "the axis size must be known at build time"
        )
    index = _topk(ctx, ctx.cast(x, reduce_type(ctx, x)), TopKOperation.MAX, 1, axis)[1]
    positions = ctx.positions(shape[axis], axis, len(shape), ctx.dtype(index))
    hit = ctx.binary(positions, index, E.EQUAL)
    y = ctx.cast(hit, ctx.dtype(x))
    return y if restore is None else ctx.reshape(y, restore)


IMPORTERS = {
    "ReduceSum": _reduction(R.SUM),
    "ReduceMean": _reduction(R.AVG),
    "ReduceMax": _reduction(R.MAX),
    "ReduceMin": _reduction(R.MIN),
    "ReduceProd": _reduction(R.PROD),
    "ReduceL1": _reduction(R.SUM, U.ABS),
    "ReduceL2": _reduction(R.SUM, "square", U.SQRT),
    "ReduceSumSquare": _reduction(R.SUM, "square"),
    "ReduceLogSum": _reduction(R.SUM, None, U.LOG),
    "ReduceLogSumExp": reduce_log_sum_exp,
    "ArgMax": _arg(TopKOperation.MAX),
    "ArgMin": _arg(TopKOperation.MIN),
    "TopK": topk,
    "Softmax": softmax,
    "LogSoftmax": log_softmax,
    "Hardmax": hardmax,
}
