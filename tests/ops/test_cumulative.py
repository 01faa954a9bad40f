"""The cumulative layer, built into plans and run, against ONNX's reference evaluator and
torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import helper
from onnx.reference import ReferenceEvaluator

import tensorplan as trt
from helpers import build_and_run, build_plan, constant, output

RNG = np.random.default_rng(1357)

ONNX_OPS = {"SUM": "CumSum", "PROD": "CumProd"}
"""The ONNX op of each CumulativeOperation (PROD is a tensorplan extension where present)."""


def onnx_reference(op_type, inputs, **attributes):
    """The output of one ONNX node, computed by onnx's reference evaluator."""
    node = helper.make_node(op_type, list(inputs), ["y"], **attributes)
    return ReferenceEvaluator(node).run(None, dict(inputs))[0]


def cumulative_network(shape, axis, op, exclusive, reverse, dtype=trt.float32):
    def define(network):
        layer = network.add_cumulative(
            network.add_input("x", dtype, shape), constant(network, axis), op, exclusive, reverse
        )
        output(network, layer.get_output(0))

    return define


@pytest.mark.parametrize("op", list(trt.CumulativeOperation), ids=lambda o: o.name)
@pytest.mark.parametrize("exclusive", [False, True], ids=["inclusive", "exclusive"])
@pytest.mark.parametrize("reverse", [False, True], ids=["forward", "reverse"])
@pytest.mark.parametrize("axis", [0, 1, -1])
def test_cumulative_matches_onnx(op, exclusive, reverse, axis):
    x = RNG.uniform(0.5, 1.5, (3, 4, 5)).astype(np.float32)
    axis_value = np.array(axis, dtype=np.int32)
    define = cumulative_network(x.shape, axis_value, op, exclusive, reverse)
    y = build_and_run(define, {"x": x})["y"]
    expected = onnx_reference(
        ONNX_OPS[op.name],
        {"x": x, "axis": axis_value},
        exclusive=int(exclusive),
        reverse=int(reverse),
    )
    np.testing.assert_allclose(y, expected, rtol=1e-5)


@pytest.mark.parametrize(
    ("dtype", "torch_type", "tolerance"),
    [
        (trt.float16, torch.float16, 1e-2),
        (trt.bfloat16, torch.bfloat16, 5e-2),
        (trt.DataType.DOUBLE, torch.float64, 0),
        (trt.int8, torch.int8, 0),
        (trt.DataType.INT16, torch.int16, 0),
        (trt.int32, torch.int32, 0),
        (trt.int64, torch.int64, 0),
        (trt.uint8, torch.uint8, 0),
    ],
    ids=lambda v: getattr(v, "name", ""),
)
def test_cumulative_in_every_numeric_type(dtype, torch_type, tolerance):
    """Integer sums keep their type and wrap around (int8: 100 + 100 = -56)."""
    x = RNG.integers(0, 8, (4, 6)).astype(np.float32)
    x[0, :2] = 100

    def define(network):
        data = network.add_cast(network.add_input("x", trt.float32, x.shape), dtype)
        layer = network.add_cumulative(
            data.get_output(0),
            constant(network, np.array(1, dtype=np.int64)),
            trt.CumulativeOperation.SUM,
            False,
            False,
        )
        assert layer.get_output(0).dtype == dtype
        output(network, network.add_cast(layer.get_output(0), trt.float32).get_output(0))

    y = build_and_run(define, {"x": x})["y"]
    expected = torch.from_numpy(x).to(torch_type).cumsum(1, dtype=torch_type).float().numpy()
    np.testing.assert_allclose(y, expected, rtol=tolerance)
    if dtype == trt.int8:
        assert y[0, 1] == -56


def test_cumulative_axis_as_one_element_vector_and_empty_axis():
    """ONNX exporters may write the axis as a 1-element 1-D tensor; an empty axis is no work."""
    x = RNG.standard_normal((3, 2)).astype(np.float32)
    define = cumulative_network(
        x.shape, np.array([-2], dtype=np.int64), trt.CumulativeOperation.SUM, True, False
    )
    y = build_and_run(define, {"x": x})["y"]
    np.testing.assert_allclose(y, np.cumsum(x, axis=0) - x, rtol=1e-5, atol=1e-6)

    empty = np.zeros((0, 4), dtype=np.float32)
    define = cumulative_network(
        (0, 4), np.array(0, dtype=np.int32), trt.CumulativeOperation.SUM, True, True
    )
    assert build_and_run(define, {"x": empty})["y"].shape == (0, 4)


def test_cumulative_properties_change_the_result():
    x = np.array([[1, 2, 3, 4]], dtype=np.float32)

    def define(network):
        layer = network.add_cumulative(
            network.add_input("x", trt.float32, x.shape),
            constant(network, np.array(1, dtype=np.int32)),
            trt.CumulativeOperation.SUM,
            False,
            False,
        )
        assert layer.type == trt.LayerType.CUMULATIVE
        assert (layer.op, layer.exclusive, layer.reverse) == (
            trt.CumulativeOperation.SUM,
            False,
            False,
        )
        layer.exclusive = True
        layer.reverse = True
        output(network, layer.get_output(0))

    y = build_and_run(define, {"x": x})["y"]
    np.testing.assert_array_equal(y, [[9, 7, 4, 0]])


def test_cumulative_with_dynamic_shapes():
    x = RNG.standard_normal((2, 7)).astype(np.float32)

    def define(network):
        layer = network.add_cumulative(
            network.add_input("x", trt.float32, (2, -1)),
            constant(network, np.array(-1, dtype=np.int32)),
            trt.CumulativeOperation.SUM,
            False,
            True,
        )
        assert tuple(layer.get_output(0).shape) == (2, -1)
        output(network, layer.get_output(0))

    def configure(builder, config):
        shapes = builder.create_optimization_profile()
        shapes.set_shape("x", (2, 1), (2, 4), (2, 9))
        config.add_optimization_profile(shapes)

    y = build_and_run(define, {"x": x}, configure)["y"]
    np.testing.assert_allclose(y, np.cumsum(x[:, ::-1], axis=1)[:, ::-1], rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("dtype", "axis", "message"),
    [
        (trt.bool, np.array(0, dtype=np.int32), "needs a numeric input, got BOOL"),
        (trt.float32, np.array(2, dtype=np.int32), "cumulative axis 2 is out of range"),
        (trt.float32, np.array(-3, dtype=np.int64), "cumulative axis -3 is out of range"),
        (trt.float32, np.array([0, 1], dtype=np.int32), "axis must be a scalar"),
        (trt.float32, np.array(0.0, dtype=np.float32), "axis must be a scalar INT32 or INT64"),
    ],
    ids=["bool", "axis_high", "axis_low", "axis_vector", "axis_float"],
)
def test_cumulative_invalid_inputs_fail_to_build(logger, dtype, axis, message):
    def define(network):
        layer = network.add_cumulative(
            network.add_input("x", dtype, (2, 3)),
            constant(network, axis),
            trt.CumulativeOperation.SUM,
            False,
            False,
        )
        layer.name = "bad_cumulative"
        output(network, layer.get_output(0))

    assert build_plan(define, logger) is None
    assert any("bad_cumulative" in e and message in e for e in logger.errors), logger.errors
