"""Softmax and normalization layers, built into plans and run, against numpy and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tensorplan as trt
from helpers import build_and_run, build_plan

RNG = np.random.default_rng(5)
REDUCED = [(trt.float16, torch.float16, 2e-3), (trt.bfloat16, torch.bfloat16, 1.6e-2)]


def mask(*axes):
    return sum(1 << axis for axis in axes)


def rounded(x, torch_type):
    """`x` as the reduced-precision type holds it, back in float32."""
    return torch.from_numpy(x).to(torch_type).float().numpy()


# -- softmax ----------------------------------------------------------------------------------


def softmax_reference(x, axis):
    shifted = np.exp(x.astype(np.float64) - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def softmax_network(shape, axes=None, dtype=trt.float32, input_type=trt.float32, name="softmax"):
    """Input x (cast to `dtype`), one softmax layer (its default axes unless given), output y."""

    def define(network):
        tensor = network.add_input("x", input_type, shape)
        if dtype != input_type:
            tensor = network.add_cast(tensor, dtype).get_output(0)
        layer = network.add_softmax(tensor)
        layer.name = name
        if axes is not None:
            layer.axes = axes
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    return define


@pytest.mark.parametrize("axis", [0, 1, 2, 3])
def test_softmax_along_each_axis(axis):
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float32) * 4
    y = build_and_run(softmax_network(x.shape, mask(axis)), {"x": x})["y"]
    np.testing.assert_allclose(y, softmax_reference(x, axis), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("shape", "axis"),
    [((7,), 0), ((3, 7), 0), ((2, 3, 7), 0), ((2, 3, 4, 5), 1), ((2, 3, 4, 5, 6), 2)],
    ids=["rank1", "rank2", "rank3", "rank4", "rank5"],
)
def test_softmax_default_axis_is_rank_minus_three(shape, axis):
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network()
    layer = network.add_softmax(network.add_input("x", trt.float32, shape))
    assert layer.type == trt.LayerType.SOFTMAX
    assert layer.axes == 1 << axis
    x = RNG.standard_normal(shape).astype(np.float32)
    y = build_and_run(softmax_network(shape), {"x": x})["y"]
    np.testing.assert_allclose(y, softmax_reference(x, axis), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(("dtype", "torch_type", "tolerance"), REDUCED, ids=["half", "bf16"])
def test_softmax_reduced_precision(dtype, torch_type, tolerance):
    x = RNG.standard_normal((3, 16)).astype(np.float32) * 3
    y = build_and_run(softmax_network(x.shape, mask(1), dtype), {"x": x})["y"]
    expected = softmax_reference(rounded(x, torch_type), 1)
    assert y.dtype == (np.float16 if dtype == trt.float16 else np.float32)
    np.testing.assert_allclose(y.astype(np.float32), expected, rtol=tolerance, atol=tolerance / 10)


def test_softmax_dynamic_shapes():
    x = RNG.standard_normal((3, 4, 9)).astype(np.float32)
    define = softmax_network((-1, 4, -1), mask(2))

    def check_shape(network):
        define(network)
        assert tuple(network.get_output(0).shape) == (-1, 4, -1)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 4, 1), (2, 4, 8), (4, 4, 16))
        config.add_optimization_profile(profile)

    y = build_and_run(check_shape, {"x": x}, configure=configure)["y"]
    np.testing.assert_allclose(y, softmax_reference(x, 2), rtol=1e-5, atol=1e-7)


@pytest.mark.parametrize(
    ("shape", "axes", "input_type", "message"),
    [
        ((2, 3), 0b11, trt.float32, "exactly one axis, got axes [0, 1]"),
        ((2, 3), 0, trt.float32, "exactly one axis, got axes []"),
        ((2, 3), 0b100, trt.float32, "names axes past the rank 2"),
        ((2, 3), 0b1, trt.int32, "FLOAT, HALF or BF16 input, got INT32"),
    ],
    ids=["two_axes", "no_axis", "axis_past_rank", "int32"],
)
def test_invalid_softmax_fails_to_build(shape, axes, input_type, message, logger):
    define = softmax_network(shape, axes, input_type, input_type, name="bad_softmax")
    assert build_plan(define, logger) is None
    assert any("bad_softmax" in e and message in e for e in logger.errors), logger.errors


# -- normalization ----------------------------------------------------------------------------


def normalization_reference(x, scale, bias, axes, epsilon=1e-5, groups=1):
    """TensorRT's formula in float64: (x - mean) / sqrt(biased variance + epsilon) * S + B;
    with groups, axis 1 is split into groups normalized over their channels and all axes after.
    Scale and bias of [1, G, 1, ...] apply per group, of any other broadcastable shape as is."""
    x = x.astype(np.float64)
    if groups > 1:
        grouped = x.reshape(x.shape[0], groups, -1)
        mean = grouped.mean(axis=2, keepdims=True)
        variance = ((grouped - mean) ** 2).mean(axis=2, keepdims=True)
        normalized = ((grouped - mean) / np.sqrt(variance + epsilon)).reshape(x.shape)
        if scale.shape[1] == groups:
            scale = np.repeat(scale, x.shape[1] // groups, axis=1)
            bias = np.repeat(bias, x.shape[1] // groups, axis=1)
    else:
        mean = x.mean(axis=axes, keepdims=True)
        variance = ((x - mean) ** 2).mean(axis=axes, keepdims=True)
        normalized = (x - mean) / np.sqrt(variance + epsilon)
    return normalized * scale + bias


def normalization_network(
    shapes, axes, dtype=trt.float32, name="norm", input_type=trt.float32, **attributes
):
    """Inputs x, scale, bias (cast to `dtype`), one normalization layer, output y."""

    def define(network):
        tensors = []
        for tensor_name, shape in zip(("x", "scale", "bias"), shapes, strict=True):
            tensor = network.add_input(tensor_name, input_type, shape)
            if dtype != input_type:
                tensor = network.add_cast(tensor, dtype).get_output(0)
            tensors.append(tensor)
        layer = network.add_normalization(*tensors, axes)
        layer.name = name
        for key, value in attributes.items():
            setattr(layer, key, value)
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    return define


def normalization_inputs(x_shape, affine_shape):
    x = (RNG.standard_normal(x_shape) * 3 + 1).astype(np.float32)
    scale = RNG.uniform(0.5, 2.0, affine_shape).astype(np.float32)
    bias = RNG.standard_normal(affine_shape).astype(np.float32)
    return {"x": x, "scale": scale, "bias": bias}


CASES = [
    # name, input shape, axes, scale/bias shape, groups
    ("layer_norm_last", (2, 3, 8), (2,), (1, 1, 8), 1),
    ("layer_norm_last_two", (2, 3, 4, 5), (2, 3), (1, 1, 4, 5), 1),
    ("layer_norm_shared_scale", (2, 3, 4, 5), (1, 2, 3), (1, 1, 1, 1), 1),
    ("instance_norm", (2, 3, 4, 5), (2, 3), (1, 3, 1, 1), 1),
    ("instance_norm_3d", (2, 3, 2, 3, 4), (2, 3, 4), (1, 3, 1, 1, 1), 1),
    ("middle_axis", (3, 6, 2), (1,), (3, 1, 2), 1),
    ("group_norm_per_group", (2, 6, 4, 5), (2, 3), (1, 3, 1, 1), 3),
    ("group_norm_per_channel", (2, 6, 4, 5), (2, 3), (1, 6, 1, 1), 3),
    ("group_norm_rank3", (2, 8, 5), (2,), (1, 2, 1), 2),
    ("group_norm_rank2", (3, 8), (), (1, 4), 4),
]


@pytest.mark.parametrize(
    ("shape", "axes", "affine", "groups"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_normalization_matches_reference(shape, axes, affine, groups):
    inputs = normalization_inputs(shape, affine)
    define = normalization_network((shape, affine, affine), mask(*axes), num_groups=groups)
    y = build_and_run(define, inputs)["y"]
    expected = normalization_reference(*inputs.values(), axes, groups=groups)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_layer_instance_and_group_norm_match_torch():
    inputs = normalization_inputs((2, 6, 4, 5), (1, 6, 1, 1))
    x, scale, bias = (torch.from_numpy(v) for v in inputs.values())
    channel_scale, channel_bias = scale.reshape(6), bias.reshape(6)

    def define(network):
        tensors = [network.add_input(n, trt.float32, v.shape) for n, v in inputs.items()]
        for name, axes, groups in (
            ("layer", 0b1110, 1),
            ("instance", 0b1100, 1),
            ("group", 0b1100, 2),
        ):
            layer = network.add_normalization(*tensors, axes)
            layer.num_groups = groups
            layer.get_output(0).name = name
            network.mark_output(layer.get_output(0))

    out = build_and_run(define, inputs)
    normalized = F.layer_norm(x, (6, 4, 5), eps=1e-5)
    expected = {
        "layer": normalized * scale + bias,
        "instance": F.instance_norm(x, weight=channel_scale, bias=channel_bias, eps=1e-5),
        "group": F.group_norm(x, 2, channel_scale, channel_bias, eps=1e-5),
    }
    for name, reference in expected.items():
        np.testing.assert_allclose(out[name], reference.numpy(), rtol=1e-5, atol=1e-5, err_msg=name)


@pytest.mark.parametrize("epsilon", [0.0, 0.5, 4.0])
def test_epsilon(epsilon):
    inputs = normalization_inputs((2, 3, 4), (1, 1, 4))
    # a constant row has zero variance: only epsilon keeps it finite
    inputs["x"][0, 0] = 2.0
    define = normalization_network(((2, 3, 4), (1, 1, 4), (1, 1, 4)), mask(2), epsilon=epsilon)
    y = build_and_run(define, inputs)["y"]
    with np.errstate(invalid="ignore"):
        expected = normalization_reference(*inputs.values(), (2,), epsilon=epsilon)
    if epsilon == 0.0:
        assert np.isnan(y[0, 0]).all()
        y, expected = y[1:], expected[1:]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_normalization_layer_properties_and_defaults():
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network()
    x = network.add_input("x", trt.float32, (2, 4, 3, 3))
    scale = network.add_input("scale", trt.float32, (1, 4, 1, 1))
    bias = network.add_input("bias", trt.float32, (1, 4, 1, 1))
    layer = network.add_normalization(x, scale, bias, 0b1100)
    assert layer.type == trt.LayerType.NORMALIZATION
    assert layer.num_inputs == 3
    assert layer.axes == 0b1100
    assert layer.epsilon == pytest.approx(1e-5)
    assert layer.num_groups == 1
    assert layer.compute_precision == trt.float32
    assert tuple(layer.get_output(0).shape) == (2, 4, 3, 3)
    layer.epsilon, layer.num_groups, layer.compute_precision = 1e-3, 2, trt.float16
    assert (layer.num_groups, layer.compute_precision) == (2, trt.float16)
    assert layer.epsilon == pytest.approx(1e-3)
    with pytest.raises(ValueError, match="at least 1"):
        layer.num_groups = 0


@pytest.mark.parametrize(("dtype", "torch_type", "tolerance"), REDUCED, ids=["half", "bf16"])
@pytest.mark.parametrize(
    "precision", [trt.float32, trt.float16], ids=["float_compute", "half_compute"]
)
def test_reduced_precision_and_compute_precision(dtype, torch_type, tolerance, precision):
    inputs = normalization_inputs((2, 4, 16), (1, 1, 16))
    shapes = [v.shape for v in inputs.values()]
    define = normalization_network(shapes, mask(2), dtype, compute_precision=precision)
    y = build_and_run(define, inputs)["y"]
    expected = normalization_reference(*(rounded(v, torch_type) for v in inputs.values()), (2,))
    assert y.dtype == (np.float16 if dtype == trt.float16 else np.float32)
    np.testing.assert_allclose(y.astype(np.float32), expected, rtol=tolerance, atol=tolerance * 4)


def test_half_compute_precision_rounds_a_float_network():
    inputs = normalization_inputs((2, 3, 64), (1, 1, 64))
    shapes = [v.shape for v in inputs.values()]
    outputs = {}
    for precision in (trt.float32, trt.float16):
        define = normalization_network(shapes, mask(2), compute_precision=precision)
        outputs[precision] = build_and_run(define, inputs)["y"]
    expected = normalization_reference(*inputs.values(), (2,))
    assert outputs[trt.float16].dtype == np.float32
    np.testing.assert_allclose(outputs[trt.float32], expected, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(outputs[trt.float16], expected, rtol=5e-3, atol=1e-2)
    assert not np.array_equal(outputs[trt.float16], outputs[trt.float32])


def test_constant_scale_and_bias():
    x = RNG.standard_normal((2, 4, 3, 3)).astype(np.float32)
    scale = RNG.uniform(0.5, 2.0, (1, 2, 1, 1)).astype(np.float32)
    bias = RNG.standard_normal((1, 2, 1, 1)).astype(np.float32)

    def define(network):
        tensor = network.add_input("x", trt.float32, x.shape)
        s = network.add_constant(scale.shape, scale).get_output(0)
        b = network.add_constant(bias.shape, bias).get_output(0)
        layer = network.add_normalization(tensor, s, b, 0b1100)
        layer.num_groups = 2
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    y = build_and_run(define, {"x": x})["y"]
    expected = normalization_reference(x, scale, bias, (2, 3), groups=2)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("groups", [1, 2], ids=["instance_norm", "group_norm"])
def test_normalization_dynamic_shapes(groups):
    inputs = normalization_inputs((3, 4, 5, 6), (1, 4 // groups, 1, 1))
    define = normalization_network(
        ((-1, 4, -1, -1), (1, 4 // groups, 1, 1), (1, 4 // groups, 1, 1)),
        0b1100,
        num_groups=groups,
    )

    def check_shape(network):
        define(network)
        assert tuple(network.get_output(0).shape) == (-1, 4, -1, -1)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 4, 1, 1), (2, 4, 4, 4), (4, 4, 8, 8))
        config.add_optimization_profile(profile)

    y = build_and_run(check_shape, inputs, configure=configure)["y"]
    expected = normalization_reference(*inputs.values(), (2, 3), groups=groups)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("shapes", "axes", "attributes", "message"),
    [
        (((2, 6, 4), (1, 1, 4), (1, 1, 4)), 0b1000, {}, "names axes past the rank 3"),
        (((2, 6, 4), (1, 1, 4), (1, 1, 4)), 0, {}, "needs at least one axis"),
        (((2, 6, 4), (4,), (4,)), 0b100, {}, "the scale has shape [4], which does not broadcast"),
        (((2, 6, 4), (1, 1, 4), (1, 1, 3)), 0b100, {}, "the bias has shape [1, 1, 3]"),
        (((2, 6, 4), (1, 4, 1), (1, 4, 1)), 0b100, {"num_groups": 4}, "6 channels cannot be split"),
        (((2, 6, 4), (1, 3, 1), (1, 3, 1)), 0b110, {"num_groups": 3}, "must be those after the"),
        (
            ((2, 6, 4), (1, 2, 1), (1, 2, 1)),
            0b100,
            {"num_groups": 3},
            "with 3 groups needs [1, 3, 1",
        ),
        (((6,), (1,), (1,)), 0, {"num_groups": 3}, "needs an input of rank 2 or more"),
        (
            ((2, 6, 4), (1, 1, 4), (1, 1, 4)),
            0b100,
            {"compute_precision": trt.int8},
            "compute_precision must be FLOAT or HALF, got INT8",
        ),
    ],
    ids=[
        "axes_past_rank",
        "no_axes",
        "scale_rank",
        "bias_shape",
        "groups_do_not_divide",
        "group_axes",
        "group_scale_shape",
        "group_rank",
        "compute_precision",
    ],
)
def test_invalid_normalization_fails_to_build(shapes, axes, attributes, message, logger):
    define = normalization_network(shapes, axes, name="bad_norm", **attributes)
    assert build_plan(define, logger) is None
    assert any("bad_norm" in e and message in e for e in logger.errors), logger.errors


@pytest.mark.parametrize(
    ("types", "message"),
    [
        ((trt.int32,) * 3, "FLOAT, HALF or BF16 tensors, got INT32"),
        (
            (trt.float32, trt.float16, trt.float32),
            "must have the same type, got FLOAT, HALF, FLOAT",
        ),
    ],
    ids=["int32", "mixed"],
)
def test_invalid_normalization_types_fail_to_build(types, message, logger):
    def define(network):
        tensors = [
            network.add_input(name, dtype, shape)
            for name, dtype, shape in zip(
                ("x", "scale", "bias"), types, ((2, 4), (1, 4), (1, 4)), strict=True
            )
        ]
        layer = network.add_normalization(*tensors, 0b10)
        layer.name = "bad_norm"
        network.mark_output(layer.get_output(0))

    assert build_plan(define, logger) is None
    assert any("bad_norm" in e and message in e for e in logger.errors), logger.errors
