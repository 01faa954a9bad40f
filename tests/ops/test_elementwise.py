"""Pointwise layers, built into plans and run, against numpy and torch references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tensorplan as trt
from helpers import build_and_run, build_plan, dtype_of

RNG = np.random.default_rng(1234)

BINARY = [
    (trt.ElementWiseOperation.SUM, np.add),
    (trt.ElementWiseOperation.PROD, np.multiply),
    (trt.ElementWiseOperation.MAX, np.maximum),
    (trt.ElementWiseOperation.MIN, np.minimum),
    (trt.ElementWiseOperation.SUB, np.subtract),
    (trt.ElementWiseOperation.DIV, np.divide),
    (trt.ElementWiseOperation.POW, np.power),
    (trt.ElementWiseOperation.FLOOR_DIV, np.floor_divide),
    (trt.ElementWiseOperation.EQUAL, np.equal),
    (trt.ElementWiseOperation.GREATER, np.greater),
    (trt.ElementWiseOperation.LESS, np.less),
]


def binary_network(op, a, b):
    def define(network):
        x = network.add_input("a", dtype_of(a), a.shape)
        y = network.add_input("b", dtype_of(b), b.shape)
        out = network.add_elementwise(x, y, op).get_output(0)
        out.name = "out"
        network.mark_output(out)

    return define


@pytest.mark.parametrize(("op", "reference"), BINARY, ids=lambda v: getattr(v, "name", ""))
def test_binary_with_broadcast(op, reference):
    a = RNG.uniform(0.5, 2.0, (2, 3, 4)).astype(np.float32)
    b = RNG.uniform(0.5, 2.0, (1, 3, 1)).astype(np.float32)
    out = build_and_run(binary_network(op, a, b), {"a": a, "b": b})["out"]
    np.testing.assert_allclose(out, reference(a, b), rtol=1e-6)


@pytest.mark.parametrize(
    ("op", "reference"),
    [
        (trt.ElementWiseOperation.AND, np.logical_and),
        (trt.ElementWiseOperation.OR, np.logical_or),
        (trt.ElementWiseOperation.XOR, np.logical_xor),
    ],
)
def test_logical(op, reference):
    a = RNG.integers(0, 2, (3, 5)).astype(bool)
    b = RNG.integers(0, 2, (3, 5)).astype(bool)
    out = build_and_run(binary_network(op, a, b), {"a": a, "b": b})["out"]
    np.testing.assert_array_equal(out, reference(a, b))


def test_integer_division_truncates_and_floor_division_floors():
    a = np.array([[7, -7, 7, -7]], dtype=np.int32)
    b = np.array([[2, 2, -2, -2]], dtype=np.int32)
    div = build_and_run(binary_network(trt.ElementWiseOperation.DIV, a, b), {"a": a, "b": b})
    floor = build_and_run(
        binary_network(trt.ElementWiseOperation.FLOOR_DIV, a, b), {"a": a, "b": b}
    )
    np.testing.assert_array_equal(div["out"], [[3, -3, -3, 3]])
    np.testing.assert_array_equal(floor["out"], [[3, -4, -4, 3]])


def test_mismatched_ranks_fail_to_build(logger):
    def define(network):
        x = network.add_input("a", trt.float32, (2, 3))
        y = network.add_input("b", trt.float32, (3,))
        out = network.add_elementwise(x, y, trt.ElementWiseOperation.SUM).get_output(0)
        network.mark_output(out)

    assert build_plan(define, logger) is None
    assert any("same rank" in message for message in logger.errors)


UNARY = [
    (trt.UnaryOperation.EXP, np.exp),
    (trt.UnaryOperation.LOG, np.log),
    (trt.UnaryOperation.SQRT, np.sqrt),
    (trt.UnaryOperation.RECIP, np.reciprocal),
    (trt.UnaryOperation.ABS, np.abs),
    (trt.UnaryOperation.NEG, np.negative),
    (trt.UnaryOperation.SIN, np.sin),
    (trt.UnaryOperation.COS, np.cos),
    (trt.UnaryOperation.TAN, np.tan),
    (trt.UnaryOperation.SINH, np.sinh),
    (trt.UnaryOperation.COSH, np.cosh),
    (trt.UnaryOperation.ASIN, np.arcsin),
    (trt.UnaryOperation.ACOS, np.arccos),
    (trt.UnaryOperation.ATAN, np.arctan),
    (trt.UnaryOperation.ASINH, np.arcsinh),
    (trt.UnaryOperation.ATANH, np.arctanh),
    (trt.UnaryOperation.CEIL, np.ceil),
    (trt.UnaryOperation.FLOOR, np.floor),
    (trt.UnaryOperation.SIGN, np.sign),
    (trt.UnaryOperation.ROUND, np.round),
]


@pytest.mark.parametrize(("op", "reference"), UNARY, ids=lambda v: getattr(v, "name", ""))
def test_unary(op, reference):
    x = RNG.uniform(-0.9, 0.9, (4, 5)).astype(np.float32)
    if op in (trt.UnaryOperation.LOG, trt.UnaryOperation.SQRT):
        x = np.abs(x) + 0.1
    if op == trt.UnaryOperation.ROUND:
        x = np.array([[0.5, 1.5, 2.5, -0.5, -1.5]], dtype=np.float32)

    def define(network):
        inp = network.add_input("x", trt.float32, x.shape)
        out = network.add_unary(inp, op).get_output(0)
        out.name = "y"
        network.mark_output(out)

    y = build_and_run(define, {"x": x})["y"]
    np.testing.assert_allclose(y, reference(x), rtol=2e-6, atol=1e-7)


def test_acosh_erf_isinf_isnan_not():
    x = np.array([[1.0, 2.0, np.inf, np.nan]], dtype=np.float32)
    flags = np.array([[True, False, True, False]])

    def define(network):
        inp = network.add_input("x", trt.float32, x.shape)
        f = network.add_input("f", trt.bool, flags.shape)
        for name, tensor, op in [
            ("acosh", inp, trt.UnaryOperation.ACOSH),
            ("erf", inp, trt.UnaryOperation.ERF),
            ("isinf", inp, trt.UnaryOperation.ISINF),
            ("isnan", inp, trt.UnaryOperation.ISNAN),
            ("not", f, trt.UnaryOperation.NOT),
        ]:
            out = network.add_unary(tensor, op).get_output(0)
            out.name = name
            network.mark_output(out)

    out = build_and_run(define, {"x": x, "f": flags})
    expected_erf = torch.erf(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(out["acosh"], np.arccosh(x), rtol=1e-6)
    np.testing.assert_allclose(out["erf"], expected_erf, rtol=1e-6)
    np.testing.assert_array_equal(out["isinf"], [[False, False, True, False]])
    np.testing.assert_array_equal(out["isnan"], [[False, False, False, True]])
    np.testing.assert_array_equal(out["not"], ~flags)


def _activation_reference(kind, x, alpha, beta):
    t = torch.from_numpy(x)
    return {
        trt.ActivationType.RELU: lambda: torch.relu(t),
        trt.ActivationType.SIGMOID: lambda: torch.sigmoid(t),
        trt.ActivationType.TANH: lambda: torch.tanh(t),
        trt.ActivationType.LEAKY_RELU: lambda: torch.where(t >= 0, t, alpha * t),
        trt.ActivationType.ELU: lambda: torch.where(t >= 0, t, alpha * (torch.exp(t) - 1)),
        trt.ActivationType.SELU: lambda: beta * torch.where(t >= 0, t, alpha * (torch.exp(t) - 1)),
        trt.ActivationType.SOFTSIGN: lambda: t / (1 + t.abs()),
        trt.ActivationType.SOFTPLUS: lambda: alpha * torch.log1p(torch.exp(beta * t)),
        trt.ActivationType.CLIP: lambda: t.clamp(alpha, beta),
        trt.ActivationType.HARD_SIGMOID: lambda: (alpha * t + beta).clamp(0, 1),
        trt.ActivationType.SCALED_TANH: lambda: alpha * torch.tanh(beta * t),
        trt.ActivationType.THRESHOLDED_RELU: lambda: torch.where(t > alpha, t, 0 * t),
        trt.ActivationType.GELU_ERF: lambda: 0.5 * t * (1 + torch.erf(t / 2**0.5)),
        trt.ActivationType.GELU_TANH: lambda: (
            0.5 * t * (1 + torch.tanh((2 / torch.pi) ** 0.5 * (t + 0.044715 * t**3)))
        ),
    }[kind]().numpy()


@pytest.mark.parametrize("kind", list(trt.ActivationType), ids=lambda k: k.name)
def test_activation(kind):
    x = RNG.uniform(-3, 3, (3, 7)).astype(np.float32)
    alpha, beta = 0.3, 0.8

    def define(network):
        inp = network.add_input("x", trt.float32, x.shape)
        layer = network.add_activation(inp, kind)
        layer.alpha, layer.beta = alpha, beta
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    y = build_and_run(define, {"x": x})["y"]
    np.testing.assert_allclose(y, _activation_reference(kind, x, alpha, beta), rtol=1e-5, atol=1e-6)


def test_select_cast_identity():
    cond = RNG.integers(0, 2, (2, 3)).astype(bool)
    a = RNG.standard_normal((2, 3)).astype(np.float32)
    b = RNG.standard_normal((1, 3)).astype(np.float32)

    def define(network):
        c = network.add_input("c", trt.bool, cond.shape)
        x = network.add_input("a", trt.float32, a.shape)
        y = network.add_input("b", trt.float32, b.shape)
        selected = network.add_select(c, x, y).get_output(0)
        selected.name = "selected"
        cast = network.add_cast(x, trt.int32).get_output(0)
        cast.name = "cast"
        copy = network.add_identity(y).get_output(0)
        copy.name = "copy"
        for out in (selected, cast, copy):
            network.mark_output(out)

    out = build_and_run(define, {"c": cond, "a": a, "b": b})
    np.testing.assert_array_equal(out["selected"], np.where(cond, a, b))
    np.testing.assert_array_equal(out["cast"], a.astype(np.int32))
    np.testing.assert_array_equal(out["copy"], b)
    assert out["cast"].dtype == np.int32


def test_layer_output_type_inserts_a_conversion():
    x = np.array([[1.25, -2.5]], dtype=np.float32)

    def define(network):
        inp = network.add_input("x", trt.float32, x.shape)
        layer = network.add_unary(inp, trt.UnaryOperation.NEG)
        layer.set_output_type(0, trt.float16)
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    y = build_and_run(define, {"x": x})["y"]
    assert y.dtype == np.float16
    np.testing.assert_array_equal(y, -x.astype(np.float16))
