"""2D max pooling as one Triton kernel that writes straight into the output (optionally
adding a bias per channel and applying ReLU after the maximum: see ops/fused.PoolBiasAct).

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
from . import fallback

TILES = {True: (8, 32, 2), False: (64, 16, 4)}
"""Per layout (channels-last or not): output positions (n, ho, wo) per program, channels per
program (at most), warps. The fastest for ResNet-50's stem pooling on an H200 (0.20 and 0.25
ms at batch 256 in HALF; 0.27 and 0.53 ms with 32 positions by 64 channels in both)."""


@triton.jit
def _max_pool_kernel(
    x_ptr,
    out_ptr,
    bias_ptr,
    positions,
    channels,
    height,
    width,
    x_n,
    x_c,
    x_h,
    x_w,
    o_n,
    o_c,
    o_h,
    o_w,
    OUT_HEIGHT: tl.constexpr,
    OUT_WIDTH: tl.constexpr,
    STRIDE_H: tl.constexpr,
    STRIDE_W: tl.constexpr,
    PAD_H: tl.constexpr,
    PAD_W: tl.constexpr,
    DIL_H: tl.constexpr,
    DIL_W: tl.constexpr,
    WINDOW_H: tl.constexpr,
    WINDOW_W: tl.constexpr,
    WIDE: tl.constexpr,
    HAS_BIAS: tl.constexpr,
    RELU: tl.constexpr,
    BLOCK_P: tl.constexpr,
    BLOCK_C: tl.constexpr,
):
    program = tl.program_id(0)
    if WIDE:
        program = program.to(tl.int64)
    position = program * BLOCK_P + tl.arange(0, BLOCK_P)
    wo = position % OUT_WIDTH
    ho = (position // OUT_WIDTH) % OUT_HEIGHT
    n = position // (OUT_WIDTH * OUT_HEIGHT)
    channel = tl.program_id(1) * BLOCK_C + tl.arange(0, BLOCK_C)
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
    if HAS_BIAS:
        best += tl.load(bias_ptr + channel, mask=channel < channels).to(tl.float32)[None, :]
    if RELU:
        best = tl.maximum(best, 0.0, propagate_nan=tl.PropagateNan.ALL)
    target = out_ptr + (n * o_n + ho * o_h + wo * o_w)[:, None] + channel[None, :] * o_c
    tl.store(target, best.to(out_ptr.dtype.element_ty), mask=inside)


def max_pool_2d(
    x: torch.Tensor,
    out: torch.Tensor,
    window: tuple[int, ...],
    stride: tuple[int, ...],
    padding: tuple[int, ...],
    dilation: tuple[int, ...],
    bias: torch.Tensor | None = None,
    relu: bool = False,
) -> bool:
    """out = max over each window of x (N, C, H, W), padding as -inf, then + bias (one value
    per channel) and ReLU when asked; False (nothing done) for other ranks or types."""
    kernel = "the max-pooling kernel"
    if x.dim() != 4 or out.dim() != 4 or len(window) != 2:
        return fallback.declined(kernel, "a pooling that is not 2D")
    if x.dtype != out.dtype or out.dtype not in FAST_KERNEL_TYPES:
        return fallback.declined(kernel, f"a {x.dtype} input and a {out.dtype} output")
    if bias is not None and (
        bias.dtype != out.dtype or bias.numel() != x.shape[1] or not bias.is_contiguous()
    ):
        return fallback.declined(kernel, "a bias of another size or type")
    batch, channels, height, width = x.shape
    _, _, out_height, out_width = out.shape
    positions = batch * out_height * out_width
    if positions == 0 or channels == 0:
        return True
    block_p, block_c, warps = TILES[x.stride(1) == 1]
    block_c = min(block_c, triton.next_power_of_2(channels))
    grid = (triton.cdiv(positions, block_p), triton.cdiv(channels, block_c))
    _max_pool_kernel[grid](
        x,
        out,
        out if bias is None else bias,
        positions,
        channels,
        height,
        width,
        *x.stride(),
        *out.stride(),
        OUT_HEIGHT=out_height,
        OUT_WIDTH=out_width,
        STRIDE_H=stride[0],
        STRIDE_W=stride[1],
        PAD_H=padding[0],
        PAD_W=padding[1],
        DIL_H=dilation[0],
        DIL_W=dilation[1],
        WINDOW_H=window[0],
        WINDOW_W=window[1],
        WIDE=max(_span(x), _span(out), positions + block_p) >= 2**31,
        HAS_BIAS=bias is not None,
        RELU=relu,
        BLOCK_P=block_p,
        BLOCK_C=block_c,
        num_warps=warps,
    )
    return True


def _span(tensor: torch.Tensor) -> int:
    """One past the largest element offset of `tensor` in its storage (its strides' reach)."""
    return 1 + sum(
        (size - 1) * stride for size, stride in zip(tensor.shape, tensor.stride(), strict=True)
    )
