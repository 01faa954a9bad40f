"""Where tensors live: the execution device, the torch storage of each DataType and the
conversions between them (ONNX Cast's), and raw pointers seen as tensors.

On a GPU, addresses are device pointers; on the CPU they are host pointers. Both become
torch tensors here without copying, so the same kernels run on either.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np
import torch

from .types import DataType

_E8M0_STORAGE = getattr(torch, "float8_e8m0fnu", torch.uint8)
"""E8M0's storage: torch's own dtype where it has one (2.7+), else the bit code in uint8."""

TORCH_DTYPES = {
    DataType.FLOAT: torch.float32,
    DataType.HALF: torch.float16,
    DataType.BF16: torch.bfloat16,
    DataType.INT8: torch.int8,
    DataType.INT32: torch.int32,
    DataType.INT64: torch.int64,
    DataType.BOOL: torch.bool,
    DataType.UINT8: torch.uint8,
    DataType.FP8: torch.float8_e4m3fn,
    DataType.DOUBLE: torch.float64,
    DataType.INT16: torch.int16,
    DataType.UINT16: torch.uint16,
    DataType.UINT32: torch.uint32,
    DataType.UINT64: torch.uint64,
    DataType.FP8_E5M2: torch.float8_e5m2,
    DataType.FP8_E4M3FNUZ: torch.float8_e4m3fnuz,
    DataType.FP8_E5M2FNUZ: torch.float8_e5m2fnuz,
    DataType.E8M0: _E8M0_STORAGE,
    # the sub-byte types, unpacked: one element per byte (docs/dtypes.md); integers hold their
    # value, FP4 and FP6 their bit code in the low bits
    DataType.INT4: torch.int8,
    DataType.UINT4: torch.uint8,
    DataType.INT2: torch.int8,
    DataType.UINT2: torch.uint8,
    DataType.FP4: torch.uint8,
    DataType.FP6_E2M3: torch.uint8,
    DataType.FP6_E3M2: torch.uint8,
}
"""The torch dtype a DataType is stored in."""

FAST_KERNEL_TYPES = (torch.float16, torch.bfloat16, torch.float32)
"""The types the GPU's fast kernels (cuDNN straight into the arena, tensorplan's Triton
kernels) take: the engine's HALF, BF16 and FLOAT."""

_SUB_BYTE_INTEGERS = {DataType.INT4: 4, DataType.UINT4: 4, DataType.INT2: 2, DataType.UINT2: 2}
"""Bits of each sub-byte integer type."""

_MINIFLOATS = {DataType.FP4: (2, 1, 1), DataType.FP6_E2M3: (2, 3, 1), DataType.FP6_E3M2: (3, 2, 3)}
"""Exponent bits, mantissa bits and exponent bias of the floats without inf and NaN (OCP MX)."""

_FP8_TYPES = frozenset(
    {DataType.FP8, DataType.FP8_E5M2, DataType.FP8_E4M3FNUZ, DataType.FP8_E5M2FNUZ}
)

CODED_TYPES = frozenset(_MINIFLOATS) | (
    {DataType.E8M0} if _E8M0_STORAGE is torch.uint8 else frozenset()
)
"""Types whose storage holds their bit code in uint8, which UINT8 also uses: a kernel must be
told that a tensor is one of these (a uint8 tensor alone reads as UINT8)."""

DATATYPES = {
    torch_type: trt_type
    for trt_type, torch_type in TORCH_DTYPES.items()
    if trt_type not in _SUB_BYTE_INTEGERS and trt_type not in CODED_TYPES
}
"""The DataType of each torch dtype: only the type that owns a storage dtype (INT8 for int8,
never INT4), so DataType -> torch -> DataType is not a round trip for the sub-byte types."""

E8M0_ROUND_MODES = ("up", "down", "nearest")
"""How a cast rounds to E8M0 (ONNX Cast's round_mode): away from zero, toward zero, nearest."""

_E4M3FN_OVERFLOW = 464.0
"""Halfway between FP8 E4M3's largest value (448) and the 480 it lacks: above it is NaN."""


def torch_dtype(trt_type: DataType) -> torch.dtype:
    """The torch dtype a DataType is stored in; TypeError for types tensorplan cannot store."""
    try:
        return TORCH_DTYPES[trt_type]  # an IntEnum key: an int of the same value finds it too
    except KeyError:
        raise TypeError(f"DataType.{DataType(trt_type).name} is not supported") from None


