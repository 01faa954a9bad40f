"""Sampling ops: resize (nearest, linear, cubic) and grid sample.

Both compute, per sampled axis, the source coordinate of every output position, its
neighbours and their weights, and then gather: one general path for every mode, on any
device. The math follows ONNX Resize (opset 18, `onnx.reference.ops.op_resize`) and
GridSample (opset 20, PyTorch's `grid_sample`), which TensorRT's layers implement.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..types import (
    FLOATS_AND_DOUBLE,
    DataType,
    InterpolationMode,
    LayerType,
    ResizeCoordinateTransformation,
    ResizeRoundMode,
    ResizeSelector,
    SampleMode,
)
from .base import UNKNOWN, Bool, Enum, Float, Floats, Ints, Op, ShapeError, TensorMeta
from .scale import compute_dtype
from .shapes import same_dtype

INTERPOLATED = FLOATS_AND_DOUBLE
"""Types the interpolating modes compute in (HALF and BF16 through FLOAT)."""

GATHERED = INTERPOLATED | {
    DataType.INT8,
    DataType.UINT8,
    DataType.INT32,
    DataType.INT64,
    DataType.BOOL,
}
"""Types NEAREST resizes: it only copies elements."""

SHAPE_TYPES = frozenset({DataType.INT32, DataType.INT64})

Transform = ResizeCoordinateTransformation


class Resize(Op):
    """IResizeLayer: resizes every axis whose size or scale changes.

    The output comes from the `shape` attribute, the `scales` attribute (output dim =
    floor(input dim * scale)), or input 1 when set: an INT32/INT64 shape tensor of output
    dims, or a FLOAT tensor of scales. Given scales are used as such in the coordinate
    transformation (as ONNX does); given dims use output/input as the scale.
    `antialias` is ONNX Resize-18's attribute (a widened kernel when downsampling with
    LINEAR or CUBIC); it has no effect on NEAREST.
    """

    name = "resize"
    reduced_precision = True
    layer_type = LayerType.RESIZE
    num_inputs = (1, 2)
    shape_inputs = frozenset({1})
    attrs = {
        "shape": Ints(None),
        "scales": Floats(()),
        "resize_mode": Enum(InterpolationMode, InterpolationMode.NEAREST),
        "coordinate_transformation": Enum(Transform, Transform.ASYMMETRIC),
        "selector_for_single_pixel": Enum(ResizeSelector, ResizeSelector.FORMULA),
        "nearest_rounding": Enum(ResizeRoundMode, ResizeRoundMode.FLOOR),
        "exclude_outside": Bool(False),
        "cubic_coeff": Float(-0.75),
        "antialias": Bool(False),
    }

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        x = inputs[0]
        target = inputs[1] if len(inputs) > 1 else None
        mode = attrs["resize_mode"]
        allowed = GATHERED if mode == InterpolationMode.NEAREST else INTERPOLATED
        if x.dtype not in allowed:
            raise ShapeError(f"{mode.name} resize does not take {x.dtype.name} input")
        if x.rank == 0:
            raise ShapeError("resize needs an input of rank 1 or more")
        if target is not None:
            return [TensorMeta(x.dtype, _target_shape(x, target))]
        if attrs["shape"] is not None:
            return [TensorMeta(x.dtype, _check_dims(x, attrs["shape"]))]
        if attrs["scales"]:
            return [TensorMeta(x.dtype, _scaled_shape(x, attrs["scales"]))]
        raise ShapeError("resize needs output dims (shape), scales, or input 1; none is set")

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        x, out = inputs[0], outputs[0]
        target = inputs[1] if len(inputs) > 1 else None
        if target is not None and target.is_floating_point():
            scales = target.tolist()  # a host tensor: shape inputs arrive on the host
        elif target is None and attrs["shape"] is None:
            scales = list(attrs["scales"])
        else:
            scales = [o / i if i else 1.0 for o, i in zip(out.shape, x.shape, strict=True)]
        mode = attrs["resize_mode"]
        result = x if mode == InterpolationMode.NEAREST else x.to(compute_dtype(x))
        for axis, (size, scale) in enumerate(zip(out.shape, scales, strict=True)):
            if size == result.shape[axis] and math.isclose(scale, 1.0):
                continue
            coords = _source_coordinates(result.shape[axis], size, scale, attrs, x.device)
            if mode == InterpolationMode.NEAREST:
                index = _round(coords, attrs["nearest_rounding"]).clamp_(0, x.shape[axis] - 1)
                result = result.index_select(axis, index)
            else:
                result = _interpolate_axis(result, axis, coords, scale, attrs)
        out.copy_(result)


class GridSample(Op):
    """IGridSampleLayer: samples input (N, C, *spatial) at grid (N, *out, S) coordinates.

    Grid values are normalized to [-1, 1], the last grid axis giving the innermost input
    axis first (x, then y, then z), as PyTorch's `grid_sample` and ONNX GridSample define.
    Sample modes: FILL reads zeros outside, CLAMP the border, REFLECT mirrors. Inputs of
    rank 3 to 5 (1 to 3 sampled axes); TensorRT itself takes rank 4.
    """

    name = "grid_sample"
    reduced_precision = True
    layer_type = LayerType.GRID_SAMPLE
    num_inputs = (2, 2)
    attrs = {
        "interpolation_mode": Enum(InterpolationMode, InterpolationMode.LINEAR),
        "align_corners": Bool(False),
        "sample_mode": Enum(SampleMode, SampleMode.FILL),
    }

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, grid = inputs
        if x.dtype not in INTERPOLATED:
            raise ShapeError(
                f"grid sample needs a FLOAT, HALF, BF16 or DOUBLE input, got {x.dtype.name}"
            )
        same_dtype(inputs, "the input and the grid")
        mode = attrs["sample_mode"]
        if mode not in _GRID_SAMPLE_MODES:
            raise ShapeError(f"sample_mode must be FILL, CLAMP or REFLECT, got {mode.name}")
        if not 3 <= x.rank <= 5 or grid.rank != x.rank:
            raise ShapeError(
                "grid sample needs an input of rank 3 to 5 and a grid of the same rank, got "
                f"shapes {list(x.shape)} and {list(grid.shape)}"
            )
        if grid.shape[-1] not in (x.rank - 2, UNKNOWN):
            raise ShapeError(
                f"the grid's last dimension must be {x.rank - 2} (one coordinate per sampled "
                f"axis), got grid shape {list(grid.shape)}"
            )
        if UNKNOWN not in (x.shape[0], grid.shape[0]) and x.shape[0] != grid.shape[0]:
            raise ShapeError(
                f"the input and the grid must have the same batch size, got shapes "
                f"{list(x.shape)} and {list(grid.shape)}"
            )
        batch = x.shape[0] if x.shape[0] != UNKNOWN else grid.shape[0]
        return [TensorMeta(x.dtype, (batch, x.shape[1], *grid.shape[1:-1]))]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x, grid = inputs
        out = outputs[0]
        dtype = compute_dtype(x)
        batch, channels, *sizes = x.shape
        points = math.prod(out.shape[2:])
        grid = grid.to(dtype).reshape(batch, points, len(sizes))
        flat_index = torch.zeros((batch, points, 1), dtype=torch.int64, device=x.device)
        weights = torch.ones((batch, points, 1), dtype=dtype, device=x.device)
        for axis, size in enumerate(sizes):
            # the grid's last axis lists coordinates innermost first
            index, weight = _grid_neighbours(grid[..., len(sizes) - 1 - axis], size, attrs)
            flat_index = (flat_index * size).unsqueeze(-1) + index.unsqueeze(-2)
            weights = weights.unsqueeze(-1) * weight.unsqueeze(-2)
            flat_index = flat_index.flatten(2)
            weights = weights.flatten(2)
        taps = flat_index.shape[-1]
        source = x.to(dtype).reshape(batch, channels, -1)
        gathered = source.gather(2, flat_index.view(batch, 1, -1).expand(batch, channels, -1))
        result = (gathered.view(batch, channels, points, taps) * weights.unsqueeze(1)).sum(-1)
        out.copy_(result.view(out.shape))


_GRID_SAMPLE_MODES = frozenset({SampleMode.FILL, SampleMode.CLAMP, SampleMode.REFLECT})


# -- resize: output shapes -------------------------------------------------------------------


def _target_shape(x: TensorMeta, target: TensorMeta) -> tuple[int, ...]:
    """The output shape given by input 1: output dims or scales."""
    if target.dtype not in SHAPE_TYPES and target.dtype != DataType.FLOAT:
        raise ShapeError(
            f"input 1 must be INT32/INT64 output dims or FLOAT scales, got {target.dtype.name}"
        )
    if target.rank != 1 or target.shape[0] not in (x.rank, UNKNOWN):
        raise ShapeError(
            f"input 1 must be a 1-D tensor of {x.rank} values (one per input axis), got shape "
            f"{list(target.shape)}"
        )
    if target.value is None:
        return (UNKNOWN,) * x.rank
    values = target.value.tolist()
    if target.dtype == DataType.FLOAT:
        return _scaled_shape(x, values)
    return _check_dims(x, values)


def _check_dims(x: TensorMeta, dims: tuple[int, ...] | list[int]) -> tuple[int, ...]:
    if len(dims) != x.rank:
        raise ShapeError(
            f"the output dims {list(dims)} must have one value per input axis ({x.rank})"
        )
    for size, given in zip(x.shape, dims, strict=True):
        if given < 0 or (size == 0 and given > 0):
            raise ShapeError(
                f"cannot resize input shape {list(x.shape)} to output dims {list(dims)}"
            )
    return tuple(int(d) for d in dims)


def _scaled_shape(x: TensorMeta, scales: tuple[float, ...] | list[float]) -> tuple[int, ...]:
    if len(scales) != x.rank:
        raise ShapeError(f"the scales {list(scales)} must have one value per input axis ({x.rank})")
    if not all(math.isfinite(s) and s > 0 for s in scales):
        raise ShapeError(f"the scales must be positive and finite, got {list(scales)}")
    return tuple(
        UNKNOWN if size == UNKNOWN else math.floor(size * scale)
        for size, scale in zip(x.shape, scales, strict=True)
    )


# -- resize: coordinates, neighbours, weights -----------------------------------------------


def _source_coordinates(
    size: int, out_size: int, scale: float, attrs: dict, device: torch.device
) -> torch.Tensor:
    """Where each output position of an axis lies in the input, in float64 (as ONNX)."""
    positions = torch.arange(out_size, dtype=torch.float64, device=device)
    transform = attrs["coordinate_transformation"]
    if out_size == 1 and attrs["selector_for_single_pixel"] == ResizeSelector.UPPER:
        return torch.zeros_like(positions)
    if transform == Transform.ALIGN_CORNERS:
        # ONNX uses the unrounded output length, scale * size
        length = scale * size
        return positions * ((size - 1) / (length - 1)) if length != 1 else positions * 0
    if transform == Transform.ASYMMETRIC:
        return positions / scale
    return (positions + 0.5) / scale - 0.5


def _round(coords: torch.Tensor, mode: ResizeRoundMode) -> torch.Tensor:
    """Nearest-neighbour indices: ONNX's round_prefer_ceil/floor, floor and ceil."""
    if mode == ResizeRoundMode.HALF_UP:
        return torch.floor(coords + 0.5).long()
    if mode == ResizeRoundMode.HALF_DOWN:
        return torch.ceil(coords - 0.5).long()
    if mode == ResizeRoundMode.FLOOR:
        return torch.floor(coords).long()
    return torch.ceil(coords).long()


