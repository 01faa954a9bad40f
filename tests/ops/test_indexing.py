"""Scatter, one-hot and reverse-sequence layers, built into plans and run, against ONNX's
reference evaluator and numpy."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import helper
from onnx.reference import ReferenceEvaluator

import tensorplan as trt
from helpers import build_and_run, build_plan, constant, dtype_of, output
from tensorplan.network.layers.indexing import ScatterReduction

RNG = np.random.default_rng(2468)

ONNX_REDUCTIONS = {
    ScatterReduction.NONE: "none",
    ScatterReduction.ADD: "add",
    ScatterReduction.MUL: "mul",
    ScatterReduction.MAX: "max",
    ScatterReduction.MIN: "min",
}

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
"""Types the data-moving layers take; values 0..7 survive each of them exactly."""


def onnx_reference(op_type, inputs, **attributes):
    """The output of one ONNX node, computed by onnx's reference evaluator."""
    node = helper.make_node(op_type, list(inputs), ["y"], **attributes)
    return ReferenceEvaluator(node).run(None, dict(inputs))[0]


def profile(name, low, opt, high):
    def configure(builder, config):
        shapes = builder.create_optimization_profile()
        shapes.set_shape(name, low, opt, high)
        config.add_optimization_profile(shapes)

    return configure


def build_fails(define, logger, layer_name, message):
    assert build_plan(define, logger) is None
    assert any(layer_name in e and message in e for e in logger.errors), logger.errors


# -- scatter ------------------------------------------------------------------------------


def scatter_network(data, indices, updates, mode, axis=None, reduction=None):
    def define(network):
        layer = network.add_scatter(
            network.add_input("data", dtype_of(data), data.shape),
            network.add_input("indices", dtype_of(indices), indices.shape),
            network.add_input("updates", dtype_of(updates), updates.shape),
            mode,
        )
        if axis is not None:
            layer.axis = axis
        if reduction is not None:
            layer.reduction = reduction
        output(network, layer.get_output(0))

    return define


@pytest.mark.parametrize("reduction", list(ScatterReduction), ids=lambda r: r.name)
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_scatter_elements_matches_onnx(reduction, axis):
    """Random indices, negatives and repeats included, of ONNX's ScatterElements."""
    data = RNG.uniform(-2, 2, (4, 5, 3)).astype(np.float32)
    index_shape = [3, 4, 2]
    index_shape[axis] = 6
    size = data.shape[axis]
    indices = RNG.integers(-size, size, index_shape).astype(np.int64)
    updates = RNG.uniform(-2, 2, index_shape).astype(np.float32)
    define = scatter_network(data, indices, updates, trt.ScatterMode.ELEMENT, axis, reduction)
    y = build_and_run(define, {"data": data, "indices": indices, "updates": updates})["y"]
    expected = onnx_reference(
        "ScatterElements",
        {"data": data, "indices": indices, "updates": updates},
        axis=axis,
        reduction=ONNX_REDUCTIONS[reduction],
    )
    np.testing.assert_allclose(y, expected, rtol=1e-6)


@pytest.mark.parametrize("reduction", list(ScatterReduction), ids=lambda r: r.name)
@pytest.mark.parametrize("depth", [1, 2, 3])
def test_scatter_nd_matches_onnx(reduction, depth):
    """ONNX's ScatterND, index tuples of 1 to 3 entries with negatives and repeats."""
    data = RNG.uniform(-2, 2, (3, 4, 2)).astype(np.float32)
    tuples = [RNG.integers(-d, d, (5, 2)) for d in data.shape[:depth]]
    indices = np.stack(tuples, axis=-1).astype(np.int32)
    updates = RNG.uniform(-2, 2, (5, 2, *data.shape[depth:])).astype(np.float32)
    define = scatter_network(data, indices, updates, trt.ScatterMode.ND, reduction=reduction)
    y = build_and_run(define, {"data": data, "indices": indices, "updates": updates})["y"]
    expected = onnx_reference(
        "ScatterND",
        {"data": data, "indices": indices.astype(np.int64), "updates": updates},
        reduction=ONNX_REDUCTIONS[reduction],
    )
    np.testing.assert_allclose(y, expected, rtol=1e-6)


