"""Each pointwise formula is written once (ops/formulas.py): its torch evaluation matches an
independent reference, and its Triton rendering, evaluated with numpy stand-ins for the
Triton functions it names (their documented meaning), matches its torch evaluation. A wrong
constant fails the first check on the CPU; a primitive mapped to the wrong Triton function
fails the second."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tensorplan as trt
from tensorplan.ops import formulas
from tensorplan.ops.formulas import TORCH, TRITON, Source

ACT = trt.ActivationType
RNG = np.random.default_rng(7)
X = np.concatenate([RNG.uniform(-6, 6, 500), [0.0, -0.0, 25.0, -25.0]]).astype(np.float32)

PARAMS = {
    ACT.LEAKY_RELU: (0.1, 0.0),
    ACT.ELU: (0.7, 0.0),
    ACT.SELU: (1.6732632423543772, 1.0507009873554805),
    ACT.SOFTPLUS: (2.0, 3.0),
    ACT.CLIP: (-0.5, 0.5),
    ACT.HARD_SIGMOID: (0.2, 0.5),
    ACT.SCALED_TANH: (1.5, 0.5),
    ACT.THRESHOLDED_RELU: (0.25, 0.0),
}

REFERENCES = {
    ACT.RELU: lambda x, a, b: F.relu(x),
    ACT.SIGMOID: lambda x, a, b: torch.sigmoid(x),
    ACT.TANH: lambda x, a, b: torch.tanh(x),
    ACT.LEAKY_RELU: lambda x, a, b: F.leaky_relu(x, a),
    ACT.ELU: lambda x, a, b: F.elu(x, a),
    ACT.SELU: lambda x, a, b: F.selu(x),  # PARAMS holds SELU's own constants
    ACT.SOFTSIGN: lambda x, a, b: F.softsign(x),
    ACT.SOFTPLUS: lambda x, a, b: a * F.softplus(x, beta=b) * b,  # a * log(1 + exp(b x))
    ACT.CLIP: lambda x, a, b: torch.clamp(x, a, b),
    ACT.HARD_SIGMOID: lambda x, a, b: torch.clamp(a * x + b, 0.0, 1.0),
    ACT.SCALED_TANH: lambda x, a, b: a * torch.tanh(b * x),
    ACT.THRESHOLDED_RELU: lambda x, a, b: torch.where(x > a, x, 0.0),
    ACT.GELU_ERF: lambda x, a, b: F.gelu(x),
    ACT.GELU_TANH: lambda x, a, b: F.gelu(x, approximate="tanh"),
}
"""TensorRT's definitions of the activations, through torch.nn.functional where it has them."""


class NumpyTriton:
    """`tl` and `libdevice` as Triton documents them, on numpy arrays in float32."""

    class PropagateNan:
        ALL = "all"

    exp, log, sqrt_rn, abs, sin, cos = np.exp, np.log, np.sqrt, np.abs, np.sin, np.cos
    ceil, floor, tanh, expm1, log1p, pow = np.ceil, np.floor, np.tanh, np.expm1, np.log1p, np.power
    where = staticmethod(np.where)

    @staticmethod
    def erf(x):
        return np.vectorize(math.erf, otypes=[np.float32])(x)

    @staticmethod
    def sigmoid(x):
        return 1.0 / (1.0 + np.exp(-x))

    @staticmethod
    def maximum(a, b, propagate_nan=None):
        assert propagate_nan == "all"  # torch's maximum propagates NaN
        return np.maximum(a, b)

    @staticmethod
    def minimum(a, b, propagate_nan=None):
        assert propagate_nan == "all"
        return np.minimum(a, b)


def evaluate_source(expression: Source, registers: dict) -> np.ndarray:
    namespace = {"tl": NumpyTriton, "libdevice": NumpyTriton, **registers}
    with np.errstate(all="ignore"):
        return np.asarray(eval(str(expression), {"__builtins__": {}}, namespace), np.float64)


@pytest.mark.parametrize("kind", list(ACT), ids=lambda k: k.name)
def test_every_activation_matches_its_definition(kind):
    assert set(formulas.ACTIVATIONS) == set(ACT)
    alpha, beta = PARAMS.get(kind, (0.0, 0.0))
    x = torch.from_numpy(X).double()
    got = formulas.activation(kind, x, alpha, beta)
    torch.testing.assert_close(got, REFERENCES[kind](x, alpha, beta), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("kind", list(ACT), ids=lambda k: k.name)
def test_every_activation_renders_to_the_same_triton_expression(kind):
    alpha, beta = PARAMS.get(kind, (0.0, 0.0))
    source = formulas.ACTIVATIONS[kind](TRITON, Source("r0"), Source("alpha0"), Source("beta0"))
    registers = {"r0": X, "alpha0": np.float32(alpha), "beta0": np.float32(beta)}
    expected = formulas.activation(kind, torch.from_numpy(X), alpha, beta).double().numpy()
    np.testing.assert_allclose(evaluate_source(source, registers), expected, rtol=2e-6, atol=2e-6)


POSITIVE = np.abs(X) + 0.25


@pytest.mark.parametrize("operation", list(formulas.UNARY), ids=lambda o: o.name)
def test_every_fused_unary_operation_renders_to_its_torch_meaning(operation):
    x = POSITIVE if operation in (trt.UnaryOperation.LOG, trt.UnaryOperation.SQRT) else X
    source = formulas.UNARY[operation](TRITON, Source("r0"))
    expected = formulas.UNARY[operation](TORCH, torch.from_numpy(x)).double().numpy()
    np.testing.assert_allclose(evaluate_source(source, {"r0": x}), expected, rtol=2e-6, atol=2e-6)


@pytest.mark.parametrize("operation", list(formulas.BINARY), ids=lambda o: o.name)
def test_every_fused_binary_operation_renders_to_its_torch_meaning(operation):
    a = POSITIVE if operation == trt.ElementWiseOperation.POW else X
    b = RNG.uniform(0.25, 3, X.shape).astype(np.float32)
    source = formulas.BINARY[operation](TRITON, Source("r0"), Source("r1"))
    torch_a, torch_b = torch.from_numpy(a), torch.from_numpy(b)
    expected = formulas.BINARY[operation](TORCH, torch_a, torch_b).double().numpy()
    got = evaluate_source(source, {"r0": a, "r1": b})
    np.testing.assert_allclose(got, expected, rtol=2e-6, atol=2e-6)


def test_max_min_and_relu_propagate_nan_on_both_paths():
    x = np.array([np.nan, 1.0, -1.0], np.float32)
    for formula in (formulas.ACTIVATIONS[ACT.RELU], formulas.ACTIVATIONS[ACT.CLIP]):
        assert formula(TORCH, torch.from_numpy(x), -0.5, 0.5)[0].isnan()
        source = formula(TRITON, Source("r0"), Source("a"), Source("b"))
        assert np.isnan(evaluate_source(source, {"r0": x, "a": -0.5, "b": 0.5})[0])


def test_half_inputs_compute_in_float_and_round_once():
    x = torch.tensor([0.1, 1.7, -2.3], dtype=torch.float16)
    got = formulas.activation(ACT.GELU_TANH, x, 0.0, 0.0)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got, F.gelu(x.float(), approximate="tanh"))


def test_only_expressions_and_numbers_render_as_source():
    with pytest.raises(TypeError, match="expression or a number"):
        formulas.ACTIVATIONS[ACT.LEAKY_RELU](TRITON, Source("r0"), "0.1); import os", 0.0)
