"""ONNX neural-network ops: convolutions, pooling and the normalizations.

TensorRT convolves and pools in 2D and 3D: 1-D inputs get a trailing size-1 dim for the
layer and lose it after. ONNX's explicit and automatic (SAME_*) pads become explicit
pre/post padding wherever the spatial dims are known at build time.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from ...network.tensor import ITensor
from ...ops.base import UNKNOWN
from ...types import (
    DataType,
    ElementWiseOperation,
    ErrorCode,
    PaddingMode,
    PoolingType,
    ReduceOperation,
    SampleMode,
    UnaryOperation,
    Weights,
)
from ..context import ImportContext, OnnxNode
from .pointwise import in_float
from .shaping import normalize_axis

E = ElementWiseOperation
R = ReduceOperation
U = UnaryOperation


class Window:
    """Kernel, strides, dilations and pads of a sliding-window node, for its spatial dims."""

    def __init__(self, ctx: ImportContext, node: OnnxNode, x: ITensor, kernel: Sequence[int]):
        spatial = ctx.shape(x)[2:]
        rank = len(spatial)
        self.kernel = list(kernel)
        self.strides = node.attr("strides", "ints", [1] * rank)
        self.dilations = node.attr("dilations", "ints", [1] * rank)
        pads = node.attr("pads", "ints", [0] * (2 * rank))
        for values, what, size in ((self.strides, "strides", rank), (pads, "pads", 2 * rank)):
            if len(values) != size:
                raise node.error(ErrorCode.INVALID_NODE, f"{what} {values} must have {size} values")
        self.pre, self.post = list(pads[:rank]), list(pads[rank:])
        self.mode = PaddingMode.EXPLICIT_ROUND_DOWN
        auto_pad = node.attr("auto_pad", "string", "NOTSET")
        if auto_pad == "VALID":
            self.pre, self.post = [0] * rank, [0] * rank
        elif auto_pad in ("SAME_UPPER", "SAME_LOWER"):
            if UNKNOWN in spatial:
                self.mode = PaddingMode[auto_pad]
            else:
                self.pre, self.post = [], []
                for size, k, s, d in zip(
                    spatial, self.kernel, self.strides, self.dilations, strict=True
                ):
                    total = max((math.ceil(size / s) - 1) * s + (k - 1) * d + 1 - size, 0)
                    small, large = total // 2, total - total // 2
                    upper = auto_pad == "SAME_UPPER"
                    self.pre.append(small if upper else large)
                    self.post.append(large if upper else small)
        elif auto_pad != "NOTSET":
            raise node.error(ErrorCode.UNSUPPORTED_NODE_ATTR, f"unknown auto_pad '{auto_pad}'")

    def widen(self) -> None:
        """Give a 1-D window a second, trivial dim (TensorRT's windows are 2D or 3D)."""
        for values, extra in (
            (self.kernel, 1),
            (self.strides, 1),
            (self.dilations, 1),
            (self.pre, 0),
            (self.post, 0),
        ):
            values.append(extra)

    def ceil(self, spatial: Sequence[int]) -> None:
        """ONNX's ceil_mode: round the output size up, but drop a last window that would
        start in the end padding. TensorRT's EXPLICIT_ROUND_UP keeps that window, so where
        ONNX drops it on every dim that rounds up, the sizes are EXPLICIT_ROUND_DOWN's."""
        if self.mode != PaddingMode.EXPLICIT_ROUND_DOWN:
            return
        self.mode = PaddingMode.EXPLICIT_ROUND_UP
        if UNKNOWN in spatial:
            return
        geometry = zip(
            spatial, self.kernel, self.strides, self.dilations, self.pre, self.post, strict=True
        )
        dropped = []
        for size, k, s, d, pre, post in geometry:
            span = size + pre + post - (k - 1) * d - 1
            down, up = span // s + 1, -(-span // s) + 1
            if up != down:
                dropped.append((up - 1) * s >= size + pre)
        if dropped and all(dropped):
            self.mode = PaddingMode.EXPLICIT_ROUND_DOWN

    def apply(self, layer: object) -> None:
        layer.stride_nd = self.strides
        layer.pre_padding = self.pre
        layer.post_padding = self.post
        layer.padding_mode = self.mode


def _widen(ctx: ImportContext, x: ITensor) -> ITensor:
    """N, C, W -> N, C, W, 1."""
    return ctx.unsqueeze(x, [ctx.rank(x)])


def conv(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x, w, b = node.inputs[0], node.inputs[1], node.input(2)
    w_shape = ctx.shape(w)
    if UNKNOWN in w_shape[2:] or w_shape[0] == UNKNOWN:
        raise node.error(ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "the weights' shape must be known")
    window = Window(ctx, node, x, node.attr("kernel_shape", "ints", list(w_shape[2:])))
    group = node.attr("group", "int", 1)
    one_d = len(window.kernel) == 1

    def compute(x: ITensor) -> ITensor:
        kernel = ctx.cast(w, ctx.dtype(x))
        if one_d:
            window.widen()
            x, kernel = _widen(ctx, x), _widen(ctx, kernel)
        layer = ctx.network.add_convolution_nd(x, w_shape[0], window.kernel, Weights())
        layer.set_input(1, kernel)
        if b is not None:
            layer.set_input(2, ctx.cast(b, ctx.dtype(x)))
        window.apply(layer)
        layer.dilation_nd = window.dilations
        layer.num_groups = group
        y = layer.get_output(0)
        return ctx.squeeze(y, [ctx.rank(y) - 1]) if one_d else y

    return in_float(ctx, x, compute)


def conv_transpose(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """Deconvolution; output_padding and output_shape become padding (or zero fill)."""
    x, w, b = node.inputs[0], node.inputs[1], node.input(2)
    w_shape = ctx.shape(w)
    spatial = ctx.shape(x)[2:]
    if UNKNOWN in w_shape or UNKNOWN in spatial:
        raise node.error(
            ErrorCode.UNSUPPORTED_NODE_DYNAMIC, "input and weight shapes must be known"
        )
    group = node.attr("group", "int", 1)
    kernel = node.attr("kernel_shape", "ints", list(w_shape[2:]))
    rank = len(kernel)
    strides = node.attr("strides", "ints", [1] * rank)
    dilations = node.attr("dilations", "ints", [1] * rank)
    extra = node.attr("output_padding", "ints", [0] * rank)
    pads = node.attr("pads", "ints", [0] * (2 * rank))
    pre, post = list(pads[:rank]), list(pads[rank:])
    auto_pad = node.attr("auto_pad", "string", "NOTSET")
    output_shape = node.attr("output_shape", "ints", None)
    if output_shape is not None or auto_pad in ("SAME_UPPER", "SAME_LOWER"):
        targets = (
            output_shape[-rank:]
            if output_shape
            else [d * s for d, s in zip(spatial, strides, strict=True)]
        )
        pre, post = [], []
        for size, k, s, d, o, target in zip(
            spatial, kernel, strides, dilations, extra, targets, strict=True
        ):
            total = s * (size - 1) + o + (k - 1) * d + 1 - target
            small, large = total // 2, total - total // 2
            upper = auto_pad == "SAME_UPPER"
            pre.append(small if upper else large)
            post.append(large if upper else small)
    elif auto_pad == "VALID":
        pre, post = [0] * rank, [0] * rank
    # output_padding adds at the end: take it off the post-padding, or fill with zeros
    post = [p - o for p, o in zip(post, extra, strict=True)]
    grow = [max(-p, 0) for p in post]
    post = [max(p, 0) for p in post]
    maps = w_shape[1] * group

    def compute(x: ITensor) -> ITensor:
        weights = ctx.cast(w, ctx.dtype(x))
        window = (kernel, strides, dilations, pre, post, grow)
        k_, s_, d_, pre_, post_, grow_ = (list(v) for v in window)
        if rank == 1:
            for values, filler in ((k_, 1), (s_, 1), (d_, 1), (pre_, 0), (post_, 0), (grow_, 0)):
                values.append(filler)
            x, weights = _widen(ctx, x), _widen(ctx, weights)
        layer = ctx.network.add_deconvolution_nd(x, maps, k_, Weights())
        layer.set_input(1, weights)
        layer.stride_nd, layer.dilation_nd = s_, d_
        layer.pre_padding, layer.post_padding = pre_, post_
        layer.num_groups = group
        y = layer.get_output(0)
        if any(grow_):
            shape = ctx.shape(y)
            size = [*shape[:2], *(d + g for d, g in zip(shape[2:], grow_, strict=True))]
            filled = ctx.network.add_slice(y, [0] * len(shape), size, [1] * len(shape))
            filled.mode = SampleMode.FILL
            y = filled.get_output(0)
        if b is not None:
            bias = ctx.cast(b, ctx.dtype(x))
            y = ctx.binary(y, ctx.unsqueeze(bias, [0, *range(2, ctx.rank(y))]), E.SUM)
        return ctx.squeeze(y, [ctx.rank(y) - 1]) if rank == 1 else y

    return in_float(ctx, x, compute)


def _pool(kind: PoolingType):
    def importer(ctx: ImportContext, node: OnnxNode) -> ITensor:
        x = node.inputs[0]
        if node.num_outputs > 1:
            raise node.unsupported("the Indices output of MaxPool is not supported")
        if node.attr("storage_order", "int", 0):
            raise node.unsupported("storage_order = 1 is not supported")
        window = Window(ctx, node, x, node.attr("kernel_shape", "ints", []))
        if node.attr("ceil_mode", "int", 0):
            window.ceil(ctx.shape(x)[2:])
        one_d = len(window.kernel) == 1

        def compute(x: ITensor) -> ITensor:
            if one_d:
                window.widen()
                x = _widen(ctx, x)
            layer = ctx.network.add_pooling_nd(x, kind, window.kernel)
            window.apply(layer)
            layer.dilation_nd = window.dilations
            if kind == PoolingType.AVERAGE:
                layer.average_count_excludes_padding = not node.attr("count_include_pad", "int", 0)
            y = layer.get_output(0)
            return ctx.squeeze(y, [ctx.rank(y) - 1]) if one_d else y

        return in_float(ctx, x, compute)

    return importer


def _global_pool(op: ReduceOperation):
    def importer(ctx: ImportContext, node: OnnxNode) -> ITensor:
        x = node.inputs[0]
        axes = list(range(2, ctx.rank(x)))
        return in_float(ctx, x, lambda t: ctx.reduce(t, op, axes, True))

    return importer


# -- normalizations -------------------------------------------------------------------------------


def _per_channel(ctx: ImportContext, parameter: ITensor, rank: int, dtype: DataType) -> ITensor:
    """A (C) parameter as (1, C, 1, ...) for an input of `rank`."""
    return ctx.unsqueeze(ctx.cast(parameter, dtype), [0, *range(2, rank)])


def batch_normalization(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """Inference: (x - mean) * scale / sqrt(var + epsilon) + bias, per channel."""
    if node.attr("training_mode", "int", 0) or node.num_outputs > 1:
        raise node.unsupported("training mode (batch statistics outputs) is not supported")
    x, scale, bias, mean, var = node.inputs[:5]
    epsilon = node.attr("epsilon", "float", 1e-5)
    rank = ctx.rank(x)

    def compute(x: ITensor) -> ITensor:
        dtype = ctx.dtype(x)
        s, b, m, v = (_per_channel(ctx, p, rank, dtype) for p in (scale, bias, mean, var))
        std = ctx.unary(ctx.binary(v, ctx.scalar_like(epsilon, v), E.SUM), U.SQRT)
        centered = ctx.binary(x, m, E.SUB)
        return ctx.binary(ctx.binary(centered, ctx.binary(s, std, E.DIV), E.PROD), b, E.SUM)

    return in_float(ctx, x, compute)


def instance_normalization(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x, scale, bias = node.inputs
    epsilon = node.attr("epsilon", "float", 1e-5)
    rank = ctx.rank(x)

    def compute(x: ITensor) -> ITensor:
        dtype = ctx.dtype(x)
        s, b = (_per_channel(ctx, p, rank, dtype) for p in (scale, bias))
        mask = sum(1 << axis for axis in range(2, rank))
        layer = ctx.network.add_normalization(x, s, b, mask)
        layer.epsilon = epsilon
        return layer.get_output(0)

    return in_float(ctx, x, compute)


def _stash(ctx: ImportContext, node: OnnxNode, x: ITensor) -> DataType:
    """The type statistics are computed in: stash_type (FLOAT by default) or the input's."""
    stash = node.attr("stash_type", "int", 1)
    if stash == 1 or ctx.dtype(x) == DataType.DOUBLE:
        return DataType.FLOAT
    return ctx.dtype(x)


def layer_normalization(ctx: ImportContext, node: OnnxNode) -> list[ITensor]:
    """Normalize over axes [axis, rank); outputs Y, Mean and InvStdDev (in stash type)."""
    x, scale, bias = node.inputs[0], node.inputs[1], node.input(2)
    rank = ctx.rank(x)
    axis = normalize_axis(node, node.attr("axis", "int", -1), rank)
    epsilon = node.attr("epsilon", "float", 1e-5)
    axes = list(range(axis, rank))
    stash = _stash(ctx, node, x)
    if node.num_outputs <= 1 and _normalizable(ctx, x, stash):
        return [_normalization_layer(ctx, x, scale, bias, axes, epsilon, stash)]
    values = ctx.cast(x, stash)
    mean = ctx.reduce(values, R.AVG, axes, True)
    centered = ctx.binary(values, mean, E.SUB)
    variance = ctx.reduce(ctx.binary(centered, centered, E.PROD), R.AVG, axes, True)
    shifted = ctx.binary(variance, ctx.scalar_like(epsilon, variance), E.SUM)
    inv_std = ctx.binary(ctx.scalar_like(1, shifted), ctx.unary(shifted, U.SQRT), E.DIV)
    y = ctx.cast(ctx.binary(centered, inv_std, E.PROD), ctx.dtype(x))
    y = ctx.binary(y, scale, E.PROD)
    if bias is not None:
        y = ctx.binary(y, bias, E.SUM)
    return [y, mean, inv_std]


def _normalizable(ctx: ImportContext, x: ITensor, stash: DataType) -> bool:
    """Whether an INormalizationLayer computes LayerNormalization's Y (as onnx-tensorrt
    imports it when Mean and InvStdDev are unused): FLOAT statistics, or HALF ones of a
    HALF input."""
    dtype = ctx.dtype(x)
    if dtype not in (DataType.FLOAT, DataType.HALF, DataType.BF16):
        return False
    return stash == DataType.FLOAT or stash == dtype == DataType.HALF


def _normalization_layer(
    ctx: ImportContext,
    x: ITensor,
    scale: ITensor,
    bias: ITensor | None,
    axes: list[int],
    epsilon: float,
    stash: DataType,
) -> ITensor:
    rank = ctx.rank(x)
    scale = ctx.unsqueeze(scale, list(range(rank - ctx.rank(scale))))
    bias = (
        ctx.scalar_like(0, x)
        if bias is None
        else ctx.unsqueeze(bias, list(range(rank - ctx.rank(bias))))
    )
    layer = ctx.network.add_normalization(x, scale, bias, sum(1 << axis for axis in axes))
    layer.epsilon = epsilon
    layer.compute_precision = stash
    return layer.get_output(0)


def rms_normalization(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x, scale = node.inputs[:2]
    rank = ctx.rank(x)
    axis = normalize_axis(node, node.attr("axis", "int", -1), rank)
    epsilon = node.attr("epsilon", "float", 1e-5)
    values = ctx.cast(x, _stash(ctx, node, x))
    mean_square = ctx.reduce(
        ctx.binary(values, values, E.PROD), R.AVG, list(range(axis, rank)), True
    )
    shifted = ctx.binary(mean_square, ctx.scalar_like(epsilon, mean_square), E.SUM)
    y = ctx.cast(ctx.binary(values, ctx.unary(shifted, U.SQRT), E.DIV), ctx.dtype(x))
    return ctx.binary(y, scale, E.PROD)


def group_normalization(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """Statistics per (sample, group); scale and bias per group (opset 18) or channel (21)."""
    x, scale, bias = node.inputs
    groups = node.attr("num_groups", "int", 0)
    epsilon = node.attr("epsilon", "float", 1e-5)
    rank = ctx.rank(x)
    if groups < 1:
        raise node.error(ErrorCode.INVALID_NODE, f"num_groups must be positive, got {groups}")
    values = ctx.cast(x, _stash(ctx, node, x))
    grouped = ctx.reshape(values, (0, groups, -1))
    mean = ctx.reduce(grouped, R.AVG, [2], True)
    centered = ctx.binary(grouped, mean, E.SUB)
    variance = ctx.reduce(ctx.binary(centered, centered, E.PROD), R.AVG, [2], True)
    shifted = ctx.binary(variance, ctx.scalar_like(epsilon, variance), E.SUM)
    normalized = ctx.binary(centered, ctx.unary(shifted, U.SQRT), E.DIV)
    dtype = ctx.dtype(x)
    if node.opset < 21:  # one scale and bias per group, on the grouped view
        s, b = (ctx.unsqueeze(ctx.cast(p, ctx.dtype(normalized)), [0, 2]) for p in (scale, bias))
        normalized = ctx.binary(ctx.binary(normalized, s, E.PROD), b, E.SUM)
        return ctx.cast(ctx.reshape(normalized, ctx.shape_of(x)), dtype)
    y = ctx.cast(ctx.reshape(normalized, ctx.shape_of(x)), dtype)
    s, b = (_per_channel(ctx, p, rank, dtype) for p in (scale, bias))
    return ctx.binary(ctx.binary(y, s, E.PROD), b, E.SUM)


def lp_normalization(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x = node.inputs[0]
    axis = normalize_axis(node, node.attr("axis", "int", -1), ctx.rank(x))
    p = node.attr("p", "int", 2)
    if p not in (1, 2):
        raise node.error(ErrorCode.UNSUPPORTED_NODE_ATTR, f"p must be 1 or 2, got {p}")

    def compute(t: ITensor) -> ITensor:
        if p == 1:
            norm = ctx.reduce(ctx.unary(t, U.ABS), R.SUM, [axis], True)
        else:
            norm = ctx.unary(ctx.reduce(ctx.binary(t, t, E.PROD), R.SUM, [axis], True), U.SQRT)
        zero = ctx.scalar_like(0, norm)
        # a zero norm gives zeros (onnx.reference), not 0/0
        is_zero = ctx.binary(norm, zero, E.EQUAL)
        safe = ctx.select(is_zero, ctx.scalar_like(1, norm), norm)
        return ctx.select(is_zero, ctx.scalar_like(0, t), ctx.binary(t, safe, E.DIV))

    return in_float(ctx, x, compute)


def lrn(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """x / (bias + alpha / size * sum of squares over `size` neighbouring channels) ^ beta;
    the channel sum is an average pool over a (C, H*W) view, counting the padding."""
    x = node.inputs[0]
    shape = ctx.shape(x)
    size = node.attr("size", "int", 0)
    alpha = node.attr("alpha", "float", 1e-4)
    beta = node.attr("beta", "float", 0.75)
    bias = node.attr("bias", "float", 1.0)
    if shape[1] == UNKNOWN or size < 1:
        raise node.error(
            ErrorCode.UNSUPPORTED_NODE_SHAPE, "needs a known channel count and a positive size"
        )

    def compute(t: ITensor) -> ITensor:
        square = ctx.reshape(ctx.binary(t, t, E.PROD), (0, 1, shape[1], -1))
        layer = ctx.network.add_pooling_nd(square, PoolingType.AVERAGE, (size, 1))
        layer.pre_padding = ((size - 1) // 2, 0)
        layer.post_padding = (size // 2, 0)
        layer.average_count_excludes_padding = False
        mean = ctx.reshape(layer.get_output(0), ctx.shape_of(t))
        scaled = ctx.binary(mean, ctx.scalar_like(alpha, mean), E.PROD)
        base = ctx.binary(scaled, ctx.scalar_like(bias, scaled), E.SUM)
        return ctx.binary(t, ctx.binary(base, ctx.scalar_like(beta, base), E.POW), E.DIV)

    return in_float(ctx, x, compute)


IMPORTERS = {
    "Conv": conv,
    "ConvTranspose": conv_transpose,
    "MaxPool": _pool(PoolingType.MAX),
    "AveragePool": _pool(PoolingType.AVERAGE),
    "GlobalAveragePool": _global_pool(R.AVG),
    "GlobalMaxPool": _global_pool(R.MAX),
    "BatchNormalization": batch_normalization,
    "InstanceNormalization": instance_normalization,
    "LayerNormalization": layer_normalization,
    "RMSNormalization": rms_normalization,
    "GroupNormalization": group_normalization,
    "LpNormalization": lp_normalization,
    "LRN": lrn,
}
