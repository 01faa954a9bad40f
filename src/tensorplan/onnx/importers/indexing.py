"""ONNX ops that write or reorder elements by index or position: scatters, one-hot,
reverse sequence, cumulative sums, padding (as a slice with a sample mode), Einsum."""

from __future__ import annotations

import numpy as np

from ...network.layers.indexing import ScatterReduction
from ...network.tensor import ITensor
from ...types import (
    BoundingBoxFormat,
    CumulativeOperation,
    DataType,
    ElementWiseOperation,
    ErrorCode,
    SampleMode,
    ScatterMode,
)
from ..context import ImportContext, OnnxNode
from .shaping import normalize_axis

_REDUCTIONS = {
    "none": ScatterReduction.NONE,
    "add": ScatterReduction.ADD,
    "mul": ScatterReduction.MUL,
    "max": ScatterReduction.MAX,
    "min": ScatterReduction.MIN,
}

_PAD_MODES = {
    "constant": SampleMode.FILL,
    "reflect": SampleMode.REFLECT,
    "edge": SampleMode.CLAMP,
    "wrap": SampleMode.WRAP,
}


def _scatter(mode: ScatterMode):
    def importer(ctx: ImportContext, node: OnnxNode) -> ITensor:
        data, indices, updates = node.inputs
        reduction = node.attr("reduction", "string", "none")
        if reduction not in _REDUCTIONS:
            raise node.error(ErrorCode.UNSUPPORTED_NODE_ATTR, f"unknown reduction '{reduction}'")
        layer = ctx.network.add_scatter(data, indices, updates, mode)
        if mode == ScatterMode.ELEMENT:
            layer.axis = normalize_axis(node, node.attr("axis", "int", 0), ctx.rank(data))
        layer.reduction = _REDUCTIONS[reduction]
        return layer.get_output(0)

    return importer


def one_hot(ctx: ImportContext, node: OnnxNode) -> ITensor:
    indices, depth, values = node.inputs
    axis = node.attr("axis", "int", -1)
    out_rank = ctx.rank(indices) + 1
    if ctx.dtype(depth) not in (DataType.INT32, DataType.INT64):
        # a shape tensor must be an integer: a float depth is needed as a build-time value
        depth = ctx.constant(ctx.require_value(node, 1).astype(np.int64))
    depth = ctx.cast(depth, DataType.INT64)
    if ctx.dtype(indices) not in (DataType.INT32, DataType.INT64):
        indices = ctx.cast(indices, DataType.INT64)  # ONNX takes any numeric indices
    if ctx.rank(depth) == 1:
        depth = ctx.reshape(depth, ())
    layer = ctx.network.add_one_hot(indices, values, depth, normalize_axis(node, axis, out_rank))
    return layer.get_output(0)


