"""Quantize, dequantize and dynamic quantize layers, against onnx.reference and numpy."""

from __future__ import annotations

import ml_dtypes
import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import tensorplan as trt
from helpers import build_and_run, build_plan, dtype_of
from tensorplan.network.layers.quantize import add_dynamic_quantize_linear

RNG = np.random.default_rng(99)
FP8_TYPES = [
    (trt.DataType.FP8, TensorProto.FLOAT8E4M3FN, ml_dtypes.float8_e4m3fn),
    (trt.DataType.FP8_E5M2, TensorProto.FLOAT8E5M2, ml_dtypes.float8_e5m2),
]


def onnx_reference(op_type, arrays, outputs=1, **attrs):
    """Outputs of one ONNX node, computed by onnx.reference."""
    names = [f"in{index}" for index in range(len(arrays))]
    node = helper.make_node(op_type, names, [f"out{k}" for k in range(outputs)], **attrs)
    return ReferenceEvaluator(node).run(None, dict(zip(names, arrays, strict=True)))


def constant(network, array):
    return network.add_constant(array.shape, trt.Weights(array)).get_output(0)


def mark(network, tensor, name, cast_to=None):
    if cast_to is not None:
        tensor = network.add_cast(tensor, cast_to).get_output(0)
    tensor.name = name
    network.mark_output(tensor)


def quantize_network(x, scale, zero_point=None, to_type=trt.int8, **attrs):
    """x is an input; scale and zero point constants; output "q" (float8 cast to float)."""

    def define(network):
        data = network.add_input("x", dtype_of(x), x.shape)
        layer = network.add_quantize(data, constant(network, scale), to_type)
        if zero_point is not None:
            layer.set_input(2, constant(network, zero_point))
        for key, value in attrs.items():
            setattr(layer, key, value)
        is_fp8 = to_type in (trt.DataType.FP8, trt.DataType.FP8_E5M2)
        mark(network, layer.get_output(0), "q", trt.float32 if is_fp8 else None)

    return define


# x / scale lands on ties (-2.5, 0.5, 1.5, 2.5), saturates, and is ordinary in between
TIES = np.array([[-2.5, 0.5, 1.5, 2.5, 300.0, -300.0], [0.2, -0.7, 3.49, 1000.0, 0.0, -1.5]])


@pytest.mark.parametrize(
    ("to_type", "onnx_type", "zero_point"),
    [
        (trt.int8, TensorProto.INT8, None),
        (trt.int8, TensorProto.INT8, np.array(-3, np.int8)),
        (trt.uint8, TensorProto.UINT8, np.array(128, np.uint8)),
        (trt.uint8, TensorProto.UINT8, None),
    ],
)
def test_per_tensor_quantize_rounds_half_to_even_and_clamps(to_type, onnx_type, zero_point):
    x = TIES.astype(np.float32)
    scale = np.array(1.0, np.float32)
    out = build_and_run(quantize_network(x, scale, zero_point, to_type), {"x": x})["q"]
    arrays = [x, scale] + ([] if zero_point is None else [zero_point])
    (expected,) = onnx_reference("QuantizeLinear", arrays, output_dtype=onnx_type)
    assert out.dtype == expected.dtype
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("to_type", "low", "high"),
    [
        (trt.DataType.INT4, -8, 7),
        (trt.DataType.UINT4, 0, 15),
        (trt.DataType.INT2, -2, 1),
        (trt.DataType.UINT2, 0, 3),
    ],
)
def test_sub_byte_quantize_rounds_half_to_even_and_clamps_to_the_type(to_type, low, high):
    """Sub-byte results are stored a value per byte (docs/dtypes.md), read here as integers."""
    x = TIES.astype(np.float32)
    scale = np.array(0.5, np.float32)

    def define(network):
        quantize_network(x, scale, None, to_type)(network)
        q = network.get_output(0)
        network.unmark_output(q)
        mark(network, network.add_cast(q, trt.int32).get_output(0), "q32")

    out = build_and_run(define, {"x": x})["q32"]
    np.testing.assert_array_equal(out, np.clip(np.round(x / scale), low, high))


@pytest.mark.parametrize("axis", [1, -2])
def test_per_axis_quantize_with_zero_points(axis):
    x = RNG.uniform(-4, 4, (2, 3, 4)).astype(np.float32)
    scale = np.array([0.05, 0.5, 0.02], np.float32)
    zero_point = np.array([0, 10, -20], np.int8)
    define = quantize_network(x, scale, zero_point, trt.int8, axis=axis)
    out = build_and_run(define, {"x": x})["q"]
    (expected,) = onnx_reference("QuantizeLinear", [x, scale, zero_point], axis=axis)
    np.testing.assert_array_equal(out, expected)


