"""Ops that move elements by index: scatter, one-hot and reverse sequence.

Indices follow ONNX: negative ones count from the end of their axis. Indices still out of
range after that never fault: a scatter drops their updates, a one-hot row stays all "off".
"""

from __future__ import annotations

import enum
from typing import Any

import torch

from ..types import DataType, LayerType, ScatterMode
from .base import UNKNOWN, Enum, Int, Op, ShapeError, TensorMeta
from .shapes import normalize_axis, numel, same_dtype
from .shaping import _movable

INDEX_TYPES = frozenset({DataType.INT32, DataType.INT64})

ARITHMETIC_TYPES = frozenset(
    {
        DataType.FLOAT,
        DataType.HALF,
        DataType.BF16,
        DataType.DOUBLE,
        DataType.INT8,
        DataType.INT16,
        DataType.INT32,
        DataType.INT64,
        DataType.UINT8,
    }
)
"""Types torch computes sums, products and comparisons in (on CPU and CUDA)."""


class ScatterReduction(enum.IntEnum):
    """How a scatter combines an update with the value already there (ONNX's `reduction`).

    A tensorplan extension: TensorRT 10's IScatterLayer only overwrites (NONE).
    """

    NONE = 0
    ADD = 1
    MUL = 2
    MAX = 3
    MIN = 4


