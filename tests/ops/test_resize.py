"""Resize and grid sample layers, built into plans and run, against ONNX's reference and torch."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from onnx import helper
from onnx.reference import ReferenceEvaluator

import tensorplan as trt
from helpers import build_and_run, build_plan

RNG = np.random.default_rng(7)

NEAREST, LINEAR, CUBIC = (
    trt.InterpolationMode.NEAREST,
    trt.InterpolationMode.LINEAR,
    trt.InterpolationMode.CUBIC,
)
Transform = trt.ResizeCoordinateTransformation
Round = trt.ResizeRoundMode
ONNX_MODES = {NEAREST: "nearest", LINEAR: "linear", CUBIC: "cubic"}
ONNX_TRANSFORMS = {
    Transform.ALIGN_CORNERS: "align_corners",
    Transform.ASYMMETRIC: "asymmetric",
    Transform.HALF_PIXEL: "half_pixel",
}
ONNX_ROUNDING = {
    Round.HALF_DOWN: "round_prefer_floor",
    Round.HALF_UP: "round_prefer_ceil",
    Round.FLOOR: "floor",
    Round.CEIL: "ceil",
}
DTYPES = {
    np.dtype(np.float16): trt.float16,
    np.dtype(np.float32): trt.float32,
    np.dtype(np.float64): trt.DataType.DOUBLE,
}


def onnx_resize(x, sizes=None, scales=None, **attributes):
    """ONNX Resize computed by onnx.reference: the independent reference."""
    names = ["X", "", "scales" if scales is not None else "", "sizes" if sizes is not None else ""]
    while not names[-1]:
        names.pop()
    node = helper.make_node("Resize", names, ["Y"], **attributes)
    feeds = {"X": x}
    if scales is not None:
        feeds["scales"] = np.asarray(scales, dtype=np.float32)
    if sizes is not None:
        feeds["sizes"] = np.asarray(sizes, dtype=np.int64)
    return ReferenceEvaluator(node).run(None, feeds)[0]


def resize_network(x, dtype=None, input_shape=None, **properties):
    """One resize layer; `properties` are set on it in order (shape/scales last-set wins)."""

    def define(network):
        inp = network.add_input("x", dtype or DTYPES[x.dtype], input_shape or x.shape)
        layer = network.add_resize(inp)
        layer.name = "resize"
        for key, value in properties.items():
            setattr(layer, key, value)
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    return define


ONNX_CASES = [
    # (mode, transform, rounding, exclude_outside, cubic_coeff, antialias, shape, target)
    (NEAREST, Transform.ASYMMETRIC, Round.FLOOR, False, -0.75, False, (1, 2, 3, 4), "scales"),
    (NEAREST, Transform.HALF_PIXEL, Round.HALF_DOWN, False, -0.75, False, (1, 1, 5, 7), "sizes"),
    (NEAREST, Transform.HALF_PIXEL, Round.HALF_UP, False, -0.75, False, (2, 3, 4), "scales"),
    (NEAREST, Transform.ALIGN_CORNERS, Round.CEIL, False, -0.75, False, (1, 1, 4, 4), "sizes"),
    (LINEAR, Transform.HALF_PIXEL, Round.FLOOR, False, -0.75, False, (1, 2, 4, 5), "scales"),
    (LINEAR, Transform.ALIGN_CORNERS, Round.FLOOR, False, -0.75, False, (1, 1, 4, 4), "sizes"),
    (LINEAR, Transform.ASYMMETRIC, Round.FLOOR, False, -0.75, False, (3, 5), "scales"),
    (LINEAR, Transform.HALF_PIXEL, Round.FLOOR, False, -0.75, True, (1, 1, 8, 9), "scales"),
    (CUBIC, Transform.HALF_PIXEL, Round.FLOOR, False, -0.75, False, (1, 2, 4, 5), "scales"),
    (CUBIC, Transform.ALIGN_CORNERS, Round.FLOOR, False, -0.75, False, (1, 1, 4, 4), "sizes"),
    (CUBIC, Transform.ASYMMETRIC, Round.FLOOR, True, -0.5, False, (1, 1, 4, 5), "scales"),
    (CUBIC, Transform.HALF_PIXEL, Round.FLOOR, True, -0.5, False, (1, 1, 8, 8), "sizes"),
    (CUBIC, Transform.HALF_PIXEL, Round.FLOOR, False, -0.75, True, (1, 1, 8, 9), "sizes"),
]
UP_AND_DOWN = {4: (0.6, 7), 5: (1.7, 3), 3: (2.0, 2), 7: (0.5, 11), 8: (0.6, 3), 9: (0.45, 5)}
"""Per input size: a scale and an output size, mixing up- and downsampling."""


@pytest.mark.parametrize(
    ("mode", "transform", "rounding", "exclude", "coeff", "antialias", "shape", "target"),
    ONNX_CASES,
    ids=[
        f"{m.name}-{t.name}-{r.name}-excl{int(e)}-aa{int(a)}-{target}"
        for m, t, r, e, _, a, _, target in ONNX_CASES
    ],
)
def test_resize_matches_onnx_reference(
    mode, transform, rounding, exclude, coeff, antialias, shape, target
):
    x = RNG.standard_normal(shape).astype(np.float32)
    lead = len(shape) - 2
    resized = [UP_AND_DOWN[d] for d in shape[lead:]]
    if target == "scales":
        scales = [1.0] * lead + [s for s, _ in resized]
        given = {"scales": scales}
    else:
        given = {"shape": list(shape[:lead]) + [n for _, n in resized]}
    y = build_and_run(
        resize_network(
            x,
            resize_mode=mode,
            coordinate_transformation=transform,
            nearest_rounding=rounding,
            exclude_outside=exclude,
            cubic_coeff=coeff,
            antialias=antialias,
            **given,
        ),
        {"x": x},
    )["y"]
    expected = onnx_resize(
        x,
        sizes=given.get("shape"),
        scales=given.get("scales"),
        mode=ONNX_MODES[mode],
        coordinate_transformation_mode=ONNX_TRANSFORMS[transform],
        nearest_mode=ONNX_ROUNDING[rounding],
        exclude_outside=int(exclude),
        cubic_coeff_a=coeff,
        antialias=int(antialias),
    )
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("mode", [LINEAR, CUBIC, NEAREST], ids=lambda m: m.name)
def test_upper_selector_maps_a_single_output_pixel_to_the_first(mode):
    # how ONNX's pytorch_half_pixel maps onto TensorRT: HALF_PIXEL with the UPPER selector
    x = RNG.standard_normal((1, 1, 4, 6)).astype(np.float32)
    y = build_and_run(
        resize_network(
            x,
            shape=(1, 1, 3, 1),
            resize_mode=mode,
            coordinate_transformation=Transform.HALF_PIXEL,
            nearest_rounding=Round.HALF_DOWN,
            selector_for_single_pixel=trt.ResizeSelector.UPPER,
        ),
        {"x": x},
    )["y"]
    first_column = onnx_resize(x[..., :1], sizes=(1, 1, 3, 1), mode=ONNX_MODES[mode])
    np.testing.assert_allclose(y, first_column, rtol=1e-5, atol=1e-6)
    if mode == LINEAR:
        pytorch = onnx_resize(
            x,
            sizes=(1, 1, 3, 1),
            mode="linear",
            coordinate_transformation_mode="pytorch_half_pixel",
        )
        np.testing.assert_allclose(y, pytorch, rtol=1e-5, atol=1e-6)


def test_trilinear_over_three_axes_in_double():
    x = RNG.standard_normal((2, 3, 4, 5)).astype(np.float64)
    scales = [1.0, 1.75, 0.625, 2.0]  # exact in float32, as ONNX holds scales
    y = build_and_run(
        resize_network(
            x, scales=scales, resize_mode=LINEAR, coordinate_transformation=Transform.HALF_PIXEL
        ),
        {"x": x},
    )["y"]
    expected = onnx_resize(x, scales=scales, mode="linear")
    assert y.dtype == np.float64
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


def test_layer_defaults_and_last_set_of_shape_or_scales_wins():
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network()
    layer = network.add_resize(network.add_input("x", trt.float32, (1, 1, 2, 2)))
    assert layer.type == trt.LayerType.RESIZE
    assert layer.resize_mode == NEAREST
    assert layer.coordinate_transformation == Transform.ASYMMETRIC
    assert layer.selector_for_single_pixel == trt.ResizeSelector.FORMULA
    assert layer.nearest_rounding == Round.FLOOR
    assert layer.exclude_outside is False
    assert layer.cubic_coeff == -0.75
    assert layer.shape == () and layer.scales == []
    layer.scales = [1, 1, 2, 3]
    assert tuple(layer.get_output(0).shape) == (1, 1, 4, 6)
    layer.shape = (1, 1, 3, 3)
    assert layer.scales == [] and layer.shape == (1, 1, 3, 3)
    assert tuple(layer.get_output(0).shape) == (1, 1, 3, 3)


def test_default_nearest_is_asymmetric_floor():
    x = np.arange(12, dtype=np.float32).reshape(1, 1, 3, 4)
    y = build_and_run(resize_network(x, scales=[1, 1, 2, 1.5]), {"x": x})["y"]
    rows = np.floor(np.arange(6) / 2).astype(int)
    cols = np.floor(np.arange(6) / 1.5).astype(int)
    np.testing.assert_array_equal(y, x[:, :, rows][..., cols])


@pytest.mark.parametrize(
    ("dtype", "tolerance"),
    [(trt.float16, 2e-3), (trt.bfloat16, 1e-2), (trt.float32, 1e-5)],
    ids=["half", "bf16", "float"],
)
def test_linear_in_reduced_precision(dtype, tolerance):
    x = RNG.uniform(-1, 1, (1, 2, 4, 4)).astype(np.float32)
    scales = [1.0, 1.0, 1.5, 0.75]

    def define(network):
        inp = network.add_input("x", trt.float32, x.shape)
        cast = network.add_cast(inp, dtype).get_output(0)
        layer = network.add_resize(cast)
        layer.scales = scales
        layer.resize_mode = LINEAR
        layer.coordinate_transformation = Transform.HALF_PIXEL
        out = network.add_cast(layer.get_output(0), trt.float32).get_output(0)
        out.name = "y"
        network.mark_output(out)

    rounded = torch.from_numpy(x).to(torch.float16 if dtype == trt.float16 else torch.bfloat16)
    source = rounded.double().numpy() if dtype != trt.float32 else x.astype(np.float64)
    expected = onnx_resize(source, scales=scales, mode="linear")
    y = build_and_run(define, {"x": x})["y"]
    np.testing.assert_allclose(y, expected, rtol=tolerance, atol=tolerance)


def test_nearest_copies_integers_exactly():
    x = RNG.integers(-1000, 1000, (2, 3, 5)).astype(np.int32)
    y = build_and_run(
        resize_network(x, dtype=trt.int32, shape=(2, 7, 2), nearest_rounding=Round.HALF_UP),
        {"x": x},
    )["y"]
    expected = onnx_resize(
        x.astype(np.float32),
        sizes=(2, 7, 2),
        coordinate_transformation_mode="asymmetric",
        nearest_mode="round_prefer_ceil",
    )
    assert y.dtype == np.int32
    np.testing.assert_array_equal(y, expected.astype(np.int32))


def _dynamic_profile(shape_min, shape_opt, shape_max):
    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", shape_min, shape_opt, shape_max)
        config.add_optimization_profile(profile)

    return configure


def test_output_dims_from_a_shape_tensor_with_dynamic_input():
    x = RNG.standard_normal((2, 2, 3, 5)).astype(np.float32)

    def define(network):
        inp = network.add_input("x", trt.float32, (-1, 2, -1, -1))
        dims = network.add_shape(inp).get_output(0)
        factor = network.add_constant((4,), np.array([1, 1, 2, 2], dtype=np.int64)).get_output(0)
        sizes = network.add_elementwise(dims, factor, trt.ElementWiseOperation.PROD).get_output(0)
        layer = network.add_resize(inp)
        layer.set_input(1, sizes)
        layer.resize_mode = LINEAR
        layer.coordinate_transformation = Transform.HALF_PIXEL
        assert tuple(layer.get_output(0).shape) == (-1, -1, -1, -1)
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    configure = _dynamic_profile((1, 2, 2, 2), (2, 2, 4, 4), (4, 2, 8, 8))
    y = build_and_run(define, {"x": x}, configure=configure)["y"]
    np.testing.assert_allclose(y, onnx_resize(x, sizes=(2, 2, 6, 10), mode="linear"), rtol=1e-5)


@pytest.mark.parametrize("source", ["attribute", "tensor"])
def test_scales_with_dynamic_input(source):
    x = RNG.standard_normal((3, 2, 5, 4)).astype(np.float32)
    scales = [1.0, 1.0, 0.5, 2.5]

    def define(network):
        inp = network.add_input("x", trt.float32, (-1, 2, -1, 4))
        layer = network.add_resize(inp)
        if source == "attribute":
            layer.scales = scales
        else:
            values = np.array(scales, dtype=np.float32)
            layer.set_input(1, network.add_constant((4,), values).get_output(0))
        layer.resize_mode = CUBIC
        layer.coordinate_transformation = Transform.ALIGN_CORNERS
        assert tuple(layer.get_output(0).shape) == (-1, 2, -1, 10)
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    configure = _dynamic_profile((1, 2, 2, 4), (2, 2, 4, 4), (4, 2, 8, 4))
    y = build_and_run(define, {"x": x}, configure=configure)["y"]
    expected = onnx_resize(
        x, scales=scales, mode="cubic", coordinate_transformation_mode="align_corners"
    )
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def _constant(network, values, dtype):
    array = np.array(values, dtype=dtype)
    return network.add_constant(array.shape, array).get_output(0)


@pytest.mark.parametrize(
    ("dtype", "configure", "message"),
    [
        (trt.float32, lambda n, layer: None, "needs output dims (shape), scales, or input 1"),
        (trt.float32, lambda n, layer: setattr(layer, "scales", [1, 2]), "one value per input"),
        (trt.float32, lambda n, layer: setattr(layer, "scales", [1, 1, 0, 2]), "positive"),
        (trt.float32, lambda n, layer: setattr(layer, "shape", (1, 1, -2, 2)), "output dims"),
        (
            trt.int32,
            lambda n, layer: (
                setattr(layer, "shape", (1, 1, 4, 4)),
                setattr(layer, "resize_mode", LINEAR),
            ),
            "LINEAR resize does not take INT32",
        ),
        (
            trt.float32,
            lambda n, layer: layer.set_input(1, _constant(n, [1, 1, 2, 2], np.int8)),
            "INT32/INT64 output dims or FLOAT scales",
        ),
        (
            trt.float32,
            lambda n, layer: layer.set_input(1, _constant(n, [1, 2, 2], np.int32)),
            "1-D tensor of 4 values",
        ),
    ],
    ids=["unset", "scales_length", "zero_scale", "negative_dims", "int_linear", "int8", "length"],
)
def test_invalid_resize_fails_to_build(dtype, configure, message, logger):
    def define(network):
        inp = network.add_input("x", dtype, (1, 1, 2, 2))
        layer = network.add_resize(inp)
        layer.name = "bad_resize"
        configure(network, layer)
        network.mark_output(layer.get_output(0))

    assert build_plan(define, logger) is None
    assert any("bad_resize" in e and message in e for e in logger.errors), logger.errors


# -- grid sample ----------------------------------------------------------------------------

TORCH_MODES = {NEAREST: "nearest", LINEAR: "bilinear", CUBIC: "bicubic"}
TORCH_PADDING = {
    trt.SampleMode.FILL: "zeros",
    trt.SampleMode.CLAMP: "border",
    trt.SampleMode.REFLECT: "reflection",
}


def grid_network(x, grid, dtype=None, input_shapes=None, **properties):
    def define(network):
        kind = dtype or DTYPES[x.dtype]
        shapes = input_shapes or (x.shape, grid.shape)
        inp = network.add_input("x", kind, shapes[0])
        coordinates = network.add_input("grid", kind, shapes[1])
        layer = network.add_grid_sample(inp, coordinates)
        layer.name = "grid_sample"
        for key, value in properties.items():
            setattr(layer, key, value)
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    return define


def torch_grid_sample(x, grid, mode, sample_mode, align_corners):
    return torch.nn.functional.grid_sample(
        torch.from_numpy(x),
        torch.from_numpy(grid),
        mode=TORCH_MODES[mode],
        padding_mode=TORCH_PADDING[sample_mode],
        align_corners=align_corners,
    ).numpy()


@pytest.mark.parametrize("align_corners", [False, True])
@pytest.mark.parametrize("sample_mode", list(TORCH_PADDING), ids=lambda m: m.name)
@pytest.mark.parametrize("mode", [NEAREST, LINEAR, CUBIC], ids=lambda m: m.name)
def test_grid_sample_4d_matches_torch(mode, sample_mode, align_corners):
    x = RNG.standard_normal((2, 3, 5, 6)).astype(np.float64)
    # coordinates well outside [-1, 1] exercise the sample modes
    grid = RNG.uniform(-1.7, 1.7, (2, 4, 7, 2))
    properties = {
        "interpolation_mode": mode,
        "sample_mode": sample_mode,
        "align_corners": align_corners,
    }
    y = build_and_run(grid_network(x, grid, **properties), {"x": x, "grid": grid})["y"]
    expected = torch_grid_sample(x, grid, mode, sample_mode, align_corners)
    np.testing.assert_allclose(y, expected, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("sample_mode", list(TORCH_PADDING), ids=lambda m: m.name)
@pytest.mark.parametrize("mode", [NEAREST, LINEAR], ids=lambda m: m.name)
def test_grid_sample_5d_matches_torch(mode, sample_mode):
    x = RNG.standard_normal((1, 2, 3, 4, 5)).astype(np.float32)
    grid = RNG.uniform(-1.4, 1.4, (1, 2, 3, 4, 3)).astype(np.float32)
    properties = {"interpolation_mode": mode, "sample_mode": sample_mode}
    y = build_and_run(grid_network(x, grid, **properties), {"x": x, "grid": grid})["y"]
    expected = torch_grid_sample(x, grid, mode, sample_mode, False)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("mode", "padding"), [("linear", "zeros"), ("nearest", "reflection"), ("cubic", "zeros")]
)
def test_grid_sample_matches_onnx_reference(mode, padding):
    x = RNG.standard_normal((1, 2, 4, 5)).astype(np.float32)
    grid = RNG.uniform(-1.2, 1.2, (1, 3, 3, 2)).astype(np.float32)
    node = helper.make_node("GridSample", ["X", "G"], ["Y"], mode=mode, padding_mode=padding)
    expected = ReferenceEvaluator(node).run(None, {"X": x, "G": grid})[0]
    modes = {"linear": LINEAR, "nearest": NEAREST, "cubic": CUBIC}
    samples = {"zeros": trt.SampleMode.FILL, "reflection": trt.SampleMode.REFLECT}
    properties = {"interpolation_mode": modes[mode], "sample_mode": samples[padding]}
    y = build_and_run(grid_network(x, grid, **properties), {"x": x, "grid": grid})["y"]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


def test_grid_sample_defaults_half_precision_and_dynamic_shapes():
    x = RNG.standard_normal((2, 3, 5, 6)).astype(np.float16)
    grid = RNG.uniform(-1, 1, (2, 4, 3, 2)).astype(np.float16)

    def define(network):
        grid_network(x, grid, input_shapes=((-1, 3, -1, -1), (-1, -1, -1, 2)))(network)
        layer = network.get_layer(0)
        assert layer.interpolation_mode == LINEAR
        assert layer.align_corners is False
        assert layer.sample_mode == trt.SampleMode.FILL
        assert tuple(network.get_output(0).shape) == (-1, 3, -1, -1)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 3, 2, 2), (2, 3, 5, 6), (4, 3, 8, 8))
        profile.set_shape("grid", (1, 1, 1, 2), (2, 4, 3, 2), (4, 8, 8, 2))
        config.add_optimization_profile(profile)

    y = build_and_run(define, {"x": x, "grid": grid}, configure=configure)["y"]
    expected = torch_grid_sample(
        x.astype(np.float32), grid.astype(np.float32), LINEAR, trt.SampleMode.FILL, False
    )
    assert y.dtype == np.float16
    np.testing.assert_allclose(y.astype(np.float32), expected, rtol=2e-3, atol=2e-3)


@pytest.mark.parametrize(
    ("x_shape", "grid_shape", "properties", "message"),
    [
        ((1, 2, 4, 4), (1, 3, 3, 3), {}, "last dimension must be 2"),
        ((1, 2, 4, 4), (2, 3, 3, 2), {}, "same batch size"),
        ((2, 4, 4), (2, 4, 2), {"sample_mode": trt.SampleMode.WRAP}, "FILL, CLAMP or REFLECT"),
        ((1, 2, 4, 4), (1, 3, 2), {}, "rank 3 to 5"),
    ],
    ids=["coordinates", "batch", "wrap", "rank"],
)
def test_invalid_grid_sample_fails_to_build(x_shape, grid_shape, properties, message, logger):
    x = np.zeros(x_shape, dtype=np.float32)
    grid = np.zeros(grid_shape, dtype=np.float32)
    assert build_plan(grid_network(x, grid, **properties), logger) is None
    assert any("grid_sample" in e and message in e for e in logger.errors), logger.errors
