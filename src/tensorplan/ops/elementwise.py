"""Pointwise ops: elementwise (binary), unary, activation, select, cast, identity.

Integers follow ONNX (numpy) where TensorRT is silent: DIV truncates toward zero, FLOOR_DIV
floors, POW wraps like repeated multiplication, and a quotient or remainder by zero is 0
instead of a trap. torch has few kernels for uint16/32/64: uint16 and uint32 are computed in
int64, which holds every value and wraps back exactly on the copy into the output; uint64 is
computed on its bits seen as int64, with unsigned order, division and right shift spelled out.
"""

from __future__ import annotations

from typing import Any

import torch

from ..device import CODED_TYPES, DATATYPES, E8M0_ROUND_MODES, convert, is_computable
from ..types import (
    FLOATS,
    FLOATS_AND_DOUBLE,
    ActivationType,
    DataType,
    ElementWiseOperation,
    LayerType,
    UnaryOperation,
)
from . import formulas
from .base import Bool, Enum, Float, Op, ShapeError, Str, TensorMeta
from .shapes import broadcast, same_dtype

_INTEGERS = frozenset(
    {
        DataType.INT8,
        DataType.INT16,
        DataType.INT32,
        DataType.INT64,
        DataType.UINT8,
        DataType.UINT16,
        DataType.UINT32,
        DataType.UINT64,
    }
)
_COMPARISONS = frozenset(
    {ElementWiseOperation.EQUAL, ElementWiseOperation.GREATER, ElementWiseOperation.LESS}
)
_LOGICAL = frozenset({ElementWiseOperation.AND, ElementWiseOperation.OR, ElementWiseOperation.XOR})
_SHIFTS = frozenset({ElementWiseOperation.BITSHIFT_LEFT, ElementWiseOperation.BITSHIFT_RIGHT})
_BITWISE = _SHIFTS | {
    ElementWiseOperation.BITWISE_AND,
    ElementWiseOperation.BITWISE_OR,
    ElementWiseOperation.BITWISE_XOR,
}


class ElementWise(Op):
    """IElementWiseLayer: a binary operation with TensorRT's broadcast (equal ranks)."""

    name = "elementwise"
    reduced_precision = True
    reads_channels_last = True
    reads_strided_views = True
    layer_type = LayerType.ELEMENTWISE
    num_inputs = (2, 2)
    attrs = {"op": Enum(ElementWiseOperation, ElementWiseOperation.SUM)}

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        a, b = inputs
        same_dtype(inputs)
        operation = attrs["op"]
        _check_computable(a.dtype, operation.name)
        if operation in _LOGICAL and a.dtype != DataType.BOOL:
            raise ShapeError(f"{operation.name} needs BOOL inputs, got {a.dtype.name}")
        if operation in _BITWISE and a.dtype not in _INTEGERS:
            raise ShapeError(f"{operation.name} needs integer inputs, got {a.dtype.name}")
        if operation not in _LOGICAL and a.dtype == DataType.BOOL:
            raise ShapeError(f"{operation.name} does not take BOOL inputs")
        dtype = DataType.BOOL if operation in _COMPARISONS else a.dtype
        return [TensorMeta(dtype, broadcast([a.shape, b.shape]))]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        a, b = inputs
        outputs[0].copy_(_binary(attrs["op"], a, b))


