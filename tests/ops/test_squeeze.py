"""Squeeze and unsqueeze layers, built into plans and run, against numpy."""

from __future__ import annotations

import numpy as np
import pytest

import tensorplan as trt
from helpers import build_and_run, build_plan, constant, output

RNG = np.random.default_rng(9753)

TYPES = [
    trt.float32,
    trt.float16,
    trt.bfloat16,
    trt.DataType.DOUBLE,
    trt.int8,
    trt.DataType.INT16,
    trt.int32,
    trt.int64,
    trt.uint8,
    trt.DataType.UINT16,
    trt.bool,
    trt.fp8,
]


def profile(name, low, opt, high):
    def configure(builder, config):
        shapes = builder.create_optimization_profile()
        shapes.set_shape(name, low, opt, high)
        config.add_optimization_profile(shapes)

    return configure


def build_fails(define, logger, layer_name, message, configure=None):
    assert build_plan(define, logger, configure) is None
    assert any(layer_name in e and message in e for e in logger.errors), logger.errors


@pytest.mark.parametrize(
    ("shape", "axes"),
    [
        ((1, 3, 1, 2), [0]),
        ((1, 3, 1, 2), [2, 0]),
        ((1, 3, 1, 2), [-2]),
        ((2, 1), [-1]),
        ((1,), [0]),
    ],
    ids=["first", "two_unsorted", "negative", "last", "to_scalar"],
)
@pytest.mark.parametrize("axes_type", [np.int32, np.int64])
def test_squeeze(shape, axes, axes_type):
    x = RNG.standard_normal(shape).astype(np.float32)
    axes = np.array(axes, dtype=axes_type)

    def define(network):
        layer = network.add_squeeze(
            network.add_input("x", trt.float32, shape), constant(network, axes)
        )
        assert layer.type == trt.LayerType.SQUEEZE
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x})["y"]
    expected = np.squeeze(x, tuple(int(a) for a in axes))
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize(
    ("shape", "axes"),
    [
        ((3, 2), [0]),
        ((3, 2), [-1]),
        ((3, 2), [1, 3]),
        ((3, 2), [-1, 0]),
        ((2, 3, 4), [5, 1, -6]),
        ((2, 3, 4, 5, 6), [0, 6, 7]),
    ],
    ids=["first", "last_negative", "two", "both_ends", "rank_6", "rank_8"],
)
@pytest.mark.parametrize("axes_type", [np.int32, np.int64])
def test_unsqueeze(shape, axes, axes_type):
    """Axes index the output; negative ones count from its end (numpy's expand_dims)."""
    x = RNG.standard_normal(shape).astype(np.float32)
    axes = np.array(axes, dtype=axes_type)

    def define(network):
        layer = network.add_unsqueeze(
            network.add_input("x", trt.float32, shape), constant(network, axes)
        )
        assert layer.type == trt.LayerType.UNSQUEEZE
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x})["y"]
    expected = np.expand_dims(x, tuple(int(a) for a in axes))
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("dtype", TYPES, ids=lambda t: t.name)
def test_squeeze_and_unsqueeze_move_every_type(dtype):
    x = RNG.integers(0, 8, (3, 1, 4)).astype(np.float32)

    def define(network):
        data = network.add_cast(network.add_input("x", trt.float32, x.shape), dtype)
        squeezed = network.add_squeeze(data.get_output(0), constant(network, np.array([1])))
        unsqueezed = network.add_unsqueeze(
            squeezed.get_output(0), constant(network, np.array([0, -1]))
        )
        for name, layer in (("squeezed", squeezed), ("unsqueezed", unsqueezed)):
            assert layer.get_output(0).dtype == dtype
            cast = network.add_cast(layer.get_output(0), trt.float32)
            output(network, cast.get_output(0), name)

    out = build_and_run(define, {"x": x})
    v = (x != 0).astype(np.float32) if dtype == trt.bool else x
    np.testing.assert_array_equal(out["squeezed"], v[:, 0])
    np.testing.assert_array_equal(out["unsqueezed"], v[None, :, 0, :, None])


@pytest.mark.parametrize("high", [1, 2], ids=["fits", "too_large"])
def test_squeeze_a_dynamic_dim_is_checked_against_the_profile(logger, high):
    """A dim unknown in the network may be squeezed; the profile must keep it at 1."""

    def define(network):
        layer = network.add_squeeze(
            network.add_input("x", trt.float32, (-1, -1, 3)), constant(network, np.array([1]))
        )
        layer.name = "squeeze_dynamic"
        assert tuple(layer.get_output(0).shape) == (-1, 3)
        output(network, layer.get_output(0))

    configure = profile("x", (1, 1, 3), (2, 1, 3), (4, high, 3))
    if high == 2:
        message = "cannot squeeze dimension 1 of size 2"
        build_fails(define, logger, "squeeze_dynamic", message, configure)
        return
    x = RNG.standard_normal((3, 1, 3)).astype(np.float32)
    np.testing.assert_array_equal(build_and_run(define, {"x": x}, configure)["y"], x[:, 0])


