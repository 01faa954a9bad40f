"""Quantize, dequantize, dynamic quantize (TensorRT) and DynamicQuantizeLinear (ONNX).

Quantize follows ONNX QuantizeLinear (onnx.reference's op_quantize_linear): `x / scale`,
rounded half to even, plus the zero point, clamped to the integer type; float8 outputs
saturate to the largest finite value unless `saturate` is off (then overflow is NaN, or
infinity for FP8_E5M2). Float8 zero points must be zero in ONNX and are not applied.
Scales (and zero points, of the scale's shape) are a scalar (per-tensor; a one-element 1-D
tensor counts as one), a 1-D tensor along `axis` (per-axis), or a tensor of the input's
rank (blocked: along `axis` with `block_size` > 0, as ONNX; otherwise each dim of the scale
divides the input dim, as TensorRT). Negative axes count from the end.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from ..device import torch_dtype
from ..types import FLOATS_AND_DOUBLE, DataType, LayerType
from .base import UNKNOWN, Bool, Enum, Int, Op, ShapeError, TensorMeta
from .shapes import normalize_axis

_INTEGER_RANGES = {
    DataType.INT8: (-128, 127),
    DataType.UINT8: (0, 255),
    DataType.INT16: (-32768, 32767),
    DataType.UINT16: (0, 65535),
    DataType.INT4: (-8, 7),
    DataType.UINT4: (0, 15),
    DataType.INT2: (-2, 1),
    DataType.UINT2: (0, 3),
}
"""Integer quantized types and their ranges (sub-byte ones are stored a value per byte)."""
_FP8 = frozenset({DataType.FP8, DataType.FP8_E5M2, DataType.FP8_E4M3FNUZ, DataType.FP8_E5M2FNUZ})
_E4M3FN_OVERFLOW = 464.0
"""Beyond this, E4M3FN values round past 448, its largest finite value (torch saturates them)."""
_MX_ELEMENT_EMAX = {DataType.FP8: 8, DataType.FP8_E5M2: 15}
"""OCP MX: the exponent of the largest power of two of each element type."""


class Quantize(Op):
    """IQuantizeLayer: inputs data, scale and (optional, input 2) zero point."""

    name = "quantize"
    layer_type = LayerType.QUANTIZE
    num_inputs = (2, 3)
    attrs = {
        "axis": Int(-1),
        "to_type": Enum(DataType, DataType.INT8),
        "block_size": Int(0, low=0),
        "saturate": Bool(True),
    }

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, scale, zero_point = [*inputs, None][:3]
        to_type = attrs["to_type"]
        _check_type(x, FLOATS_AND_DOUBLE, "the input (input 0)")
        if to_type not in _INTEGER_RANGES.keys() | _FP8:
            raise ShapeError(f"cannot quantize to {to_type.name}; types: {_names(_QUANTIZED)}")
        _check_parameters(x, scale, zero_point, to_type, attrs)
        return [TensorMeta(to_type, x.shape)]

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        x, scale, zero_point = [*inputs, None][:3]
        out = outputs[0]
        work = torch.float64 if x.dtype == torch.float64 else torch.float32
        values = x.to(work) / _expand(scale, x.shape, attrs).to(work)
        to_type = attrs["to_type"]
        if to_type in _INTEGER_RANGES:
            values = torch.round(values)
            if zero_point is not None:
                values = values + _expand(zero_point, x.shape, attrs).to(work)
            out.copy_(values.clamp_(*_INTEGER_RANGES[to_type]))
        elif attrs["saturate"]:
            largest = torch.finfo(out.dtype).max
            out.copy_(values.clamp(-largest, largest))
        elif to_type == DataType.FP8:
            out.copy_(torch.where(values.abs() > _E4M3FN_OVERFLOW, math.nan, values))
        else:
            out.copy_(values)


class Dequantize(Op):
    """IDequantizeLayer: `(x - zero_point) * scale` in `to_type`."""

    name = "dequantize"
    layer_type = LayerType.DEQUANTIZE
    num_inputs = (2, 3)
    attrs = {
        "axis": Int(-1),
        "to_type": Enum(DataType, DataType.FLOAT),
        "block_size": Int(0, low=0),
    }

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, scale, zero_point = [*inputs, None][:3]
        _check_type(x, _QUANTIZED | {DataType.INT32}, "the input (input 0)")
        if attrs["to_type"] not in FLOATS_AND_DOUBLE:
            raise ShapeError(
                f"cannot dequantize to {attrs['to_type'].name}; types: {_names(FLOATS_AND_DOUBLE)}"
            )
        _check_parameters(x, scale, zero_point, x.dtype, attrs)
        return [TensorMeta(attrs["to_type"], x.shape)]

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        x, scale, zero_point = [*inputs, None][:3]
        out = outputs[0]
        work = torch.float64 if out.dtype == torch.float64 else torch.float32
        values = x.to(work)
        if zero_point is not None and not x.is_floating_point():
            values = values - _expand(zero_point, x.shape, attrs).to(work)
        out.copy_(values * _expand(scale, x.shape, attrs).to(work))


class DynamicQuantize(Op):
    """IDynamicQuantizeLayer: block quantization with scales computed from the data.

    MXFP8 (OCP Microscaling): each block of `block_size` values along `axis` shares the
    scale `2**(floor(log2(amax)) - emax)` (emax 8 for FP8, 15 for FP8_E5M2), and the values
    are divided by it and saturated. Output 0 is the data, output 1 the scales (the input's
    shape with the axis divided by the block size). NVFP4 needs FP4 storage, which tensorplan
    does not have; scales may be stored as FLOAT, HALF or BF16 as well as E8M0 (extension).
    """

    name = "dynamic_quantize"
    layer_type = LayerType.DYNAMIC_QUANTIZE
    num_inputs = (1, 2)
    num_outputs = 2
    attrs = {
        "axis": Int(-1),
        "block_size": Int(32, low=1),
        "to_type": Enum(DataType, DataType.FP8),
        "scale_type": Enum(DataType, DataType.E8M0),
    }

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        x = inputs[0]
        _check_type(x, FLOATS_AND_DOUBLE, "the input (input 0)")
        to_type, scale_type = attrs["to_type"], attrs["scale_type"]
        if to_type not in _MX_ELEMENT_EMAX:
            raise ShapeError(
                f"cannot quantize to {to_type.name}: tensorplan supports MXFP8 "
                f"({_names(_MX_ELEMENT_EMAX)}); NVFP4 needs FP4 storage it does not have"
            )
        if len(inputs) > 1 and inputs[1] is not None:
            raise ShapeError("the double-quantization scale (input 1) is only used by NVFP4")
        if scale_type not in FLOATS_AND_DOUBLE | {DataType.E8M0}:
            raise ShapeError(f"scale_type must be E8M0, FLOAT, HALF or BF16, got {scale_type.name}")
        try:
            torch_dtype(scale_type)
        except TypeError:
            raise ShapeError(
                f"scale_type {scale_type.name} has no storage in tensorplan yet; "
                "use FLOAT, HALF or BF16 (the same powers of two)"
            ) from None
        axis = normalize_axis(attrs["axis"], x.rank)
        size, block = x.shape[axis], attrs["block_size"]
        if size != UNKNOWN and size % block:
            raise ShapeError(
                f"axis {axis} of size {size} is not a multiple of the block size {block}"
            )
        scales = list(x.shape)
        scales[axis] = UNKNOWN if size == UNKNOWN else size // block
        return [TensorMeta(to_type, x.shape), TensorMeta(scale_type, tuple(scales))]

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        data, scales = outputs
        axis = attrs["axis"] % data.dim()
        values = inputs[0].to(torch.float32).movedim(axis, -1)
        blocks = values.reshape(*values.shape[:-1], -1, attrs["block_size"])
        amax = blocks.abs().amax(dim=-1)
        _, exponent = torch.frexp(amax)  # amax = m * 2**exponent, m in [0.5, 1)
        shared = (exponent - 1 - _MX_ELEMENT_EMAX[attrs["to_type"]]).clamp(-127, 127)
        shared = torch.where(amax == 0, -127, shared)
        scale = _power_of_two(shared)
        largest = torch.finfo(data.dtype).max
        quantized = (blocks / scale.unsqueeze(-1)).clamp(-largest, largest)
        data.copy_(quantized.reshape(values.shape).movedim(-1, axis))
        scales.copy_(scale.movedim(-1, axis))


class DynamicQuantizeLinear(Op):
    """ONNX DynamicQuantizeLinear: uint8 data, its scale and zero point from min and max.

    Outputs: the quantized data (UINT8), the scale (a scalar of the input's type) and the
    zero point (a UINT8 scalar), computed in float32 exactly as onnx.reference does.
    """

    name = "dynamic_quantize_linear"
    layer_type = LayerType.DYNAMIC_QUANTIZE
    num_outputs = 3

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        x = inputs[0]
        _check_type(x, FLOATS_AND_DOUBLE, "the input (input 0)")
        return [
            TensorMeta(DataType.UINT8, x.shape),
            TensorMeta(x.dtype, ()),
            TensorMeta(DataType.UINT8, ()),
        ]

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        data, scale_out, zero_out = outputs
        x = inputs[0].to(torch.float32)
        if x.numel():
            low, high = torch.aminmax(x)
        else:
            low = high = torch.zeros((), device=x.device)
        high, low = high.clamp(min=0), low.clamp(max=0)
        scale = torch.where(high == low, 1.0, high - low) / 255
        zero_point = (-low / scale).clamp(0, 255).round()
        data.copy_((torch.round(x / scale) + zero_point).clamp(0, 255))
        scale_out.copy_(scale)
        zero_out.copy_(zero_point)


_QUANTIZED = _INTEGER_RANGES.keys() | _FP8


def _names(types: Any) -> str:
    return ", ".join(sorted(t.name for t in types))


def _check_type(meta: TensorMeta, allowed: Any, what: str) -> None:
    if meta.dtype not in allowed:
        raise ShapeError(f"{what} must be one of {_names(allowed)}, got {meta.dtype.name}")


def _check_parameters(
    x: TensorMeta,
    scale: TensorMeta,
    zero_point: TensorMeta | None,
    quantized: DataType,
    attrs: dict[str, Any],
) -> None:
    """Scale and zero point fit the input: types, and one of the three layouts."""
    _check_type(scale, FLOATS_AND_DOUBLE, "the scale (input 1)")
    if zero_point is not None:
        if zero_point.dtype != quantized:
            raise ShapeError(
                f"the zero point (input 2) must be {quantized.name}, got {zero_point.dtype.name}"
            )
        if zero_point.rank != scale.rank or any(
            UNKNOWN not in pair and pair[0] != pair[1]
            for pair in zip(zero_point.shape, scale.shape, strict=True)
        ):
            raise ShapeError(
                f"the zero point (input 2) of shape {list(zero_point.shape)} must have the "
                f"scale's shape {list(scale.shape)}"
            )
    if scale.rank == 0 or (scale.shape == (1,) and not attrs["block_size"]):
        return
    if scale.rank == 1 and not attrs["block_size"]:
        axis = normalize_axis(attrs["axis"], x.rank)
        if UNKNOWN not in (scale.shape[0], x.shape[axis]) and scale.shape[0] != x.shape[axis]:
            raise ShapeError(
                f"the per-axis scale (input 1) has {scale.shape[0]} values but axis {axis} "
                f"of the input {list(x.shape)} has {x.shape[axis]}"
            )
        return
    _check_blocks(x, scale, attrs)


def _check_blocks(x: TensorMeta, scale: TensorMeta, attrs: dict[str, Any]) -> None:
    if scale.rank != x.rank:
        raise ShapeError(
            f"the scale (input 1) of shape {list(scale.shape)} must be a scalar, 1-D (per-axis) "
            f"or of the input's rank {x.rank} (blocked)"
        )
    block_size = attrs["block_size"]
    axis = normalize_axis(attrs["axis"], x.rank) if block_size else None
    for dim, (count, size) in enumerate(zip(scale.shape, x.shape, strict=True)):
        if UNKNOWN in (count, size):
            continue
        if dim == axis:
            if count != -(-size // block_size):
                raise ShapeError(
                    f"the blocked scale (input 1) {list(scale.shape)} needs "
                    f"{-(-size // block_size)} blocks of {block_size} along axis {dim} of "
                    f"the input {list(x.shape)}"
                )
        elif count != size and (count == 0 or size % count):
            raise ShapeError(
                f"dim {dim} of the blocked scale (input 1) {list(scale.shape)} does not divide "
                f"the input {list(x.shape)}"
            )


def _expand(parameter: torch.Tensor, shape: torch.Size, attrs: dict[str, Any]) -> torch.Tensor:
    """A scale or zero point, broadcastable to the input's `shape` (see the module doc)."""
    block_size = attrs["block_size"]
    if parameter.dim() == 0 or (parameter.shape == (1,) and not block_size):
        return parameter.reshape(())
    rank = len(shape)
    if parameter.dim() == 1 and not block_size:
        view = [1] * rank
        view[attrs["axis"] % rank] = -1
        return parameter.view(view)
    axis = attrs["axis"] % rank
    for dim in range(rank):
        if parameter.shape[dim] != shape[dim]:
            block = block_size if dim == axis and block_size else shape[dim] // parameter.shape[dim]
            parameter = parameter.repeat_interleave(block, dim=dim).narrow(dim, 0, shape[dim])
    return parameter


def _power_of_two(exponent: torch.Tensor) -> torch.Tensor:
    """Exactly 2**exponent as float32, for integer exponents in [-127, 127] (bit patterns)."""
    exponent = exponent.to(torch.int32)
    bits = torch.where(exponent > -127, (exponent + 127) << 23, 1 << 22)
    return bits.view(torch.float32)


OPS = [Quantize(), Dequantize(), DynamicQuantize(), DynamicQuantizeLinear()]