def _interpolate_axis(
    x: torch.Tensor, axis: int, coords: torch.Tensor, scale: float, attrs: dict
) -> torch.Tensor:
    """Linear or cubic interpolation of one axis at `coords`, as ONNX Resize computes it."""
    size = x.shape[axis]
    cubic = attrs["resize_mode"] == InterpolationMode.CUBIC
    support = 2 if cubic else 1
    # antialias widens the kernel by 1/scale when downsampling (ONNX Resize-18)
    stretch = min(scale, 1.0) if attrs["antialias"] else 1.0
    first = math.floor(-support / stretch) + 1
    offsets = torch.arange(first, 1 - first + 1, device=x.device)
    base = torch.floor(coords)
    index = base.long().unsqueeze(1) + offsets
    distance = (offsets - (coords - base).unsqueeze(1)) * stretch
    if cubic:
        weights = _cubic_kernel(distance, attrs["cubic_coeff"])
    else:
        weights = (1 - distance.abs()).clamp_(min=0)
    if attrs["antialias"]:
        weights = weights / weights.sum(1, keepdim=True)
    if attrs["exclude_outside"]:
        weights = weights.masked_fill((index < 0) | (index >= size), 0.0)
        total = weights.sum(1, keepdim=True)
        weights = weights / torch.where(total == 0, 1.0, total)
    index = index.clamp_(0, size - 1)
    out_size, taps = index.shape
    gathered = x.index_select(axis, index.flatten())
    gathered = gathered.view(*x.shape[:axis], out_size, taps, *x.shape[axis + 1 :])
    weights = weights.to(x.dtype).view(out_size, taps, *[1] * (x.dim() - axis - 1))
    return (gathered * weights).sum(axis + 1)