def test_scatter_repeated_index_last_update_wins():
    data = np.zeros((2, 3), dtype=np.float32)
    indices = np.array([[2, 0, 2], [1, 1, 1]], dtype=np.int32)
    updates = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)
    element = scatter_network(data, indices, updates, trt.ScatterMode.ELEMENT, axis=1)
    y = build_and_run(element, {"data": data, "indices": indices, "updates": updates})["y"]
    np.testing.assert_array_equal(y, [[2, 0, 3], [0, 6, 0]])

    rows = np.array([[1], [0], [1]], dtype=np.int32)
    values = np.array([[1, 1, 1], [2, 2, 2], [3, 3, 3]], dtype=np.float32)
    nd = scatter_network(data, rows, values, trt.ScatterMode.ND)
    y = build_and_run(nd, {"data": data, "indices": rows, "updates": values})["y"]
    np.testing.assert_array_equal(y, [[2, 2, 2], [3, 3, 3]])


@pytest.mark.parametrize("reduction", list(ScatterReduction), ids=lambda r: r.name)
def test_scatter_out_of_range_indices_are_ignored(reduction):
    data = np.arange(1, 7, dtype=np.float32).reshape(2, 3)
    indices = np.array([[3, 1, -4]], dtype=np.int64)
    updates = np.array([[10, 20, 30]], dtype=np.float32)
    element = scatter_network(data, indices, updates, trt.ScatterMode.ELEMENT, 1, reduction)
    y = build_and_run(element, {"data": data, "indices": indices, "updates": updates})["y"]
    combine = {
        ScatterReduction.NONE: lambda a, b: b,
        ScatterReduction.ADD: np.add,
        ScatterReduction.MUL: np.multiply,
        ScatterReduction.MAX: np.maximum,
        ScatterReduction.MIN: np.minimum,
    }[reduction]
    expected = data.copy()
    expected[0, 1] = combine(data[0, 1], 20)
    np.testing.assert_array_equal(y, expected)

    tuples = np.array([[0, 3], [-3, 0], [1, -1]], dtype=np.int32)
    values = np.array([7, 8, 9], dtype=np.float32)
    nd = scatter_network(data, tuples, values, trt.ScatterMode.ND, reduction=reduction)
    y = build_and_run(nd, {"data": data, "indices": tuples, "updates": values})["y"]
    expected = data.copy()
    expected[1, 2] = combine(data[1, 2], 9)
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("dtype", TYPES, ids=lambda t: t.name)
def test_scatter_moves_every_type(dtype):
    data = RNG.integers(0, 8, (3, 4)).astype(np.float32)
    updates = RNG.integers(0, 8, (3, 2)).astype(np.float32)
    indices = np.array([[0, 3], [2, -1], [1, 1]], dtype=np.int32)

    def define(network):
        cast = [
            network.add_cast(network.add_input(name, trt.float32, array.shape), dtype)
            for name, array in (("data", data), ("updates", updates))
        ]
        layer = network.add_scatter(
            cast[0].get_output(0),
            constant(network, indices),
            cast[1].get_output(0),
            trt.ScatterMode.ELEMENT,
        )
        layer.axis = 1
        assert layer.get_output(0).dtype == dtype
        output(network, network.add_cast(layer.get_output(0), trt.float32).get_output(0))

    y = build_and_run(define, {"data": data, "updates": updates})["y"]
    if dtype == trt.bool:
        data, updates = (data != 0).astype(np.float32), (updates != 0).astype(np.float32)
    expected = data.copy()
    for row in range(3):
        for column in range(2):
            expected[row, indices[row, column] % 4] = updates[row, column]
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize(
    "dtype", [trt.float16, trt.bfloat16, trt.int8, trt.int32, trt.int64, trt.uint8, trt.bool]
)
@pytest.mark.parametrize("reduction", list(ScatterReduction)[1:], ids=lambda r: r.name)
def test_scatter_reductions_in_every_arithmetic_type(dtype, reduction):
    """Booleans combine as numpy's do: ADD and MAX are OR, MUL and MIN are AND."""
    data = RNG.integers(0, 3, (6,)).astype(np.float32)
    indices = np.array([0, 2, 2, 5, 0, 1], dtype=np.int64)
    updates = RNG.integers(0, 3, (6,)).astype(np.float32)

    def define(network):
        cast = [
            network.add_cast(network.add_input(name, trt.float32, array.shape), dtype)
            for name, array in (("data", data), ("updates", updates))
        ]
        layer = network.add_scatter(
            cast[0].get_output(0),
            constant(network, indices),
            cast[1].get_output(0),
            trt.ScatterMode.ELEMENT,
        )
        layer.reduction = reduction
        output(network, network.add_cast(layer.get_output(0), trt.float32).get_output(0))

    y = build_and_run(define, {"data": data, "updates": updates})["y"]
    numpy_type = bool if dtype == trt.bool else np.float32
    expected = onnx_reference(
        "ScatterElements",
        {
            "data": data.astype(numpy_type),
            "indices": indices,
            "updates": updates.astype(numpy_type),
        },
        reduction=ONNX_REDUCTIONS[reduction],
    )
    np.testing.assert_array_equal(y, expected.astype(np.float32))


