"""2D max pooling as one Triton kernel that writes straight into the output.

torch's max pooling on CUDA also writes the argmax of every window (int64, four times the
output's bytes in HALF) and returns a new tensor that is then copied into the arena; here
each program takes a block of output positions by a block of channels, reads the window's
elements through the input's strides (channels-last: contiguous channels), and stores the
maximum. Padding never wins (-inf) and NaN propagates, as in torch. Imported only on CUDA.
"""

from __future__ import annotations

import torch
import triton
import triton.language as tl

from ..device import FAST_KERNEL_TYPES

POSITIONS = 32
"""Output positions (n, ho, wo) per program."""


@triton.jit
def _max_pool_kernel(
    x_ptr,
    out_ptr,
    positions,
    channels,
    height,
    width,
    out_height,
    out_width,
    x_n,
    x_c,
    x_h,
    x_w,
    o_n,
    o_c,
    o_h,
    o_w,
    STRIDE_H: tl.constexpr,
    STRIDE_W: tl.constexpr,
    PAD_H: tl.constexpr,
    PAD_W: tl.constexpr,
    DIL_H: tl.constexpr,
    DIL_W: tl.constexpr,
    WINDOW_H: tl.constexpr,
    WINDOW_W: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    position = tl.program_id(0).to(tl.int64) * BLOCK_P + tl.arange(0, BLOCK_P)
    channel = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
    wo = position % out_width
    ho = (position // out_width) % out_height
    n = position // (out_width * out_height)
    inside = (position < positions)[:, None] & (channel < channels)[None, :]
    base = x_ptr + n[:, None] * x_n + channel[None, :] * x_c
    best = tl.full((BLOCK_P, BLOCK_C), float("-inf"), tl.float32)
    for kh in tl.static_range(WINDOW_H):
        hi = ho * STRIDE_H - PAD_H + kh * DIL_H
        for kw in tl.static_range(WINDOW_W):
            wi = wo * STRIDE_W - PAD_W + kw * DIL_W
            valid = (hi >= 0) & (hi < height) & (wi >= 0) & (wi < width)
            value = tl.load(
                base + (hi * x_h + wi * x_w)[:, None],
                mask=inside & valid[:, None],
                other=float("-inf"),
            ).to(tl.float32)
            best = tl.where((value > best) | (value != value), value, best)
    target = out_ptr + (n * o_n + ho * o_h + wo * o_w)[:, None] + channel[None, :] * o_c
    tl.store(target, best.to(out_ptr.dtype.element_ty), mask=inside)


def max_pool_2d(
    x: torch.Tensor,
    out: torch.Tensor,
    window: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
) -> bool:
    """out = max over each window of x (N, C, H, W), padding as -inf; False (nothing done)
    for other ranks or types."""
    if x.dim() != 4 or out.dim() != 4 or x.dtype != out.dtype:
        return False
    if out.dtype not in FAST_KERNEL_TYPES or len(window) != 2:
        return False
    batch, channels, height, width = x.shape
    _, _, out_height, out_width = out.shape
    positions = batch * out_height * out_width
    if positions == 0 or channels == 0:
        return True
    block_c = min(64, triton.next_power_of_2(channels))
    grid = (triton.cdiv(positions, POSITIONS), triton.cdiv(channels, block_c))
    _max_pool_kernel[grid](
        x,
        out,
        positions,
        channels,
        height,
        width,
        out_height,
        out_width,
        *x.stride(),
        *out.stride(),
        STRIDE_H=stride[0],
        STRIDE_W=stride[1],
        PAD_H=padding[0],
        PAD_W=padding[1],
        DIL_H=dilation[0],
        DIL_W=dilation[1],
        WINDOW_H=window[0],
        WINDOW_W=window[1],
        BLOCK_P=POSITIONS,
        BLOCK_C=block_c,
    )
    return True