def test_blocked_quantize_with_a_partial_last_block():
    x = RNG.uniform(-4, 4, (3, 7)).astype(np.float32)
    scale = RNG.uniform(0.01, 0.1, (3, 3)).astype(np.float32)
    zero_point = RNG.integers(0, 40, (3, 3)).astype(np.uint8)
    define = quantize_network(x, scale, zero_point, trt.uint8, axis=1, block_size=3)
    out = build_and_run(define, {"x": x})["q"]
    (expected,) = onnx_reference("QuantizeLinear", [x, scale, zero_point], axis=1, block_size=3)
    np.testing.assert_array_equal(out, expected)


def test_blocked_scale_inferred_from_shapes_as_in_tensorrt():
    x = RNG.uniform(-4, 4, (4, 6)).astype(np.float32)
    scale = RNG.uniform(0.01, 0.1, (4, 2)).astype(np.float32)
    out = build_and_run(quantize_network(x, scale), {"x": x})["q"]
    expected = np.clip(np.rint(x / np.repeat(scale, 3, axis=1)), -128, 127)
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize("saturate", [True, False])
@pytest.mark.parametrize(("to_type", "onnx_type", "np_type"), FP8_TYPES, ids=["e4m3fn", "e5m2"])
def test_fp8_quantize_matches_onnx(to_type, onnx_type, np_type, saturate):
    x = np.array(
        [[0.3, -1.7, 100.0, 465.0, -470.0, 1e5], [np.inf, -np.inf, 1e-6, 0.0, 61440.0, 3.0]],
        np.float32,
    )
    scale = np.array(0.5, np.float32)
    define = quantize_network(x, scale, None, to_type, saturate=saturate)
    out = build_and_run(define, {"x": x})["q"]
    (expected,) = onnx_reference(
        "QuantizeLinear", [x, scale], output_dtype=onnx_type, saturate=int(saturate)
    )
    np.testing.assert_array_equal(out, expected.astype(np.float32))


def test_dynamic_shapes_through_a_profile():
    seen = {}

    def define(network):
        data = network.add_input("x", trt.float32, (-1, 3))
        layer = network.add_quantize(data, constant(network, np.array([0.1, 0.2, 0.4], np.float32)))
        layer.axis = 1
        seen["shape"] = tuple(layer.get_output(0).shape)
        mark(network, layer.get_output(0), "q")

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 3), (4, 3), (8, 3))
        config.add_optimization_profile(profile)

    x = RNG.uniform(-10, 10, (5, 3)).astype(np.float32)
    out = build_and_run(define, {"x": x}, configure)["q"]
    assert seen["shape"] == (-1, 3)
    scale = np.array([0.1, 0.2, 0.4], np.float32)
    (expected,) = onnx_reference(
        "QuantizeLinear", [x, scale], axis=1, output_dtype=TensorProto.INT8
    )
    np.testing.assert_array_equal(out, expected)


@pytest.mark.parametrize(
    ("x", "zero_point", "axis"),
    [
        (RNG.integers(-128, 128, (2, 3)).astype(np.int8), np.array(5, np.int8), 0),
        (RNG.integers(0, 256, (2, 3)).astype(np.uint8), np.array([1, 2, 200], np.uint8), 1),
        (RNG.integers(-(2**20), 2**20, (2, 3)).astype(np.int32), np.array([7, -9], np.int32), 0),
    ],
)
@pytest.mark.parametrize(
    ("to_type", "np_type"), [(trt.float32, np.float32), (trt.float16, np.float16)]
)
def test_dequantize_matches_onnx(x, zero_point, axis, to_type, np_type):
    scale = RNG.uniform(0.01, 0.1, zero_point.shape).astype(np.float32)

    def define(network):
        data = network.add_input("x", dtype_of(x), x.shape)
        layer = network.add_dequantize(data, constant(network, scale), to_type)
        layer.set_input(2, constant(network, zero_point))
        layer.axis = axis
        mark(network, layer.get_output(0), "y")

    out = build_and_run(define, {"x": x})["y"]
    (expected,) = onnx_reference("DequantizeLinear", [x, scale, zero_point], axis=axis)
    assert out.dtype == np_type
    np.testing.assert_allclose(out, expected.astype(np_type), rtol=1e-6)