def test_scatter_properties_and_defaults():
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network()
    data = network.add_input("data", trt.float32, (3, 4))
    indices = network.add_input("indices", trt.int32, (2, 4))
    layer = network.add_scatter(data, indices, data, trt.ScatterMode.ND)
    assert layer.type == trt.LayerType.SCATTER
    assert layer.mode == trt.ScatterMode.ND
    assert layer.axis == 0
    assert layer.reduction == ScatterReduction.NONE
    layer.mode = trt.ScatterMode.ELEMENT
    layer.axis = -1
    layer.reduction = ScatterReduction.MAX
    assert (layer.mode, layer.axis, layer.reduction) == (
        trt.ScatterMode.ELEMENT,
        -1,
        ScatterReduction.MAX,
    )
    with pytest.raises(ValueError):
        layer.reduction = 9


def test_scatter_with_dynamic_shapes():
    data = RNG.standard_normal((5, 3)).astype(np.float32)
    indices = np.array([[4, 0, -1], [1, 2, 0]], dtype=np.int32)
    updates = np.array([[1, 2, 3], [4, 5, 6]], dtype=np.float32)

    def define(network):
        x = network.add_input("data", trt.float32, (-1, 3))
        layer = network.add_scatter(
            x, constant(network, indices), constant(network, updates), trt.ScatterMode.ELEMENT
        )
        assert tuple(layer.get_output(0).shape) == (-1, 3)
        output(network, layer.get_output(0))

    configure = profile("data", (4, 3), (5, 3), (8, 3))
    y = build_and_run(define, {"data": data}, configure)["y"]
    expected = onnx_reference(
        "ScatterElements",
        {"data": data, "indices": indices.astype(np.int64), "updates": updates},
        axis=0,
    )
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize(
    ("mode", "shapes", "attributes", "message"),
    [
        (trt.ScatterMode.ND, ((3, 4), (2, 1), (2, 3)), {}, "updates must have shape [2, 4]"),
        (trt.ScatterMode.ND, ((3, 4), (2, 3), (2,)), {}, "more than the rank"),
        (trt.ScatterMode.ELEMENT, ((3, 4), (2,), (2,)), {}, "same rank"),
        (trt.ScatterMode.ELEMENT, ((3, 4), (2, 4), (2, 3)), {}, "same shape"),
        (trt.ScatterMode.ELEMENT, ((3, 4), (2, 5), (2, 5)), {}, "exceed data"),
        (trt.ScatterMode.ELEMENT, ((3, 4), (2, 4), (2, 4)), {"axis": 2}, "axis 2"),
    ],
    ids=["nd_updates", "nd_depth", "element_rank", "element_updates", "element_size", "axis"],
)
def test_scatter_invalid_shapes_fail_to_build(logger, mode, shapes, attributes, message):
    def define(network):
        data, indices, updates = shapes
        layer = network.add_scatter(
            network.add_input("data", trt.float32, data),
            network.add_input("indices", trt.int32, indices),
            network.add_input("updates", trt.float32, updates),
            mode,
        )
        layer.name = "bad_scatter"
        for key, value in attributes.items():
            setattr(layer, key, value)
        output(network, layer.get_output(0))

    build_fails(define, logger, "bad_scatter", message)


