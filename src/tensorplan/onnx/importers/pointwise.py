"""Pointwise ONNX ops: arithmetic, comparisons, logic, math functions, activations, casts.

Binary ops follow numpy broadcasting (ranks aligned with shuffles, as onnx-tensorrt does).
Layers that compute only in FLOAT/HALF/BF16 (unary math, activations) run DOUBLE inputs
in FLOAT and cast back.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np

from ...network.tensor import ITensor
from ...types import (
    FLOATS,
    ActivationType,
    DataType,
    ElementWiseOperation,
    ErrorCode,
    UnaryOperation,
)
from ..context import ImportContext, OnnxNode
from ..model import datatype_of

E = ElementWiseOperation
U = UnaryOperation
A = ActivationType


def in_float(ctx: ImportContext, x: ITensor, compute: Callable[[ITensor], ITensor]) -> ITensor:
    """`compute(x)`, run in FLOAT when x's type has no float kernel (DOUBLE) and cast back."""
    dtype = ctx.dtype(x)
    if dtype in FLOATS:
        return compute(x)
    return ctx.cast(compute(ctx.cast(x, DataType.FLOAT)), dtype)


# -- binary -------------------------------------------------------------------------------------


def _binary(op: ElementWiseOperation) -> Callable[[ImportContext, OnnxNode], ITensor]:
    def importer(ctx: ImportContext, node: OnnxNode) -> ITensor:
        return ctx.binary(node.inputs[0], node.inputs[1], op)

    return importer


def _variadic(op: ElementWiseOperation, ctx: ImportContext, node: OnnxNode) -> ITensor:
    """Sum, Max, Min: a chain of binary layers over every input."""
    return functools.reduce(lambda a, b: ctx.binary(a, b, op), node.inputs)


def mean(ctx: ImportContext, node: OnnxNode) -> ITensor:
    total = _variadic(E.SUM, ctx, node)
    count = ctx.scalar_like(len(node.inputs), total)
    return ctx.binary(total, count, E.DIV)


def power(ctx: ImportContext, node: OnnxNode) -> ITensor:
    base, exponent = node.inputs
    # Pow-12+ lets the exponent have another type; the result has the base's
    return ctx.binary(base, ctx.cast(exponent, ctx.dtype(base)), E.POW)


