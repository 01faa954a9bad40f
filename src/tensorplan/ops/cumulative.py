"""The cumulative op: running sums and products along an axis."""

from __future__ import annotations

from typing import Any

import torch

from ..types import CumulativeOperation, LayerType
from .base import Bool, Enum, Op, ShapeError, TensorMeta
from .indexing import ARITHMETIC_TYPES, scalar_shape_value
from .shapes import normalize_axis


class Cumulative(Op):
    """ICumulativeLayer (ONNX CumSum, and CumProd where CumulativeOperation has PROD).

    y[j] combines x[0..j] (inclusive, forward), x[j..n-1] (inclusive, reverse),
    x[0..j-1] (exclusive, forward) or x[j+1..n-1] (exclusive, reverse); an empty range
    gives the operation's identity. The axis is a scalar INT32/INT64 shape tensor; negative
    axes count from the end. Integer results wrap around on overflow.
    """

    name = "cumulative"
    reduced_precision = True
    layer_type = LayerType.CUMULATIVE
    num_inputs = (2, 2)
    shape_inputs = frozenset({1})
    attrs = {
        "op": Enum(CumulativeOperation, CumulativeOperation.SUM),
        "exclusive": Bool(False),
        "reverse": Bool(False),
    }

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, axis_meta = inputs
        if x.dtype not in ARITHMETIC_TYPES:
            raise ShapeError(f"cumulative needs a numeric input, got {x.dtype.name}")
        if x.rank < 1:
            raise ShapeError("the input must have rank 1 or more, got a scalar")
        axis = scalar_shape_value(axis_meta, "the axis")
        if axis is not None:
            normalize_axis(axis, x.rank, "cumulative axis")
        return [TensorMeta(x.dtype, x.shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x, out = inputs[0], outputs[0]
        if out.numel() == 0:
            return
        axis = normalize_axis(int(inputs[1].reshape(-1)[0]), x.dim())
        scan, identity = _SCANS[attrs["op"].name]
        if attrs["reverse"]:
            x = x.flip(axis)
        if attrs["exclusive"]:
            first = torch.full_like(x.narrow(axis, 0, 1), identity)
            x = torch.cat([first, x.narrow(axis, 0, x.shape[axis] - 1)], dim=axis)
        result = scan(x, axis, dtype=x.dtype)
        out.copy_(result.flip(axis) if attrs["reverse"] else result)


_SCANS = {"SUM": (torch.cumsum, 0), "PROD": (torch.cumprod, 1)}
"""Scan and identity by operation name; PROD serves a CumulativeOperation.PROD extension."""


OPS = [Cumulative()]
