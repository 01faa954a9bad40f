"""Scale, parametric ReLU and LRN layers, built into plans and run, against numpy/torch/ONNX."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tensorplan as trt
from helpers import build_and_run, build_plan

RNG = np.random.default_rng(5)
UNIFORM, CHANNEL, ELEMENTWISE = (
    trt.ScaleMode.UNIFORM,
    trt.ScaleMode.CHANNEL,
    trt.ScaleMode.ELEMENTWISE,
)
DOUBLE = trt.DataType.DOUBLE


def scale_network(x_shape, mode, shift, scale, power, channel_axis=None, dtype=trt.float32):
    """A scale layer; add_scale when `channel_axis` is None, else add_scale_nd."""

    def define(network):
        inp = network.add_input("x", dtype, x_shape)
        if channel_axis is None:
            layer = network.add_scale(inp, mode, shift, scale, power)
        else:
            layer = network.add_scale_nd(inp, mode, shift, scale, power, channel_axis)
        layer.name = "scale"
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    return define


def coefficients(mode, shape, axis, low, high, present):
    """Random coefficients for the mode, and their broadcastable form for the reference."""
    if not present:
        return None, None
    if mode == UNIFORM:
        values = RNG.uniform(low, high, 1).astype(np.float32)
        return values, values.reshape(())
    if mode == CHANNEL:
        values = RNG.uniform(low, high, shape[axis]).astype(np.float32)
        return values, values.reshape((-1,) + (1,) * (len(shape) - axis - 1))
    values = RNG.uniform(low, high, shape[axis:]).astype(np.float32)
    return values.reshape(-1), values


@pytest.mark.parametrize("present", [(1, 1, 1), (1, 0, 0), (0, 1, 0), (0, 0, 1), (1, 1, 0)])
@pytest.mark.parametrize("mode", [UNIFORM, CHANNEL, ELEMENTWISE], ids=lambda m: m.name)
@pytest.mark.parametrize(("shape", "axis"), [((2, 3, 4, 5), 1), ((2, 3, 4, 5), 2), ((3, 4, 5), 0)])
def test_scale_modes(shape, axis, mode, present):
    x = RNG.uniform(0.5, 2.0, shape).astype(np.float32)
    shift, shift_ref = coefficients(mode, shape, axis, -0.2, 1.0, present[0])
    scale, scale_ref = coefficients(mode, shape, axis, 0.5, 2.0, present[1])
    power, power_ref = coefficients(mode, shape, axis, 0.5, 2.0, present[2])
    define = scale_network(shape, mode, shift, scale, power, channel_axis=axis)
    y = build_and_run(define, {"x": x})["y"]
    expected = x.astype(np.float64)
    expected = expected * (1.0 if scale_ref is None else scale_ref)
    expected = expected + (0.0 if shift_ref is None else shift_ref)
    expected = expected ** (1.0 if power_ref is None else power_ref)
    np.testing.assert_allclose(y, expected, rtol=2e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("shape", "axis"), [((2, 3, 4, 5), 1), ((2, 2, 3, 4, 5), 2), ((3, 4, 5), 0)]
)
def test_add_scale_uses_the_third_axis_from_the_end(shape, axis):
    x = RNG.standard_normal(shape).astype(np.float32)
    scale = RNG.standard_normal(shape[axis]).astype(np.float32)

    def define(network):
        scale_network(shape, CHANNEL, None, scale, None)(network)
        assert network.get_layer(0).channel_axis == axis

    y = build_and_run(define, {"x": x})["y"]
    np.testing.assert_allclose(
        y, x * scale.reshape((-1,) + (1,) * (len(shape) - axis - 1)), rtol=1e-6
    )


def test_layer_properties_and_weights_setters():
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network()
    inp = network.add_input("x", trt.float32, (1, 3, 2, 2))
    layer = network.add_scale(inp, UNIFORM)
    assert layer.type == trt.LayerType.SCALE
    assert layer.mode == UNIFORM and layer.channel_axis == 1
    assert layer.shift.size == 0 and layer.scale.size == 0 and layer.power.size == 0
    layer.mode = CHANNEL
    layer.scale = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    np.testing.assert_array_equal(layer.scale.numpy(), [1.0, 2.0, 3.0])
    assert isinstance(layer.scale, trt.Weights)


@pytest.mark.parametrize(
    ("dtype", "tolerance"),
    [(trt.float16, 2e-3), (trt.bfloat16, 2e-2), (DOUBLE, 1e-12)],
    ids=["half", "bf16", "double"],
)
def test_scale_types(dtype, tolerance):
    x = RNG.uniform(0.5, 2.0, (2, 3, 4)).astype(np.float32)
    shift = np.array([0.5, -0.25, 1.0], dtype=np.float32)
    scale = np.array([2.0, 0.5, 1.5], dtype=np.float32)

    def define(network):
        inp = network.add_input("x", trt.float32, x.shape)
        cast = network.add_cast(inp, dtype).get_output(0)
        layer = network.add_scale_nd(cast, CHANNEL, shift, scale, None, 1)
        assert layer.get_output(0).dtype == dtype
        out = network.add_cast(layer.get_output(0), trt.float32).get_output(0)
        out.name = "y"
        network.mark_output(out)

    y = build_and_run(define, {"x": x})["y"]
    expected = x * scale.reshape(-1, 1) + shift.reshape(-1, 1)
    np.testing.assert_allclose(y, expected, rtol=tolerance, atol=tolerance)


def test_scale_with_dynamic_batch():
    x = RNG.standard_normal((3, 2, 4, 4)).astype(np.float32)
    scale = RNG.standard_normal(32).astype(np.float32)

    def define(network):
        scale_network((-1, 2, 4, 4), ELEMENTWISE, None, scale, None, channel_axis=1)(network)
        assert tuple(network.get_output(0).shape) == (-1, 2, 4, 4)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 2, 4, 4), (2, 2, 4, 4), (4, 2, 4, 4))
        config.add_optimization_profile(profile)

    y = build_and_run(define, {"x": x}, configure=configure)["y"]
    np.testing.assert_allclose(y, x * scale.reshape(2, 4, 4), rtol=1e-6)


@pytest.mark.parametrize(
    ("shape", "mode", "count", "axis", "message"),
    [
        ((1, 3, 4, 4), CHANNEL, 4, 1, "CHANNEL mode needs 3 scale weights"),
        ((1, 3, 4, 4), UNIFORM, 2, 1, "UNIFORM mode needs 1 scale weights"),
        ((1, 3, 4, 4), ELEMENTWISE, 12, 1, "ELEMENTWISE mode needs 48 scale weights"),
        ((1, 3, 4, 4), CHANNEL, 3, 4, "channel_axis 4 is out of range"),
        ((3, 4), UNIFORM, 1, 0, "rank 3 or more"),
    ],
    ids=["channel", "uniform", "elementwise", "axis", "rank"],
)
def test_invalid_scale_fails_to_build(shape, mode, count, axis, message, logger):
    scale = np.ones(count, dtype=np.float32)
    assert build_plan(scale_network(shape, mode, None, scale, None, axis), logger) is None
    assert any("scale" in e and message in e for e in logger.errors), logger.errors


# -- parametric ReLU ------------------------------------------------------------------------


def prelu_network(x_shape, slopes_shape, dtype=trt.float32):
    def define(network):
        inp = network.add_input("x", dtype, x_shape)
        slopes = network.add_input("slopes", dtype, slopes_shape)
        layer = network.add_parametric_relu(inp, slopes)
        layer.name = "prelu"
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    return define


@pytest.mark.parametrize("slopes_shape", [(2, 3, 4, 5), (1, 3, 1, 1), (1, 1, 1, 5), (1, 1, 1, 1)])
def test_parametric_relu_broadcasts_slopes(slopes_shape):
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32)
    slopes = RNG.uniform(0, 0.5, slopes_shape).astype(np.float32)
    y = build_and_run(prelu_network(x.shape, slopes_shape), {"x": x, "slopes": slopes})["y"]
    np.testing.assert_array_equal(y, np.where(x >= 0, x, x * slopes))


def test_parametric_relu_in_double_with_dynamic_shapes():
    x = RNG.standard_normal((3, 4, 2))
    slopes = RNG.uniform(0, 0.5, (1, 4, 1))

    def define(network):
        prelu_network((-1, 4, -1), (1, 4, 1), DOUBLE)(network)
        assert tuple(network.get_output(0).shape) == (-1, 4, -1)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 4, 1), (2, 4, 2), (4, 4, 4))
        config.add_optimization_profile(profile)

    y = build_and_run(define, {"x": x, "slopes": slopes}, configure=configure)["y"]
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, np.where(x >= 0, x, x * slopes))


@pytest.mark.parametrize(
    ("x_shape", "slopes_shape", "dtype", "message"),
    [
        ((2, 3, 4), (3, 4), trt.float32, "must broadcast to the input shape"),
        ((2, 1, 4), (1, 3, 4), trt.float32, "must broadcast to the input shape"),
        ((2, 3, 4), (1, 3, 1), trt.int32, "needs a FLOAT, HALF, BF16 or DOUBLE input"),
    ],
    ids=["rank", "not_unidirectional", "int32"],
)
def test_invalid_parametric_relu_fails_to_build(x_shape, slopes_shape, dtype, message, logger):
    assert build_plan(prelu_network(x_shape, slopes_shape, dtype), logger) is None
    assert any("prelu" in e and message in e for e in logger.errors), logger.errors


# -- LRN ------------------------------------------------------------------------------------


def lrn_network(x_shape, window, alpha, beta, k, dtype=trt.float32):
    def define(network):
        inp = network.add_input("x", dtype, x_shape)
        layer = network.add_lrn(inp, window, alpha, beta, k)
        layer.name = "lrn"
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    return define


@pytest.mark.parametrize(
    ("shape", "window", "alpha", "beta", "k"),
    [
        ((2, 7, 3, 3), 5, 1e-2, 0.75, 1.0),
        ((1, 4, 5), 3, 0.5, 0.5, 2.0),
        ((1, 3, 2, 2, 2), 1, 1.0, 1.0, 1e-3),
    ],
)
def test_lrn_matches_torch_and_the_onnx_formula(shape, window, alpha, beta, k):
    x = RNG.standard_normal(shape).astype(np.float32)
    y = build_and_run(lrn_network(shape, window, alpha, beta, k), {"x": x})["y"]
    expected = torch.nn.functional.local_response_norm(
        torch.from_numpy(x).double(), window, alpha, beta, k
    ).numpy()
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)
    # ONNX LRN's formula as its spec and backend test write it (onnx.reference's LRN loops
    # over the batch instead of the channels, so it is right only when N == C)
    channels = shape[1]
    squares = x.astype(np.float64) ** 2
    window_sums = np.stack(
        [
            squares[:, max(0, c - (window - 1) // 2) : min(channels, c + window // 2 + 1)].sum(1)
            for c in range(channels)
        ],
        axis=1,
    )
    onnx_expected = x / (k + alpha / window * window_sums) ** beta
    np.testing.assert_allclose(y, onnx_expected, rtol=1e-5, atol=1e-6)


def test_lrn_properties_types_and_dynamic_shapes():
    x = RNG.standard_normal((3, 6, 4)).astype(np.float16)

    def define(network):
        lrn_network((-1, 6, -1), 3, 0.1, 0.75, 1.0, trt.float16)(network)
        layer = network.get_layer(0)
        assert layer.type == trt.LayerType.LRN
        assert (layer.window_size, layer.alpha, layer.beta, layer.k) == (3, 0.1, 0.75, 1.0)
        assert tuple(network.get_output(0).shape) == (-1, 6, -1)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 6, 1), (2, 6, 4), (4, 6, 8))
        config.add_optimization_profile(profile)

    y = build_and_run(define, {"x": x}, configure=configure)["y"]
    expected = torch.nn.functional.local_response_norm(
        torch.from_numpy(x).double(), 3, 0.1, 0.75, 1.0
    )
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.astype(np.float32), expected.numpy(), rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize(
    ("window", "alpha", "beta", "k", "message"),
    [
        (4, 1e-4, 0.75, 1.0, "window_size must be odd and in [1, 15]"),
        (17, 1e-4, 0.75, 1.0, "window_size must be odd and in [1, 15]"),
        (3, 1e-4, 0.001, 1.0, "beta must be in [0.01, 100000]"),
        (3, 1e-4, 0.75, 0.0, "k must be in [1e-05, 1e+10]"),
    ],
    ids=["even", "large", "beta", "k"],
)
def test_invalid_lrn_fails_to_build(window, alpha, beta, k, message, logger):
    assert build_plan(lrn_network((1, 4, 3, 3), window, alpha, beta, k), logger) is None
    assert any("lrn" in e and message in e for e in logger.errors), logger.errors
