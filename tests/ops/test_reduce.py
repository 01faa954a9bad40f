"""Reduce and top-k layers, built into plans and run, against numpy references."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tensorplan as trt
from helpers import build_and_run, build_plan, dtype_of

RNG = np.random.default_rng(99)
SUM, PROD, MAX, MIN, AVG = (
    trt.ReduceOperation.SUM,
    trt.ReduceOperation.PROD,
    trt.ReduceOperation.MAX,
    trt.ReduceOperation.MIN,
    trt.ReduceOperation.AVG,
)
NUMPY_REDUCE = {SUM: np.sum, PROD: np.prod, MAX: np.max, MIN: np.min, AVG: np.mean}


def mask(*axes):
    return sum(1 << axis for axis in axes)


def reduce_reference(x, op, axes, keep_dims):
    """numpy's reduction in float64 (int64 for integers; integer AVG truncates toward zero)."""
    if x.dtype.kind == "i":
        wide = x.astype(np.int64)
        if op == AVG:
            count = np.prod([x.shape[a] for a in axes])
            return np.fix(np.sum(wide, axis=axes, keepdims=keep_dims) / count).astype(np.int64)
        return NUMPY_REDUCE[op](wide, axis=axes, keepdims=keep_dims)
    return NUMPY_REDUCE[op](x.astype(np.float64), axis=axes, keepdims=keep_dims)


def reduce_network(x_dtype, shape, op, axes_mask, keep_dims, cast=None, name="reduce"):
    """Input x, optionally cast, one reduce layer, output y."""

    def define(network):
        tensor = network.add_input("x", x_dtype, shape)
        if cast is not None:
            tensor = network.add_cast(tensor, cast).get_output(0)
        layer = network.add_reduce(tensor, op, axes_mask, keep_dims)
        layer.name = name
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    return define


AXES = [(0,), (1,), (2,), (0, 2), (1, 2), (0, 1, 2)]


@pytest.mark.parametrize("op", list(trt.ReduceOperation), ids=lambda o: o.name)
@pytest.mark.parametrize("axes", AXES, ids=lambda a: "axes" + "".join(map(str, a)))
@pytest.mark.parametrize("keep_dims", [False, True], ids=["drop", "keep"])
def test_float_reduce(op, axes, keep_dims):
    x = RNG.uniform(0.5, 1.5, (2, 3, 4)).astype(np.float32)
    define = reduce_network(trt.float32, x.shape, op, mask(*axes), keep_dims)
    y = build_and_run(define, {"x": x})["y"]
    expected = reduce_reference(x, op, axes, keep_dims)
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5)


@pytest.mark.parametrize("op", list(trt.ReduceOperation), ids=lambda o: o.name)
@pytest.mark.parametrize("dtype", [np.int32, np.int64], ids=["int32", "int64"])
@pytest.mark.parametrize("axes", [(1,), (0, 2)], ids=["axes1", "axes02"])
def test_integer_reduce(op, dtype, axes):
    x = RNG.integers(-9, 10, (3, 4, 2)).astype(dtype)
    if op == PROD:
        x = RNG.integers(-3, 4, (3, 4, 2)).astype(dtype)
    define = reduce_network(dtype_of(x), x.shape, op, mask(*axes), False)
    y = build_and_run(define, {"x": x})["y"]
    assert y.dtype == dtype
    np.testing.assert_array_equal(y, reduce_reference(x, op, axes, False))


def test_integer_average_truncates_toward_zero():
    x = np.array([[-7, 0, 0], [7, 0, 1]], dtype=np.int32)
    y = build_and_run(reduce_network(trt.int32, x.shape, AVG, mask(1), False), {"x": x})["y"]
    np.testing.assert_array_equal(y, [-2, 2])


@pytest.mark.parametrize(
    ("dtype", "torch_type", "tolerance"),
    [(trt.float16, torch.float16, 2e-3), (trt.bfloat16, torch.bfloat16, 1e-2)],
    ids=["half", "bf16"],
)
@pytest.mark.parametrize("op", list(trt.ReduceOperation), ids=lambda o: o.name)
def test_reduced_precision(dtype, torch_type, tolerance, op):
    x = RNG.uniform(0.8, 1.2, (2, 5, 6)).astype(np.float32)
    define = reduce_network(trt.float32, x.shape, op, mask(1, 2), True, cast=dtype)
    y = build_and_run(define, {"x": x})["y"]
    rounded = torch.from_numpy(x).to(torch_type).float().numpy()
    expected = reduce_reference(rounded, op, (1, 2), True)
    assert y.dtype == (np.float16 if dtype == trt.float16 else np.float32)
    np.testing.assert_allclose(y.astype(np.float32), expected, rtol=tolerance * 4)