@pytest.mark.parametrize(
    ("types", "reduction", "message"),
    [
        ((trt.float32, trt.float32, trt.float32), ScatterReduction.NONE, "INT32 or INT64"),
        ((trt.float32, trt.int32, trt.float16), ScatterReduction.NONE, "same type"),
        ((trt.fp8, trt.int32, trt.fp8), ScatterReduction.ADD, "reduction ADD does not take FP8"),
    ],
    ids=["float_indices", "mixed_types", "fp8_reduction"],
)
def test_scatter_invalid_types_fail_to_build(logger, types, reduction, message):
    def define(network):
        inputs = [
            network.add_input(name, dtype, (2, 3))
            for name, dtype in zip(("data", "indices", "updates"), types, strict=True)
        ]
        layer = network.add_scatter(*inputs, trt.ScatterMode.ELEMENT)
        layer.name = "bad_scatter"
        layer.reduction = reduction
        output(network, layer.get_output(0))

    build_fails(define, logger, "bad_scatter", message)


# -- one-hot ------------------------------------------------------------------------------


@pytest.mark.parametrize("axis", [-1, 0, 1, -3])
@pytest.mark.parametrize("index_type", [np.int32, np.int64])
def test_one_hot_matches_onnx(axis, index_type):
    """Negative indices count from depth; those out of range give an all-off row."""
    indices = RNG.integers(-6, 6, (3, 4)).astype(index_type)
    values = np.array([-1.5, 2.5], dtype=np.float32)
    depth = np.array(4, dtype=np.int32)

    def define(network):
        layer = network.add_one_hot(
            network.add_input("indices", dtype_of(indices), indices.shape),
            network.add_input("values", trt.float32, (2,)),
            constant(network, depth),
            axis,
        )
        output(network, layer.get_output(0))

    y = build_and_run(define, {"indices": indices, "values": values})["y"]
    expected = onnx_reference(
        "OneHot", {"indices": indices, "depth": depth, "values": values}, axis=axis
    )
    assert y.shape == expected.shape
    np.testing.assert_array_equal(y, expected)


@pytest.mark.parametrize("dtype", TYPES, ids=lambda t: t.name)
def test_one_hot_values_of_every_type(dtype):
    indices = np.array([2, 0, -1, 7], dtype=np.int32)
    values = np.array([0, 5], dtype=np.float32)

    def define(network):
        on_off = network.add_cast(network.add_input("values", trt.float32, (2,)), dtype)
        layer = network.add_one_hot(
            constant(network, indices),
            on_off.get_output(0),
            constant(network, np.array([3], dtype=np.int64)),
            0,
        )
        assert layer.get_output(0).dtype == dtype
        output(network, network.add_cast(layer.get_output(0), trt.float32).get_output(0))

    y = build_and_run(define, {"values": values})["y"]
    off, on = (0, 1) if dtype == trt.bool else values
    hot = indices % 3 == np.arange(3)[:, None]
    hot[:, 3] = False
    np.testing.assert_array_equal(y, np.where(hot, on, off))