def storage_itemsize(trt_type: DataType) -> int:
    """Bytes per element in tensorplan's memory (1 for the sub-byte types, stored unpacked)."""
    return torch_dtype(trt_type).itemsize


def is_computable(trt_type: DataType) -> bool:
    """Whether kernels compute in the type: FP8, E8M0 and the sub-byte types are only cast,
    quantized, dequantized and moved, as in TensorRT (ops that compute refuse them)."""
    trt_type = DataType(trt_type)
    return not (
        trt_type in _FP8_TYPES
        or trt_type == DataType.E8M0
        or trt_type in _SUB_BYTE_INTEGERS
        or trt_type in _MINIFLOATS
    )


def convert(
    x: torch.Tensor,
    from_type: DataType,
    to_type: DataType,
    saturate: bool = True,
    round_mode: str = "up",
) -> torch.Tensor:
    """`x`, stored as `from_type`, converted and stored as `to_type`, bit for bit as ONNX Cast
    (opsets 25 to 28) and its reference (numpy with ml_dtypes) convert.

    Floats to integers truncate toward zero; to the sub-byte integers, NaN, inf and values out
    of the type's range give 0 (integers wrap). To FP8 they round to nearest even, and past
    the largest value give that value with `saturate`, else NaN (inf for E5M2). To FP4 and FP6 they round
    to nearest even and saturate. To E8M0 they round by `round_mode` (see E8M0_ROUND_MODES),
    inf and NaN give NaN, and `saturate` keeps a round up from reaching NaN. Types that
    ml_dtypes converts through float32 (FP8, FP4, FP6, E8M0, BF16) are converted so here too,
    double rounding included; DOUBLE to HALF is rounded once, as numpy does.
    The result may be `x` itself when nothing changes.
    """
    from_type, to_type = DataType(from_type), DataType(to_type)
    if from_type == to_type:
        return x
    values = _values(x, from_type)
    if to_type in _SUB_BYTE_INTEGERS:
        return _to_sub_byte_integer(values, to_type)
    if to_type in _MINIFLOATS:
        return _encode_minifloat(values.to(torch.float32), _signs(values), *_MINIFLOATS[to_type])
    if to_type == DataType.E8M0:
        return _encode_e8m0(values.to(torch.float32), saturate, round_mode)
    if to_type in _FP8_TYPES:
        return _encode_fp8(values.to(torch.float32), _signs(values), to_type, saturate)
    if to_type == DataType.HALF and values.dtype == torch.float64:
        return _double_to_half(values)
    target = torch_dtype(to_type)
    if values.is_floating_point() and target in (torch.int32, torch.int64):
        # NaN, inf and out-of-range values give the smallest integer, as x86 (and numpy)
        # do, on every device (CUDA's conversion saturates instead)
        limit = 2.0 ** (torch.iinfo(target).bits - 1)
        wide = values.to(torch.float64)
        bad = torch.isnan(wide) | (wide >= limit) | (wide < -limit)
        return torch.where(bad, torch.iinfo(target).min, values.to(target))
    return values.to(target)


def _signs(values: torch.Tensor) -> torch.Tensor:
    """Which values are negative, read before any arithmetic: for floats from the bits, as
    CUDA drops NaNs' signs in conversions; unsigned and bool values never are."""
    if values.is_floating_point():
        return _negative(values)
    if values.dtype == torch.bool or not torch.iinfo(values.dtype).min:
        return torch.zeros_like(values, dtype=torch.bool)
    return values < 0


def _negative(x: torch.Tensor) -> torch.Tensor:
    """The sign bits of a float tensor, read from its bits (so NaNs have one too)."""
    integers = {1: torch.int8, 2: torch.int16, 4: torch.int32, 8: torch.int64}
    return x.view(integers[x.element_size()]) < 0


def _values(x: torch.Tensor, from_type: DataType) -> torch.Tensor:
    """The values of `x` in a torch dtype that holds them: float32 for the coded and FP8 types."""
    if from_type in _MINIFLOATS:
        return _decode_minifloat(x, *_MINIFLOATS[from_type])
    if from_type == DataType.E8M0:
        return _decode_e8m0(x)
    if from_type in (DataType.FP8_E4M3FNUZ, DataType.FP8_E5M2FNUZ):
        # their one NaN code (0x80) has the sign bit set, and ml_dtypes reads it as -NaN
        values = x.to(torch.float32)
        return torch.where(torch.isnan(values), -values.abs(), values)
    if from_type in _FP8_TYPES:
        return x.to(torch.float32)
    return x