@pytest.mark.parametrize(("to_type", "onnx_type", "np_type"), FP8_TYPES, ids=["e4m3fn", "e5m2"])
def test_fp8_quantize_dequantize_round_trip(to_type, onnx_type, np_type):
    x = RNG.uniform(-50, 50, (4, 5)).astype(np.float32)
    scale = np.array([0.5, 1.0, 2.0, 0.25, 0.125], np.float32)

    def define(network):
        data = network.add_input("x", trt.float32, x.shape)
        scale_tensor = constant(network, scale)
        quantize = network.add_quantize(data, scale_tensor, to_type)
        quantize.axis = 1
        dequantize = network.add_dequantize(
            quantize.get_output(0), scale_tensor, trt.DataType.DOUBLE
        )
        dequantize.axis = 1
        mark(network, dequantize.get_output(0), "y")

    out = build_and_run(define, {"x": x})["y"]
    (q,) = onnx_reference("QuantizeLinear", [x, scale], axis=1, output_dtype=onnx_type)
    (expected,) = onnx_reference("DequantizeLinear", [q, scale], axis=1)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, expected.astype(np.float64))


def test_blocked_dequantize_matches_onnx():
    x = RNG.integers(-128, 128, (2, 5)).astype(np.int8)
    scale = RNG.uniform(0.01, 0.1, (2, 3)).astype(np.float32)

    def define(network):
        data = network.add_input("x", trt.int8, x.shape)
        layer = network.add_dequantize(data, constant(network, scale))
        layer.axis, layer.block_size = 1, 2
        mark(network, layer.get_output(0), "y")

    out = build_and_run(define, {"x": x})["y"]
    (expected,) = onnx_reference("DequantizeLinear", [x, scale], axis=1, block_size=2)
    np.testing.assert_array_equal(out, expected)


DYNAMIC_INPUTS = {
    "mixed": RNG.uniform(-3, 7, (3, 4)).astype(np.float32),
    "positive": RNG.uniform(1, 2, (3, 4)).astype(np.float32),
    "negative": RNG.uniform(-5, -1, (3, 4)).astype(np.float32),
    "zeros": np.zeros((3, 4), np.float32),
}


@pytest.mark.parametrize("x", DYNAMIC_INPUTS.values(), ids=DYNAMIC_INPUTS.keys())
def test_dynamic_quantize_linear_matches_onnx(x):
    def define(network):
        data = network.add_input("x", trt.float32, (-1, 4))
        layer = add_dynamic_quantize_linear(network, data)
        assert layer.num_outputs == 3 and tuple(layer.get_output(0).shape) == (-1, 4)
        for index, name in enumerate(["y", "scale", "zero_point"]):
            mark(network, layer.get_output(index), name)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 4), (3, 4), (6, 4))
        config.add_optimization_profile(profile)

    out = build_and_run(define, {"x": x}, configure)
    y, scale, zero_point = onnx_reference("DynamicQuantizeLinear", [x], outputs=3)
    np.testing.assert_array_equal(out["y"], y)
    # exact on the CPU; CUDA's float32 division may round the scale one ulp differently
    np.testing.assert_allclose(out["scale"], scale, rtol=2.5e-7, atol=0)
    np.testing.assert_array_equal(out["zero_point"], zero_point)
    assert out["y"].dtype == np.uint8 and out["scale"].shape == ()


def mx_reference(x, axis, block, np_type, emax):
    """OCP MX: scale 2**(floor(log2(amax)) - emax) per block, elements saturated."""
    moved = np.moveaxis(x, axis, -1)
    blocks = moved.reshape(*moved.shape[:-1], -1, block).astype(np.float64)
    amax = np.abs(blocks).max(axis=-1)
    with np.errstate(divide="ignore"):
        exponent = np.where(amax == 0, -127, np.floor(np.log2(amax)) - emax)
    scale = 2.0 ** np.clip(exponent, -127, 127)
    largest = float(ml_dtypes.finfo(np_type).max)
    data = np.clip(blocks / scale[..., None], -largest, largest).astype(np_type)
    data = np.moveaxis(data.astype(np.float32).reshape(moved.shape), -1, axis)
    return data, np.moveaxis(scale.astype(np.float32), -1, axis)