@pytest.mark.parametrize(
    ("op", "expected"),
    [(SUM, 0.0), (PROD, 1.0), (MAX, -np.inf), (MIN, np.inf), (AVG, np.nan)],
    ids=lambda v: getattr(v, "name", ""),
)
def test_reducing_no_elements_gives_the_identity(op, expected):
    x = np.zeros((2, 0, 3), dtype=np.float32)
    define = reduce_network(trt.float32, (2, -1, 3), op, mask(1), False)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (2, 0, 3), (2, 2, 3), (2, 4, 3))
        config.add_optimization_profile(profile)

    y = build_and_run(define, {"x": x}, configure=configure)["y"]
    np.testing.assert_array_equal(y, np.full((2, 3), expected, dtype=np.float32))


def test_reduce_layer_properties():
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network()
    x = network.add_input("x", trt.float32, (2, 3, 4, 5))
    layer = network.add_reduce(x, MAX, mask(1, 3), False)
    assert layer.type == trt.LayerType.REDUCE
    assert (layer.op, layer.axes, layer.keep_dims) == (MAX, 0b1010, False)
    assert tuple(layer.get_output(0).shape) == (2, 4)
    layer.keep_dims = True
    assert tuple(layer.get_output(0).shape) == (2, 1, 4, 1)
    layer.axes = mask(0)
    layer.op = AVG
    assert (layer.op, tuple(layer.get_output(0).shape)) == (AVG, (1, 3, 4, 5))
    with pytest.raises(ValueError, match="at least 0"):
        layer.axes = -1


def test_reduce_dynamic_shapes():
    x = RNG.standard_normal((3, 4, 5)).astype(np.float32)
    define = reduce_network(trt.float32, (-1, 4, -1), SUM, mask(2), False)

    def check_shape(network):
        define(network)
        assert tuple(network.get_output(0).shape) == (-1, 4)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 4, 1), (2, 4, 4), (4, 4, 8))
        config.add_optimization_profile(profile)

    y = build_and_run(check_shape, {"x": x}, configure=configure)["y"]
    np.testing.assert_allclose(y, x.sum(axis=2), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("dtype", "shape", "op", "axes_mask", "message"),
    [
        (trt.float32, (2, 3), SUM, 0b100, "axes bitmask 0b100 names axes past the rank 2"),
        (trt.float32, (2, 3), SUM, 0, "needs at least one axis"),
        (trt.bool, (2, 3), MAX, 0b1, "FLOAT, HALF, BF16, INT32 or INT64 input, got BOOL"),
        (trt.int8, (2, 3), SUM, 0b1, "got INT8"),
    ],
    ids=["axes_past_rank", "no_axes", "bool", "int8"],
)
def test_invalid_reduce_fails_to_build(dtype, shape, op, axes_mask, message, logger):
    define = reduce_network(dtype, shape, op, axes_mask, False, name="bad_reduce")
    assert build_plan(define, logger) is None
    assert any("bad_reduce" in e and message in e for e in logger.errors), logger.errors


# -- top-k ------------------------------------------------------------------------------------


def topk_reference(x, op, k, axis):
    """The k largest (MAX) or smallest (MIN) along `axis`; ties keep the lower index first."""
    key = -x.astype(np.float64) if op == trt.TopKOperation.MAX else x.astype(np.float64)
    indices = np.argsort(key, axis=axis, kind="stable").take(np.arange(k), axis=axis)
    return np.take_along_axis(x, indices, axis=axis), indices


def topk_network(x_dtype, shape, op, k, axes_mask, cast=None, k_tensor=None, name="topk"):
    """Input x (optionally cast), one top-k layer (k from a constant when `k_tensor` is set),
    outputs `values` and `indices`."""

    def define(network):
        tensor = network.add_input("x", x_dtype, shape)
        if cast is not None:
            tensor = network.add_cast(tensor, cast).get_output(0)
        layer = network.add_topk(tensor, op, k, axes_mask)
        layer.name = name
        if k_tensor is not None:
            constant = network.add_constant(k_tensor.shape, k_tensor)
            layer.set_input(1, constant.get_output(0))
        layer.get_output(0).name = "values"
        layer.get_output(1).name = "indices"
        network.mark_output(layer.get_output(0))
        network.mark_output(layer.get_output(1))

    return define


