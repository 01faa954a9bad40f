"""Layer normalization (after an optional residual add) and RMS normalization as one Triton
kernel per row.

torch's layer_norm returns a new tensor, which then has to be copied into the arena, and a
residual add before it is a pass of its own: this kernel reads x (and the residual) once and
writes the normalized rows straight into the output. RMS normalization is the same kernel
without the centering and the bias. Statistics in FLOAT. `layer_norm` and `rms_norm` say
False for layouts or widths they do not handle, and the caller uses torch. Imported only on
CUDA (Triton comes with torch's CUDA builds).
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..device import FAST_KERNEL_TYPES
from . import fallback

MAX_WIDTH = 16384
"""Widest row one program normalizes (the whole row sits in registers)."""


@triton.jit
def _normalize_kernel(
    x_ptr,
    residual_ptr,
    scale_ptr,
    bias_ptr,
    out_ptr,
    width,
    epsilon,
    HAS_RESIDUAL: tl.constexpr,
    CENTERED: tl.constexpr,
    BLOCK: tl.constexpr,
):
    columns = tl.arange(0, BLOCK)
    inside = columns < width
    offsets = tl.program_id(0).to(tl.int64) * width + columns
    x = tl.load(x_ptr + offsets, mask=inside, other=0.0).to(tl.float32)
    if HAS_RESIDUAL:
        x += tl.load(residual_ptr + offsets, mask=inside, other=0.0).to(tl.float32)
    if CENTERED:  # layer norm; RMS norm takes the mean square of x itself
        x = tl.where(inside, x - tl.sum(x, axis=0) / width, 0.0)
    mean_square = tl.sum(x * x, axis=0) / width
    scale = tl.load(scale_ptr + columns, mask=inside).to(tl.float32)
    y = x / tl.sqrt(mean_square + epsilon) * scale
    if CENTERED:
        y += tl.load(bias_ptr + columns, mask=inside).to(tl.float32)
    tl.store(out_ptr + offsets, y.to(out_ptr.dtype.element_ty), mask=inside)


def layer_norm(
    x: torch.Tensor,
    residual: torch.Tensor | None,
    scale: torch.Tensor,
    bias: torch.Tensor,
    epsilon: float,
    out: torch.Tensor,
) -> bool:
    """out = layer_norm(x + residual) over rows of scale.numel() elements; False (nothing
    done) unless every tensor is dense and of one floating type."""
    return _normalize(x, residual, scale, bias, epsilon, out)


def rms_norm(x: torch.Tensor, scale: torch.Tensor, epsilon: float, out: torch.Tensor) -> bool:
    """out = x / sqrt(mean(x^2) + epsilon) * scale over rows of scale.numel() elements; False
    (nothing done) unless every tensor is dense and of one floating type."""
    return _normalize(x, None, scale, None, epsilon, out)


def _normalize(
    x: torch.Tensor,
    residual: torch.Tensor | None,
    scale: torch.Tensor,
    bias: torch.Tensor | None,
    epsilon: float,
    out: torch.Tensor,
) -> bool:
    """Layer norm with a bias, RMS norm without one."""
    width = scale.numel()
    tensors = [x, scale, out] + [t for t in (bias, residual) if t is not None]
    kernel = "the normalization kernel"
    if width == 0 or width > MAX_WIDTH:
        return fallback.declined(kernel, f"rows of {width} elements, at most {MAX_WIDTH}")
    if out.dtype not in FAST_KERNEL_TYPES:
        return fallback.declined(kernel, f"{out.dtype} output")
    if any(t.dtype != out.dtype or not t.is_contiguous() for t in tensors):
        return fallback.declined(kernel, "inputs of another type or not contiguous")
    if x.shape != out.shape or (residual is not None and residual.shape != out.shape):
        return fallback.declined(kernel, "a broadcast input or residual")
    if (bias is not None and bias.numel() != width) or out.numel() % width:
        return fallback.declined(kernel, "a scale or bias of another width")
    rows = out.numel() // width
    if rows == 0:
        return True
    block = triton.next_power_of_2(width)
    _normalize_kernel[(rows,)](
        x,
        x if residual is None else residual,
        scale,
        scale if bias is None else bias,
        out,
        width,
        epsilon,
        HAS_RESIDUAL=residual is not None,
        CENTERED=bias is not None,
        BLOCK=block,
        num_warps=4 if block <= 2048 else 8,
    )
    return True