@pytest.mark.parametrize("axis", [-1, 0])
@pytest.mark.parametrize(("to_type", "onnx_type", "np_type"), FP8_TYPES, ids=["e4m3fn", "e5m2"])
def test_dynamic_quantize_mxfp8(axis, to_type, onnx_type, np_type):
    x = (RNG.standard_normal((64, 64)) * RNG.uniform(0.01, 100, (64, 1))).astype(np.float32)
    x[:32, :32] = 0

    def define(network):
        data = network.add_input("x", trt.float32, x.shape)
        layer = network.add_dynamic_quantize(data, axis, 32, to_type, trt.float32)
        assert (layer.axis, layer.block_size, layer.to_type) == (axis, 32, to_type)
        expected_scales = (64, 2) if axis == -1 else (2, 64)
        assert tuple(layer.get_output(1).shape) == expected_scales
        mark(network, layer.get_output(0), "data", trt.float32)
        mark(network, layer.get_output(1), "scales")

    out = build_and_run(define, {"x": x})
    emax = 8 if to_type == trt.DataType.FP8 else 15
    data, scales = mx_reference(x, axis, 32, np_type, emax)
    np.testing.assert_array_equal(out["scales"], scales)
    np.testing.assert_array_equal(out["data"], data)


def test_layer_defaults():
    builder = trt.Builder(trt.Logger(trt.Logger.ERROR))
    network = builder.create_network()
    x = network.add_input("x", trt.float32, (2, 4))
    scale = constant(network, np.array(0.5, np.float32))
    quantize = network.add_quantize(x, scale)
    assert quantize.type == trt.LayerType.QUANTIZE
    assert (quantize.axis, quantize.to_type, quantize.block_size, quantize.saturate) == (
        -1,
        trt.int8,
        0,
        True,
    )
    assert quantize.get_output(0).dtype == trt.int8
    dequantize = network.add_dequantize(quantize.get_output(0), scale)
    assert dequantize.type == trt.LayerType.DEQUANTIZE
    assert (dequantize.axis, dequantize.to_type) == (-1, trt.float32)
    assert dequantize.get_output(0).dtype == trt.float32
    dynamic = network.add_dynamic_quantize(x, 1, 2, trt.DataType.FP8, trt.float16)
    assert dynamic.type == trt.LayerType.DYNAMIC_QUANTIZE
    assert dynamic.scale_type == trt.float16 and dynamic.num_outputs == 2


def invalid_quantize(x_type, scale_shape, zero_point=None, to_type=trt.int8, **attrs):
    def define(network):
        data = network.add_input("x", x_type, (2, 4))
        layer = network.add_quantize(
            data, constant(network, np.ones(scale_shape, np.float32)), to_type
        )
        if zero_point is not None:
            layer.set_input(2, constant(network, zero_point))
        for key, value in attrs.items():
            setattr(layer, key, value)
        network.mark_output(layer.get_output(0))

    return define


@pytest.mark.parametrize(
    ("define", "message"),
    [
        (invalid_quantize(trt.float32, (3,)), "has 3 values but axis 1"),
        (invalid_quantize(trt.float32, (2,), axis=2), "axis 2 is out of range"),
        (invalid_quantize(trt.int32, ()), "the input (input 0) must be one of"),
        (invalid_quantize(trt.float32, (), to_type=trt.float16), "cannot quantize to HALF"),
        (
            invalid_quantize(trt.float32, (), np.array(0, np.uint8)),
            "zero point (input 2) must be INT8",
        ),
        (
            invalid_quantize(trt.float32, (4,), np.array([0, 0], np.int8), axis=1),
            "must have the scale's shape",
        ),
        (invalid_quantize(trt.float32, (2, 3)), "does not divide"),
        (invalid_quantize(trt.float32, (2, 3), axis=1, block_size=2), "needs 2 blocks of 2"),
        (invalid_quantize(trt.float32, (2, 2, 1)), "or of the input's rank 2"),
    ],
)
def test_invalid_quantize_fails_to_build(logger, define, message):
    assert build_plan(define, logger) is None
    assert any("Quantize" in m and message in m for m in logger.errors), logger.errors


@pytest.mark.parametrize(
    ("block_size", "to_type", "scale_type", "message"),
    [
        (3, trt.DataType.FP8, trt.float32, "not a multiple of the block size 3"),
        (2, trt.DataType.FP4, trt.DataType.FP8, "NVFP4 needs FP4 storage"),
        (2, trt.DataType.FP8, trt.int8, "scale_type must be"),
    ],
)
def test_invalid_dynamic_quantize_fails_to_build(logger, block_size, to_type, scale_type, message):
    def define(network):
        data = network.add_input("x", trt.float32, (2, 4))
        layer = network.add_dynamic_quantize(data, 1, block_size, to_type, scale_type)
        network.mark_output(layer.get_output(1))

    assert build_plan(define, logger) is None
    assert any("DynamicQuantize" in m and message in m for m in logger.errors), logger.errors
