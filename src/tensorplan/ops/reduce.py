"""Reductions over axes given as TensorRT bitmasks: reduce and top-k."""

from __future__ import annotations

from typing import Any

import torch

from ..types import FLOATS, DataType, LayerType, ReduceOperation, TopKOperation
from .base import UNKNOWN, Bool, Enum, Int, Op, ShapeError, TensorMeta
from .shapes import axes_from_mask, numel

INTEGERS = frozenset({DataType.INT32, DataType.INT64})
"""Integer types TensorRT reduces (INT8 is a quantized type there, with scales we do not model)."""


class Reduce(Op):
    """IReduceLayer: SUM, PROD, MAX, MIN or AVG over the axes of the bitmask.

    Integer AVG truncates toward zero (as integer DIV does). Reducing no elements gives the
    identity of the operation: 0, 1, the lowest or highest value of the type; AVG gives NaN
    (0 for integers).
    """

    name = "reduce"
    reduced_precision = True
    reads_channels_last = True
    reads_strided_views = True
    layer_type = LayerType.REDUCE
    attrs = {
        "op": Enum(ReduceOperation, ReduceOperation.SUM),
        "axes": Int(1, low=0),
        "keep_dims": Bool(False),
    }

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (x,) = inputs
        if x.dtype not in FLOATS | INTEGERS:
            raise ShapeError(
                f"reduce needs a FLOAT, HALF, BF16, INT32 or INT64 input, got {x.dtype.name}"
            )
        axes = _axes(attrs["axes"], x.rank, "reduce")
        if attrs["keep_dims"]:
            shape = tuple(1 if axis in axes else d for axis, d in enumerate(x.shape))
        else:
            shape = tuple(d for axis, d in enumerate(x.shape) if axis not in axes)
        return [TensorMeta(x.dtype, shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x, out = inputs[0], outputs[0]
        axes = axes_from_mask(attrs["axes"], x.dim())
        keep = out.view([1 if axis in axes else d for axis, d in enumerate(x.shape)])
        operation = attrs["op"]
        count = numel([x.shape[axis] for axis in axes])
        if count == 0:
            keep.fill_(_empty_result(operation, x.dtype))
        elif operation == ReduceOperation.SUM:
            torch.sum(x, axes, keepdim=True, dtype=x.dtype, out=keep)
        elif operation == ReduceOperation.MAX:
            torch.amax(x, axes, keepdim=True, out=keep)
        elif operation == ReduceOperation.MIN:
            torch.amin(x, axes, keepdim=True, out=keep)
        elif operation == ReduceOperation.PROD:
            # torch's prod takes one dim: move the reduced axes last and flatten them
            kept = x.dim() - len(axes)
            flat = x.movedim(axes, tuple(range(kept, x.dim()))).flatten(kept)
            torch.prod(flat, -1, dtype=x.dtype, out=out.view(flat.shape[:-1]))
        elif x.is_floating_point():
            torch.mean(x, axes, keepdim=True, out=keep)
        else:
            total = torch.sum(x, axes, keepdim=True, dtype=torch.int64)
            keep.copy_(torch.div(total, count, rounding_mode="trunc"))


def _empty_result(operation: ReduceOperation, dtype: torch.dtype) -> float | int:
    """The reduction of no elements."""
    if operation == ReduceOperation.SUM:
        return 0
    if operation == ReduceOperation.PROD:
        return 1
    if operation == ReduceOperation.AVG:
        return float("nan") if dtype.is_floating_point else 0
    if dtype.is_floating_point:
        return float("-inf") if operation == ReduceOperation.MAX else float("inf")
    info = torch.iinfo(dtype)
    return info.min if operation == ReduceOperation.MAX else info.max


class TopK(Op):
    """ITopKLayer: the k largest (MAX) or smallest (MIN) values along one axis, and their indices.

    Values are sorted, largest first for MAX and smallest first for MIN; equal values keep
    their input order (lower index first). Input 1, when set, is k as a scalar shape tensor
    and overrides the `k` attribute.
    """

    name = "topk"
    reduced_precision = True
    layer_type = LayerType.TOPK
    num_inputs = (1, 2)
    num_outputs = 2
    shape_inputs = frozenset({1})
    attrs = {
        "op": Enum(TopKOperation, TopKOperation.MAX),
        "k": Int(1, low=0),
        "axes": Int(1, low=0),
    }

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, k_input = (*inputs, None)[:2]
        if x.dtype not in FLOATS | INTEGERS:
            raise ShapeError(
                f"top-k needs a FLOAT, HALF, BF16, INT32 or INT64 input, got {x.dtype.name}"
            )
        axes = _axes(attrs["axes"], x.rank, "top-k")
        if len(axes) != 1:
            raise ShapeError(f"top-k needs exactly one axis, got axes {list(axes)}")
        (axis,) = axes
        k = attrs["k"] if k_input is None else _k_value(k_input)
        length = x.shape[axis]
        if k is not None and k < 1:
            raise ShapeError(f"k must be positive, got {k}")
        if k is not None and length != UNKNOWN and k > length:
            raise ShapeError(
                f"k = {k} is larger than axis {axis} of the input {list(x.shape)} ({length})"
            )
        size = UNKNOWN if k is None else k
        shape = tuple(size if index == axis else d for index, d in enumerate(x.shape))
        return [TensorMeta(x.dtype, shape), TensorMeta(DataType.INT32, shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x = inputs[0]
        values, indices = outputs
        (axis,) = axes_from_mask(attrs["axes"], x.dim())
        k = values.shape[axis]
        descending = attrs["op"] == TopKOperation.MAX
        # a stable full sort, not torch.topk, so that ties keep the lower index first
        ordered, order = torch.sort(x, dim=axis, descending=descending, stable=True)
        values.copy_(ordered.narrow(axis, 0, k))
        indices.copy_(order.narrow(axis, 0, k))


def _k_value(meta: TensorMeta) -> int | None:
    """k from the shape tensor of input 1; None while its value is not known."""
    if meta.dtype not in INTEGERS or meta.rank != 0:
        raise ShapeError(
            f"k (input 1) must be a scalar INT32 or INT64 tensor, got {meta.dtype.name} "
            f"of shape {list(meta.shape)}"
        )
    return None if meta.value is None else int(meta.value)


def _axes(mask: int, rank: int, what: str) -> tuple[int, ...]:
    """The axes of a reduction's bitmask; ShapeError for no axes or axes past the rank."""
    axes = axes_from_mask(mask, rank)
    if not axes:
        raise ShapeError(f"{what} needs at least one axis; the axes bitmask is 0")
    return axes


OPS = [Reduce(), TopK()]