def test_unsqueeze_with_dynamic_shapes():
    x = RNG.standard_normal((5, 2)).astype(np.float32)

    def define(network):
        layer = network.add_unsqueeze(
            network.add_input("x", trt.float32, (-1, 2)), constant(network, np.array([1, -1]))
        )
        assert tuple(layer.get_output(0).shape) == (-1, 1, 2, 1)
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x}, profile("x", (1, 2), (4, 2), (8, 2)))["y"]
    np.testing.assert_array_equal(y, x[:, None, :, None])


def test_squeeze_and_unsqueeze_of_shape_tensors():
    """A reshape to (x.shape[0], 2, 3) built from shape arithmetic: shape, gather, squeeze to a
    scalar, unsqueeze back, concatenate; computed on the host per input shape."""
    x = RNG.standard_normal((4, 6)).astype(np.float32)

    def define(network):
        inp = network.add_input("x", trt.float32, (-1, 6))
        shape = network.add_shape(inp).get_output(0)
        first = network.add_gather(shape, constant(network, np.array([0], dtype=np.int32)), 0)
        scalar = network.add_squeeze(first.get_output(0), constant(network, np.array([0])))
        assert tuple(scalar.get_output(0).shape) == ()
        vector = network.add_unsqueeze(scalar.get_output(0), constant(network, np.array([0])))
        dims = network.add_concatenation(
            [vector.get_output(0), constant(network, np.array([2, 3], dtype=np.int64))]
        )
        dims.axis = 0
        reshape = network.add_shuffle(inp)
        reshape.set_input(1, dims.get_output(0))
        output(network, reshape.get_output(0))

    y = build_and_run(define, {"x": x}, profile("x", (1, 6), (4, 6), (8, 6)))["y"]
    np.testing.assert_array_equal(y, x.reshape(4, 2, 3))


@pytest.mark.parametrize(
    ("shape", "axes", "message"),
    [
        ((2, 3, 1), np.array([1]), "cannot squeeze dimension 1 of size 3"),
        ((2, 1, 1), np.array([1, -2]), "name an axis twice"),
        ((2, 1), np.array([2]), "axis 2 is out of range for rank 2"),
        ((1,), np.array([0, 0]), "cannot squeeze 2 axes"),
        ((1, 2), np.array([[0]]), "1-D INT32 or INT64"),
        ((1, 2), np.array([0.0], dtype=np.float32), "1-D INT32 or INT64"),
    ],
    ids=["size_3", "repeated", "range", "too_many", "axes_rank", "axes_type"],
)
def test_squeeze_invalid_axes_fail_to_build(logger, shape, axes, message):
    def define(network):
        layer = network.add_squeeze(
            network.add_input("x", trt.float32, shape), constant(network, axes)
        )
        layer.name = "bad_squeeze"
        output(network, layer.get_output(0))

    build_fails(define, logger, "bad_squeeze", message)


@pytest.mark.parametrize(
    ("shape", "axes", "message"),
    [
        ((2, 3), np.array([0, -4]), "name an axis twice"),
        ((2, 3), np.array([3]), "axis 3 is out of range for rank 3"),
        ((2,) * 7, np.array([0, 1]), "would give rank 9, more than 8"),
        ((2, 3), np.array([[0]]), "1-D INT32 or INT64"),
    ],
    ids=["repeated", "range", "rank", "axes_rank"],
)
def test_unsqueeze_invalid_axes_fail_to_build(logger, shape, axes, message):
    def define(network):
        layer = network.add_unsqueeze(
            network.add_input("x", trt.float32, shape), constant(network, axes)
        )
        layer.name = "bad_unsqueeze"
        output(network, layer.get_output(0))

    build_fails(define, logger, "bad_unsqueeze", message)


def test_axes_count_must_be_known(logger):
    def define(network):
        axes = network.add_input("axes", trt.int32, (-1,))
        layer = network.add_squeeze(network.add_input("x", trt.float32, (1, 2)), axes)
        layer.name = "bad_squeeze"
        output(network, layer.get_output(0))

    build_fails(define, logger, "bad_squeeze", "number of axes must be known")
