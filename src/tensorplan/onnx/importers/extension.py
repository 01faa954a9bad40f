"""Importers of ONNX ops that map onto tensorplan's extension layers (TensorRT would need
plugins or loops): Unique, Det, DFT, STFT, MaxUnpool, Col2Im, LpPool, RNN, GRU and LSTM."""

from __future__ import annotations

from collections.abc import Sequence

from ...network.tensor import ITensor
from ...ops.recurrent import RNNDirection, RNNOperation, onnx_activations
from ...types import DataType, PaddingMode
from ..context import ImportContext, OnnxNode
from ..model import datatype_of
from .shaping import normalize_axis


def unique(ctx: ImportContext, node: OnnxNode) -> Sequence[ITensor]:
    layer = ctx.network.add_unique(node.inputs[0])
    if node.has("axis"):
        layer.axis = normalize_axis(node, node.attr("axis", "int"), ctx.rank(node.inputs[0]))
    layer.sorted = bool(node.attr("sorted", "int", 1))
    return [layer.get_output(i) for i in range(4)]


def bitcast(ctx: ImportContext, node: OnnxNode) -> ITensor:
    to_type = datatype_of(node.attr("to", "int"), "the 'to' attribute")
    return ctx.network.add_bitcast(node.inputs[0], to_type).get_output(0)


def det(ctx: ImportContext, node: OnnxNode) -> ITensor:
    return ctx.network.add_det(node.inputs[0]).get_output(0)


def dft(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """DFT-17 (axis attribute, default 1) and DFT-20 (axis input 2, default -2)."""
    x = node.inputs[0]
    if node.opset < 20:
        axis = node.attr("axis", "int", 1)
    elif node.input(2) is not None:
        axis = int(ctx.require_value(node, 2).reshape(()))
    else:
        axis = -2
    axis = normalize_axis(node, axis, ctx.rank(x))
    inverse = bool(node.attr("inverse", "int", 0))
    layer = ctx.network.add_dft(x, axis, inverse, bool(node.attr("onesided", "int", 0)))
    length = node.input(1)
    if length is not None:
        layer.set_input(1, ctx.reshape(ctx.cast(length, DataType.INT64), []))
    return layer.get_output(0)


def stft(ctx: ImportContext, node: OnnxNode) -> ITensor:
    signal, step = node.inputs[0], node.inputs[1]
    onesided = bool(node.attr("onesided", "int", 1))
    layer = ctx.network.add_stft(signal, ctx.reshape(ctx.cast(step, DataType.INT64), []), onesided)
    if node.input(2) is not None:
        layer.set_input(2, node.input(2))
    if node.input(3) is not None:
        layer.set_input(3, ctx.reshape(ctx.cast(node.input(3), DataType.INT64), []))
    return layer.get_output(0)


def max_unpool(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x, indices = node.inputs[0], node.inputs[1]
    kernel = node.attr("kernel_shape", "ints", [])
    layer = ctx.network.add_max_unpool(x, indices, kernel)
    layer.strides = node.attr("strides", "ints", [1] * len(kernel))
    layer.pads = node.attr("pads", "ints", [0] * 2 * len(kernel))
    if node.input(2) is not None:
        layer.set_input(2, ctx.cast(node.input(2), DataType.INT64))
    return layer.get_output(0)


def col2im(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x, image, block = node.inputs
    layer = ctx.network.add_col2im(
        x, ctx.cast(image, DataType.INT64), ctx.cast(block, DataType.INT64)
    )
    spatial = ctx.shape(image)[0]
    layer.dilations = node.attr("dilations", "ints", [1] * spatial)
    layer.pads = node.attr("pads", "ints", [0] * 2 * spatial)
    layer.strides = node.attr("strides", "ints", [1] * spatial)
    return layer.get_output(0)


def lp_pool(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """LpPool: ONNX pads are [begins..., ends...]; auto_pad and ceil_mode pick the mode."""
    x = node.inputs[0]
    kernel = node.attr("kernel_shape", "ints", [])
    layer = ctx.network.add_lp_pooling(x, kernel, float(node.attr("p", "int", 2)))
    count = len(kernel)
    layer.stride_nd = node.attr("strides", "ints", [1] * count)
    layer.dilation_nd = node.attr("dilations", "ints", [1] * count)
    pads = node.attr("pads", "ints", [0] * 2 * count)
    layer.pre_padding, layer.post_padding = pads[:count], pads[count:]
    auto_pad = node.attr("auto_pad", "string", "NOTSET")
    modes = {"SAME_UPPER": PaddingMode.SAME_UPPER, "SAME_LOWER": PaddingMode.SAME_LOWER}
    if auto_pad in modes:
        layer.padding_mode = modes[auto_pad]
    elif auto_pad == "VALID":
        layer.pre_padding = layer.post_padding = [0] * count
    elif node.attr("ceil_mode", "int", 0):
        layer.padding_mode = PaddingMode.EXPLICIT_ROUND_UP
    return layer.get_output(0)


def _recurrent(mode: RNNOperation):
    """RNN, GRU and LSTM onto the recurrent extension layer (inputs in ONNX's order)."""

    def importer(ctx: ImportContext, node: OnnxNode) -> Sequence[ITensor]:
        lstm = mode == RNNOperation.LSTM
        optional = [node.input(i) for i in range(3, 8 if lstm else 6)]
        bias, lengths, initial_h = optional[:3]
        initial_c, peepholes = optional[3:] if lstm else (None, None)
        if lengths is not None:
            lengths = ctx.cast(lengths, DataType.INT32)
        layer = ctx.network.add_rnn(
            node.inputs[0], mode, node.inputs[1], node.inputs[2],
            bias, lengths, initial_h, initial_c, peepholes,
        )  # fmt: skip
        try:
            activations, alphas, betas = onnx_activations(
                node.attr("activations", "strings", []),
                node.attr("activation_alpha", "floats", []),
                node.attr("activation_beta", "floats", []),
            )
        except ValueError as error:
            raise node.unsupported(str(error)) from None
        layer.activations, layer.activation_alpha, layer.activation_beta = (
            activations,
            alphas,
            betas,
        )
        directions = {"forward": 0, "reverse": 1, "bidirectional": 2}
        layer.direction = RNNDirection(directions[node.attr("direction", "string", "forward")])
        layer.hidden_size = node.attr("hidden_size", "int", 0)
        if node.has("clip"):
            layer.clip = node.attr("clip", "float")
        layer.layout = node.attr("layout", "int", 0)
        if lstm:
            layer.input_forget = bool(node.attr("input_forget", "int", 0))
        if mode == RNNOperation.GRU:
            layer.linear_before_reset = bool(node.attr("linear_before_reset", "int", 0))
        return [layer.get_output(i) for i in range(layer.num_outputs)]

    return importer


IMPORTERS = {
    "Unique": unique,
    "BitCast": bitcast,
    "Det": det,
    "DFT": dft,
    "STFT": stft,
    "MaxUnpool": max_unpool,
    "Col2Im": col2im,
    "LpPool": lp_pool,
    "RNN": _recurrent(RNNOperation.TANH),
    "GRU": _recurrent(RNNOperation.GRU),
    "LSTM": _recurrent(RNNOperation.LSTM),
}