@pytest.mark.parametrize("op", list(trt.TopKOperation), ids=lambda o: o.name)
@pytest.mark.parametrize(("axis", "k"), [(0, 2), (1, 1), (1, 5), (2, 3)], ids=str)
def test_topk_matches_reference(op, axis, k):
    x = RNG.permutation(3 * 5 * 4).reshape(3, 5, 4).astype(np.float32)
    define = topk_network(trt.float32, x.shape, op, k, mask(axis))
    out = build_and_run(define, {"x": x})
    values, indices = topk_reference(x, op, k, axis)
    assert out["indices"].dtype == np.int32
    np.testing.assert_array_equal(out["values"], values)
    np.testing.assert_array_equal(out["indices"], indices)


@pytest.mark.parametrize(
    ("op", "values", "indices"),
    [
        (trt.TopKOperation.MAX, [[3, 3, 2], [5, 5, 5]], [[0, 2, 3], [0, 1, 2]]),
        (trt.TopKOperation.MIN, [[1, 1, 2], [4, 4, 5]], [[1, 4, 3], [3, 4, 0]]),
    ],
    ids=["max", "min"],
)
def test_topk_ties_keep_the_lower_index_first(op, values, indices):
    x = np.array([[3, 1, 3, 2, 1], [5, 5, 5, 4, 4]], dtype=np.int32)
    out = build_and_run(topk_network(trt.int32, x.shape, op, 3, mask(1)), {"x": x})
    np.testing.assert_array_equal(out["values"], values)
    np.testing.assert_array_equal(out["indices"], indices)


@pytest.mark.parametrize(
    ("dtype", "cast"),
    [(np.int32, None), (np.int64, None), (np.float32, trt.float16), (np.float32, trt.bfloat16)],
    ids=["int32", "int64", "half", "bf16"],
)
@pytest.mark.parametrize("op", list(trt.TopKOperation), ids=lambda o: o.name)
def test_topk_types(dtype, cast, op):
    # distinct values that every type holds exactly, so the order is unambiguous
    x = (RNG.permutation(24).reshape(4, 6) - 12).astype(dtype)
    out = build_and_run(topk_network(dtype_of(x), x.shape, op, 4, mask(1), cast), {"x": x})
    values, indices = topk_reference(x, op, 4, 1)
    np.testing.assert_array_equal(out["values"].astype(dtype), values)
    np.testing.assert_array_equal(out["indices"], indices)


def test_topk_layer_properties():
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network()
    x = network.add_input("x", trt.float32, (2, 8))
    layer = network.add_topk(x, trt.TopKOperation.MIN, 3, mask(1))
    assert layer.type == trt.LayerType.TOPK
    assert (layer.op, layer.k, layer.axes) == (trt.TopKOperation.MIN, 3, 0b10)
    assert layer.num_outputs == 2
    assert tuple(layer.get_output(0).shape) == (2, 3)
    assert layer.get_output(1).dtype == trt.int32
    layer.k, layer.axes = 2, mask(0)
    assert tuple(layer.get_output(1).shape) == (2, 8)
    k = network.add_constant((), np.array(5, dtype=np.int32)).get_output(0)
    layer.axes = mask(1)
    layer.set_input(1, k)
    assert layer.get_input(1) is k and k.is_shape_tensor
    assert tuple(layer.get_output(0).shape) == (2, 5)
    assert layer.k == 2


def test_topk_k_from_a_shape_tensor_overrides_the_attribute():
    x = RNG.standard_normal((2, 9)).astype(np.float32)
    k_tensor = np.array(4, dtype=np.int32)
    define = topk_network(
        trt.float32, x.shape, trt.TopKOperation.MAX, 1, mask(1), k_tensor=k_tensor
    )
    out = build_and_run(define, {"x": x})
    values, indices = topk_reference(x, trt.TopKOperation.MAX, 4, 1)
    np.testing.assert_array_equal(out["values"], values)
    np.testing.assert_array_equal(out["indices"], indices)