def _to_sub_byte_integer(values: torch.Tensor, to_type: DataType) -> torch.Tensor:
    """Integers: their low bits, two's complement for signed types. Floats: truncated toward
    zero, and 0 where that is out of range (NaN and inf too), as ml_dtypes 0.7 converts."""
    bits = _SUB_BYTE_INTEGERS[to_type]
    if values.is_floating_point():
        wide = values if values.dtype == torch.float64 else values.to(torch.float32)
        whole = torch.trunc(wide)
        low = -(1 << (bits - 1)) if _signed(to_type) else 0
        high = low + (1 << bits) - 1
        return torch.where((whole >= low) & (whole <= high), whole, 0).to(torch_dtype(to_type))
    low = values.to(torch.int64) & ((1 << bits) - 1)
    if _signed(to_type):
        low = low - ((low >> (bits - 1)) << bits)
    return low.to(torch_dtype(to_type))


def _signed(to_type: DataType) -> bool:
    return to_type in (DataType.INT4, DataType.INT2)


def _encode_minifloat(
    x: torch.Tensor, negative: torch.Tensor, exponent_bits: int, mantissa_bits: int, bias: int
):
    """float32 to the bit codes (uint8) of a float without inf and NaN: round to nearest even,
    saturate; NaN gives a zero of the opposite sign (ml_dtypes)."""
    sign_shift = exponent_bits + mantissa_bits
    largest = (2 - 2.0**-mantissa_bits) * 2.0 ** ((1 << exponent_bits) - 1 - bias)
    magnitude = torch.clamp(x.abs(), max=largest)
    exponent = torch.clamp((magnitude.view(torch.int32) >> 23) - 127, min=1 - bias)
    steps = torch.round(magnitude * _power_of_two(mantissa_bits - exponent))
    steps = torch.where(torch.isnan(x), 0, steps).to(torch.int32)
    # a round up to 2**(mantissa_bits + 1) steps carries into the exponent field by itself
    code = (exponent + (bias - 1)) * (1 << mantissa_bits) + steps
    sign = negative ^ torch.isnan(x)
    code = torch.where(torch.isnan(x), 0, code) | (sign.to(torch.int32) << sign_shift)
    return code.to(torch.uint8)


def _decode_minifloat(codes: torch.Tensor, exponent_bits: int, mantissa_bits: int, bias: int):
    """Bit codes (uint8, high bits ignored) to float32 values."""
    code = codes.to(torch.int32)
    exponent = (code >> mantissa_bits) & ((1 << exponent_bits) - 1)
    mantissa = code & ((1 << mantissa_bits) - 1)
    significand = mantissa + torch.where(exponent > 0, 1 << mantissa_bits, 0)
    scale = _power_of_two(torch.clamp(exponent, min=1) - bias - mantissa_bits)
    magnitude = significand.to(torch.float32) * scale
    negative = ((code >> (exponent_bits + mantissa_bits)) & 1) == 1
    return torch.where(negative, -magnitude, magnitude)


def _encode_e8m0(x: torch.Tensor, saturate: bool, round_mode: str) -> torch.Tensor:
    """float32 to E8M0 as onnx.numpy_helper.to_float8e8m0: the exponent field, rounded by
    `round_mode`; the sign is ignored, inf and NaN give NaN (0xFF)."""
    if round_mode not in E8M0_ROUND_MODES:
        raise ValueError(f"round_mode must be one of {E8M0_ROUND_MODES}, got {round_mode!r}")
    bits = x.view(torch.int32)
    exponent = (bits >> 23) & 0xFF
    special = exponent == 0xFF
    if round_mode == "up":
        round_up = (bits & 0x7FFFFF) != 0
    elif round_mode == "nearest":
        # the reference's rule: guard bit set, and round/sticky bits or a normal input
        round_up = ((bits & 0x400000) != 0) & (((bits & 0x3FFFFF) != 0) | (exponent > 0))
    else:
        round_up = torch.zeros_like(special)
    round_up &= ~special
    if saturate:
        round_up &= exponent != 0xFE
    codes = torch.where(special, 0xFF, exponent + round_up.to(torch.int32))
    return codes.to(torch.uint8).view(_E8M0_STORAGE)