def _cubic_kernel(distance: torch.Tensor, a: float) -> torch.Tensor:
    """Keys' cubic convolution kernel with coefficient `a` (ONNX cubic_coeff_a)."""
    t = distance.abs()
    near = ((a + 2) * t - (a + 3)) * t * t + 1
    far = ((a * t - 5 * a) * t + 8 * a) * t - 4 * a
    return torch.where(t <= 1, near, torch.where(t < 2, far, torch.zeros_like(t)))


# -- grid sample ----------------------------------------------------------------------------


def _grid_neighbours(
    grid: torch.Tensor, size: int, attrs: dict
) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices and weights of the input elements each grid point reads along one axis.

    Follows PyTorch's grid sampler: NEAREST and LINEAR first move the coordinate inside
    (CLAMP, REFLECT); CUBIC moves each of its four neighbours instead.
    """
    mode = attrs["interpolation_mode"]
    sample_mode = attrs["sample_mode"]
    align = attrs["align_corners"]
    # the grid's -1 and 1 are the border pixels' centres (align_corners) or outer edges
    coords = (grid + 1) / 2 * (size - 1) if align else ((grid + 1) * size - 1) / 2
    if mode == InterpolationMode.NEAREST:
        # nearbyint: halfway cases to even, as PyTorch
        positions = torch.round(_inside(coords, size, sample_mode, align)).unsqueeze(-1)
        weights = torch.ones_like(positions)
    elif mode == InterpolationMode.LINEAR:
        coords = _inside(coords, size, sample_mode, align)
        base = torch.floor(coords)
        fraction = (coords - base).unsqueeze(-1)
        positions = base.unsqueeze(-1) + torch.tensor(
            [0.0, 1.0], dtype=grid.dtype, device=grid.device
        )
        weights = torch.cat([1 - fraction, fraction], dim=-1)
    else:
        base = torch.floor(coords)
        offsets = torch.tensor([-1.0, 0.0, 1.0, 2.0], dtype=grid.dtype, device=grid.device)
        weights = _cubic_kernel(offsets - (coords - base).unsqueeze(-1), -0.75)
        positions = _inside(base.unsqueeze(-1) + offsets, size, sample_mode, align)
    valid = (positions >= 0) & (positions <= size - 1)
    weights = weights.masked_fill(~valid, 0.0)
    return positions.clamp(0, size - 1).long(), weights


def _inside(coords: torch.Tensor, size: int, mode: SampleMode, align: bool) -> torch.Tensor:
    """Coordinates moved inside [0, size - 1] by CLAMP or REFLECT; FILL leaves them."""
    if mode == SampleMode.FILL:
        return coords
    if mode == SampleMode.REFLECT:
        # mirror at the border pixels' centres (align_corners) or outer edges
        low, high = (0.0, size - 1.0) if align else (-0.5, size - 0.5)
        span = high - low
        if span <= 0:
            return torch.zeros_like(coords)
        distance = (coords - low).abs()
        flips = torch.floor(distance / span)
        extra = torch.fmod(distance, span)
        coords = torch.where(flips % 2 == 0, low + extra, high - extra)
    return coords.clamp(0, size - 1)


OPS = [Resize(), GridSample()]
