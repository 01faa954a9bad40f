"""Extension layers for ONNX operators (Unique, LpPool, Det, ...), built into plans and run,
against ONNX's reference evaluator."""

from __future__ import annotations

import numpy as np
import pytest
from onnx.helper import make_node
from onnx.reference import ReferenceEvaluator

import tensorplan as trt
from helpers import build_and_run, build_plan, dtype_of, load, run_with_allocator

RNG = np.random.default_rng(99)


def onnx_reference(op_type: str, inputs: dict[str, np.ndarray], outputs: int = 1, **attrs):
    """The outputs of one ONNX node computed by onnx.reference."""
    names = [f"out{i}" for i in range(outputs)]
    node = make_node(op_type, list(inputs), names, **attrs)
    return ReferenceEvaluator(node).run(None, inputs)


def single_layer(add, x: np.ndarray, **properties):
    """A network of one layer made by `add(network, input)` on input "x"; output "y"."""

    def define(network):
        inp = network.add_input("x", dtype_of(x), x.shape)
        layer = add(network, inp)
        for key, value in properties.items():
            setattr(layer, key, value)
        for index in range(layer.num_outputs):
            layer.get_output(index).name = f"y{index}" if layer.num_outputs > 1 else "y"
            network.mark_output(layer.get_output(index))

    return define


# -- Unique ---------------------------------------------------------------------------------


def run_unique(x: np.ndarray, **properties) -> list[np.ndarray]:
    plan = build_plan(single_layer(lambda n, i: n.add_unique(i), x, **properties))
    out = run_with_allocator(load(plan), {"x": x})
    return [out[f"y{index}"] for index in range(4)]


def first_occurrence_order(x, axis, y, indices, inverse, counts):
    """ONNX Unique with sorted=0, from the sorted results (onnx.reference gets sorted=0 wrong
    for slices)."""
    order = np.argsort(indices, kind="stable")
    rank = np.argsort(order)
    return [np.take(y, order, axis=axis or 0), indices[order], rank[inverse], counts[order]]


@pytest.mark.parametrize("axis", [None, 0, 1, -1])
@pytest.mark.parametrize("is_sorted", [True, False])
@pytest.mark.parametrize("dtype", [np.float32, np.int32, np.int64])
def test_unique_matches_onnx(axis, is_sorted, dtype):
    x = RNG.integers(0, 3, (4, 3)).astype(dtype)
    x[2] = x[0]
    properties = {"sorted": is_sorted} if axis is None else {"sorted": is_sorted, "axis": axis}
    out = run_unique(x, **properties)
    attrs = {} if axis is None else {"axis": axis}
    expected = onnx_reference("Unique", {"x": x}, outputs=4, sorted=1, **attrs)
    if not is_sorted:
        expected = first_occurrence_order(x, axis, *expected)
    for index, want in enumerate(expected):
        np.testing.assert_array_equal(out[index], want, err_msg=f"output {index}")
        assert out[index].dtype == want.dtype


def test_unique_unsorted_onnx_example():
    x = np.array([2, 1, 1, 3, 4, 3], np.float32)
    y, indices, inverse, counts = run_unique(x, sorted=False)
    np.testing.assert_array_equal(y, [2, 1, 3, 4])
    np.testing.assert_array_equal(indices, [0, 1, 3, 4])
    np.testing.assert_array_equal(inverse, [0, 1, 1, 2, 3, 2])
    np.testing.assert_array_equal(counts, [1, 2, 2, 1])


def test_unique_defaults_and_network_shapes():
    network = trt.Builder(trt.Logger()).create_network()
    x = np.zeros((2, 5), np.float32)
    single_layer(lambda n, i: n.add_unique(i), x)(network)
    layer = network.get_layer(0)
    assert isinstance(layer, trt.IUniqueLayer)
    assert layer.type == trt.LayerType.PLUGIN
    assert layer.axis is None and layer.sorted is True
    shapes = [tuple(layer.get_output(i).shape) for i in range(4)]
    assert shapes == [(-1,), (-1,), (10,), (-1,)]
    layer.axis = 1
    shapes = [tuple(layer.get_output(i).shape) for i in range(4)]
    assert shapes == [(2, -1), (-1,), (5,), (-1,)]


