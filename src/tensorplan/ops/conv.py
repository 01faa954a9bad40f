"""Convolution ops: convolution and deconvolution (transposed convolution), 2D and 3D.

Inputs are (x, kernel, bias?): x is NCHW or NCDHW; the kernel is (K, C/G, *kernel_size) for
convolution (TensorRT's GKCRS weights) and (C, K/G, *kernel_size) for deconvolution (CKRS);
the bias is (K,). Output sizes follow TensorRT's PaddingMode formulas (NvInfer.h).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from ..device import FAST_KERNEL_TYPES
from ..types import FLOATS, LayerType, PaddingMode
from . import fallback
from .base import UNKNOWN, Enum, Int, Ints, Op, ShapeError, TensorMeta
from .shapes import numel

SPATIAL_RANKS = (2, 3)


class SpatialDims(Ints):
    """One value per spatial dimension (2D or 3D), each at least `low`.

    Empty means TensorRT's default for the kernel's rank (ones for strides and dilations,
    zeros for paddings); layers fill the defaults in when they are created.
    """

    def __init__(self, low: int) -> None:
        super().__init__((), max_len=max(SPATIAL_RANKS))
        self.low = low

    def check(self, value: Any) -> tuple[int, ...]:
        values = super().check(value)
        if len(values) not in (0, *SPATIAL_RANKS):
            raise ValueError(f"expected 2 or 3 values (one per spatial dimension), got {values}")
        if any(v < self.low for v in values):
            raise ValueError(f"values must be at least {self.low}, got {list(values)}")
        return values

    def describe(self) -> str:
        return f"list of 0, 2 or 3 integers >= {self.low} (empty: TensorRT's default)"


class _Convolution(Op):
    """What convolution and deconvolution share: attributes, input checks, kernel layout."""

    num_inputs = (2, 3)
    attrs = {
        "num_output_maps": Int(1, low=1),
        "kernel_size_nd": SpatialDims(low=1),
        "stride_nd": SpatialDims(low=1),
        "pre_padding": SpatialDims(low=0),
        "post_padding": SpatialDims(low=0),
        "padding_mode": Enum(PaddingMode, PaddingMode.EXPLICIT_ROUND_DOWN),
        "num_groups": Int(1, low=1),
        "dilation_nd": SpatialDims(low=1),
    }

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, kernel, bias = (*inputs, None)[:3]
        spatial = spatial_attrs(attrs)
        rank = len(spatial["kernel_size_nd"])
        if x.rank != rank + 2:
            raise ShapeError(
                f"a {rank}D {self.name} needs an input of rank {rank + 2} "
                f"({'NCHW' if rank == 2 else 'NCDHW'}), got shape {list(x.shape)}"
            )
        for meta, what in ((x, "the input"), (kernel, "the kernel"), (bias, "the bias")):
            if meta is not None and meta.dtype not in FLOATS:
                raise ShapeError(
                    f"{what} must be FLOAT, HALF or BF16, got {meta.dtype.name} "
                    "(INT8 and FP8 convolutions need quantize/dequantize layers)"
                )
        channels, maps, groups = x.shape[1], attrs["num_output_maps"], attrs["num_groups"]
        if channels == UNKNOWN:
            raise ShapeError(f"the channel dimension of the input must be known, got {x.shape}")
        for count, what in ((channels, "input channels"), (maps, "output maps")):
            if count % groups:
                raise ShapeError(f"{count} {what} cannot be split into {groups} groups")
        expected = self.kernel_shape(channels, maps, groups, spatial["kernel_size_nd"])
        if not _fits(kernel.shape, expected):
            raise ShapeError(
                f"the kernel has shape {list(kernel.shape)} ({numel(kernel.shape)} weights); "
                f"expected {list(expected)} ({numel(expected)} weights) for {channels} input "
                f"channels, {maps} output maps and {groups} groups"
            )
        if bias is not None and not _fits(bias.shape, (maps,)):
            raise ShapeError(
                f"the bias has shape {list(bias.shape)}; expected [{maps}] "
                "(one value per output map) or no bias"
            )
        sizes = [
            self.geometry(size, axis, spatial, attrs["padding_mode"])[0]
            for axis, size in enumerate(x.shape[2:])
        ]
        return [TensorMeta(x.dtype, (x.shape[0], maps, *sizes))]

    def kernel_shape(
        self, channels: int, maps: int, groups: int, kernel_size: tuple[int, ...]
    ) -> tuple[int, ...]:
        raise NotImplementedError

    def geometry(
        self, size: int, axis: int, spatial: dict[str, tuple[int, ...]], mode: PaddingMode
    ) -> tuple[int, ...]:
        """The output size along spatial `axis`, then what `run` needs to produce it."""
        raise NotImplementedError


class Convolution(_Convolution):
    """IConvolutionLayer: cross-correlation with groups, dilation and TensorRT's padding modes."""

    name = "convolution"
    reduced_precision = True
    reads_channels_last = True
    layer_type = LayerType.CONVOLUTION

    def kernel_shape(
        self, channels: int, maps: int, groups: int, kernel_size: tuple[int, ...]
    ) -> tuple[int, ...]:
        return (maps, channels // groups, *kernel_size)

    def geometry(
        self, size: int, axis: int, spatial: dict[str, tuple[int, ...]], mode: PaddingMode
    ) -> tuple[int, ...]:
        out, pre, _, end = window_geometry(
            size,
            _extents(spatial)[axis],
            spatial["stride_nd"][axis],
            spatial["pre_padding"][axis],
            spatial["post_padding"][axis],
            mode,
            f"spatial dimension {axis}: the dilated kernel",
        )
        return out, pre, end

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        x, kernel, bias = (*inputs, None)[:3]
        if self.run_into(x, kernel, outputs[0], attrs):
            if bias is not None:
                add_channel_bias(outputs[0], bias)
            return
        x, padding = self._padded(x, attrs)
        spatial = spatial_attrs(attrs)
        convolve = F.conv2d if len(padding) == 2 else F.conv3d
        result = convolve(
            x,
            kernel.to(x.dtype),
            None if bias is None else bias.to(x.dtype),
            stride=spatial["stride_nd"],
            padding=padding,
            dilation=spatial["dilation_nd"],
            groups=attrs["num_groups"],
        )
        outputs[0].copy_(result)

    def run_into(
        self, x: torch.Tensor, kernel: torch.Tensor, out: torch.Tensor, attrs: dict
    ) -> bool:
        """Convolve without bias straight into `out` through cuDNN, in `out`'s memory format
        (NCHW or channels-last), when the device, types and layouts allow; False otherwise
        (nothing done)."""
        if not out.is_cuda:
            return False
        kernel_name = "cuDNN's convolution into the arena"
        if not torch.backends.cudnn.is_available():
            return fallback.declined(kernel_name, "cuDNN is not available")
        if not x.dtype == kernel.dtype == out.dtype or out.dtype not in FAST_KERNEL_TYPES:
            return fallback.declined(kernel_name, f"{x.dtype} input, {out.dtype} output")
        layout = _dense_format(out)
        if layout is None or not kernel.is_contiguous(memory_format=layout):
            # cuDNN would copy the kernel (or the output) on every run
            return fallback.declined(kernel_name, "an output or kernel in another layout")
        x, padding = self._padded(x, attrs)
        spatial = spatial_attrs(attrs)
        torch.ops.aten.cudnn_convolution.out(
            x,
            kernel,
            padding,
            spatial["stride_nd"],
            spatial["dilation_nd"],
            attrs["num_groups"],
            torch.backends.cudnn.benchmark,  # as torch's own convolutions
            False,  # deterministic
            torch.backends.cudnn.allow_tf32,
            out=out,
        )
        return True

    def _padded(self, x: torch.Tensor, attrs: dict) -> tuple[torch.Tensor, list[int]]:
        """The input and torch's symmetric padding.

        Windows start at -pre either way, so the pre-padding serves as torch's whenever torch
        then makes TensorRT's number of windows: the padding after the input is read only as
        far as the last window reaches (a stride-2 convolution's post-padding often not at
        all). Otherwise the input is padded (or cropped) explicitly, a copy of it.
        """
        spatial = spatial_attrs(attrs)
        mode = attrs["padding_mode"]
        geometry = [
            self.geometry(size, axis, spatial, mode) for axis, size in enumerate(x.shape[2:])
        ]
        pre = [g[1] for g in geometry]
        symmetric = [
            (size + 2 * pad - extent) // stride + 1
            for size, pad, extent, stride in zip(
                x.shape[2:], pre, _extents(spatial), spatial["stride_nd"], strict=True
            )
        ]
        if symmetric == [g[0] for g in geometry]:
            return x, pre
        return F.pad(x, pad_arg(pre, [g[2] for g in geometry])), [0] * len(pre)


def _extents(spatial: dict[str, tuple[int, ...]]) -> list[int]:
    """The dilated kernel's size along each spatial dimension."""
    return [
        dilation * (size - 1) + 1
        for dilation, size in zip(spatial["dilation_nd"], spatial["kernel_size_nd"], strict=True)
    ]


def add_channel_bias(out: torch.Tensor, bias: torch.Tensor) -> None:
    """out += bias, one value per channel (dim 1), in place."""
    out.add_(bias.view(-1, *[1] * (out.dim() - 2)))


def _dense_format(tensor: torch.Tensor) -> torch.memory_format | None:
    """The memory format `tensor` is dense in (channels-last first, as both hold for some
    shapes); None when it is dense in neither."""
    channels_last = {4: torch.channels_last, 5: torch.channels_last_3d}.get(tensor.dim())
    if channels_last is not None and tensor.is_contiguous(memory_format=channels_last):
        return channels_last
    return torch.contiguous_format if tensor.is_contiguous() else None


class Deconvolution(_Convolution):
    """IDeconvolutionLayer: transposed convolution; padding crops the full output."""

    name = "deconvolution"
    reduced_precision = True
    layer_type = LayerType.DECONVOLUTION

    def kernel_shape(
        self, channels: int, maps: int, groups: int, kernel_size: tuple[int, ...]
    ) -> tuple[int, ...]:
        return (channels, maps // groups, *kernel_size)

    def geometry(
        self, size: int, axis: int, spatial: dict[str, tuple[int, ...]], mode: PaddingMode
    ) -> tuple[int, ...]:
        """Output size, then the pre and post crop of the full (unpadded) result."""
        stride = spatial["stride_nd"][axis]
        extent = _extents(spatial)[axis]
        if mode in (PaddingMode.SAME_UPPER, PaddingMode.SAME_LOWER):
            # TensorRT: O = min(I * S, (I - 1) * S + DK), P = max(DK - S, 0)
            total = max(extent - stride, 0)
            small, large = total // 2, total - total // 2
            pre, post = (small, large) if mode == PaddingMode.SAME_UPPER else (large, small)
        else:
            # TensorRT: O = (I - 1) * S + DK - (B + A), for both explicit modes
            pre, post = spatial["pre_padding"][axis], spatial["post_padding"][axis]
        if size == UNKNOWN:
            return UNKNOWN, pre, post
        out = (size - 1) * stride + extent - pre - post
        if out < 1:
            raise ShapeError(
                f"spatial dimension {axis}: the padding ({pre} + {post}) leaves no output of "
                f"the full deconvolution size {(size - 1) * stride + extent}"
            )
        return out, pre, post

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        x, kernel, bias = (*inputs, None)[:3]
        spatial = spatial_attrs(attrs)
        mode = attrs["padding_mode"]
        geometry = [
            self.geometry(size, axis, spatial, mode) for axis, size in enumerate(x.shape[2:])
        ]
        # torch crops the same amount on both sides; the rest of an asymmetric crop is sliced
        padding = [min(pre, post) for _, pre, post in geometry]
        transpose = F.conv_transpose2d if len(geometry) == 2 else F.conv_transpose3d
        result = transpose(
            x,
            kernel.to(x.dtype),
            None if bias is None else bias.to(x.dtype),
            stride=spatial["stride_nd"],
            padding=padding,
            dilation=spatial["dilation_nd"],
            groups=attrs["num_groups"],
        )
        for axis, ((out, pre, _), symmetric) in enumerate(zip(geometry, padding, strict=True)):
            result = result.narrow(axis + 2, pre - symmetric, out)
        outputs[0].copy_(result)


def window_geometry(
    size: int, extent: int, stride: int, pre: int, post: int, mode: PaddingMode, where: str
) -> tuple[int, int, int, int]:
    """TensorRT's output size and padding of a sliding window (convolution and pooling).

    `extent` is the window's (dilated) size; `where` names it in errors. Returns (output size,
    pre-padding, declared post-padding, the padding after the input that makes the last
    window end exactly at the padded end: negative where the input's tail is never read).
    An UNKNOWN size gives an UNKNOWN output size.
    """
    if mode in (PaddingMode.SAME_UPPER, PaddingMode.SAME_LOWER):
        if size == UNKNOWN:
            return UNKNOWN, 0, 0, 0
        # TensorRT: P = floor((I - 1) / S) * S + DK - I; never negative here (as ONNX's auto_pad)
        total = max(0, (size - 1) // stride * stride + extent - size)
        small, large = total // 2, total - total // 2
        pre, post = (small, large) if mode == PaddingMode.SAME_UPPER else (large, small)
        out = -(-size // stride)
    else:
        if size == UNKNOWN:
            return UNKNOWN, pre, post, 0
        padded = size + pre + post
        if padded < extent:
            raise ShapeError(
                f"{where} ({extent}) is larger than the padded input "
                f"({size} + {pre} + {post} = {padded})"
            )
        if mode == PaddingMode.EXPLICIT_ROUND_UP:
            out = -(-(padded - extent) // stride) + 1
        else:
            out = (padded - extent) // stride + 1
    return out, pre, post, (out - 1) * stride + extent - size - pre


def pad_arg(pre: Sequence[int], post: Sequence[int]) -> list[int]:
    """F.pad's argument for padding the trailing dims: last dim first, (pre, post) each."""
    pairs = zip(reversed(pre), reversed(post), strict=True)
    return [amount for pair in pairs for amount in pair]


def spatial_defaults(rank: int) -> dict[str, tuple[int, ...]]:
    """TensorRT's defaults of the per-dimension attributes for a `rank`-D window."""
    return {
        "stride_nd": (1,) * rank,
        "dilation_nd": (1,) * rank,
        "pre_padding": (0,) * rank,
        "post_padding": (0,) * rank,
    }


def spatial_attrs(attrs: dict[str, Any], size_key: str = "kernel_size_nd") -> dict:
    """The per-dimension attributes with defaults filled in; ShapeError if ranks disagree."""
    rank = len(attrs[size_key])
    if rank not in SPATIAL_RANKS:
        raise ShapeError(f"{size_key} must have 2 or 3 dimensions, got {list(attrs[size_key])}")
    spatial = {size_key: attrs[size_key]}
    for key, default in spatial_defaults(rank).items():
        if key not in attrs:
            continue
        value = attrs[key] or default
        if len(value) != rank:
            raise ShapeError(
                f"{key} has {len(value)} values but {size_key} {list(attrs[size_key])} has {rank}"
            )
        spatial[key] = value
    return spatial


def _fits(shape: tuple[int, ...], expected: tuple[int, ...]) -> bool:
    """Whether `shape` is `expected`, where UNKNOWN dims of `shape` match anything."""
    return len(shape) == len(expected) and all(
        d in (UNKNOWN, e) for d, e in zip(shape, expected, strict=True)
    )


OPS = [Convolution(), Deconvolution()]
