"""ONNX quantization: QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear."""

from __future__ import annotations

from ...network.layers.quantize import add_dynamic_quantize_linear
from ...network.tensor import ITensor
from ...types import DataType
from ..context import ImportContext, OnnxNode
from ..model import datatype_of


def quantize_linear(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x, scale, zero_point = node.inputs[0], node.inputs[1], node.input(2)
    if zero_point is not None:
        to_type = ctx.dtype(zero_point)
    elif node.has("output_dtype"):
        to_type = datatype_of(node.attr("output_dtype", "int"), "the 'output_dtype' attribute")
    else:
        to_type = DataType.UINT8
    layer = ctx.network.add_quantize(x, scale, to_type)
    if zero_point is not None:
        layer.set_input(2, _like_scale(ctx, zero_point, scale))
    _blocking(ctx, node, layer, x)
    layer.saturate = bool(node.attr("saturate", "int", 1))
    return layer.get_output(0)


def dequantize_linear(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x, scale, zero_point = node.inputs[0], node.inputs[1], node.input(2)
    to_type = ctx.dtype(scale)
    if node.has("output_dtype") and node.attr("output_dtype", "int"):
        to_type = datatype_of(node.attr("output_dtype", "int"), "the 'output_dtype' attribute")
    layer = ctx.network.add_dequantize(x, scale, to_type)
    if zero_point is not None:
        layer.set_input(2, _like_scale(ctx, zero_point, scale))
    _blocking(ctx, node, layer, x)
    return layer.get_output(0)


def _like_scale(ctx: ImportContext, zero_point: ITensor, scale: ITensor) -> ITensor:
    """The zero point in the scale's shape (exporters write a scalar's as [1], say)."""
    shape = ctx.shape(scale)
    if ctx.shape(zero_point) == shape or -1 in shape:
        return zero_point
    return ctx.reshape(zero_point, list(shape))


def _blocking(ctx: ImportContext, node: OnnxNode, layer: object, x: ITensor) -> None:
    rank = max(ctx.rank(x), 1)
    layer.axis = node.attr("axis", "int", 1) % rank
    layer.block_size = node.attr("block_size", "int", 0)


def dynamic_quantize_linear(ctx: ImportContext, node: OnnxNode) -> list[ITensor]:
    layer = add_dynamic_quantize_linear(ctx.network, node.inputs[0])
    return [layer.get_output(i) for i in range(3)]


IMPORTERS = {
    "QuantizeLinear": quantize_linear,
    "DequantizeLinear": dequantize_linear,
    "DynamicQuantizeLinear": dynamic_quantize_linear,
}
