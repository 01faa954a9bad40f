"""Pointwise ops: elementwise (binary), unary, activation, select, cast, identity."""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..device import torch_dtype
from ..types import ActivationType, DataType, ElementWiseOperation, LayerType, UnaryOperation
from .base import Enum, Float, Op, ShapeError, TensorMeta
from .shapes import broadcast, same_dtype

_FLOATS = frozenset({DataType.FLOAT, DataType.HALF, DataType.BF16})
_COMPARISONS = frozenset(
    {ElementWiseOperation.EQUAL, ElementWiseOperation.GREATER, ElementWiseOperation.LESS}
)
_LOGICAL = frozenset({ElementWiseOperation.AND, ElementWiseOperation.OR, ElementWiseOperation.XOR})


class ElementWise(Op):
    """IElementWiseLayer: a binary operation with TensorRT's broadcast (equal ranks)."""

    name = "elementwise"
    layer_type = LayerType.ELEMENTWISE
    num_inputs = (2, 2)
    attrs = {"op": Enum(ElementWiseOperation, ElementWiseOperation.SUM)}

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        a, b = inputs
        same_dtype(inputs)
        operation = attrs["op"]
        if operation in _LOGICAL and a.dtype != DataType.BOOL:
            raise ShapeError(f"{operation.name} needs BOOL inputs, got {a.dtype.name}")
        if operation not in _LOGICAL and a.dtype == DataType.BOOL:
            raise ShapeError(f"{operation.name} does not take BOOL inputs")
        dtype = DataType.BOOL if operation in _COMPARISONS else a.dtype
        return [TensorMeta(dtype, broadcast([a.shape, b.shape]))]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        a, b = inputs
        outputs[0].copy_(_BINARY[attrs["op"]](a, b))


def _divide(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    if a.is_floating_point():
        return torch.div(a, b)
    return torch.div(a, b, rounding_mode="trunc")


_BINARY = {
    ElementWiseOperation.SUM: torch.add,
    ElementWiseOperation.PROD: torch.mul,
    ElementWiseOperation.MAX: torch.maximum,
    ElementWiseOperation.MIN: torch.minimum,
    ElementWiseOperation.SUB: torch.sub,
    ElementWiseOperation.DIV: _divide,
    ElementWiseOperation.POW: torch.pow,
    ElementWiseOperation.FLOOR_DIV: lambda a, b: torch.div(a, b, rounding_mode="floor"),
    ElementWiseOperation.AND: torch.logical_and,
    ElementWiseOperation.OR: torch.logical_or,
    ElementWiseOperation.XOR: torch.logical_xor,
    ElementWiseOperation.EQUAL: torch.eq,
    ElementWiseOperation.GREATER: torch.gt,
    ElementWiseOperation.LESS: torch.lt,
}


class Unary(Op):
    """IUnaryLayer."""

    name = "unary"
    layer_type = LayerType.UNARY
    attrs = {"op": Enum(UnaryOperation, UnaryOperation.EXP)}

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (x,) = inputs
        operation = attrs["op"]
        if operation == UnaryOperation.NOT:
            if x.dtype != DataType.BOOL:
                raise ShapeError(f"NOT needs a BOOL input, got {x.dtype.name}")
        elif operation in _INTEGER_UNARY:
            if x.dtype == DataType.BOOL:
                raise ShapeError(f"{operation.name} does not take BOOL inputs")
        elif x.dtype not in _FLOATS:
            raise ShapeError(f"{operation.name} needs a floating-point input, got {x.dtype.name}")
        dtype = DataType.BOOL if operation in _PREDICATES else x.dtype
        return [TensorMeta(dtype, x.shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        outputs[0].copy_(_UNARY[attrs["op"]](inputs[0]))


_INTEGER_UNARY = frozenset({UnaryOperation.ABS, UnaryOperation.NEG, UnaryOperation.SIGN})
_PREDICATES = frozenset({UnaryOperation.ISINF, UnaryOperation.ISNAN})

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
}


class Activation(Op):
    """IActivationLayer; `alpha` and `beta` mean what TensorRT documents for each type."""

    name = "activation"
    layer_type = LayerType.ACTIVATION
    attrs = {
        "type": Enum(ActivationType, ActivationType.RELU),
        "alpha": Float(0.0),
        "beta": Float(0.0),
    }

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (x,) = inputs
        if x.dtype not in _FLOATS and x.dtype != DataType.INT8:
            raise ShapeError(f"activations need a floating-point input, got {x.dtype.name}")
        return [TensorMeta(x.dtype, x.shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x = inputs[0]
        alpha, beta = attrs["alpha"], attrs["beta"]
        outputs[0].copy_(_ACTIVATIONS[attrs["type"]](x, alpha, beta))


_ACTIVATIONS = {
    ActivationType.RELU: lambda x, a, b: torch.relu(x),
    ActivationType.SIGMOID: lambda x, a, b: torch.sigmoid(x),
    ActivationType.TANH: lambda x, a, b: torch.tanh(x),
    ActivationType.LEAKY_RELU: lambda x, a, b: F.leaky_relu(x, a),
    ActivationType.ELU: lambda x, a, b: torch.where(x >= 0, x, a * torch.expm1(x)),
    ActivationType.SELU: lambda x, a, b: b * torch.where(x >= 0, x, a * torch.expm1(x)),
    ActivationType.SOFTSIGN: lambda x, a, b: x / (1 + torch.abs(x)),
    ActivationType.SOFTPLUS: lambda x, a, b: a * F.softplus(b * x, beta=1.0, threshold=20.0),
    ActivationType.CLIP: lambda x, a, b: torch.clamp(x, a, b),
    ActivationType.HARD_SIGMOID: lambda x, a, b: torch.clamp(a * x + b, 0.0, 1.0),
    ActivationType.SCALED_TANH: lambda x, a, b: a * torch.tanh(b * x),
    ActivationType.THRESHOLDED_RELU: lambda x, a, b: torch.where(x > a, x, torch.zeros_like(x)),
    ActivationType.GELU_ERF: lambda x, a, b: F.gelu(x),
    ActivationType.GELU_TANH: lambda x, a, b: F.gelu(x, approximate="tanh"),
}


class Select(Op):
    """ISelectLayer: `condition ? then : else`, broadcast as elementwise."""

    name = "select"
    layer_type = LayerType.SELECT
    num_inputs = (3, 3)

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        condition, then, otherwise = inputs
        if condition.dtype != DataType.BOOL:
            raise ShapeError(f"the condition must be BOOL, got {condition.dtype.name}")
        same_dtype([then, otherwise], "the two choices")
        return [TensorMeta(then.dtype, broadcast([condition.shape, then.shape, otherwise.shape]))]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        condition, then, otherwise = inputs
        outputs[0].copy_(torch.where(condition, then, otherwise))


class Cast(Op):
    """ICastLayer: converts to `to_type` (float to int truncates toward zero, as in C)."""

    name = "cast"
    layer_type = LayerType.CAST
    attrs = {"to_type": Enum(DataType, DataType.FLOAT)}

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (x,) = inputs
        to_type = attrs["to_type"]
        torch_dtype(to_type)
        return [TensorMeta(to_type, x.shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        outputs[0].copy_(inputs[0])


class Identity(Op):
    """IIdentityLayer: a copy, converting the type when the layer's output type is set."""

    name = "identity"
    layer_type = LayerType.IDENTITY

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        return [TensorMeta(inputs[0].dtype, inputs[0].shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        outputs[0].copy_(inputs[0])


OPS = [ElementWise(), Unary(), Activation(), Select(), Cast(), Identity()]
