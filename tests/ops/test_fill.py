"""Fill layers (linspace, random uniform, random normal), built into plans and run."""

from __future__ import annotations

import numpy as np
import pytest

import tensorplan as trt
from helpers import build_and_run, build_plan, load, run

LINSPACE_TYPES = [
    (trt.float32, np.float32),
    (trt.float16, np.float16),
    (trt.int32, np.int32),
    (trt.int64, np.int64),
    (trt.DataType.DOUBLE, np.float64),
]


def fill_network(shape, op, to_type=None, configure_layer=None, tensors=None):
    """A network whose output "out" is one fill layer; `tensors` adds inputs set on it."""

    def define(network):
        layer = (
            network.add_fill(shape, op) if to_type is None else network.add_fill(shape, op, to_type)
        )
        for index, (name, dtype, dims) in (tensors or {}).items():
            layer.set_input(index, network.add_input(name, dtype, dims))
        if configure_layer is not None:
            configure_layer(layer)
        layer.get_output(0).name = "out"
        network.mark_output(layer.get_output(0))

    return define


@pytest.mark.parametrize(("to_type", "np_type"), LINSPACE_TYPES, ids=lambda v: str(v))
def test_linspace_steps_in_row_major_order(to_type, np_type):
    def configure(layer):
        layer.alpha, layer.beta = -3, 2

    out = build_and_run(
        fill_network((2, 3, 4), trt.FillOperation.LINSPACE, to_type, configure), {}
    )["out"]
    expected = (-3 + 2 * np.arange(24)).reshape(2, 3, 4).astype(np_type)
    assert out.dtype == np_type
    np.testing.assert_array_equal(out, expected)


def test_linspace_fractional_float_steps():
    def configure(layer):
        layer.alpha, layer.beta = 0.5, 0.1

    out = build_and_run(fill_network((7,), trt.FillOperation.LINSPACE, None, configure), {})
    np.testing.assert_allclose(out["out"], 0.5 + 0.1 * np.arange(7), rtol=1e-7)


def test_linspace_with_alpha_and_delta_tensors():
    # a one-element alpha counts as a scalar (tests.helpers.run cannot feed rank-0 inputs)
    tensors = {1: ("alpha", trt.float32, (1,)), 2: ("delta", trt.float32, (2,))}
    define = fill_network((2, 3), trt.FillOperation.LINSPACE, trt.float32, tensors=tensors)
    inputs = {"alpha": np.array([0.5], np.float32), "delta": np.array([3.0, 1.0], np.float32)}
    out = build_and_run(define, inputs)["out"]
    np.testing.assert_array_equal(out, [[0.5, 1.5, 2.5], [3.5, 4.5, 5.5]])


def test_int64_linspace_is_exact_past_float_precision():
    start, delta = 2**53 + 1, np.array([2**40 + 3, 7], np.int64)
    tensors = {1: ("alpha", trt.int64, (1,)), 2: ("delta", trt.int64, (2,))}
    define = fill_network((3, 2), trt.FillOperation.LINSPACE, trt.int64, tensors=tensors)
    out = build_and_run(define, {"alpha": np.array([start], np.int64), "delta": delta})["out"]
    rows, cols = np.meshgrid(np.arange(3), np.arange(2), indexing="ij")
    np.testing.assert_array_equal(out, start + delta[0] * rows + delta[1] * cols)


def test_shape_from_a_shape_tensor_with_dynamic_input():
    """ONNX Range's lowering: the length comes from a shape computed on the host."""
    seen = {}

    def define(network):
        x = network.add_input("x", trt.float32, (-1,))
        length = network.add_shape(x).get_output(0)
        layer = network.add_fill((0,), trt.FillOperation.LINSPACE, trt.int32)
        layer.set_input(0, length)
        layer.alpha, layer.beta = 10, -3
        seen["shape"] = tuple(layer.get_output(0).shape)
        layer.get_output(0).name = "out"
        network.mark_output(layer.get_output(0))

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1,), (4,), (8,))
        config.add_optimization_profile(profile)

    x = np.zeros(5, np.float32)
    out = build_and_run(define, {"x": x}, configure)["out"]
    assert seen["shape"] == (-1,)
    np.testing.assert_array_equal(out, 10 - 3 * np.arange(5, dtype=np.int32))


@pytest.mark.parametrize("from_constants", [False, True])
def test_linspace_result_serves_as_a_shape_tensor(from_constants):
    def define(network):
        x = network.add_input("x", trt.float32, (12,))
        dims = network.add_fill((2,), trt.FillOperation.LINSPACE, trt.int32)
        if from_constants:
            alpha = network.add_constant((), trt.Weights(np.array(3, np.int32)))
            delta = network.add_constant((1,), trt.Weights(np.array([1], np.int32)))
            dims.set_input(1, alpha.get_output(0))
            dims.set_input(2, delta.get_output(0))
        else:
            dims.alpha, dims.beta = 3, 1
        shuffle = network.add_shuffle(x)
        shuffle.set_input(1, dims.get_output(0))
        assert tuple(shuffle.get_output(0).shape) == (3, 4)
        shuffle.get_output(0).name = "out"
        network.mark_output(shuffle.get_output(0))

    x = np.arange(12, dtype=np.float32)
    np.testing.assert_array_equal(build_and_run(define, {"x": x})["out"], x.reshape(3, 4))