class Scatter(Op):
    """IScatterLayer: `data` with `updates` written at `indices` (ONNX ScatterElements in
    ELEMENT mode, ScatterND in ND mode).

    With reduction NONE and an index repeated, the update that comes last in the indices'
    row-major order wins (ONNX leaves it undefined; this is deterministic on every device).
    Indices out of range (after negatives count from the end) are ignored.
    """

    name = "scatter"
    reduced_precision = True
    layer_type = LayerType.SCATTER
    num_inputs = (3, 3)
    attrs = {
        "mode": Enum(ScatterMode, ScatterMode.ELEMENT),
        "axis": Int(0),
        "reduction": Enum(ScatterReduction, ScatterReduction.NONE),
    }

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        data, indices, updates = inputs
        same_dtype([data, updates], "data and updates")
        if indices.dtype not in INDEX_TYPES:
            raise ShapeError(f"indices must be INT32 or INT64, got {indices.dtype.name}")
        reduction = attrs["reduction"]
        if reduction != ScatterReduction.NONE and data.dtype not in _REDUCIBLE_TYPES:
            raise ShapeError(f"reduction {reduction.name} does not take {data.dtype.name} data")
        if data.rank < 1:
            raise ShapeError("the data input must have rank 1 or more, got a scalar")
        if attrs["mode"] == ScatterMode.ND:
            _check_nd(data.shape, indices.shape, updates.shape)
        else:
            _check_element(data.shape, indices.shape, updates.shape, attrs["axis"])
        return [TensorMeta(data.dtype, data.shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        data, indices, updates = inputs
        out = outputs[0]
        if out.numel() == 0 or indices.numel() == 0:
            _movable(out).copy_(_movable(data))
            return
        reduction = attrs["reduction"]
        if data.dtype == torch.bool and reduction != ScatterReduction.NONE:
            # booleans combine as 0/1: ADD and MAX are OR, MUL and MIN are AND (as numpy's)
            data, updates = data.view(torch.uint8), updates.view(torch.uint8)
            reduction = _BOOLEAN_REDUCTIONS[reduction]
        data, updates = _movable(data), _movable(updates)
        indices = indices.long()
        if attrs["mode"] == ScatterMode.ND:
            depth = indices.shape[-1]
            rows, valid = _flat_rows(indices.reshape(-1, depth), data.shape[:depth])
            count = numel(data.shape[:depth])
            table = data.reshape(count, -1)
            rows = torch.where(valid, rows, count).unsqueeze(-1).expand(-1, table.shape[1])
            result = _scatter(table, 0, rows, updates.reshape(rows.shape), reduction)
        else:
            axis = normalize_axis(attrs["axis"], data.dim())
            size = data.shape[axis]
            indices = torch.where(indices < 0, indices + size, indices)
            valid = (indices >= 0) & (indices < size)
            result = _scatter(data, axis, torch.where(valid, indices, size), updates, reduction)
        _movable(out).copy_(result.reshape(out.shape))


_REDUCIBLE_TYPES = ARITHMETIC_TYPES | {DataType.BOOL}
_REDUCE_NAMES = {
    ScatterReduction.ADD: "sum",
    ScatterReduction.MUL: "prod",
    ScatterReduction.MAX: "amax",
    ScatterReduction.MIN: "amin",
}
_BOOLEAN_REDUCTIONS = {
    ScatterReduction.ADD: ScatterReduction.MAX,
    ScatterReduction.MUL: ScatterReduction.MIN,
    ScatterReduction.MAX: ScatterReduction.MAX,
    ScatterReduction.MIN: ScatterReduction.MIN,
}


class OneHot(Op):
    """IOneHotLayer: `values[1]` where the new axis' position equals the index, else
    `values[0]`.

    Negative indices count from `depth` (ONNX); indices outside [-depth, depth) give an
    all-off row. `depth` is a scalar shape tensor (a one-element 1-D tensor is accepted
    too, as ONNX exporters write it).
    """

    name = "one_hot"
    layer_type = LayerType.ONE_HOT
    num_inputs = (3, 3)
    shape_inputs = frozenset({2})
    attrs = {"axis": Int(-1)}

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        indices, values, depth_meta = inputs
        if indices.dtype not in INDEX_TYPES:
            raise ShapeError(f"indices must be INT32 or INT64, got {indices.dtype.name}")
        if values.rank != 1 or values.shape[0] not in (2, UNKNOWN):
            raise ShapeError(
                f"values must be a 1-D tensor [off, on] of 2 elements, got shape "
                f"{list(values.shape)}"
            )
        depth = scalar_shape_value(depth_meta, "depth")
        if depth is not None and depth < 1:
            raise ShapeError(f"depth must be positive, got {depth}")
        axis = normalize_axis(attrs["axis"], indices.rank + 1, "one-hot axis")
        shape = list(indices.shape)
        shape.insert(axis, UNKNOWN if depth is None else depth)
        return [TensorMeta(values.dtype, tuple(shape))]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        indices, values, out = inputs[0], _movable(inputs[1]), _movable(outputs[0])
        axis = normalize_axis(attrs["axis"], out.dim())
        depth = out.shape[axis]
        indices = indices.long().unsqueeze(axis)
        indices = torch.where(indices < 0, indices + depth, indices)
        positions = torch.arange(depth, device=out.device)
        positions = positions.view((1,) * axis + (depth,) + (1,) * (out.dim() - axis - 1))
        out.copy_(torch.where(indices == positions, values[1], values[0]))


class ReverseSequence(Op):
    """IReverseSequenceLayer: for each slice `b` along `batch_axis`, the first
    `sequence_lens[b]` elements along `sequence_axis` in reverse order.

    Lengths are clamped to [0, sequence length] (ONNX requires them in range; TensorRT is
    silent), so a length past the end reverses the whole sequence and 0 or less none of it.
    """

    name = "reverse_sequence"
    reduced_precision = True
    layer_type = LayerType.REVERSE_SEQUENCE
    num_inputs = (2, 2)
    attrs = {"batch_axis": Int(1), "sequence_axis": Int(0)}

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, lengths = inputs
        if x.rank < 2:
            raise ShapeError(f"the input must have rank 2 or more, got shape {list(x.shape)}")
        batch_axis, _ = _sequence_axes(attrs, x.rank)
        if lengths.dtype not in INDEX_TYPES or lengths.rank != 1:
            raise ShapeError(
                f"sequence_lens must be a 1-D INT32 or INT64 tensor, got {lengths.dtype.name} "
                f"of shape {list(lengths.shape)}"
            )
        batch = x.shape[batch_axis]
        if UNKNOWN not in (batch, lengths.shape[0]) and batch != lengths.shape[0]:
            raise ShapeError(
                f"sequence_lens has {lengths.shape[0]} lengths but the batch axis {batch_axis} "
                f"of input shape {list(x.shape)} has size {batch}"
            )
        return [TensorMeta(x.dtype, x.shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x, lengths = _movable(inputs[0]), inputs[1]
        out = _movable(outputs[0])
        if out.numel() == 0:
            return
        batch_axis, sequence_axis = _sequence_axes(attrs, x.dim())
        steps = x.shape[sequence_axis]
        lengths = lengths.long().clamp(0, steps)
        position = torch.arange(steps, device=x.device)
        position = position.view([steps if a == sequence_axis else 1 for a in range(x.dim())])
        lengths = lengths.view([-1 if a == batch_axis else 1 for a in range(x.dim())])
        source = torch.where(position < lengths, lengths - 1 - position, position)
        out.copy_(torch.gather(x, sequence_axis, source.expand(x.shape)))


def scalar_shape_value(meta: TensorMeta, what: str) -> int | None:
    """The value of a scalar INT32/INT64 shape tensor (0-D, or 1-D of one element); None
    when not known yet."""
    if meta.dtype not in INDEX_TYPES or meta.shape not in ((), (1,), (UNKNOWN,)):
        raise ShapeError(
            f"{what} must be a scalar INT32 or INT64 shape tensor, got {meta.dtype.name} "
            f"of shape {list(meta.shape)}"
        )
    return None if meta.value is None else int(meta.value.reshape(-1)[0])


# -- scatter helpers ----------------------------------------------------------------------


def _check_element(
    data: tuple[int, ...], indices: tuple[int, ...], updates: tuple[int, ...], axis: int
) -> None:
    """ScatterElements: indices and updates of one shape, of data's rank, no larger than
    data except along `axis`."""
    axis = normalize_axis(axis, len(data), "scatter axis")
    if len(indices) != len(data) or len(updates) != len(data):
        raise ShapeError(
            f"data {list(data)}, indices {list(indices)} and updates {list(updates)} must "
            "have the same rank in ELEMENT mode"
        )
    for dim, (i, u, d) in enumerate(zip(indices, updates, data, strict=True)):
        if UNKNOWN not in (i, u) and i != u:
            raise ShapeError(
                f"indices {list(indices)} and updates {list(updates)} must have the same shape"
            )
        if dim != axis and UNKNOWN not in (i, d) and i > d:
            raise ShapeError(f"indices {list(indices)} exceed data {list(data)} in dimension {dim}")


def _check_nd(data: tuple[int, ...], indices: tuple[int, ...], updates: tuple[int, ...]) -> None:
    """ScatterND: updates shape = indices.shape[:-1] + data.shape[indices.shape[-1]:]."""
    if len(indices) < 1:
        raise ShapeError("indices must have rank 1 or more in ND mode, got a scalar")
    depth = indices[-1]
    if depth == UNKNOWN:
        return
    if depth > len(data):
        raise ShapeError(
            f"the last dimension of indices {list(indices)} is {depth}, more than the rank "
            f"of data {list(data)}"
        )
    expected = indices[:-1] + data[depth:]
    fits = len(updates) == len(expected) and all(
        UNKNOWN in (u, e) or u == e for u, e in zip(updates, expected, strict=True)
    )
    if not fits:
        raise ShapeError(
            f"updates must have shape {list(expected)} (indices {list(indices)}, data "
            f"{list(data)}), got {list(updates)}"
        )


def _flat_rows(tuples: torch.Tensor, dims: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
    """Row-major offsets of index tuples into `dims`, and which tuples are in range."""
    limits = torch.tensor(dims, dtype=torch.int64, device=tuples.device)
    tuples = torch.where(tuples < 0, tuples + limits, tuples)
    valid = ((tuples >= 0) & (tuples < limits)).all(dim=-1)
    strides = [numel(dims[position + 1 :]) for position in range(len(dims))]
    strides_tensor = torch.tensor(strides, dtype=torch.int64, device=tuples.device)
    return (tuples * strides_tensor).sum(dim=-1), valid


def _scatter(
    data: torch.Tensor,
    axis: int,
    indices: torch.Tensor,
    updates: torch.Tensor,
    reduction: ScatterReduction,
) -> torch.Tensor:
    """`data` with `updates` scattered along `axis`; an index equal to the axis size drops
    its update (it lands in an extra slot that is cut off)."""
    size = data.shape[axis]
    grown = list(data.shape)
    grown[axis] += 1
    if reduction == ScatterReduction.NONE:
        # Which update lands where: the highest row-major position among the writers.
        order = torch.arange(indices.numel(), device=data.device).view(indices.shape)
        winner = torch.full(grown, -1, dtype=torch.int64, device=data.device)
        winner = winner.scatter_reduce_(axis, indices, order, "amax").narrow(axis, 0, size)
        picked = updates.reshape(-1)[winner.clamp(min=0)]
        return torch.where(winner >= 0, picked, data)
    target = torch.empty(grown, dtype=data.dtype, device=data.device)
    target.narrow(axis, 0, size).copy_(data)
    target.scatter_reduce_(axis, indices, updates, _REDUCE_NAMES[reduction], include_self=True)
    return target.narrow(axis, 0, size)


def _sequence_axes(attrs: dict[str, Any], rank: int) -> tuple[int, int]:
    batch_axis = normalize_axis(attrs["batch_axis"], rank, "batch_axis")
    sequence_axis = normalize_axis(attrs["sequence_axis"], rank, "sequence_axis")
    if batch_axis == sequence_axis:
        raise ShapeError(f"batch_axis and sequence_axis must differ, both are {batch_axis}")
    return batch_axis, sequence_axis


OPS = [Scatter(), OneHot(), ReverseSequence()]