def mod(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """fmod=0: the remainder has the divisor's sign (numpy mod); fmod=1: the dividend's (C)."""
    op = E.FMOD if node.attr("fmod", "int", 0) else E.MOD
    return ctx.binary(node.inputs[0], node.inputs[1], op)


def bit_shift(ctx: ImportContext, node: OnnxNode) -> ITensor:
    direction = node.attr("direction", "string", "")
    if direction not in ("LEFT", "RIGHT"):
        raise node.error(
            ErrorCode.INVALID_NODE, f"direction must be LEFT or RIGHT, got '{direction}'"
        )
    op = E.BITSHIFT_LEFT if direction == "LEFT" else E.BITSHIFT_RIGHT
    return ctx.binary(node.inputs[0], node.inputs[1], op)


# -- comparisons and logic ----------------------------------------------------------------------


def equal(ctx: ImportContext, node: OnnxNode) -> ITensor:
    a, b = node.inputs
    if ctx.dtype(a) == DataType.BOOL:  # TensorRT's EQUAL takes no BOOL: a == b is not (a xor b)
        return ctx.unary(ctx.binary(a, b, E.XOR), U.NOT)
    return ctx.binary(a, b, E.EQUAL)


def _or_equal(op: ElementWiseOperation) -> Callable[[ImportContext, OnnxNode], ITensor]:
    def importer(ctx: ImportContext, node: OnnxNode) -> ITensor:
        a, b = node.inputs
        return ctx.binary(ctx.binary(a, b, op), ctx.binary(a, b, E.EQUAL), E.OR)

    return importer


def where(ctx: ImportContext, node: OnnxNode) -> ITensor:
    return ctx.select(*node.inputs)


# -- unary --------------------------------------------------------------------------------------


def _unary(op: UnaryOperation) -> Callable[[ImportContext, OnnxNode], ITensor]:
    integer_ok = op in (U.ABS, U.NEG, U.SIGN, U.NOT, U.BITWISE_NOT)

    def importer(ctx: ImportContext, node: OnnxNode) -> ITensor:
        x = node.inputs[0]
        if integer_ok:
            return ctx.unary(x, op)
        return in_float(ctx, x, lambda t: ctx.unary(t, op))

    return importer


def reciprocal(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x = node.inputs[0]
    return ctx.binary(ctx.scalar_like(1, x), x, E.DIV)


def is_inf(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x = node.inputs[0]
    infinite = in_float(ctx, x, lambda t: ctx.unary(t, U.ISINF))
    positive = node.attr("detect_positive", "int", 1)
    negative = node.attr("detect_negative", "int", 1)
    if positive and negative:
        return infinite
    zero = ctx.scalar_like(0, x)
    if positive:
        return ctx.binary(infinite, ctx.binary(x, zero, E.GREATER), E.AND)
    if negative:
        return ctx.binary(infinite, ctx.binary(x, zero, E.LESS), E.AND)
    return ctx.binary(infinite, ctx.unary(infinite, U.NOT), E.AND)


# -- activations ----------------------------------------------------------------------------------


def _activation(
    kind: ActivationType,
    alpha: tuple[str, float] | None = None,
    beta: tuple[str, float] | None = None,
) -> Callable[[ImportContext, OnnxNode], ITensor]:
    """An activation layer; alpha and beta from the named ONNX attributes (with defaults)."""

    def importer(ctx: ImportContext, node: OnnxNode) -> ITensor:
        def compute(x: ITensor) -> ITensor:
            layer = ctx.network.add_activation(x, kind)
            if alpha is not None:
                layer.alpha = node.attr(alpha[0], "float", alpha[1])
            if beta is not None:
                layer.beta = node.attr(beta[0], "float", beta[1])
            return layer.get_output(0)

        return in_float(ctx, node.inputs[0], compute)

    return importer


def relu(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x = node.inputs[0]
    if ctx.dtype(x) in FLOATS:
        return ctx.network.add_activation(x, A.RELU).get_output(0)
    return ctx.binary(x, ctx.scalar_like(0, x), E.MAX)  # integer (Relu-14) and DOUBLE


def selu(ctx: ImportContext, node: OnnxNode) -> ITensor:
    alpha = node.attr("alpha", "float", 1.67326319217681884765625)
    gamma = node.attr("gamma", "float", 1.05070102214813232421875)

    def compute(x: ITensor) -> ITensor:
        layer = ctx.network.add_activation(x, A.SELU)
        layer.alpha, layer.beta = alpha, gamma
        return layer.get_output(0)

    return in_float(ctx, node.inputs[0], compute)


def gelu(ctx: ImportContext, node: OnnxNode) -> ITensor:
    approximate = node.attr("approximate", "string", "none")
    if approximate not in ("none", "tanh"):
        raise node.unsupported(f"approximate must be 'none' or 'tanh', got '{approximate}'")
    kind = A.GELU_TANH if approximate == "tanh" else A.GELU_ERF
    return in_float(
        ctx, node.inputs[0], lambda x: ctx.network.add_activation(x, kind).get_output(0)
    )


def softplus(ctx: ImportContext, node: OnnxNode) -> ITensor:
    def compute(x: ITensor) -> ITensor:
        layer = ctx.network.add_activation(x, A.SOFTPLUS)
        layer.alpha, layer.beta = 1.0, 1.0  # TensorRT: alpha * log(1 + exp(beta * x))
        return layer.get_output(0)

    return in_float(ctx, node.inputs[0], compute)


def hard_swish(ctx: ImportContext, node: OnnxNode) -> ITensor:
    def compute(x: ITensor) -> ITensor:
        layer = ctx.network.add_activation(x, A.HARD_SIGMOID)
        layer.alpha, layer.beta = 1 / 6, 0.5
        return ctx.binary(x, layer.get_output(0), E.PROD)

    return in_float(ctx, node.inputs[0], compute)


def mish(ctx: ImportContext, node: OnnxNode) -> ITensor:
    def compute(x: ITensor) -> ITensor:
        softplus = ctx.network.add_activation(x, A.SOFTPLUS)
        softplus.alpha, softplus.beta = 1.0, 1.0
        tanh = ctx.network.add_activation(softplus.get_output(0), A.TANH)
        return ctx.binary(x, tanh.get_output(0), E.PROD)

    return in_float(ctx, node.inputs[0], compute)


def celu(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """max(0, x) + min(0, alpha * (exp(x / alpha) - 1)): ELU of x / alpha, scaled by alpha."""
    alpha = node.attr("alpha", "float", 1.0)

    def compute(x: ITensor) -> ITensor:
        layer = ctx.network.add_activation(ctx.binary(x, ctx.scalar_like(alpha, x), E.DIV), A.ELU)
        layer.alpha = 1.0
        return ctx.binary(layer.get_output(0), ctx.scalar_like(alpha, x), E.PROD)

    return in_float(ctx, node.inputs[0], compute)


def shrink(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """y = x + bias where x < -lambd, x - bias where x > lambd, else 0."""
    x = node.inputs[0]
    lambd = node.attr("lambd", "float", 0.5)
    bias = node.attr("bias", "float", 0.0)
    low = ctx.binary(x, ctx.scalar_like(-lambd, x), E.LESS)
    high = ctx.binary(x, ctx.scalar_like(lambd, x), E.GREATER)
    zero = ctx.scalar_like(0, x)
    shifted_up = ctx.binary(x, ctx.scalar_like(bias, x), E.SUM)
    shifted_down = ctx.binary(x, ctx.scalar_like(bias, x), E.SUB)
    return ctx.select(low, shifted_up, ctx.select(high, shifted_down, zero))


def prelu(ctx: ImportContext, node: OnnxNode) -> ITensor:
    x, slope = node.inputs
    negative = ctx.binary(x, ctx.scalar_like(0, x), E.LESS)
    return ctx.select(negative, ctx.binary(x, slope, E.PROD), x)


def clip(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """Clip-6 bounds are attributes, Clip-11+ optional inputs; absent bounds do not clip."""
    x = node.inputs[0]
    if node.opset < 11:
        low = node.attr("min", "float", None)
        high = node.attr("max", "float", None)
        low = None if low is None else ctx.scalar_like(low, x)
        high = None if high is None else ctx.scalar_like(high, x)
    else:
        low, high = node.input(1), node.input(2)
    if low is not None:
        x = ctx.binary(x, ctx.align_ranks([low], ctx.rank(x))[0], E.MAX)
    if high is not None:
        x = ctx.binary(x, ctx.align_ranks([high], ctx.rank(x))[0], E.MIN)
    return x if low is not None or high is not None else ctx.identity(x)


# -- types and copies ---------------------------------------------------------------------------


def cast(ctx: ImportContext, node: OnnxNode) -> ITensor:
    target = datatype_of(node.attr("to", "int", 0), "the 'to' attribute")
    return _cast_to(ctx, node, node.inputs[0], target)


def cast_like(ctx: ImportContext, node: OnnxNode) -> ITensor:
    return _cast_to(ctx, node, node.inputs[0], ctx.dtype(node.inputs[1]))


def _cast_to(ctx: ImportContext, node: OnnxNode, x: ITensor, target: DataType) -> ITensor:
    """A cast layer (always a new tensor, so the output gets its own name), with ONNX
    Cast's saturate (float8) and round_mode (E8M0) attributes."""
    layer = ctx.network.add_cast(x, target)
    layer.saturate = bool(node.attr("saturate", "int", 1))
    layer.round_mode = node.attr("round_mode", "string", "up")
    return layer.get_output(0)


def identity(ctx: ImportContext, node: OnnxNode) -> ITensor:
    return ctx.identity(node.inputs[0])


def dropout(ctx: ImportContext, node: OnnxNode) -> list[ITensor]:
    """Inference: the input unchanged and an all-true mask (a training-mode Dropout needs
    random numbers and is refused)."""
    x = node.inputs[0]
    training = node.input(2)
    if training is not None:
        value = ctx.require_value(node, 2)
        ratio = ctx.value(node.input(1)) if node.input(1) is not None else np.array(0.5)
        training = bool(np.asarray(value).reshape(-1)[0])
        if training and (ratio is None or float(np.asarray(ratio).reshape(-1)[0]) != 0.0):
            raise node.unsupported("training_mode = true (random dropout) is not supported")
    outputs = [ctx.identity(x)]
    if node.num_outputs > 1:
        truth = ctx.constant(np.ones((1,) * ctx.rank(x), dtype=bool))
        outputs.append(ctx.expand(truth, ctx.shape_of(x)))
    return outputs


IMPORTERS = {
    "Add": _binary(E.SUM),
    "Sub": _binary(E.SUB),
    "Mul": _binary(E.PROD),
    "Div": _binary(E.DIV),
    "Pow": power,
    "Mod": mod,
    "Sum": functools.partial(_variadic, E.SUM),
    "Max": functools.partial(_variadic, E.MAX),
    "Min": functools.partial(_variadic, E.MIN),
    "Mean": mean,
    "BitShift": bit_shift,
    "Equal": equal,
    "Greater": _binary(E.GREATER),
    "Less": _binary(E.LESS),
    "GreaterOrEqual": _or_equal(E.GREATER),
    "LessOrEqual": _or_equal(E.LESS),
    "And": _binary(E.AND),
    "Or": _binary(E.OR),
    "Xor": _binary(E.XOR),
    "BitwiseAnd": _binary(E.BITWISE_AND),
    "BitwiseOr": _binary(E.BITWISE_OR),
    "BitwiseXor": _binary(E.BITWISE_XOR),
    "BitwiseNot": _unary(U.BITWISE_NOT),
    "Not": _unary(U.NOT),
    "Where": where,
    "Abs": _unary(U.ABS),
    "Neg": _unary(U.NEG),
    "Sign": _unary(U.SIGN),
    "Exp": _unary(U.EXP),
    "Log": _unary(U.LOG),
    "Sqrt": _unary(U.SQRT),
    "Reciprocal": reciprocal,
    "Sin": _unary(U.SIN),
    "Cos": _unary(U.COS),
    "Tan": _unary(U.TAN),
    "Sinh": _unary(U.SINH),
    "Cosh": _unary(U.COSH),
    "Asin": _unary(U.ASIN),
    "Acos": _unary(U.ACOS),
    "Atan": _unary(U.ATAN),
    "Asinh": _unary(U.ASINH),
    "Acosh": _unary(U.ACOSH),
    "Atanh": _unary(U.ATANH),
    "Ceil": _unary(U.CEIL),
    "Floor": _unary(U.FLOOR),
    "Round": _unary(U.ROUND),
    "Erf": _unary(U.ERF),
    "IsNaN": _unary(U.ISNAN),
    "IsInf": is_inf,
    "Relu": relu,
    "Sigmoid": _activation(A.SIGMOID),
    "Tanh": _activation(A.TANH),
    "LeakyRelu": _activation(A.LEAKY_RELU, ("alpha", 0.01)),
    "Elu": _activation(A.ELU, ("alpha", 1.0)),
    "Selu": selu,
    "Softsign": _activation(A.SOFTSIGN),
    "Softplus": softplus,
    "HardSigmoid": _activation(A.HARD_SIGMOID, ("alpha", 0.2), ("beta", 0.5)),
    "ThresholdedRelu": _activation(A.THRESHOLDED_RELU, ("alpha", 1.0)),
    "Gelu": gelu,
    "HardSwish": hard_swish,
    "Mish": mish,
    "Celu": celu,
    "Shrink": shrink,
    "PRelu": prelu,
    "Clip": clip,
    "Cast": cast,
    "CastLike": cast_like,
    "Identity": identity,
    "Dropout": dropout,
}