def test_layer_defaults_and_properties():
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    network = builder.create_network()
    layer = network.add_fill((2, 3), trt.FillOperation.RANDOM_UNIFORM)
    assert layer.type == trt.LayerType.FILL
    assert layer.shape == (2, 3)
    assert layer.operation == trt.FillOperation.RANDOM_UNIFORM
    assert layer.to_type == trt.float32
    assert (layer.alpha, layer.beta, layer.seed) == (0.0, 1.0, None)
    assert not layer.is_alpha_beta_int64()
    alpha = network.add_input("alpha", trt.float32, ())
    beta = network.add_input("beta", trt.float32, ())
    layer.set_input(1, alpha)
    layer.set_input(2, beta)
    layer.alpha, layer.beta = 4, 9
    assert layer.get_input(1) is None and layer.get_input(2) is None
    assert layer.is_alpha_beta_int64()
    layer.shape = (5,)
    assert tuple(layer.get_output(0).shape) == (5,)


@pytest.mark.parametrize(
    ("to_type", "np_type"), [(trt.float32, np.float32), (trt.float16, np.float16)]
)
def test_random_uniform_range_and_moments(to_type, np_type):
    def configure(layer):
        layer.alpha, layer.beta, layer.seed = -2.0, 6.0, 7

    out = build_and_run(
        fill_network((100, 100), trt.FillOperation.RANDOM_UNIFORM, to_type, configure), {}
    )["out"]
    assert out.dtype == np_type
    assert out.min() >= -2.0 and out.max() <= 6.0
    values = out.astype(np.float64)
    assert abs(values.mean() - 2.0) < 0.1
    assert abs(values.std() - 8 / np.sqrt(12)) < 0.1
    assert len(np.unique(values)) > 1000


def test_random_normal_with_tensor_parameters():
    tensors = {1: ("mean", trt.float32, (1,)), 2: ("std", trt.float32, (1,))}

    def configure(layer):
        layer.seed = 3

    define = fill_network(
        (200, 100), trt.FillOperation.RANDOM_NORMAL, trt.float32, configure, tensors
    )
    inputs = {"mean": np.array([5.0], np.float32), "std": np.array([0.5], np.float32)}
    out = build_and_run(define, inputs)["out"].astype(np.float64)
    assert abs(out.mean() - 5.0) < 0.02
    assert abs(out.std() - 0.5) < 0.02


def test_seed_makes_runs_repeat_and_no_seed_draws_anew():
    def seeded(seed):
        def configure(layer):
            layer.seed = seed

        return fill_network((64,), trt.FillOperation.RANDOM_NORMAL, trt.float32, configure)

    first = build_and_run(seeded(11), {})["out"]
    np.testing.assert_array_equal(first, build_and_run(seeded(11), {})["out"])
    assert not np.array_equal(first, build_and_run(seeded(12), {})["out"])
    engine = load(build_plan(fill_network((64,), trt.FillOperation.RANDOM_UNIFORM)))
    assert not np.array_equal(run(engine, {})["out"], run(engine, {})["out"])


@pytest.mark.parametrize(
    ("op", "to_type", "configure", "tensors", "message"),
    [
        (trt.FillOperation.RANDOM_UNIFORM, trt.int32, None, None, "cannot produce INT32"),
        (trt.FillOperation.LINSPACE, trt.bool, None, None, "cannot produce BOOL"),
        (
            trt.FillOperation.LINSPACE,
            trt.int32,
            lambda layer: setattr(layer, "beta", 0.5),
            None,
            "integral beta",
        ),
        (
            trt.FillOperation.LINSPACE,
            trt.float32,
            None,
            {1: ("alpha", trt.float32, ())},
            "both be tensors or neither",
        ),
        (
            trt.FillOperation.LINSPACE,
            trt.float32,
            None,
            {1: ("alpha", trt.float32, ()), 2: ("delta", trt.float32, (3,))},
            "one value per output dimension",
        ),
        (
            trt.FillOperation.RANDOM_NORMAL,
            trt.float32,
            None,
            {1: ("mean", trt.float32, (2,)), 2: ("std", trt.float32, ())},
            "must be a scalar",
        ),
        (
            trt.FillOperation.LINSPACE,
            trt.int32,
            None,
            {1: ("alpha", trt.float32, ()), 2: ("delta", trt.float32, (2,))},
            "cannot fill a INT32 output",
        ),
    ],
)
def test_invalid_fills_fail_to_build(logger, op, to_type, configure, tensors, message):
    define = fill_network((2, 3), op, to_type, configure, tensors)
    assert build_plan(define, logger) is None
    assert any("Fill" in m and message in m for m in logger.errors), logger.errors


def test_negative_dimensions_and_shape_tensor_type_are_refused(logger):
    def define(network):
        shape = network.add_constant((2,), trt.Weights(np.array([2, 3], np.float32)))
        layer = network.add_fill((2, 3), trt.FillOperation.LINSPACE)
        layer.set_input(0, shape.get_output(0))
        network.mark_output(layer.get_output(0))

    assert build_plan(define, logger) is None
    assert any("1-D INT32 or INT64 shape tensor" in m for m in logger.errors), logger.errors
    logger.messages.clear()
    assert build_plan(fill_network((2, -3), trt.FillOperation.LINSPACE), logger) is None
    assert any("must not be negative" in m for m in logger.errors), logger.errors