@pytest.mark.parametrize("k_tensor", [None, np.array(3, dtype=np.int64)], ids=["k", "k_tensor"])
def test_topk_dynamic_shapes(k_tensor):
    x = RNG.standard_normal((5, 7)).astype(np.float32)
    op = trt.TopKOperation.MIN
    define = topk_network(trt.float32, (-1, -1), op, 3, mask(1), k_tensor=k_tensor)

    def check_shape(network):
        define(network)
        assert tuple(network.get_output(0).shape) == (-1, 3)
        assert tuple(network.get_output(1).shape) == (-1, 3)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 3), (4, 8), (8, 16))
        config.add_optimization_profile(profile)

    out = build_and_run(check_shape, {"x": x}, configure=configure)
    values, indices = topk_reference(x, op, 3, 1)
    np.testing.assert_array_equal(out["values"], values)
    np.testing.assert_array_equal(out["indices"], indices)


def test_topk_k_computed_from_the_input_shape_at_run_time():
    # k = x.shape[1]: unknown when the network is defined, known once the shape is set
    x = RNG.standard_normal((3, 5)).astype(np.float32)

    def define(network):
        tensor = network.add_input("x", trt.float32, (-1, -1))
        shape = network.add_shape(tensor).get_output(0)
        index = network.add_constant((), np.array(1, dtype=np.int32)).get_output(0)
        k = network.add_gather(shape, index, 0).get_output(0)
        layer = network.add_topk(tensor, trt.TopKOperation.MIN, 1, mask(1))
        layer.set_input(1, k)
        assert k.is_shape_tensor
        assert tuple(layer.get_output(0).shape) == (-1, -1)
        layer.get_output(0).name = "values"
        layer.get_output(1).name = "indices"
        network.mark_output(layer.get_output(0))
        network.mark_output(layer.get_output(1))

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 1), (2, 4), (4, 8))
        config.add_optimization_profile(profile)

    out = build_and_run(define, {"x": x}, configure=configure)
    values, indices = topk_reference(x, trt.TopKOperation.MIN, 5, 1)
    np.testing.assert_array_equal(out["values"], values)
    np.testing.assert_array_equal(out["indices"], indices)


def test_topk_k_larger_than_a_dynamic_axis_in_the_profile_fails_to_build(logger):
    define = topk_network(trt.float32, (2, -1), trt.TopKOperation.MAX, 4, mask(1), name="bad_topk")

    def check_shape(network):
        define(network)
        assert tuple(network.get_output(0).shape) == (2, 4)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (2, 3), (2, 6), (2, 8))
        config.add_optimization_profile(profile)

    assert build_plan(check_shape, logger, configure) is None
    assert any(
        "min shapes" in e and "bad_topk" in e and "k = 4 is larger than axis 1" in e
        for e in logger.errors
    ), logger.errors


@pytest.mark.parametrize(
    ("dtype", "shape", "k", "axes_mask", "k_tensor", "message"),
    [
        (trt.float32, (2, 3), 4, 0b10, None, "k = 4 is larger than axis 1 of the input [2, 3] (3)"),
        (trt.float32, (2, 3), 2, 0b11, None, "exactly one axis, got axes [0, 1]"),
        (trt.float32, (2, 3), 2, 0, None, "needs at least one axis"),
        (trt.float32, (2, 3), 2, 0b100, None, "names axes past the rank 2"),
        (trt.float32, (2, 3), 0, 0b10, None, "k must be positive, got 0"),
        (trt.float32, (2, 3), 1, 0b10, np.array(5, np.int32), "k = 5 is larger than axis 1"),
        (trt.float32, (2, 3), 1, 0b10, np.array(-1, np.int32), "k must be positive, got -1"),
        (trt.float32, (2, 3), 1, 0b10, np.array([2], np.int32), "must be a scalar INT32"),
        (trt.float32, (2, 3), 1, 0b10, np.array(2.0, np.float32), "got FLOAT of shape []"),
        (trt.bool, (2, 3), 1, 0b10, None, "got BOOL"),
    ],
    ids=[
        "k_too_large",
        "two_axes",
        "no_axes",
        "axes_past_rank",
        "k_zero",
        "k_tensor_too_large",
        "k_tensor_negative",
        "k_tensor_not_scalar",
        "k_tensor_float",
        "bool",
    ],
)
def test_invalid_topk_fails_to_build(dtype, shape, k, axes_mask, k_tensor, message, logger):
    op = trt.TopKOperation.MAX
    define = topk_network(dtype, shape, op, k, axes_mask, k_tensor=k_tensor, name="bad_topk")
    assert build_plan(define, logger) is None
    assert any("bad_topk" in e and message in e for e in logger.errors), logger.errors