def test_unique_axis_out_of_range_fails_to_build(logger):
    x = np.zeros((2, 5), np.float32)
    define = single_layer(lambda n, i: n.add_unique(i), x, axis=2)
    assert build_plan(define, logger) is None
    assert any("axis 2 is out of range" in m and "[Plugin]" in m for m in logger.errors)


# -- LpPool ---------------------------------------------------------------------------------

LP_CASES = [
    # window, properties, ONNX attributes
    ((3,), {}, {}),
    ((2, 2), {}, {}),
    ((2, 2, 2), {}, {}),
    ((3, 3), {"p": 3.0}, {"p": 3}),
    ((5, 5), {"pre_padding": (2, 2), "post_padding": (2, 2)}, {"pads": [2, 2, 2, 2]}),
    ((2, 3), {"pre_padding": (1, 0), "post_padding": (0, 2)}, {"pads": [1, 0, 0, 2]}),
    ((3, 3), {"stride_nd": (2, 2)}, {"strides": [2, 2]}),
    ((2, 2), {"dilation_nd": (2, 2)}, {"dilations": [2, 2]}),
    ((3, 3), {"padding_mode": trt.PaddingMode.SAME_UPPER}, {"auto_pad": "SAME_UPPER"}),
    ((2, 2), {"padding_mode": trt.PaddingMode.SAME_LOWER}, {"auto_pad": "SAME_LOWER"}),
    (
        (2, 2),
        {
            "stride_nd": (2, 2),
            "pre_padding": (1, 1),
            "post_padding": (1, 1),
            "padding_mode": trt.PaddingMode.EXPLICIT_ROUND_UP,
        },
        {"strides": [2, 2], "pads": [1, 1, 1, 1], "ceil_mode": 1},
    ),
]


@pytest.mark.parametrize(("window", "properties", "attrs"), LP_CASES)
def test_lp_pooling_matches_onnx(window, properties, attrs):
    x = RNG.standard_normal((2, 3, *(6,) * len(window))).astype(np.float32)
    p = properties.pop("p", 2.0)
    define = single_layer(lambda n, i: n.add_lp_pooling(i, window, p), x, **properties)
    out = build_and_run(define, {"x": x})["y"]
    (expected,) = onnx_reference("LpPool", {"x": x}, kernel_shape=list(window), **attrs)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_lp_pooling_round_up_counts_past_the_input_as_zeros():
    x = RNG.standard_normal((1, 2, 6, 6)).astype(np.float32)
    properties = {"stride_nd": (2, 2), "padding_mode": trt.PaddingMode.EXPLICIT_ROUND_UP}
    define = single_layer(lambda n, i: n.add_lp_pooling(i, (3, 3), 2.0), x, **properties)
    out = build_and_run(define, {"x": x})["y"]
    # the last window reads one zero past the input; ONNX's reference would rescale it
    extended = np.pad(x, ((0, 0), (0, 0), (0, 1), (0, 1)))
    (expected,) = onnx_reference("LpPool", {"x": extended}, kernel_shape=[3, 3], strides=[2, 2])
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_lp_pooling_half_and_defaults():
    x = RNG.standard_normal((1, 2, 5, 5)).astype(np.float16)
    network = trt.Builder(trt.Logger()).create_network()
    single_layer(lambda n, i: n.add_lp_pooling(i, (2, 2), 2.0), x)(network)
    layer = network.get_layer(0)
    assert isinstance(layer, trt.ILpPoolingLayer)
    assert layer.p == 2.0 and layer.padding_mode == trt.PaddingMode.EXPLICIT_ROUND_DOWN
    assert tuple(layer.window_size_nd) == (2, 2) and tuple(layer.stride_nd) == ()
    out = build_and_run(single_layer(lambda n, i: n.add_lp_pooling(i, (2, 2), 2.0), x), {"x": x})
    (expected,) = onnx_reference("LpPool", {"x": x.astype(np.float32)}, kernel_shape=[2, 2])
    assert out["y"].dtype == np.float16
    np.testing.assert_allclose(out["y"], expected, rtol=2e-3, atol=2e-3)


