"""A convolution's epilogue as one Triton kernel: out = relu?(out + bias[channel] + residual).

cuDNN writes the convolution straight into the arena but adds no bias; done with torch ops,
bias, residual and ReLU are three passes over the output. This kernel makes them one. It
runs on dense NCHW or NHWC (channels-last) outputs; `epilogue` says False for anything else
and the caller uses torch ops. Imported only on CUDA (Triton comes with torch's CUDA builds).
"""

from __future__ import annotations

import math

import torch
import triton
import triton.language as tl

from ..device import FAST_KERNEL_TYPES
from . import fallback

BLOCK = 1024


@triton.jit
def _epilogue_kernel(
    out_ptr,
    bias_ptr,
    residual_ptr,
    count,
    channels,
    channel_stride,
    HAS_BIAS: tl.constexpr,
    HAS_RESIDUAL: tl.constexpr,
    RELU: tl.constexpr,
    BLOCK: tl.constexpr,
):
    offsets = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    inside = offsets < count
    value = tl.load(out_ptr + offsets, mask=inside).to(tl.float32)
    if HAS_BIAS:
        channel = (offsets // channel_stride) % channels
        value += tl.load(bias_ptr + channel, mask=inside).to(tl.float32)
    if HAS_RESIDUAL:
        value += tl.load(residual_ptr + offsets, mask=inside).to(tl.float32)
    if RELU:
        value = tl.maximum(value, 0.0, propagate_nan=tl.PropagateNan.ALL)  # NaN stays, as torch
    tl.store(out_ptr + offsets, value.to(out_ptr.dtype.element_ty), mask=inside)


def epilogue(
    out: torch.Tensor, bias: torch.Tensor | None, residual: torch.Tensor | None, relu: bool
) -> bool:
    """Apply bias (one value per channel, dim 1), residual and ReLU to `out` in place, in one
    pass; False (nothing done) when the tensors' layouts do not allow it."""
    channel_stride = _channel_stride(out)
    kernel = "the convolution epilogue kernel"
    if channel_stride is None or out.dtype not in FAST_KERNEL_TYPES:
        return fallback.declined(kernel, f"a {out.dtype} output in neither NCHW nor NHWC")
    if residual is not None and (
        residual.shape != out.shape
        or residual.stride() != out.stride()
        or residual.dtype != out.dtype
    ):
        return fallback.declined(kernel, "a residual of another layout or type")
    if bias is not None and (
        bias.numel() != out.shape[1] or bias.dtype != out.dtype or not bias.is_contiguous()
    ):
        return fallback.declined(kernel, "a bias of another size or type")
    count = out.numel()
    if count == 0:
        return True
    _epilogue_kernel[(triton.cdiv(count, BLOCK),)](
        out,
        out if bias is None else bias,
        out if residual is None else residual,
        count,
        out.shape[1],
        channel_stride,
        HAS_BIAS=bias is not None,
        HAS_RESIDUAL=residual is not None,
        RELU=relu,
        BLOCK=BLOCK,
    )
    return True


def _channel_stride(out: torch.Tensor) -> int | None:
    """How many consecutive elements share a channel in `out`'s memory: the spatial size for
    dense NCHW, 1 for dense channels-last; None for other layouts."""
    if out.dim() < 3:
        return None
    if out.is_contiguous():
        return math.prod(out.shape[2:])
    formats = {4: torch.channels_last, 5: torch.channels_last_3d}
    if out.dim() in formats and out.is_contiguous(memory_format=formats[out.dim()]):
        return 1
    return None
