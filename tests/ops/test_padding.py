"""The padding layer, built into plans and run, against numpy."""

from __future__ import annotations

import numpy as np
import pytest

import tensorplan as trt
from helpers import build_and_run, build_plan, dtype_of

RNG = np.random.default_rng(11)


def pad_reference(x, pre, post):
    """Zero padding of the trailing axes with numpy; negative amounts crop."""
    lead = x.ndim - len(pre)
    widths = [(0, 0)] * lead + [(max(a, 0), max(b, 0)) for a, b in zip(pre, post, strict=True)]
    padded = np.pad(x, widths)
    crops = [slice(None)] * lead + [
        slice(max(-a, 0), padded.shape[lead + i] - max(-b, 0))
        for i, (a, b) in enumerate(zip(pre, post, strict=True))
    ]
    return padded[tuple(crops)]


def padding_network(x, pre, post, input_shape=None, dtype=None):
    def define(network):
        inp = network.add_input("x", dtype or dtype_of(x), input_shape or x.shape)
        layer = network.add_padding_nd(inp, pre, post)
        layer.name = "pad"
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    return define


@pytest.mark.parametrize(
    ("shape", "pre", "post"),
    [
        ((1, 2, 3, 4), (1, 2), (2, 1)),
        ((1, 2, 5, 6), (-1, -2), (-2, -1)),
        ((1, 2, 5, 6), (2, -1), (-3, 1)),
        ((2, 3, 4), (1, 0, 2), (0, 3, -1)),
        ((2, 3, 4), (0, -4), (0, 1)),
        ((3, 4), (), ()),
    ],
    ids=["pad", "crop", "mixed", "all_axes", "crop_past_edge", "none"],
)
def test_padding_matches_numpy(shape, pre, post):
    x = RNG.standard_normal(shape).astype(np.float32)
    y = build_and_run(padding_network(x, pre, post), {"x": x})["y"]
    np.testing.assert_array_equal(y, pad_reference(x, pre, post))


@pytest.mark.parametrize("dtype", [np.float16, np.int32, np.int64, np.int8, np.bool_])
def test_padding_types(dtype):
    x = RNG.integers(-2, 3, (2, 3, 4)).astype(dtype)
    y = build_and_run(padding_network(x, (1, -1), (2, 1)), {"x": x})["y"]
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, pad_reference(x, (1, -1), (2, 1)))


def test_padding_in_double():
    x = RNG.standard_normal((1, 2, 3, 3))
    y = build_and_run(padding_network(x, (1, 1), (0, 2), dtype=trt.DataType.DOUBLE), {"x": x})["y"]
    assert y.dtype == np.float64
    np.testing.assert_array_equal(y, pad_reference(x, (1, 1), (0, 2)))


def test_layer_properties():
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network()
    layer = network.add_padding_nd(
        network.add_input("x", trt.float32, (1, 1, 4, 4)), (1, 2), (3, 4)
    )
    assert layer.type == trt.LayerType.PADDING
    assert layer.pre_padding_nd == (1, 2) and layer.post_padding_nd == (3, 4)
    assert isinstance(layer.pre_padding_nd, trt.Dims)
    layer.post_padding_nd = (0, -1)
    assert tuple(layer.get_output(0).shape) == (1, 1, 5, 5)


def test_dynamic_shapes():
    x = RNG.standard_normal((3, 2, 5, 7)).astype(np.float32)

    def define(network):
        padding_network(x, (1, -2), (2, 3), input_shape=(-1, 2, -1, 7))(network)
        assert tuple(network.get_output(0).shape) == (-1, 2, -1, 8)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 2, 1, 7), (2, 2, 4, 7), (4, 2, 8, 7))
        config.add_optimization_profile(profile)

    y = build_and_run(define, {"x": x}, configure=configure)["y"]
    np.testing.assert_array_equal(y, pad_reference(x, (1, -2), (2, 3)))


@pytest.mark.parametrize(
    ("pre", "post", "message"),
    [
        ((1, 1), (1,), "must have the same number of values"),
        ((-3, 0), (-2, 0), "leaves a negative size"),
        ((1, 1, 1, 1, 1), (1, 1, 1, 1, 1), "does not fit an input of shape"),
    ],
    ids=["lengths", "negative_size", "too_many_axes"],
)
def test_invalid_padding_fails_to_build(pre, post, message, logger):
    x = np.zeros((1, 2, 4, 4), dtype=np.float32)
    assert build_plan(padding_network(x, pre, post), logger) is None
    assert any("pad" in e and message in e for e in logger.errors), logger.errors