def test_lp_pooling_dynamic_shape():
    def define(network):
        inp = network.add_input("x", trt.float32, (1, 2, -1, -1))
        out = network.add_lp_pooling(inp, (2, 2), 1.0).get_output(0)
        assert tuple(out.shape) == (1, 2, -1, -1)
        out.name = "y"
        network.mark_output(out)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 2, 2, 2), (1, 2, 4, 4), (1, 2, 8, 8))
        config.add_optimization_profile(profile)

    x = RNG.standard_normal((1, 2, 5, 7)).astype(np.float32)
    out = build_and_run(define, {"x": x}, configure=configure)["y"]
    (expected,) = onnx_reference("LpPool", {"x": x}, kernel_shape=[2, 2], p=1)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("properties", "message"),
    [
        ({"stride_nd": (1, 1, 1)}, "stride_nd must have 2 values"),
        ({"p": 0.0}, "p must be positive"),
        ({"dilation_nd": (4, 4)}, "is larger than the padded input"),
    ],
)
def test_lp_pooling_invalid_properties_fail_to_build(logger, properties, message):
    x = np.zeros((1, 1, 4, 4), np.float32)
    define = single_layer(lambda n, i: n.add_lp_pooling(i, (2, 2), 2.0), x, **properties)
    assert build_plan(define, logger) is None
    assert any(message in m and "[Plugin]" in m for m in logger.errors)


# -- Det ------------------------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(3, 3), (2, 4, 4), (2, 1, 2, 2)])
def test_det_matches_numpy(shape):
    x = RNG.standard_normal(shape).astype(np.float32)
    out = build_and_run(single_layer(lambda n, i: n.add_det(i), x), {"x": x})["y"]
    np.testing.assert_allclose(out, np.linalg.det(x.astype(np.float64)), rtol=1e-4, atol=1e-5)


def test_det_of_non_square_matrices_fails_to_build(logger):
    x = np.zeros((2, 3), np.float32)
    assert build_plan(single_layer(lambda n, i: n.add_det(i), x), logger) is None
    assert any("square matrices" in m for m in logger.errors)


# -- MaxUnpool ------------------------------------------------------------------------------


@pytest.mark.parametrize("output_shape", [None, (1, 1, 5, 5)])
def test_max_unpool_matches_onnx(output_shape):
    x = np.array([[[[5, 6], [7, 8]]]], np.float32)
    indices = np.array([[[[5, 7], [13, 15]]]], np.int64)

    def define(network):
        inp = network.add_input("x", trt.float32, x.shape)
        where = network.add_input("i", trt.int64, indices.shape)
        layer = network.add_max_unpool(inp, where, (2, 2))
        layer.strides = (2, 2)
        if output_shape is not None:
            shape = np.array(output_shape, np.int64)
            layer.set_input(2, network.add_constant((4,), trt.Weights(shape)).get_output(0))
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    out = build_and_run(define, {"x": x, "i": indices})["y"]
    inputs = {"x": x, "i": indices}
    if output_shape is not None:
        inputs["s"] = np.array(output_shape, np.int64)
    (expected,) = onnx_reference("MaxUnpool", inputs, kernel_shape=[2, 2], strides=[2, 2])
    np.testing.assert_array_equal(out, expected)


def test_max_unpool_output_shape_too_small_fails_to_build(logger):
    def define(network):
        inp = network.add_input("x", trt.float32, (1, 1, 2, 2))
        where = network.add_input("i", trt.int64, (1, 1, 2, 2))
        layer = network.add_max_unpool(inp, where, (2, 2))
        layer.strides = (2, 2)
        shape = np.array((1, 1, 3, 3), np.int64)
        layer.set_input(2, network.add_constant((4,), trt.Weights(shape)).get_output(0))
        network.mark_output(layer.get_output(0))

    assert build_plan(define, logger) is None
    assert any("must have rank 4 and hold the unpooled shape" in m for m in logger.errors)