def test_one_hot_depth_from_a_dynamic_shape():
    """depth as a shape tensor computed per input shape: the size of x's last dim."""
    x = np.zeros((2, 5), dtype=np.float32)
    indices = np.array([4, -2, 1], dtype=np.int32)

    def define(network):
        inp = network.add_input("x", trt.float32, (2, -1))
        shape = network.add_shape(inp).get_output(0)
        depth = network.add_gather(shape, constant(network, np.array(1, dtype=np.int32)), 0)
        layer = network.add_one_hot(
            constant(network, indices),
            constant(network, np.array([0, 1], dtype=np.int32)),
            depth.get_output(0),
            1,
        )
        layer.axis = -1
        assert tuple(layer.get_output(0).shape) == (3, -1)
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x}, profile("x", (2, 1), (2, 4), (2, 8)))["y"]
    np.testing.assert_array_equal(y, np.eye(5, dtype=np.int32)[[4, 3, 1]])


def test_one_hot_properties():
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network()
    indices = network.add_input("indices", trt.int32, (3,))
    values = network.add_input("values", trt.float32, (2,))
    layer = network.add_one_hot(indices, values, constant(network, np.array(4)), 0)
    assert layer.type == trt.LayerType.ONE_HOT
    assert layer.axis == 0
    assert tuple(layer.get_output(0).shape) == (4, 3)
    layer.axis = -1
    assert tuple(layer.get_output(0).shape) == (3, 4)


@pytest.mark.parametrize(
    ("indices_type", "values_shape", "depth", "axis", "message"),
    [
        (trt.int32, (2,), np.array(0), -1, "depth must be positive"),
        (trt.int32, (3,), np.array(4), -1, "values must be a 1-D tensor [off, on]"),
        (trt.int32, (2,), np.array([2, 3]), -1, "depth must be a scalar"),
        (trt.int32, (2,), np.array(4.0, dtype=np.float32), -1, "depth must be a scalar INT32"),
        (trt.float32, (2,), np.array(4), -1, "indices must be INT32 or INT64"),
        (trt.int32, (2,), np.array(4), 3, "one-hot axis 3 is out of range for rank 3"),
    ],
    ids=["zero_depth", "values_shape", "depth_shape", "depth_type", "indices_type", "axis"],
)
def test_one_hot_invalid_inputs_fail_to_build(
    logger, indices_type, values_shape, depth, axis, message
):
    def define(network):
        layer = network.add_one_hot(
            network.add_input("indices", indices_type, (2, 3)),
            network.add_input("values", trt.float32, values_shape),
            constant(network, depth),
            axis,
        )
        layer.name = "bad_one_hot"
        output(network, layer.get_output(0))

    build_fails(define, logger, "bad_one_hot", message)


# -- reverse sequence ---------------------------------------------------------------------


@pytest.mark.parametrize(("batch_axis", "sequence_axis"), [(1, 0), (0, 1)])
@pytest.mark.parametrize("length_type", [np.int32, np.int64])
def test_reverse_sequence_matches_onnx(batch_axis, sequence_axis, length_type):
    x = RNG.standard_normal((5, 4, 3)).astype(np.float32)
    steps, batch = x.shape[sequence_axis], x.shape[batch_axis]
    lengths = RNG.integers(1, steps + 1, (batch,)).astype(length_type)

    def define(network):
        layer = network.add_reverse_sequence(
            network.add_input("x", trt.float32, x.shape),
            network.add_input("lengths", dtype_of(lengths), lengths.shape),
        )
        if (batch_axis, sequence_axis) != (1, 0):
            layer.batch_axis, layer.sequence_axis = batch_axis, sequence_axis
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x, "lengths": lengths})["y"]
    expected = onnx_reference(
        "ReverseSequence",
        {"x": x, "lengths": lengths.astype(np.int64)},
        batch_axis=batch_axis,
        time_axis=sequence_axis,
    )
    np.testing.assert_array_equal(y, expected)


def reverse_reference(x, lengths, batch_axis, sequence_axis):
    """Each batch slice's first min(max(n, 0), steps) steps reversed."""
    y = np.moveaxis(x, (batch_axis, sequence_axis), (0, 1)).copy()
    for b, n in enumerate(lengths):
        n = min(max(int(n), 0), y.shape[1])
        y[b, :n] = y[b, :n][::-1]
    return np.moveaxis(y, (0, 1), (batch_axis, sequence_axis))


