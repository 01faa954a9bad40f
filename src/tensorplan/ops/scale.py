"""Per-channel ops: scale, parametric ReLU and local response normalization."""

from __future__ import annotations

from typing import Any

import torch

from ..types import FLOATS_AND_DOUBLE, LayerType, ScaleMode
from .base import UNKNOWN, Enum, Float, Int, Op, ShapeError, TensorMeta
from .shapes import normalize_axis, numel, same_dtype

LRN_WINDOW = (1, 15)
LRN_ALPHA = (-1e20, 1e20)
LRN_BETA = (0.01, 1e5)
LRN_K = (1e-5, 1e10)
"""ILRNLayer's documented parameter ranges."""


class Scale(Op):
    """IScaleLayer: output = (input * scale + shift) ** power.

    Inputs 1 to 3 are the shift, scale and power coefficients as flat constants (None where
    the layer's Weights are empty: shift 0, scale 1, power 1). UNIFORM has one coefficient,
    CHANNEL one per index of `channel_axis`, ELEMENTWISE one per element of the axes from
    `channel_axis` on (broadcast over the axes before it).
    """

    name = "scale"
    reduced_precision = True
    layer_type = LayerType.SCALE
    num_inputs = (1, 4)
    attrs = {"mode": Enum(ScaleMode, ScaleMode.UNIFORM), "channel_axis": Int(0)}

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        x = inputs[0]
        _check_float(x, "scale")
        if x.rank < 3:
            raise ShapeError(f"scale needs an input of rank 3 or more, got shape {list(x.shape)}")
        axis = normalize_axis(attrs["channel_axis"], x.rank, "channel_axis")
        shape = _coefficient_shape(attrs["mode"], x.shape, axis)
        for role, meta in zip(("shift", "scale", "power"), inputs[1:], strict=False):
            if meta is None:
                continue
            if meta.dtype not in FLOATS_AND_DOUBLE:
                raise ShapeError(
                    f"the {role} weights must be floating point, got {meta.dtype.name}"
                )
            if UNKNOWN not in shape and numel(meta.shape) != numel(shape):
                raise ShapeError(
                    f"{attrs['mode'].name} mode needs {numel(shape)} {role} weights for input "
                    f"shape {list(x.shape)} and channel axis {axis}, got {numel(meta.shape)}"
                )
        return [TensorMeta(x.dtype, x.shape)]

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        x = inputs[0]
        dtype = compute_dtype(x)
        axis = attrs["channel_axis"] % x.dim()
        shape = _coefficient_shape(attrs["mode"], tuple(x.shape), axis)
        shape += (1,) * (x.dim() - axis - len(shape)) if shape else ()
        shift, scale, power = (
            None if w is None else w.to(dtype).reshape(shape) for w in (*inputs[1:], None, None)[:3]
        )
        result = x.to(dtype)
        if scale is not None:
            result = result * scale
        if shift is not None:
            result = result + shift
        if power is not None:
            result = result**power
        outputs[0].copy_(result)


class ParametricReLU(Op):
    """IParametricReLULayer: x where x >= 0, else x * slope; slopes broadcast to the input."""

    name = "parametric_relu"
    reduced_precision = True
    layer_type = LayerType.PARAMETRIC_RELU
    num_inputs = (2, 2)

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, slopes = inputs
        _check_float(x, "parametric ReLU")
        same_dtype(inputs, "the input and the slopes")
        fits = slopes.rank == x.rank and all(
            s in (1, d) or UNKNOWN in (s, d) for s, d in zip(slopes.shape, x.shape, strict=True)
        )
        if not fits:
            raise ShapeError(
                f"the slopes of shape {list(slopes.shape)} must broadcast to the input shape "
                f"{list(x.shape)} (the same rank, each dimension equal or 1)"
            )
        return [TensorMeta(x.dtype, x.shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x, slopes = inputs
        torch.where(x >= 0, x, x * slopes, out=outputs[0])


class LRN(Op):
    """ILRNLayer: local response normalization across channels (axis 1).

    y = x / (k + alpha / window_size * sum(x[c']^2)) ** beta, the sum over the channels
    c' in [c - (window_size - 1) // 2, c + window_size // 2] that exist. Alpha is divided
    by the window size as in Caffe, PyTorch and ONNX LRN (whose `bias` is k), so ONNX
    models map onto the layer unchanged.
    """

    name = "lrn"
    reduced_precision = True
    layer_type = LayerType.LRN
    attrs = {
        "window_size": Int(1),
        "alpha": Float(1e-4),
        "beta": Float(0.75),
        "k": Float(1.0),
    }

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (x,) = inputs
        _check_float(x, "LRN")
        if x.rank < 3:
            raise ShapeError(f"LRN needs an input of rank 3 or more, got shape {list(x.shape)}")
        window = attrs["window_size"]
        if window % 2 == 0 or not LRN_WINDOW[0] <= window <= LRN_WINDOW[1]:
            raise ShapeError(f"window_size must be odd and in [1, 15], got {window}")
        for key, (low, high) in (("alpha", LRN_ALPHA), ("beta", LRN_BETA), ("k", LRN_K)):
            if not low <= attrs[key] <= high:
                raise ShapeError(f"{key} must be in [{low:g}, {high:g}], got {attrs[key]:g}")
        return [TensorMeta(x.dtype, x.shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x = inputs[0].to(compute_dtype(inputs[0]))
        window = attrs["window_size"]
        channels = x.shape[1]
        squares = x.square()
        padded = torch.zeros(
            (x.shape[0], channels + window - 1, *x.shape[2:]), dtype=x.dtype, device=x.device
        )
        before = (window - 1) // 2
        padded[:, before : before + channels] = squares
        total = sum(padded[:, start : start + channels] for start in range(window))
        scale = attrs["k"] + attrs["alpha"] / window * total
        outputs[0].copy_(x / scale.pow(attrs["beta"]))


def _check_float(x: TensorMeta, what: str) -> None:
    if x.dtype not in FLOATS_AND_DOUBLE:
        raise ShapeError(f"{what} needs a FLOAT, HALF, BF16 or DOUBLE input, got {x.dtype.name}")


def compute_dtype(x: torch.Tensor) -> torch.dtype:
    """FLOAT for FLOAT, HALF and BF16 inputs (as TensorRT accumulates), DOUBLE for DOUBLE."""
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _coefficient_shape(mode: ScaleMode, shape: tuple[int, ...], axis: int) -> tuple[int, ...]:
    """The shape the coefficients take over the axes from `axis` on; () for UNIFORM."""
    if mode == ScaleMode.UNIFORM:
        return ()
    if mode == ScaleMode.CHANNEL:
        return (shape[axis],)
    return tuple(shape[axis:])


OPS = [Scale(), ParametricReLU(), LRN()]