def _decode_e8m0(x: torch.Tensor) -> torch.Tensor:
    """E8M0 to float32: 2**(code - 127), NaN for 0xFF."""
    code = x.view(torch.uint8).to(torch.int32)
    bits = torch.where(code == 0, 0x400000, code << 23)  # 2**-127 is a float32 subnormal
    return torch.where(code == 0xFF, 0x7FC00000, bits).view(torch.float32)


def _encode_fp8(
    x: torch.Tensor, negative: torch.Tensor, to_type: DataType, saturate: bool
) -> torch.Tensor:
    """float32 to an FP8 type, round to nearest even; ONNX's saturate rule and ml_dtypes' NaN
    codes where torch differs (torch saturates E4M3FN, and writes E5M2's NaN as 0x7F)."""
    dtype = torch_dtype(to_type)
    if saturate:
        largest = torch.finfo(dtype).max
        x = torch.clamp(x, -largest, largest)
    codes = x.to(dtype).view(torch.uint8)
    sign = negative.to(torch.uint8) << 7
    if to_type == DataType.FP8 and not saturate:
        codes = torch.where(x.abs() > _E4M3FN_OVERFLOW, 0x7F | sign, codes)
    elif to_type == DataType.FP8_E5M2:
        codes = torch.where(torch.isnan(x), 0x7E | sign, codes)
    if to_type == DataType.FP8:  # NaN keeps its sign on every device
        codes = torch.where(torch.isnan(x), 0x7F | sign, codes)
    return codes.view(dtype)


def _double_to_half(x: torch.Tensor) -> torch.Tensor:
    """float64 to float16 rounded once, as numpy does (torch rounds twice, through float32):
    round to float32 by round-to-odd, whose 13 spare bits make the second rounding exact."""
    rounded = x.to(torch.float32)
    bits = rounded.view(torch.int32)
    inexact = (rounded.to(torch.float64) != x) & ~torch.isnan(x)
    even = (bits & 1) == 0
    away = rounded.abs().to(torch.float64) > x.abs()  # rounded away from zero: step back
    step = torch.where(away, -1, 1).to(torch.int32)
    bits = torch.where(inexact & even, bits + step, bits)
    return bits.view(torch.float32).to(torch.float16)


def _power_of_two(exponent: torch.Tensor) -> torch.Tensor:
    """2.0**exponent as float32, exactly, for int32 exponents of normal floats (-126 to 127)."""
    return ((exponent + 127) << 23).view(torch.float32)


def execution_device() -> torch.device:
    """CUDA when torch sees a GPU, else the CPU; `TENSORPLAN_DEVICE=cpu` forces the CPU."""
    choice = os.environ.get("TENSORPLAN_DEVICE", "").strip().lower()
    if choice == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


class _CudaMemory:
    """A device address range exposed through `__cuda_array_interface__` (version 3)."""

    def __init__(self, address: int, nbytes: int) -> None:
        self.__cuda_array_interface__ = {
            "shape": (nbytes,),
            "typestr": "|u1",
            "data": (address, False),
            "version": 3,
        }


def bytes_at(address: int, nbytes: int, device: torch.device) -> torch.Tensor:
    """A uint8 tensor over `nbytes` at `address` on `device`, sharing the memory (no copy)."""
    if nbytes == 0:
        return torch.empty(0, dtype=torch.uint8, device=device)
    if device.type == "cuda":
        return torch.as_tensor(_CudaMemory(address, nbytes), device=device)
    return torch.frombuffer((ctypes.c_ubyte * nbytes).from_address(address), dtype=torch.uint8)


def tensor_at(
    address: int, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """A contiguous tensor of `shape` and `dtype` over the memory at `address` (no copy)."""
    numel = 1
    for d in shape:
        numel *= d
    itemsize = torch.empty((), dtype=dtype).element_size()
    return bytes_at(address, numel * itemsize, device).view(dtype).view(shape)


def host_bytes(data: memoryview) -> torch.Tensor:
    """A uint8 CPU tensor over bytes the caller keeps alive (no copy; never written)."""
    if len(data) == 0:
        return torch.empty(0, dtype=torch.uint8)
    address = np.frombuffer(data, dtype=np.uint8).ctypes.data
    return bytes_at(address, len(data), torch.device("cpu"))
