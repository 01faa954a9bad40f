"""Pooling: max, average and their blend over 2D or 3D windows of the trailing dimensions."""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from ..types import FLOATS, LayerType, PaddingMode, PoolingType
from .base import UNKNOWN, Bool, Enum, Float, Op, ShapeError, TensorMeta
from .conv import SpatialDims, pad_arg, spatial_attrs, window_geometry


class Pooling(Op):
    """IPoolingLayer. Padding never wins a max; how averages count it is configurable.

    A window that holds no input element at all (possible with padding at least as large as
    the window, or EXPLICIT_ROUND_UP with a stride larger than the window) gives -inf for
    MAX and 0 for AVERAGE.

    Extension: `dilation_nd` (default all 1) spaces the window's elements as a convolution's
    dilation does (ONNX MaxPool / AveragePool / LpPool `dilations`); TensorRT has none.
    """

    name = "pooling"
    reduced_precision = True
    reads_channels_last = True
    layer_type = LayerType.POOLING
    attrs = {
        "type": Enum(PoolingType, PoolingType.MAX),
        "window_size_nd": SpatialDims(low=1),
        "stride_nd": SpatialDims(low=1),
        "dilation_nd": SpatialDims(low=1),
        "pre_padding": SpatialDims(low=0),
        "post_padding": SpatialDims(low=0),
        "padding_mode": Enum(PaddingMode, PaddingMode.EXPLICIT_ROUND_DOWN),
        "blend_factor": Float(0.0),
        "average_count_excludes_padding": Bool(True),
    }

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (x,) = inputs
        spatial = spatial_attrs(attrs, "window_size_nd")
        rank = len(spatial["window_size_nd"])
        if x.rank < rank + 1:
            raise ShapeError(
                f"a {rank}D pooling needs an input of rank {rank + 1} or more (channels, then "
                f"the pooled dimensions), got shape {list(x.shape)}"
            )
        if x.dtype not in FLOATS:
            raise ShapeError(f"pooling needs a FLOAT, HALF or BF16 input, got {x.dtype.name}")
        if not 0.0 <= attrs["blend_factor"] <= 1.0:
            raise ShapeError(f"blend_factor must be in [0, 1], got {attrs['blend_factor']}")
        sizes = [
            _geometry(size, axis, spatial, attrs["padding_mode"])[0]
            for axis, size in enumerate(x.shape[-rank:])
        ]
        return [TensorMeta(x.dtype, (*x.shape[:-rank], *sizes))]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x = inputs[0]
        if max_pool_on_gpu(x, outputs[0], attrs):
            return
        spatial = spatial_attrs(attrs, "window_size_nd")
        window, stride = spatial["window_size_nd"], spatial["stride_nd"]
        dilation = spatial["dilation_nd"]
        rank = len(window)
        geometry = [
            _geometry(size, axis, spatial, attrs["padding_mode"])
            for axis, size in enumerate(x.shape[-rank:])
        ]
        kind = attrs["type"]
        starts = [g[1] for g in geometry]
        if x.dim() != rank + 2:
            # torch pools (batch, channels, *window dims): every leading dim becomes a channel
            x = x.reshape(1, -1, *x.shape[-rank:])
        result = None
        if kind in (PoolingType.MAX, PoolingType.MAX_AVERAGE_BLEND):
            pool = F.max_pool2d if rank == 2 else F.max_pool3d
            ends = [g[3] for g in geometry]
            if starts == ends and all(p <= w // 2 for p, w in zip(starts, window, strict=True)):
                # torch pads with -inf itself: no padded copy, and the input's memory format
                # (channels-last included) is kept
                result = pool(x, window, stride, padding=starts, dilation=dilation)
            else:
                padded = F.pad(x, pad_arg(starts, ends), value=float("-inf"))
                result = pool(padded, window, stride, dilation=dilation)
        if kind in (PoolingType.AVERAGE, PoolingType.MAX_AVERAGE_BLEND):
            excludes = attrs["average_count_excludes_padding"]
            average = _average(x, window, stride, dilation, geometry, excludes)
            if result is None:
                result = average
            else:
                blend = attrs["blend_factor"]
                result = (1.0 - blend) * result + blend * average
        outputs[0].copy_(result.view(outputs[0].shape))


def max_pool_on_gpu(
    x: torch.Tensor,
    out: torch.Tensor,
    attrs: dict[str, Any],
    bias: torch.Tensor | None = None,
    relu: bool = False,
) -> bool:
    """2D MAX pooling of a 4D CUDA tensor as one Triton kernel (then + bias per channel and
    ReLU when asked); False where that does not apply (nothing done)."""
    spatial = spatial_attrs(attrs, "window_size_nd")
    window = spatial["window_size_nd"]
    if attrs["type"] != PoolingType.MAX or not out.is_cuda or len(window) != 2 or x.dim() != 4:
        return False
    from .cuda_pooling import max_pool_2d

    mode = attrs["padding_mode"]
    starts = [_geometry(size, axis, spatial, mode)[1] for axis, size in enumerate(x.shape[2:])]
    return max_pool_2d(
        x, out, window, spatial["stride_nd"], starts, spatial["dilation_nd"], bias, relu
    )


def windows_hold_input(shape: tuple[int, ...], attrs: dict[str, Any]) -> bool:
    """Whether every window of a pooling over `shape` holds an input element: its pooled
    dimensions known, no dilation, and the padding that windows reach on either side smaller
    than the window."""
    spatial = spatial_attrs(attrs, "window_size_nd")
    window = spatial["window_size_nd"]
    if any(d != 1 for d in spatial["dilation_nd"]):
        return False
    for axis, size in enumerate(shape[-len(window) :]):
        if size == UNKNOWN or size < 1:
            return False
        _, pre, _, end = _geometry(size, axis, spatial, attrs["padding_mode"])
        if pre >= window[axis] or end >= window[axis]:
            return False
    return True


def _geometry(
    size: int, axis: int, spatial: dict[str, tuple[int, ...]], mode: PaddingMode
) -> tuple[int, int, int, int]:
    dilated = (spatial["window_size_nd"][axis] - 1) * spatial["dilation_nd"][axis] + 1
    return window_geometry(
        size,
        dilated,
        spatial["stride_nd"][axis],
        spatial["pre_padding"][axis],
        spatial["post_padding"][axis],
        mode,
        f"spatial dimension {axis}: the window",
    )


def _average(
    x: torch.Tensor,
    window: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    geometry: list[tuple[int, int, int, int]],
    excludes_padding: bool,
) -> torch.Tensor:
    """Window sums over the zero-padded input, divided by TensorRT's count of each window.

    The count is the overlap of the window with the input, or with the input and its
    declared padding when padding counts (not with what EXPLICIT_ROUND_UP adds past it).
    """
    pres = [pre for _, pre, _, _ in geometry]
    ends = [end for _, _, _, end in geometry]
    counted_pres = [0 if excludes_padding else pre for pre in pres]
    counted_ends = [min(0 if excludes_padding else post, end) for _, _, post, end in geometry]
    padded = F.pad(x, pad_arg(pres, ends)) if any(pres) or any(ends) else x
    if counted_pres == pres and counted_ends == ends:
        return _avg_pool(padded, window, stride, dilation)  # every window counts in full
    sums = _avg_pool(padded, window, stride, dilation, divisor=1)
    inside = torch.ones((1, 1, *x.shape[2:]), dtype=torch.float32, device=x.device)
    counted = F.pad(inside, pad_arg(counted_pres, counted_ends), value=1.0)
    rest = pad_arg(
        [p - c for p, c in zip(pres, counted_pres, strict=True)],
        [e - c for e, c in zip(ends, counted_ends, strict=True)],
    )
    counts = _avg_pool(F.pad(counted, rest), window, stride, dilation, divisor=1)
    return sums / counts.clamp(min=1.0)


def _avg_pool(
    x: torch.Tensor,
    window: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    divisor: int | None = None,
) -> torch.Tensor:
    """torch's average pooling without padding (sums for divisor=1)."""
    if any(d != 1 for d in dilation):
        return _dilated_avg_pool(x, window, stride, dilation, divisor)
    if len(window) == 2:
        return F.avg_pool2d(x, window, stride, divisor_override=divisor)
    if x.device.type == "cpu" and x.dtype != torch.float32:
        x = x.float()  # torch has no CPU avg_pool3d for HALF and BF16
    return F.avg_pool3d(x, window, stride, divisor_override=divisor)


def _dilated_avg_pool(
    x: torch.Tensor,
    window: tuple[int, ...],
    stride: tuple[int, ...],
    dilation: tuple[int, ...],
    divisor: int | None,
) -> torch.Tensor:
    """Average pooling with a dilated window (torch has none): a depthwise convolution with
    a kernel of 1 / divisor, in FLOAT (torch's CPU convolution lacks HALF and BF16)."""
    count = divisor if divisor is not None else math.prod(window)
    channels = x.shape[1]
    kernel = torch.full((channels, 1, *window), 1.0 / count, dtype=torch.float32, device=x.device)
    conv = F.conv2d if len(window) == 2 else F.conv3d
    y = conv(x.float(), kernel, stride=stride, dilation=dilation, groups=channels)
    return y.to(x.dtype)


OPS = [Pooling()]