def reverse_sequence(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x, lengths = node.inputs
    layer = ctx.network.add_reverse_sequence(x, lengths)
    layer.batch_axis = node.attr("batch_axis", "int", 1)
    layer.sequence_axis = node.attr("time_axis", "int", 0)
    return layer.get_output(0)


def _cumulative(operation: CumulativeOperation):
    """CumSum, and CumProd (CumulativeOperation.PROD, a tensorplan extension)."""

    def cumulative(ctx: ImportContext, node: OnnxNode) -> ITensor:
        x, axis = node.inputs
        axis = ctx.reshape(ctx.cast(axis, DataType.INT64), ())
        layer = ctx.network.add_cumulative(
            x,
            axis,
            operation,
            bool(node.attr("exclusive", "int", 0)),
            bool(node.attr("reverse", "int", 0)),
        )
        return layer.get_output(0)

    return cumulative


def non_zero(ctx: ImportContext, node: OnnxNode) -> ITensor:
    return ctx.network.add_non_zero(node.inputs[0]).get_output(0)


def compress(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """The slices where `condition` is true: gather at non_zero(condition) along the axis
    (of the flattened input when there is no axis)."""
    x, condition = node.inputs
    axis = node.attr("axis", "int", None)
    if axis is None:
        x, axis = ctx.reshape(x, [-1]), 0
    axis = normalize_axis(node, axis, ctx.rank(x))
    indices = ctx.reshape(ctx.network.add_non_zero(condition).get_output(0), [-1])
    return ctx.gather(x, indices, axis)


def non_max_suppression(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """ONNX NonMaxSuppression on the NMS layer: scores [B, C, N] -> [B, N, C], scalar limits,
    ONNX's row order and INT64 indices (the layer's extensions), and no score threshold as
    -inf (ONNX then keeps every score; TensorRT's default threshold is 0)."""
    boxes, scores = node.inputs[0], node.inputs[1]
    limit = node.input(2)
    limit = ctx.constant(np.array(0, np.int64)) if limit is None else ctx.reshape(limit, [])
    layer = ctx.network.add_nms(boxes, ctx.transpose(scores, (0, 2, 1)), limit)
    iou = node.input(3)
    score = node.input(4)
    layer.set_input(3, ctx.constant(np.float32(0)) if iou is None else ctx.reshape(iou, []))
    layer.set_input(
        4, ctx.constant(np.float32(-np.inf)) if score is None else ctx.reshape(score, [])
    )
    center = node.attr("center_point_box", "int", 0)
    layer.bounding_box_format = (
        BoundingBoxFormat.CENTER_SIZES if center else BoundingBoxFormat.CORNER_PAIRS
    )
    layer.indices_type = DataType.INT64
    layer.onnx_order = True
    return layer.get_output(0)


def pad(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """A slice from -pre of size dim + pre + post, read past the edges in the pad mode."""
    x = node.inputs[0]
    rank = ctx.rank(x)
    mode = node.attr("mode", "string", "constant")
    if mode not in _PAD_MODES:
        raise node.error(ErrorCode.UNSUPPORTED_NODE_ATTR, f"unknown pad mode '{mode}'")
    fill = None
    if node.opset < 11:
        pads = node.attr("pads", "ints", [0] * 2 * rank)
        value = node.attr("value", "float", 0.0)
        if value:
            fill = ctx.constant(np.array(value), ctx.dtype(x))
        axes = list(range(rank))
    else:
        pads = [int(v) for v in ctx.require_value(node, 1).reshape(-1)]
        fill = node.input(2)
        axes = list(range(rank))
        if node.input(3) is not None:
            axes = [
                normalize_axis(node, int(a), rank, "axes value")
                for a in ctx.require_value(node, 3).reshape(-1)
            ]
    if len(pads) != 2 * len(axes):
        raise node.error(
            ErrorCode.INVALID_NODE, f"pads {pads} must have 2 values per padded axis {axes}"
        )
    before, after = [0] * rank, [0] * rank
    for position, axis in enumerate(axes):
        before[axis], after[axis] = pads[position], pads[position + len(axes)]
    growth = ctx.constant(
        np.array([b + a for b, a in zip(before, after, strict=True)], dtype=np.int64)
    )
    size = ctx.binary(ctx.shape_of(x), growth, ElementWiseOperation.SUM)
    layer = ctx.network.add_slice(x, [-b for b in before], [0] * rank, [1] * rank)
    layer.set_input(2, size)
    layer.mode = _PAD_MODES[mode]
    if mode == "constant" and fill is not None:
        layer.set_input(4, ctx.reshape(ctx.cast(fill, ctx.dtype(x)), ()))
    return layer.get_output(0)


def einsum(ctx: ImportContext, node: OnnxNode) -> ITensor:
    equation = node.attr("equation", "string", "")
    return ctx.network.add_einsum(list(node.inputs), equation.replace(" ", "")).get_output(0)


IMPORTERS = {
    "ScatterElements": _scatter(ScatterMode.ELEMENT),
    "Scatter": _scatter(ScatterMode.ELEMENT),
    "ScatterND": _scatter(ScatterMode.ND),
    "OneHot": one_hot,
    "ReverseSequence": reverse_sequence,
    "CumSum": _cumulative(CumulativeOperation.SUM),
    "CumProd": _cumulative(CumulativeOperation.PROD),
    "Pad": pad,
    "NonZero": non_zero,
    "Compress": compress,
    "NonMaxSuppression": non_max_suppression,
    "Einsum": einsum,
}
