"""Pointwise formulas, each written once and rendered both to torch and to Triton source.

A formula is a Python function of a math namespace and its operands. Given `TORCH` and
tensors it computes (the CPU kernels, and any device without a generated kernel); given
`TRITON` and `Source` operands it returns the Triton expression that computes the same
thing (ops/cuda_pointwise.py writes it into a generated kernel). The arithmetic operators
work on both; everything else goes through the namespace, whose two tables map each
primitive (exp, erf, tanh, ...) to torch's function and to Triton's. A constant of a
formula (GELU's 0.044715, say) therefore exists once: a wrong one fails the CPU tests too.

Only the formula's own constants reach Triton source as text (rendered with `repr`);
an activation's alpha and beta arrive as kernel arguments.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from ..types import ActivationType, ElementWiseOperation, UnaryOperation

SQRT_HALF = 0.7071067811865476
"""1 / sqrt(2), for GELU's erf form."""
SQRT_TWO_OVER_PI = 0.7978845608028654
"""sqrt(2 / pi), for GELU's tanh form."""
GELU_CUBIC = 0.044715
"""The cubic term of GELU's tanh approximation."""
SOFTPLUS_THRESHOLD = 20.0
"""Above it softplus(x) is x (log1p(exp(x)) would differ from x by less than an ulp)."""


class Source:
    """A Triton expression under construction: the arithmetic operators build source text."""

    def __init__(self, text: str) -> None:
        self.text = text

    def __str__(self) -> str:
        return self.text

    def __add__(self, other: Any) -> Source:
        return _infix(self, "+", other)

    def __radd__(self, other: Any) -> Source:
        return _infix(other, "+", self)

    def __sub__(self, other: Any) -> Source:
        return _infix(self, "-", other)

    def __rsub__(self, other: Any) -> Source:
        return _infix(other, "-", self)

    def __mul__(self, other: Any) -> Source:
        return _infix(self, "*", other)

    def __rmul__(self, other: Any) -> Source:
        return _infix(other, "*", self)

    def __truediv__(self, other: Any) -> Source:
        return _infix(self, "/", other)

    def __rtruediv__(self, other: Any) -> Source:
        return _infix(other, "/", self)

    def __neg__(self) -> Source:
        return Source(f"(-{self.text})")

    def __gt__(self, other: Any) -> Source:
        return _infix(self, ">", other)

    def __ge__(self, other: Any) -> Source:
        return _infix(self, ">=", other)


def _text(value: Any) -> str:
    """An operand as source: an expression, or a number of the formula (never plan data)."""
    if isinstance(value, Source):
        return value.text
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return repr(float(value))
    raise TypeError(f"a formula operand must be an expression or a number, got {value!r}")


def _infix(a: Any, operator: str, b: Any) -> Source:
    return Source(f"({_text(a)} {operator} {_text(b)})")


def _call(function: str, *operands: Any, nan: bool = False) -> Source:
    arguments = ", ".join(_text(operand) for operand in operands)
    if nan:  # min and max propagate NaN as torch's do
        arguments += ", propagate_nan=tl.PropagateNan.ALL"
    return Source(f"{function}({arguments})")


class TorchMath:
    """The primitives on torch tensors (a number may be the second operand of maximum and
    minimum, and either choice of where)."""

    exp = staticmethod(torch.exp)
    log = staticmethod(torch.log)
    sqrt = staticmethod(torch.sqrt)
    abs = staticmethod(torch.abs)
    sin = staticmethod(torch.sin)
    cos = staticmethod(torch.cos)
    erf = staticmethod(torch.erf)
    ceil = staticmethod(torch.ceil)
    floor = staticmethod(torch.floor)
    tanh = staticmethod(torch.tanh)
    sigmoid = staticmethod(torch.sigmoid)
    expm1 = staticmethod(torch.expm1)
    log1p = staticmethod(torch.log1p)

    @staticmethod
    def maximum(a: torch.Tensor, b: Any) -> torch.Tensor:
        return torch.maximum(a, b) if isinstance(b, torch.Tensor) else torch.clamp(a, min=b)

    @staticmethod
    def minimum(a: torch.Tensor, b: Any) -> torch.Tensor:
        return torch.minimum(a, b) if isinstance(b, torch.Tensor) else torch.clamp(a, max=b)

    pow = staticmethod(torch.pow)
    where = staticmethod(torch.where)