# -- Col2Im ---------------------------------------------------------------------------------

COL2IM_CASES = [
    ((5, 5), (1, 5), {}),
    ((3, 3, 4), (1, 1, 2), {}),
    ((6, 6), (2, 2), {"dilations": [1, 5]}),
    ((5, 5), (1, 5), {"pads": [0, 1, 0, 1]}),
    ((5, 5), (3, 3), {"strides": [2, 2]}),
    ((4, 5), (2, 2), {"strides": [2, 1], "pads": [1, 0, 1, 2], "dilations": [1, 2]}),
]


@pytest.mark.parametrize(("image", "block", "attrs"), COL2IM_CASES)
def test_col2im_matches_onnx(image, block, attrs):
    rank = len(image)
    dil = attrs.get("dilations", [1] * rank)
    pads = attrs.get("pads", [0] * 2 * rank)
    strides = attrs.get("strides", [1] * rank)
    counts = [
        (image[i] + pads[i] + pads[rank + i] - dil[i] * (block[i] - 1) - 1) // strides[i] + 1
        for i in range(rank)
    ]
    x = RNG.standard_normal((2, 3 * int(np.prod(block)), int(np.prod(counts)))).astype(np.float32)
    image_shape, block_shape = np.array(image, np.int64), np.array(block, np.int64)

    def define(network):
        inp = network.add_input("x", trt.float32, x.shape)
        sizes = [
            network.add_constant((rank,), trt.Weights(v)).get_output(0)
            for v in (image_shape, block_shape)
        ]
        layer = network.add_col2im(inp, *sizes)
        for key, value in attrs.items():
            setattr(layer, key, value)
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    out = build_and_run(define, {"x": x})["y"]
    inputs = {"x": x, "image": image_shape, "block": block_shape}
    (expected,) = onnx_reference("Col2Im", inputs, **attrs)
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


def test_col2im_wrong_number_of_blocks_fails_to_build(logger):
    def define(network):
        inp = network.add_input("x", trt.float32, (1, 5, 4))
        image = network.add_constant((2,), trt.Weights(np.array([5, 5], np.int64)))
        block = network.add_constant((2,), trt.Weights(np.array([1, 5], np.int64)))
        layer = network.add_col2im(inp, image.get_output(0), block.get_output(0))
        network.mark_output(layer.get_output(0))

    assert build_plan(define, logger) is None
    assert any("must be the number of blocks 5" in m for m in logger.errors)


# -- bit cast ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("source", "to_type", "np_type"),
    [
        (np.array([[1.0, -2.5], [np.inf, 0.0]], np.float32), trt.int32, np.int32),
        (np.array([1, -1, 127, -128], np.int8), trt.uint8, np.uint8),
        (np.array([True, False]), trt.uint8, np.uint8),
        (np.array([1.5, -0.0], np.float64), trt.int64, np.int64),
    ],
)
def test_bitcast_reads_the_same_bytes_as_another_type(source, to_type, np_type):
    def define(network):
        x = network.add_input("x", dtype_of(source), source.shape)
        y = network.add_bitcast(x, to_type).get_output(0)
        y.name = "y"
        network.mark_output(y)

    out = build_and_run(define, {"x": source})["y"]
    np.testing.assert_array_equal(out, source.view(np_type))


def test_bitcast_between_sizes_fails_to_build(logger):
    def define(network):
        x = network.add_input("x", trt.float32, (2,))
        layer = network.add_bitcast(x, trt.int64)
        layer.name = "widen"
        network.mark_output(layer.get_output(0))

    assert build_plan(define, logger) is None
    assert any("widen" in e and "element sizes must match" in e for e in logger.errors)