@pytest.mark.parametrize(
    ("batch_axis", "sequence_axis"), [(2, 0), (-1, 1), (0, -1)], ids=["2_0", "neg1_1", "0_neg1"]
)
def test_reverse_sequence_any_axes_and_lengths_out_of_range(batch_axis, sequence_axis):
    """Lengths are clamped to [0, steps]: past the end reverses all, negative reverses none."""
    x = RNG.standard_normal((4, 5, 3)).astype(np.float32)
    lengths = np.array([9, -2, 0, 3, 1, 4, 5, 2, 1][: x.shape[batch_axis]], dtype=np.int32)

    def define(network):
        layer = network.add_reverse_sequence(
            network.add_input("x", trt.float32, x.shape), constant(network, lengths)
        )
        layer.batch_axis, layer.sequence_axis = batch_axis, sequence_axis
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x})["y"]
    np.testing.assert_array_equal(y, reverse_reference(x, lengths, batch_axis, sequence_axis))


@pytest.mark.parametrize("dtype", TYPES, ids=lambda t: t.name)
def test_reverse_sequence_moves_every_type(dtype):
    x = RNG.integers(0, 8, (4, 3)).astype(np.float32)
    lengths = np.array([4, 2, 3], dtype=np.int32)

    def define(network):
        data = network.add_cast(network.add_input("x", trt.float32, x.shape), dtype)
        layer = network.add_reverse_sequence(data.get_output(0), constant(network, lengths))
        assert layer.get_output(0).dtype == dtype
        output(network, network.add_cast(layer.get_output(0), trt.float32).get_output(0))

    y = build_and_run(define, {"x": x})["y"]
    v = (x != 0).astype(np.float32) if dtype == trt.bool else x
    np.testing.assert_array_equal(y, reverse_reference(v, lengths, 1, 0))


def test_reverse_sequence_defaults_and_dynamic_shapes():
    x = RNG.standard_normal((6, 2, 3)).astype(np.float32)
    lengths = np.array([5, 2], dtype=np.int64)

    def define(network):
        inp = network.add_input("x", trt.float32, (-1, 2, 3))
        layer = network.add_reverse_sequence(inp, constant(network, lengths))
        assert layer.type == trt.LayerType.REVERSE_SEQUENCE
        assert (layer.batch_axis, layer.sequence_axis) == (1, 0)
        assert tuple(layer.get_output(0).shape) == (-1, 2, 3)
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x}, profile("x", (1, 2, 3), (4, 2, 3), (8, 2, 3)))["y"]
    np.testing.assert_array_equal(y, reverse_reference(x, lengths, 1, 0))


@pytest.mark.parametrize(
    ("shape", "lengths", "axes", "message"),
    [
        ((4, 3), np.array([1, 2], dtype=np.int32), (1, 0), "has size 3"),
        ((4, 3), np.array([1, 2, 3], dtype=np.int32), (1, 1), "must differ"),
        ((4, 3), np.array([1, 2, 3], dtype=np.int32), (2, 0), "batch_axis 2 is out of range"),
        ((4,), np.array([1], dtype=np.int32), (1, 0), "rank 2 or more"),
        ((4, 3), np.array([1.0, 2.0, 3.0], dtype=np.float32), (1, 0), "INT32 or INT64"),
    ],
    ids=["lengths_count", "same_axes", "axis_range", "rank", "lengths_type"],
)
def test_reverse_sequence_invalid_inputs_fail_to_build(logger, shape, lengths, axes, message):
    def define(network):
        layer = network.add_reverse_sequence(
            network.add_input("x", trt.float32, shape), constant(network, lengths)
        )
        layer.name = "bad_reverse"
        layer.batch_axis, layer.sequence_axis = axes
        output(network, layer.get_output(0))

    build_fails(define, logger, "bad_reverse", message)