class TritonMath:
    """The same primitives as Triton source (`tl` and libdevice functions, in FLOAT)."""

    @staticmethod
    def exp(x: Any) -> Source:
        return _call("tl.exp", x)

    @staticmethod
    def log(x: Any) -> Source:
        return _call("tl.log", x)

    @staticmethod
    def sqrt(x: Any) -> Source:
        return _call("tl.sqrt_rn", x)

    @staticmethod
    def abs(x: Any) -> Source:
        return _call("tl.abs", x)

    @staticmethod
    def sin(x: Any) -> Source:
        return _call("tl.sin", x)

    @staticmethod
    def cos(x: Any) -> Source:
        return _call("tl.cos", x)

    @staticmethod
    def erf(x: Any) -> Source:
        return _call("tl.erf", x)

    @staticmethod
    def ceil(x: Any) -> Source:
        return _call("tl.ceil", x)

    @staticmethod
    def floor(x: Any) -> Source:
        return _call("tl.floor", x)

    @staticmethod
    def tanh(x: Any) -> Source:
        return _call("libdevice.tanh", x)

    @staticmethod
    def sigmoid(x: Any) -> Source:
        return _call("tl.sigmoid", x)

    @staticmethod
    def expm1(x: Any) -> Source:
        return _call("libdevice.expm1", x)

    @staticmethod
    def log1p(x: Any) -> Source:
        return _call("libdevice.log1p", x)

    @staticmethod
    def maximum(a: Any, b: Any) -> Source:
        return _call("tl.maximum", a, b, nan=True)

    @staticmethod
    def minimum(a: Any, b: Any) -> Source:
        return _call("tl.minimum", a, b, nan=True)

    @staticmethod
    def pow(a: Any, b: Any) -> Source:
        return _call("libdevice.pow", a, b)

    @staticmethod
    def where(condition: Any, a: Any, b: Any) -> Source:
        return _call("tl.where", condition, a, b)


TORCH = TorchMath()
TRITON = TritonMath()

Formula = Callable[..., Any]

ACTIVATIONS: dict[ActivationType, Formula] = {
    ActivationType.RELU: lambda m, x, a, b: m.maximum(x, 0.0),
    ActivationType.SIGMOID: lambda m, x, a, b: m.sigmoid(x),
    ActivationType.TANH: lambda m, x, a, b: m.tanh(x),
    ActivationType.LEAKY_RELU: lambda m, x, a, b: m.where(x >= 0.0, x, a * x),
    ActivationType.ELU: lambda m, x, a, b: m.where(x >= 0.0, x, a * m.expm1(x)),
    ActivationType.SELU: lambda m, x, a, b: b * m.where(x >= 0.0, x, a * m.expm1(x)),
    ActivationType.SOFTSIGN: lambda m, x, a, b: x / (1.0 + m.abs(x)),
    ActivationType.SOFTPLUS: lambda m, x, a, b: (
        a * m.where(b * x > SOFTPLUS_THRESHOLD, b * x, m.log1p(m.exp(b * x)))
    ),
    ActivationType.CLIP: lambda m, x, a, b: m.minimum(m.maximum(x, a), b),
    ActivationType.HARD_SIGMOID: lambda m, x, a, b: m.minimum(m.maximum(a * x + b, 0.0), 1.0),
    ActivationType.SCALED_TANH: lambda m, x, a, b: a * m.tanh(b * x),
    ActivationType.THRESHOLDED_RELU: lambda m, x, a, b: m.where(x > a, x, 0.0),
    ActivationType.GELU_ERF: lambda m, x, a, b: 0.5 * x * (1.0 + m.erf(x * SQRT_HALF)),
    ActivationType.GELU_TANH: lambda m, x, a, b: (
        0.5 * x * (1.0 + m.tanh(SQRT_TWO_OVER_PI * (x + GELU_CUBIC * x * x * x)))
    ),
}
"""Every activation type: f(math, x, alpha, beta), alpha and beta as TensorRT documents."""

UNARY: dict[UnaryOperation, Formula] = {
    UnaryOperation.EXP: lambda m, x: m.exp(x),
    UnaryOperation.LOG: lambda m, x: m.log(x),
    UnaryOperation.SQRT: lambda m, x: m.sqrt(x),
    UnaryOperation.RECIP: lambda m, x: 1.0 / x,
    UnaryOperation.ABS: lambda m, x: m.abs(x),
    UnaryOperation.NEG: lambda m, x: -x,
    UnaryOperation.SIN: lambda m, x: m.sin(x),
    UnaryOperation.COS: lambda m, x: m.cos(x),
    UnaryOperation.ERF: lambda m, x: m.erf(x),
    UnaryOperation.CEIL: lambda m, x: m.ceil(x),
    UnaryOperation.FLOOR: lambda m, x: m.floor(x),
}
"""The unary operations a fused pointwise kernel computes (on floating-point values)."""

BINARY: dict[ElementWiseOperation, Formula] = {
    ElementWiseOperation.SUM: lambda m, a, b: a + b,
    ElementWiseOperation.SUB: lambda m, a, b: a - b,
    ElementWiseOperation.PROD: lambda m, a, b: a * b,
    ElementWiseOperation.DIV: lambda m, a, b: a / b,
    ElementWiseOperation.MAX: lambda m, a, b: m.maximum(a, b),
    ElementWiseOperation.MIN: lambda m, a, b: m.minimum(a, b),
    ElementWiseOperation.POW: lambda m, a, b: m.pow(a, b),
}
"""The elementwise operations a fused pointwise kernel computes (on floating-point values)."""


def activation(kind: ActivationType, x: torch.Tensor, alpha: float, beta: float) -> torch.Tensor:
    """An activation on torch tensors. HALF and BF16 (and integer) inputs compute in FLOAT,
    rounded once at the end, as the generated kernel does; DOUBLE stays DOUBLE."""
    wide = x if x.dtype in (torch.float32, torch.float64) else x.float()
    return ACTIVATIONS[kind](TORCH, wide, alpha, beta)
