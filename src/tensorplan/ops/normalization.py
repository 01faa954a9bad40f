"""Normalizations: softmax, and mean/variance normalization (layer, instance, group norm)."""

from __future__ import annotations

from typing import Any

import torch

from ..types import FLOATS, DataType, LayerType
from .base import UNKNOWN, Enum, Float, Int, Op, ShapeError, TensorMeta
from .shapes import axes_from_mask, same_dtype

COMPUTE_PRECISIONS = {DataType.FLOAT: torch.float32, DataType.HALF: torch.float16}
"""INormalizationLayer.compute_precision: the types TensorRT allows, as torch types."""


class SoftMax(Op):
    """ISoftMaxLayer: softmax along the one axis of the bitmask.

    TensorRT's default axis depends on the input's rank; the network sets it when it creates
    the layer (INetworkDefinition.add_softmax).
    """

    name = "softmax"
    reduced_precision = True
    layer_type = LayerType.SOFTMAX
    attrs = {"axes": Int(1, low=0)}

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (x,) = inputs
        if x.dtype not in FLOATS:
            raise ShapeError(f"softmax needs a FLOAT, HALF or BF16 input, got {x.dtype.name}")
        axes = axes_from_mask(attrs["axes"], x.rank)
        if len(axes) != 1:
            raise ShapeError(
                f"softmax needs exactly one axis, got axes {list(axes)} "
                f"(bitmask {attrs['axes']:#b}) for input shape {list(x.shape)}"
            )
        return [TensorMeta(x.dtype, x.shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x = inputs[0]
        (axis,) = axes_from_mask(attrs["axes"], x.dim())
        torch.softmax(x, axis, out=outputs[0])


class Normalization(Op):
    """INormalizationLayer: Y = (X - Mean(X, axes)) / Sqrt(Variance(X, axes) + epsilon) * S + B.

    The variance is the biased one (the mean of squared deviations). With num_groups > 1 the
    channels (axis 1) are split into groups, each normalized over its channels and every
    axis after them; the axes bitmask must then name exactly the axes after the channels.
    Scale and bias have the input's rank and broadcast to it: for group normalization they
    are [1, G, 1, ...] (TensorRT's documented shape, one value per group) or, as an
    extension, [1, C, 1, ...] (one value per channel, as ONNX opset 21 and PyTorch define it).
    """

    name = "normalization"
    reduced_precision = True
    layer_type = LayerType.NORMALIZATION
    num_inputs = (3, 3)
    attrs = {
        "epsilon": Float(1e-5),
        "axes": Int(1, low=0),
        "num_groups": Int(1, low=1),
        "compute_precision": Enum(DataType, DataType.FLOAT),
    }

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, scale, bias = inputs
        same_dtype(inputs, "the input, scale and bias")
        if x.dtype not in FLOATS:
            raise ShapeError(f"normalization needs FLOAT, HALF or BF16 tensors, got {x.dtype.name}")
        precision = attrs["compute_precision"]
        if precision not in COMPUTE_PRECISIONS:
            raise ShapeError(f"compute_precision must be FLOAT or HALF, got {precision.name}")
        axes = axes_from_mask(attrs["axes"], x.rank)
        groups = attrs["num_groups"]
        if groups == 1:
            if not axes:
                raise ShapeError("normalization needs at least one axis; the axes bitmask is 0")
            for meta, what in ((scale, "scale"), (bias, "bias")):
                _check_broadcast(meta, x, what)
        else:
            _check_groups(x, scale, bias, axes, groups)
        return [TensorMeta(x.dtype, x.shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x, scale, bias = inputs
        if x.numel() == 0:
            return
        compute = COMPUTE_PRECISIONS[attrs["compute_precision"]]
        groups, epsilon = attrs["num_groups"], attrs["epsilon"]
        scale, bias = scale.to(compute), bias.to(compute)
        values = x.to(compute)
        if groups == 1:
            axes = axes_from_mask(attrs["axes"], x.dim())
            variance, mean = torch.var_mean(values, axes, correction=0, keepdim=True)
            normalized = (values - mean) * torch.rsqrt(variance + epsilon)
        else:
            # (N, G, C/G, ...): each group normalized over its channels and the axes after
            channels = x.shape[1]
            grouped = values.reshape(x.shape[0], groups, channels // groups, *x.shape[2:])
            axes = tuple(range(2, grouped.dim()))
            variance, mean = torch.var_mean(grouped, axes, correction=0, keepdim=True)
            normalized = (grouped - mean) * torch.rsqrt(variance + epsilon)
            if scale.shape[1] == channels:
                normalized = normalized.reshape(x.shape)
            else:  # [1, G, 1, ...]: one scale and bias per group, on the grouped view
                scale, bias = scale.unsqueeze(2), bias.unsqueeze(2)
        outputs[0].copy_((normalized * scale + bias).reshape(x.shape))


def _check_broadcast(meta: TensorMeta, x: TensorMeta, what: str) -> None:
    """`meta` has the rank of `x` and each of its dims is 1 or the dim of `x`."""
    fits = meta.rank == x.rank and all(
        d in (1, UNKNOWN) or d == size or size == UNKNOWN
        for d, size in zip(meta.shape, x.shape, strict=True)
    )
    if not fits:
        raise ShapeError(
            f"the {what} has shape {list(meta.shape)}, which does not broadcast to the input "
            f"{list(x.shape)} (it needs the input's rank, each dimension 1 or the input's)"
        )


def _check_groups(
    x: TensorMeta, scale: TensorMeta, bias: TensorMeta, axes: tuple[int, ...], groups: int
) -> None:
    """Group normalization: an [N, C, ...] input, C split into groups, scale/bias per group."""
    if x.rank < 2:
        raise ShapeError(
            f"group normalization needs an input of rank 2 or more (N, C, ...), got shape "
            f"{list(x.shape)}"
        )
    expected = tuple(range(2, x.rank))
    if axes != expected:
        mask = sum(1 << axis for axis in expected)
        raise ShapeError(
            f"with num_groups = {groups} the axes must be those after the channels, "
            f"{list(expected)} (bitmask {mask:#b}); got {list(axes)}"
        )
    channels = x.shape[1]
    if channels != UNKNOWN and channels % groups:
        raise ShapeError(f"{channels} channels cannot be split into {groups} groups")
    for meta, what in ((scale, "scale"), (bias, "bias")):
        per = meta.shape[1] if meta.rank == x.rank else None
        fits = per in (groups, channels, UNKNOWN) and all(
            d in (1, UNKNOWN) for i, d in enumerate(meta.shape) if i != 1
        )
        if not fits:
            raise ShapeError(
                f"the {what} has shape {list(meta.shape)}; group normalization of an input "
                f"{list(x.shape)} with {groups} groups needs [1, {groups}, 1, ...] (one value "
                "per group) or [1, C, 1, ...] (one per channel) of the input's rank"
            )


OPS = [SoftMax(), Normalization()]
