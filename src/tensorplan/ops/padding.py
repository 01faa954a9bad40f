"""The padding op."""

from __future__ import annotations

from typing import Any

import torch

from ..types import LayerType
from .base import UNKNOWN, Ints, Op, ShapeError, TensorMeta


class Padding(Op):
    """IPaddingLayer: zeros before and after the trailing axes; negative padding crops.

    `pre_padding_nd` and `post_padding_nd` have one value per padded axis and apply to the
    innermost axes (TensorRT documents 2 of them; any count up to the rank works here).
    """

    name = "padding"
    reduced_precision = True
    layer_type = LayerType.PADDING
    attrs = {"pre_padding_nd": Ints(()), "post_padding_nd": Ints(())}

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (x,) = inputs
        pre, post = attrs["pre_padding_nd"], attrs["post_padding_nd"]
        if len(pre) != len(post):
            raise ShapeError(
                f"pre_padding_nd {list(pre)} and post_padding_nd {list(post)} must have the "
                "same number of values"
            )
        if len(pre) > x.rank:
            raise ShapeError(
                f"padding of {len(pre)} axes does not fit an input of shape {list(x.shape)}"
            )
        lead = x.rank - len(pre)
        shape = list(x.shape)
        for axis, before, after in zip(range(lead, x.rank), pre, post, strict=True):
            if shape[axis] == UNKNOWN:
                continue
            shape[axis] += before + after
            if shape[axis] < 0:
                raise ShapeError(
                    f"padding {before} before and {after} after axis {axis} of input shape "
                    f"{list(x.shape)} leaves a negative size"
                )
        return [TensorMeta(x.dtype, tuple(shape))]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x, out = inputs[0], outputs[0]
        out.zero_()
        pre = attrs["pre_padding_nd"]
        lead = x.dim() - len(pre)
        source = [slice(None)] * x.dim()
        target = [slice(None)] * x.dim()
        for axis, before in enumerate(pre, start=lead):
            # the kept part of the input, and where it lands in the output
            start = max(-before, 0)
            stop = min(x.shape[axis], out.shape[axis] - before)
            if stop <= start:
                return
            source[axis] = slice(start, stop)
            target[axis] = slice(start + before, stop + before)
        out[tuple(target)] = x[tuple(source)]


OPS = [Padding()]