def _binary(operation: ElementWiseOperation, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """`a op b`, maybe in a wider type: the copy into the output converts it back."""
    dtype = a.dtype
    if operation in _SHIFTS:
        left = operation == ElementWiseOperation.BITSHIFT_LEFT
        return _shift(_widened(a), _widened(b), torch.iinfo(dtype).bits, dtype.is_signed, left)
    kernel = _UINT64_BINARY.get(operation) if dtype == torch.uint64 else None
    return (kernel or _BINARY[operation])(_widened(a), _widened(b))


def _widened(x: torch.Tensor) -> torch.Tensor:
    """uint16/uint32 as int64 (the same values); uint64 as int64 bits; others unchanged."""
    if x.dtype in (torch.uint16, torch.uint32):
        return x.long()
    if x.dtype == torch.uint64:
        return x.view(torch.int64)
    return x


def _divide(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.is_floating_point():
        return torch.div(a, b)
    return _integer_quotient(a, b, "trunc")


def _floor_divide(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.is_floating_point():
        return torch.div(a, b, rounding_mode="floor")
    return _integer_quotient(a, b, "floor")


def _integer_quotient(a: torch.Tensor, b: torch.Tensor, rounding_mode: str) -> torch.Tensor:
    """x / 0 gives 0 (numpy's answer) and MIN / -1 wraps to MIN, where C would trap (SIGFPE)."""
    quotient = torch.div(a, _safe_divisor(b), rounding_mode=rounding_mode)
    if b.dtype.is_signed:
        quotient = torch.where(b == -1, -quotient, quotient)
    return torch.where(b == 0, 0, quotient)


def _safe_divisor(b: torch.Tensor) -> torch.Tensor:
    """b with 0, and -1 for signed types, replaced by 1; a remainder by it is then already the
    0 that numpy gives for those divisors."""
    special = b == 0
    if b.dtype.is_signed:
        special |= b == -1
    return torch.where(special, 1, b)


def _mod(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """ONNX Mod, fmod=0 (numpy.mod): the remainder takes the divisor's sign."""
    if not a.is_floating_point():
        return torch.remainder(a, _safe_divisor(b))
    # numpy's npy_divmod: a remainder of the dividend's sign moves over by one divisor, and a
    # zero takes the divisor's sign (torch.remainder differs on both for inf and -0.0)
    remainder = torch.fmod(a, b)
    moved = (remainder != 0) & ((remainder < 0) != (b < 0))
    remainder = torch.where(moved, remainder + b, remainder)
    return torch.where(remainder == 0, torch.copysign(remainder, b), remainder)


def _fmod(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """ONNX Mod, fmod=1 (C fmod): the remainder takes the dividend's sign."""
    if a.is_floating_point():
        return torch.fmod(a, b)
    return torch.fmod(a, _safe_divisor(b))


def _shift(a: torch.Tensor, b: torch.Tensor, bits: int, signed: bool, left: bool) -> torch.Tensor:
    """ONNX BitShift on `_widened` values of a type of `bits` bits: a shift by a negative
    amount or by `bits` or more shifts every bit out (numpy), where C masks the amount."""
    out_of_range = (b < 0) | (b >= bits)
    if left:
        return torch.where(out_of_range, 0, a << torch.where(out_of_range, 0, b))
    if signed:
        return a >> torch.where(out_of_range, bits - 1, b)  # arithmetic: fills with the sign
    amount = torch.where(out_of_range, 0, b)
    if bits == 64:  # uint64 bits as int64: one shift that clears the sign bit, then the rest
        logical = ((a >> 1) & _INT64_MAX) >> (amount - 1).clamp(min=0)
        return torch.where(out_of_range, 0, torch.where(amount == 0, a, logical))
    return torch.where(out_of_range, 0, a >> amount)


_INT64_MAX = 2**63 - 1
_INT64_MIN = -(2**63)


def _unsigned_greater(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a > b for uint64 bits as int64: flipping the sign bit maps unsigned order to signed."""
    return (a ^ _INT64_MIN) > (b ^ _INT64_MIN)


def _unsigned_divide(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """a // b for uint64 bits as int64 (Hacker's Delight, divu); x // 0 gives 0."""
    divisor = torch.where(b == 0, 1, b)
    # a divisor of 2**63 or more goes into a at most once; a smaller one into a / 2 (which
    # is non-negative) by a signed division, doubled and then corrected by at most one
    at_most_once = divisor < 0
    small = torch.where(at_most_once, 1, divisor)
    quotient = torch.div((a >> 1) & _INT64_MAX, small, rounding_mode="trunc") << 1
    quotient += ~_unsigned_greater(small, a - quotient * small)
    once = ~_unsigned_greater(divisor, a)
    return torch.where(b == 0, 0, torch.where(at_most_once, once.long(), quotient))


def _unsigned_remainder(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return torch.where(b == 0, 0, a - _unsigned_divide(a, b) * b)


_BINARY = {
    ElementWiseOperation.SUM: torch.add,
    ElementWiseOperation.PROD: torch.mul,
    ElementWiseOperation.MAX: torch.maximum,
    ElementWiseOperation.MIN: torch.minimum,
    ElementWiseOperation.SUB: torch.sub,
    ElementWiseOperation.DIV: _divide,
    ElementWiseOperation.POW: torch.pow,
    ElementWiseOperation.FLOOR_DIV: _floor_divide,
    ElementWiseOperation.AND: torch.logical_and,
    ElementWiseOperation.OR: torch.logical_or,
    ElementWiseOperation.XOR: torch.logical_xor,
    ElementWiseOperation.EQUAL: torch.eq,
    ElementWiseOperation.GREATER: torch.gt,
    ElementWiseOperation.LESS: torch.lt,
    ElementWiseOperation.MOD: _mod,
    ElementWiseOperation.FMOD: _fmod,
    ElementWiseOperation.BITWISE_AND: torch.bitwise_and,
    ElementWiseOperation.BITWISE_OR: torch.bitwise_or,
    ElementWiseOperation.BITWISE_XOR: torch.bitwise_xor,
}

# uint64 (as int64 bits) where the signed operation differs; sums, products, bitwise
# operations and equality are the same on the bits. POW takes exponents below 2**63.
_UINT64_BINARY = {
    ElementWiseOperation.MAX: lambda a, b: torch.where(_unsigned_greater(a, b), a, b),
    ElementWiseOperation.MIN: lambda a, b: torch.where(_unsigned_greater(a, b), b, a),
    ElementWiseOperation.DIV: _unsigned_divide,
    ElementWiseOperation.FLOOR_DIV: _unsigned_divide,
    ElementWiseOperation.MOD: _unsigned_remainder,
    ElementWiseOperation.FMOD: _unsigned_remainder,
    ElementWiseOperation.GREATER: _unsigned_greater,
    ElementWiseOperation.LESS: lambda a, b: _unsigned_greater(b, a),
}


class Unary(Op):
    """IUnaryLayer."""

    name = "unary"
    reduced_precision = True
    reads_channels_last = True
    reads_strided_views = True
    layer_type = LayerType.UNARY
    attrs = {"op": Enum(UnaryOperation, UnaryOperation.EXP)}

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (x,) = inputs
        operation = attrs["op"]
        _check_computable(x.dtype, operation.name)
        if operation == UnaryOperation.NOT:
            if x.dtype != DataType.BOOL:
                raise ShapeError(f"NOT needs a BOOL input, got {x.dtype.name}")
        elif operation == UnaryOperation.BITWISE_NOT:
            if x.dtype not in _INTEGERS:
                raise ShapeError(f"BITWISE_NOT needs an integer input, got {x.dtype.name}")
        elif operation in _INTEGER_UNARY:
            if x.dtype == DataType.BOOL:
                raise ShapeError(f"{operation.name} does not take BOOL inputs")
        elif x.dtype not in FLOATS_AND_DOUBLE:
            raise ShapeError(f"{operation.name} needs a floating-point input, got {x.dtype.name}")
        dtype = DataType.BOOL if operation in _PREDICATES else x.dtype
        return [TensorMeta(dtype, x.shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x = inputs[0]
        operation = attrs["op"]
        if operation in _INTEGER_UNARY and x.dtype in _UNSIGNED:
            outputs[0].copy_(_UNSIGNED_UNARY[operation](x))
        else:
            outputs[0].copy_(_UNARY[operation](_widened(x)))


_INTEGER_UNARY = frozenset({UnaryOperation.ABS, UnaryOperation.NEG, UnaryOperation.SIGN})
_PREDICATES = frozenset({UnaryOperation.ISINF, UnaryOperation.ISNAN})
_UNSIGNED = frozenset({torch.uint8, torch.uint16, torch.uint32, torch.uint64})

_UNARY = {
    UnaryOperation.EXP: torch.exp,
    UnaryOperation.LOG: torch.log,
    UnaryOperation.SQRT: torch.sqrt,
    UnaryOperation.RECIP: torch.reciprocal,
    UnaryOperation.ABS: torch.abs,
    UnaryOperation.NEG: torch.neg,
    UnaryOperation.SIN: torch.sin,
    UnaryOperation.COS: torch.cos,
    UnaryOperation.TAN: torch.tan,
    UnaryOperation.SINH: torch.sinh,
    UnaryOperation.COSH: torch.cosh,
    UnaryOperation.ASIN: torch.asin,
    UnaryOperation.ACOS: torch.acos,
    UnaryOperation.ATAN: torch.atan,
    UnaryOperation.ASINH: torch.asinh,
    UnaryOperation.ACOSH: torch.acosh,
    UnaryOperation.ATANH: torch.atanh,
    UnaryOperation.CEIL: torch.ceil,
    UnaryOperation.FLOOR: torch.floor,
    UnaryOperation.ERF: torch.erf,
    UnaryOperation.NOT: torch.logical_not,
    UnaryOperation.SIGN: torch.sign,
    UnaryOperation.ROUND: torch.round,
    UnaryOperation.ISINF: torch.isinf,
    UnaryOperation.ISNAN: torch.isnan,
    UnaryOperation.BITWISE_NOT: torch.bitwise_not,
}

# unsigned values have no sign: taken as they are, not through int64 (uint64 bits would look
# negative there); NEG wraps modulo 2**bits
_UNSIGNED_UNARY = {
    UnaryOperation.ABS: lambda x: x,
    UnaryOperation.NEG: lambda x: torch.neg(_widened(x)),
    UnaryOperation.SIGN: lambda x: x != 0,
}


class Activation(Op):
    """IActivationLayer; `alpha` and `beta` mean what TensorRT documents for each type."""

    name = "activation"
    reduced_precision = True
    reads_channels_last = True
    reads_strided_views = True
    layer_type = LayerType.ACTIVATION
    attrs = {
        "type": Enum(ActivationType, ActivationType.RELU),
        "alpha": Float(0.0),
        "beta": Float(0.0),
    }

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (x,) = inputs
        if x.dtype not in FLOATS_AND_DOUBLE and x.dtype != DataType.INT8:
            raise ShapeError(f"activations need a floating-point input, got {x.dtype.name}")
        return [TensorMeta(x.dtype, x.shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        """The formula (ops/formulas.py): on the GPU as one generated kernel (torch would
        launch one per operation of the formula), elsewhere on tensors."""
        x, out = inputs[0], outputs[0]
        kind, alpha, beta = attrs["type"], attrs["alpha"], attrs["beta"]
        if out.is_cuda:
            from .cuda_pointwise import run_program
            from .pointwise import Step, StepKind

            if run_program((Step(StepKind.ACTIVATION, kind, (0,), alpha, beta),), [x], out):
                return
        out.copy_(formulas.activation(kind, x, alpha, beta))


class Select(Op):
    """ISelectLayer: `condition ? then : else`, broadcast as elementwise."""

    name = "select"
    reduced_precision = True
    layer_type = LayerType.SELECT
    num_inputs = (3, 3)

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        condition, then, otherwise = inputs
        if condition.dtype != DataType.BOOL:
            raise ShapeError(f"the condition must be BOOL, got {condition.dtype.name}")
        same_dtype([then, otherwise], "the two choices")
        _check_computable(then.dtype, "select")
        return [TensorMeta(then.dtype, broadcast([condition.shape, then.shape, otherwise.shape]))]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        condition, then, otherwise = inputs
        outputs[0].copy_(torch.where(condition, then, otherwise))


def _check_computable(dtype: DataType, what: str) -> None:
    """ShapeError for the types that only casts, quantize and dequantize take."""
    if not is_computable(dtype):
        raise ShapeError(
            f"{what} does not take {dtype.name} inputs: tensorplan only casts, quantizes and "
            f"dequantizes {dtype.name} (as TensorRT); cast to a wider type first"
        )


class Choice(Str):
    """A string attribute that takes one of a few values."""

    def __init__(self, choices: tuple[str, ...], default: str) -> None:
        super().__init__(default)
        self.choices = choices

    def check(self, value: Any) -> str:
        value = super().check(value)
        if value not in self.choices:
            raise ValueError(f"expected one of {', '.join(self.choices)}, got {value!r}")
        return value

    def describe(self) -> str:
        return "one of the strings " + ", ".join(f'`"{choice}"`' for choice in self.choices)


class Cast(Op):
    """ICastLayer: converts to `to_type` bit for bit as ONNX Cast (opsets 25 to 28): see
    `device.convert` and docs/dtypes.md.

    tensorplan extensions: `saturate` (ONNX's, default True) clamps FP8 and E8M0 results to
    the largest finite value instead of NaN or inf; `round_mode` (ONNX's) rounds to E8M0 up,
    down or to nearest. `from_type` names the input's type where its storage does not (FP4
    and FP6 bit codes in uint8); ICastLayer sets it.
    """

    name = "cast"
    any_input_type = True
    layer_type = LayerType.CAST
    attrs = {
        "to_type": Enum(DataType, DataType.FLOAT),
        "saturate": Bool(True),
        "round_mode": Choice(E8M0_ROUND_MODES, "up"),
        "from_type": Enum(DataType, None),
    }

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (x,) = inputs
        if x.dtype in CODED_TYPES and attrs["from_type"] != x.dtype:
            raise ShapeError(
                f"the input is {x.dtype.name}, whose storage (bit codes in uint8) reads as "
                f"UINT8: the cast needs from_type={x.dtype.name}"
            )
        return [TensorMeta(attrs["to_type"], x.shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x = inputs[0]
        from_type = attrs.get("from_type")
        if from_type is None and DATATYPES[x.dtype] in FLOATS and attrs["to_type"] in FLOATS:
            # a rounding torch's copy does as convert would, into any output layout, in one pass
            outputs[0].copy_(x)
            return
        converted = convert(
            x,
            DATATYPES[x.dtype] if from_type is None else from_type,
            attrs["to_type"],
            # casts the builder adds carry only to_type: the others read back as None
            saturate=attrs.get("saturate") is not False,
            round_mode=attrs.get("round_mode") or "up",
        )
        outputs[0].copy_(converted)


class Identity(Op):
    """IIdentityLayer: a copy, converting the type when the layer's output type is set."""

    name = "identity"
    layer_type = LayerType.IDENTITY

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        return [TensorMeta(inputs[0].dtype, inputs[0].shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        outputs[0].copy_(inputs[0])


OPS = [ElementWise(), Unary(), Activation(), Select(), Cast(), Identity()]
