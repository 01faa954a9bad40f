"""Ops whose output shapes depend on input values: non-zero."""

from __future__ import annotations

from typing import Any

import torch

from ..types import DataType, LayerType
from .base import UNKNOWN, Op, TensorMeta


class NonZero(Op):
    """INonZeroLayer: the indices of the non-zero elements, shape [rank, count], row-major
    order, INT64; `count` is known only once the input's values are."""

    name = "non_zero"
    layer_type = LayerType.NON_ZERO
    data_dependent = True

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (x,) = inputs
        return [TensorMeta(DataType.INT64, (len(x.shape), UNKNOWN))]

    def run_dynamic(self, inputs: list[torch.Tensor], attrs: dict[str, Any]) -> list[torch.Tensor]:
        (x,) = inputs
        if x.dim() == 0:
            count = int(bool(x.item()))
            return [torch.zeros((0, count), dtype=torch.int64, device=x.device)]
        return [torch.nonzero(x).t().contiguous()]


OPS: list[Op] = [NonZero()]
