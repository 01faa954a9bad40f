"""Squeeze and unsqueeze: remove or insert size-1 dims at axes given as a shape tensor."""

from __future__ import annotations

from typing import Any

import torch

from ..types import Dims, LayerType
from .base import UNKNOWN, Op, ShapeError, TensorMeta
from .indexing import INDEX_TYPES
from .shapes import normalize_axis
from .shaping import _movable


class Squeeze(Op):
    """ISqueezeLayer (ONNX Squeeze with axes): removes the dims at `axes`, each of size 1.

    A dim unknown at build time may be squeezed; its size is checked when it is known.
    """

    name = "squeeze"
    reduced_precision = True
    layer_type = LayerType.SQUEEZE
    num_inputs = (2, 2)
    shape_inputs = frozenset({1})

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, axes_meta = inputs
        count = _axis_count(axes_meta)
        if count > x.rank:
            raise ShapeError(f"cannot squeeze {count} axes of input shape {list(x.shape)}")
        axes = _axes(axes_meta, x.rank)
        if axes is None:
            return [TensorMeta(x.dtype, (UNKNOWN,) * (x.rank - count))]
        for axis in axes:
            if x.shape[axis] not in (1, UNKNOWN):
                raise ShapeError(
                    f"cannot squeeze dimension {axis} of size {x.shape[axis]} "
                    f"(input shape {list(x.shape)}): only size-1 dimensions can be removed"
                )
        shape = tuple(d for axis, d in enumerate(x.shape) if axis not in axes)
        return [TensorMeta(x.dtype, shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        _reshape_into(inputs[0], outputs[0])


class Unsqueeze(Op):
    """IUnsqueezeLayer (ONNX Unsqueeze): inserts size-1 dims at `axes` of the output, which
    count from the end of the output when negative."""

    name = "unsqueeze"
    reduced_precision = True
    layer_type = LayerType.UNSQUEEZE
    num_inputs = (2, 2)
    shape_inputs = frozenset({1})

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, axes_meta = inputs
        rank = x.rank + _axis_count(axes_meta)
        if rank > Dims.MAX_DIMS:
            raise ShapeError(
                f"unsqueezing input shape {list(x.shape)} would give rank {rank}, "
                f"more than {Dims.MAX_DIMS}"
            )
        axes = _axes(axes_meta, rank)
        if axes is None:
            return [TensorMeta(x.dtype, (UNKNOWN,) * rank)]
        kept = iter(x.shape)
        shape = tuple(1 if axis in axes else next(kept) for axis in range(rank))
        return [TensorMeta(x.dtype, shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        _reshape_into(inputs[0], outputs[0])


def _axis_count(meta: TensorMeta) -> int:
    """How many axes the 1-D axes tensor holds (it sets the output rank, so must be known)."""
    if meta.dtype not in INDEX_TYPES or meta.rank != 1:
        raise ShapeError(
            f"axes must be a 1-D INT32 or INT64 shape tensor, got {meta.dtype.name} "
            f"of shape {list(meta.shape)}"
        )
    if meta.shape[0] == UNKNOWN:
        raise ShapeError("the number of axes must be known at build time")
    return meta.shape[0]


def _axes(meta: TensorMeta, rank: int) -> frozenset[int] | None:
    """The axes in [0, rank), checked to be in range and distinct; None when not known yet."""
    if meta.value is None:
        return None
    values = [int(v) for v in meta.value.tolist()]
    axes = frozenset(normalize_axis(axis, rank) for axis in values)
    if len(axes) != len(values):
        raise ShapeError(f"axes {values} name an axis twice")
    return axes


def _reshape_into(x: torch.Tensor, out: torch.Tensor) -> None:
    _movable(out).copy_(_movable(x).reshape(out.shape))


OPS = [Squeeze(), Unsqueeze()]
