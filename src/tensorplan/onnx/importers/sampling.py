"""ONNX resampling ops: Resize (and the older Upsample) and GridSample."""

from __future__ import annotations

from ...network.tensor import ITensor
from ...ops.base import UNKNOWN
from ...types import (
    ErrorCode,
    InterpolationMode,
    ResizeCoordinateTransformation,
    ResizeRoundMode,
    ResizeSelector,
    SampleMode,
)
from ..context import ImportContext, OnnxNode
from .shaping import normalize_axis

_MODES = {
    "nearest": InterpolationMode.NEAREST,
    "linear": InterpolationMode.LINEAR,
    "bilinear": InterpolationMode.LINEAR,
    "cubic": InterpolationMode.CUBIC,
    "bicubic": InterpolationMode.CUBIC,
}

_TRANSFORMS = {
    "half_pixel": (ResizeCoordinateTransformation.HALF_PIXEL, ResizeSelector.FORMULA),
    "pytorch_half_pixel": (ResizeCoordinateTransformation.HALF_PIXEL, ResizeSelector.UPPER),
    "asymmetric": (ResizeCoordinateTransformation.ASYMMETRIC, ResizeSelector.FORMULA),
    "align_corners": (ResizeCoordinateTransformation.ALIGN_CORNERS, ResizeSelector.FORMULA),
}

_ROUNDING = {
    "round_prefer_floor": ResizeRoundMode.HALF_DOWN,
    "round_prefer_ceil": ResizeRoundMode.HALF_UP,
    "floor": ResizeRoundMode.FLOOR,
    "ceil": ResizeRoundMode.CEIL,
}

_PADDING = {"zeros": SampleMode.FILL, "border": SampleMode.CLAMP, "reflection": SampleMode.REFLECT}


def resize(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """Resize-10 (X, scales) and Resize-11+ (X, roi, scales, sizes; axes from 18)."""
    x = node.inputs[0]
    shape = ctx.shape(x)
    rank = len(shape)
    scales_index, sizes_index = (1, None) if node.opset < 11 else (2, 3)
    transform = node.attr("coordinate_transformation_mode", "string", "half_pixel")
    if node.opset < 11:
        transform = "asymmetric"
    if transform not in _TRANSFORMS:
        raise node.unsupported(f"coordinate_transformation_mode '{transform}' is not supported")
    axes = node.attr("axes", "ints", list(range(rank)))
    axes = [normalize_axis(node, a, rank, "axes value") for a in axes]
    layer = ctx.network.add_resize(x)
    sizes = node.input(sizes_index) if sizes_index is not None else None
    if sizes is not None:
        wanted = [int(v) for v in ctx.require_value(node, sizes_index).reshape(-1)]
        layer.shape = _sizes(node, shape, axes, wanted)
    else:
        given = [float(v) for v in ctx.require_value(node, scales_index).reshape(-1)]
        scales = [1.0] * rank
        for axis, scale in zip(axes, given, strict=True):
            scales[axis] = scale
        layer.scales = scales
    _configure(layer, node, transform)
    return layer.get_output(0)


def upsample(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """Upsample-7 (scales attribute) and -9 (scales input): asymmetric, floor rounding."""
    x = node.inputs[0]
    scales = node.attr("scales", "floats", None) if node.opset < 9 else None
    if scales is None:
        scales = [float(v) for v in ctx.require_value(node, 1).reshape(-1)]
    layer = ctx.network.add_resize(x)
    layer.scales = scales
    mode = node.attr("mode", "string", "nearest")
    if mode not in _MODES:
        raise node.error(ErrorCode.UNSUPPORTED_NODE_ATTR, f"unknown mode '{mode}'")
    layer.resize_mode = _MODES[mode]
    layer.coordinate_transformation = ResizeCoordinateTransformation.ASYMMETRIC
    layer.nearest_rounding = ResizeRoundMode.FLOOR
    return layer.get_output(0)


def _sizes(node: OnnxNode, shape: tuple[int, ...], axes: list[int], wanted: list[int]) -> list[int]:
    """The output dims from `sizes`, with keep_aspect_ratio_policy (Resize-18)."""
    if len(wanted) != len(axes):
        raise node.error(
            ErrorCode.INVALID_NODE, f"sizes {wanted} must have one value per axis {axes}"
        )
    out = list(shape)
    policy = node.attr("keep_aspect_ratio_policy", "string", "stretch")
    if policy == "stretch":
        for axis, size in zip(axes, wanted, strict=True):
            out[axis] = size
        return out
    if any(shape[axis] == UNKNOWN for axis in axes):
        raise node.error(
            ErrorCode.UNSUPPORTED_NODE_DYNAMIC,
            f"keep_aspect_ratio_policy '{policy}' needs the resized dims known at build time",
        )
    ratios = [size / shape[axis] for axis, size in zip(axes, wanted, strict=True)]
    scale = min(ratios) if policy == "not_larger" else max(ratios)
    for axis in axes:
        out[axis] = int(shape[axis] * scale + 0.5)
    return out


def _configure(layer: object, node: OnnxNode, transform: str) -> None:
    mode = node.attr("mode", "string", "nearest")
    rounding = node.attr("nearest_mode", "string", "round_prefer_floor")
    if mode not in _MODES or rounding not in _ROUNDING:
        raise node.error(
            ErrorCode.UNSUPPORTED_NODE_ATTR, f"unknown mode '{mode}' or nearest_mode '{rounding}'"
        )
    layer.resize_mode = _MODES[mode]
    layer.coordinate_transformation, layer.selector_for_single_pixel = _TRANSFORMS[transform]
    layer.nearest_rounding = _ROUNDING[rounding] if node.opset >= 11 else ResizeRoundMode.FLOOR
    layer.exclude_outside = bool(node.attr("exclude_outside", "int", 0))
    layer.cubic_coeff = node.attr("cubic_coeff_a", "float", -0.75)
    layer.antialias = bool(node.attr("antialias", "int", 0))


def grid_sample(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x, grid = node.inputs
    mode = node.attr("mode", "string", "linear" if node.opset >= 20 else "bilinear")
    padding = node.attr("padding_mode", "string", "zeros")
    if mode not in _MODES or padding not in _PADDING:
        raise node.error(
            ErrorCode.UNSUPPORTED_NODE_ATTR, f"unknown mode '{mode}' or padding_mode '{padding}'"
        )
    layer = ctx.network.add_grid_sample(x, ctx.cast(grid, ctx.dtype(x)))
    layer.interpolation_mode = _MODES[mode]
    layer.align_corners = bool(node.attr("align_corners", "int", 0))
    layer.sample_mode = _PADDING[padding]
    return layer.get_output(0)


IMPORTERS = {"Resize": resize, "Upsample": upsample, "GridSample": grid_sample}
