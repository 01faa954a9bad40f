"""Convolution and deconvolution layers, built into plans and run, against torch references.

The references apply TensorRT's padding formulas themselves: they pad explicitly with F.pad
(or crop a full transposed convolution) and then call torch without padding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tensorplan as trt
from helpers import build_and_run, build_plan

RNG = np.random.default_rng(2024)
MODES = list(trt.PaddingMode)
SAME = (trt.PaddingMode.SAME_UPPER, trt.PaddingMode.SAME_LOWER)


def conv_reference(x, kernel, bias, stride, pre, post, dilation, groups, mode):
    """TensorRT's convolution: the output size from the PaddingMode formula, zeros padded."""
    pads_before, pads_after, sizes = [], [], []
    for axis, size in enumerate(x.shape[2:]):
        s, extent = stride[axis], dilation[axis] * (kernel.shape[2 + axis] - 1) + 1
        if mode in SAME:
            out = math.ceil(size / s)
            total = max(0, (size - 1) // s * s + extent - size)
            before = total // 2 if mode == trt.PaddingMode.SAME_UPPER else total - total // 2
        else:
            padded = size + pre[axis] + post[axis]
            rounding = math.ceil if mode == trt.PaddingMode.EXPLICIT_ROUND_UP else math.floor
            out = rounding((padded - extent) / s) + 1
            before = pre[axis]
        sizes.append(out)
        pads_before.append(before)
        pads_after.append((out - 1) * s + extent - size - before + s)  # zeros past the last window
    pad = [p for pair in zip(pads_before[::-1], pads_after[::-1], strict=True) for p in pair]
    t = F.pad(torch.from_numpy(x).float(), pad)
    convolve = F.conv2d if x.ndim == 4 else F.conv3d
    b = None if bias is None else torch.from_numpy(bias).float()
    full = convolve(t, torch.from_numpy(kernel).float(), b, stride, 0, dilation, groups)
    return full[(..., *[slice(0, n) for n in sizes])].numpy()


def deconv_reference(x, kernel, bias, stride, pre, post, dilation, groups, mode):
    """TensorRT's deconvolution: the full transposed convolution, cropped by the padding."""
    transpose = F.conv_transpose2d if x.ndim == 4 else F.conv_transpose3d
    b = None if bias is None else torch.from_numpy(bias).float()
    t, k = torch.from_numpy(x).float(), torch.from_numpy(kernel).float()
    full = transpose(t, k, b, stride, 0, 0, groups, dilation)
    crops = []
    for axis, size in enumerate(x.shape[2:]):
        s, extent = stride[axis], dilation[axis] * (kernel.shape[2 + axis] - 1) + 1
        if mode in SAME:
            total = max(extent - s, 0)
            before = total // 2 if mode == trt.PaddingMode.SAME_UPPER else total - total // 2
            out = min(size * s, (size - 1) * s + extent)
        else:
            before = pre[axis]
            out = (size - 1) * s + extent - pre[axis] - post[axis]
        crops.append(slice(before, before + out))
    return full[(..., *crops)].numpy()


def conv_network(
    x,
    maps,
    kernel,
    bias=None,
    deconv=False,
    dtype=trt.float32,
    input_shape=None,
    **attributes,
):
    """A network: input `x` (cast to `dtype`), one (de)convolution with `attributes`, output y."""

    def define(network):
        tensor = network.add_input("x", trt.float32, input_shape or x.shape)
        if dtype != trt.float32:
            tensor = network.add_cast(tensor, dtype).get_output(0)
        add = network.add_deconvolution_nd if deconv else network.add_convolution_nd
        weights = trt.Weights() if bias is None else bias
        layer = add(tensor, maps, kernel.shape[2:], kernel, weights)
        layer.name = "conv"
        for key, value in attributes.items():
            setattr(layer, key, value)
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    return define


CASES = [
    # input shape, maps, kernel size, groups, stride, dilation, pre, post
    ((2, 4, 9, 11), 6, (3, 3), 1, (1, 1), (1, 1), (0, 0), (0, 0)),
    ((1, 4, 9, 11), 6, (3, 2), 2, (2, 3), (1, 2), (1, 0), (0, 2)),
    ((1, 6, 8, 8), 6, (3, 3), 6, (2, 2), (2, 1), (2, 1), (1, 2)),
    ((1, 2, 5, 6, 7), 4, (2, 3, 2), 2, (1, 2, 2), (2, 1, 1), (1, 0, 1), (0, 1, 1)),
]

STRIDE_2 = [
    # ResNet's stride-2 convolutions: their post-padding is read in part or not at all
    ((2, 3, 16, 16), 4, (7, 7), 1, (2, 2), (1, 1), (3, 3), (3, 3)),  # the stem
    ((2, 4, 8, 8), 4, (3, 3), 1, (2, 2), (1, 1), (1, 1), (1, 1)),  # a bottleneck's 3x3
    ((2, 4, 8, 8), 6, (1, 1), 1, (2, 2), (1, 1), (0, 0), (0, 0)),  # a downsampling 1x1
]
STRIDE_2_IDS = ["stem", "3x3_stride_2", "1x1_stride_2"]


@pytest.mark.parametrize(
    "case", CASES + STRIDE_2, ids=["plain", "grouped", "depthwise", "3d", *STRIDE_2_IDS]
)
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
@pytest.mark.parametrize("deconv", [False, True], ids=["conv", "deconv"])
@pytest.mark.parametrize("with_bias", [True, False], ids=["bias", "no_bias"])
def test_matches_reference(case, mode, deconv, with_bias):
    shape, maps, kernel_size, groups, stride, dilation, pre, post = case
    channels = shape[1]
    x = RNG.standard_normal(shape).astype(np.float32)
    kernel_shape = (
        (channels, maps // groups, *kernel_size)
        if deconv
        else (maps, channels // groups, *kernel_size)
    )
    kernel = RNG.standard_normal(kernel_shape).astype(np.float32)
    bias = RNG.standard_normal(maps).astype(np.float32) if with_bias else None
    define = conv_network(
        x,
        maps,
        kernel,
        bias,
        deconv=deconv,
        num_groups=groups,
        stride_nd=stride,
        dilation_nd=dilation,
        pre_padding=pre,
        post_padding=post,
        padding_mode=mode,
    )
    reference = deconv_reference if deconv else conv_reference
    expected = reference(x, kernel, bias, stride, pre, post, dilation, groups, mode)
    y = build_and_run(define, {"x": x})["y"]
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("case", STRIDE_2, ids=STRIDE_2_IDS)
def test_stride_2_convolutions_do_not_copy_the_input(case, monkeypatch):
    """Torch's symmetric padding makes TensorRT's windows here: no padded copy of the input."""
    shape, maps, kernel_size, _, stride, dilation, pre, post = case
    x = RNG.standard_normal(shape).astype(np.float32)
    kernel = RNG.standard_normal((maps, shape[1], *kernel_size)).astype(np.float32)
    mode = trt.PaddingMode.EXPLICIT_ROUND_DOWN
    expected = conv_reference(x, kernel, None, stride, pre, post, dilation, 1, mode)

    def copy_refused(*args, **kwargs):
        raise AssertionError("the input was padded explicitly")

    monkeypatch.setattr(F, "pad", copy_refused)
    define = conv_network(x, maps, kernel, stride_nd=stride, pre_padding=pre, post_padding=post)
    y = build_and_run(define, {"x": x})["y"]
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("mode", "conv_size", "deconv_size"),
    [
        # input 9 x 11, kernel 3 x 3, stride 2 x 3, dilation 1 x 1, pre (1, 0), post (0, 2)
        # conv: M = (10, 13); deconv: full = (19, 33)
        (trt.PaddingMode.EXPLICIT_ROUND_DOWN, (4, 4), (18, 31)),
        (trt.PaddingMode.EXPLICIT_ROUND_UP, (5, 5), (18, 31)),
        (trt.PaddingMode.SAME_UPPER, (5, 4), (18, 33)),
        (trt.PaddingMode.SAME_LOWER, (5, 4), (18, 33)),
    ],
    ids=lambda v: getattr(v, "name", ""),
)
def test_output_sizes_follow_tensorrt_formulas(mode, conv_size, deconv_size):
    def define(network):
        x = network.add_input("x", trt.float32, (1, 1, 9, 11))
        kernel = np.ones((1, 1, 3, 3), np.float32)
        for add, size in (
            (network.add_convolution_nd, conv_size),
            (network.add_deconvolution_nd, deconv_size),
        ):
            layer = add(x, 1, (3, 3), kernel)
            layer.stride_nd = (2, 3)
            layer.pre_padding = (1, 0)
            layer.post_padding = (0, 2)
            layer.padding_mode = mode
            assert tuple(layer.get_output(0).shape) == (1, 1, *size)
            network.mark_output(layer.get_output(0))

    assert build_plan(define) is not None


@pytest.mark.parametrize(("kernel_size", "rank"), [((3, 3), 2), ((2, 3, 3), 3)], ids=["2d", "3d"])
@pytest.mark.parametrize("deconv", [False, True], ids=["conv", "deconv"])
def test_layer_properties_and_defaults(kernel_size, rank, deconv):
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network()
    x = network.add_input("x", trt.float32, (1, 2, *([6] * rank)))
    kernel = np.zeros(4 * 2 * math.prod(kernel_size), np.float32)
    add = network.add_deconvolution_nd if deconv else network.add_convolution_nd
    layer = add(x, 4, kernel_size, kernel)
    assert layer.type == (trt.LayerType.DECONVOLUTION if deconv else trt.LayerType.CONVOLUTION)
    assert layer.num_output_maps == 4
    assert layer.kernel_size_nd == kernel_size
    assert layer.stride_nd == (1,) * rank
    assert layer.dilation_nd == (1,) * rank
    assert layer.pre_padding == (0,) * rank
    assert layer.post_padding == (0,) * rank
    assert layer.padding_nd == (0,) * rank
    assert layer.padding_mode == trt.PaddingMode.EXPLICIT_ROUND_DOWN
    assert layer.num_groups == 1
    assert layer.bias.size == 0
    assert layer.kernel.size == kernel.size
    assert layer.num_inputs == 1
    assert layer.get_input(1) is None
    layer.padding_nd = (2,) * rank
    assert layer.pre_padding == (2,) * rank and layer.post_padding == (2,) * rank
    layer.post_padding = (1,) * rank
    assert layer.padding_nd == (2,) * rank  # the pre-padding, when asymmetric
    with pytest.raises(ValueError, match="at least 1"):
        layer.stride_nd = (0,) * rank
    with pytest.raises(ValueError, match="at least 0"):
        layer.pre_padding = (-1,) * rank


@pytest.mark.parametrize("deconv", [False, True], ids=["conv", "deconv"])
def test_kernel_and_bias_tensors_replace_weights(deconv):
    x = RNG.standard_normal((2, 4, 6, 7)).astype(np.float32)
    kernel_shape = (4, 3, 3, 3) if deconv else (6, 2, 3, 3)  # 2 groups, 6 output maps
    kernel = RNG.standard_normal(kernel_shape).astype(np.float32)
    bias = RNG.standard_normal(6).astype(np.float32)
    constant_kernel = RNG.standard_normal(kernel_shape).astype(np.float32)

    def define(network):
        inp = network.add_input("x", trt.float32, x.shape)
        runtime_kernel = network.add_input("k", trt.float32, kernel_shape)
        bias_tensor = network.add_constant(bias.shape, bias).get_output(0)
        folded_kernel = network.add_constant(kernel_shape, constant_kernel).get_output(0)
        add = network.add_deconvolution_nd if deconv else network.add_convolution_nd
        for name, kernel_tensor in (("runtime", runtime_kernel), ("constant", folded_kernel)):
            # weights of the wrong size: the tensors set as inputs 1 and 2 take their place
            layer = add(inp, 6, (3, 3), np.ones(5, np.float32), np.ones(2, np.float32))
            layer.num_groups = 2
            layer.stride_nd = (2, 1)
            layer.set_input(1, kernel_tensor)
            layer.set_input(2, bias_tensor)
            assert layer.num_inputs == 3 and layer.get_input(1) is kernel_tensor
            layer.get_output(0).name = name
            network.mark_output(layer.get_output(0))

    out = build_and_run(define, {"x": x, "k": kernel})
    reference = deconv_reference if deconv else conv_reference
    mode = trt.PaddingMode.EXPLICIT_ROUND_DOWN
    args = ((2, 1), (0, 0), (0, 0), (1, 1), 2, mode)
    np.testing.assert_allclose(out["runtime"], reference(x, kernel, bias, *args), atol=1e-5)
    np.testing.assert_allclose(
        out["constant"], reference(x, constant_kernel, bias, *args), atol=1e-5
    )


@pytest.mark.parametrize(
    ("dtype", "tolerance"), [(trt.float16, 2e-2), (trt.bfloat16, 1e-1)], ids=["half", "bf16"]
)
@pytest.mark.parametrize("deconv", [False, True], ids=["conv", "deconv"])
def test_reduced_precision_converts_weights_to_the_input_type(dtype, tolerance, deconv):
    x = RNG.standard_normal((1, 4, 6, 6)).astype(np.float32)
    kernel = RNG.standard_normal((4, 2, 3, 3)).astype(np.float32)
    bias = RNG.standard_normal(4).astype(np.float32)
    define = conv_network(x, 4, kernel, bias, deconv=deconv, dtype=dtype, num_groups=2)
    y = build_and_run(define, {"x": x})["y"]
    assert y.dtype == (np.float16 if dtype == trt.float16 else np.float32)
    reference = deconv_reference if deconv else conv_reference
    mode = trt.PaddingMode.EXPLICIT_ROUND_DOWN
    expected = reference(x, kernel, bias, (1, 1), (0, 0), (0, 0), (1, 1), 2, mode)
    np.testing.assert_allclose(y.astype(np.float32), expected, rtol=tolerance, atol=tolerance)


def dynamic_profile(name, low, opt, high):
    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape(name, low, opt, high)
        config.add_optimization_profile(profile)

    return configure


@pytest.mark.parametrize(
    "mode", [trt.PaddingMode.EXPLICIT_ROUND_UP, trt.PaddingMode.SAME_LOWER], ids=lambda m: m.name
)
@pytest.mark.parametrize("deconv", [False, True], ids=["conv", "deconv"])
def test_dynamic_batch_and_spatial_dims(mode, deconv):
    x = RNG.standard_normal((3, 2, 7, 10)).astype(np.float32)
    kernel = RNG.standard_normal((2, 4, 3, 3) if deconv else (4, 2, 3, 3)).astype(np.float32)
    bias = RNG.standard_normal(4).astype(np.float32)
    options = {"stride_nd": (2, 2), "padding_nd": (1, 1), "padding_mode": mode}
    define = conv_network(x, 4, kernel, bias, deconv=deconv, input_shape=(-1, 2, -1, -1), **options)

    def check_shape(network):
        define(network)
        assert tuple(network.get_output(0).shape) == (-1, 4, -1, -1)

    configure = dynamic_profile("x", (1, 2, 4, 4), (2, 2, 8, 8), (4, 2, 12, 12))
    y = build_and_run(check_shape, {"x": x}, configure=configure)["y"]
    reference = deconv_reference if deconv else conv_reference
    expected = reference(x, kernel, bias, (2, 2), (1, 1), (1, 1), (1, 1), 1, mode)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


INVALID = [
    # input shape, maps, kernel weights, kernel size, groups, bias count, message
    ((1, 6, 5, 5), 4, 4 * 3 * 9, (3, 3), 4, 0, "6 input channels cannot be split into 4 groups"),
    ((1, 8, 5, 5), 6, 6 * 2 * 9, (3, 3), 4, 0, "6 output maps cannot be split into 4 groups"),
    ((1, 2, 4, 4), 3, 3 * 2 * 25, (5, 5), 1, 0, "larger than the padded input (4 + 0 + 0 = 4)"),
    ((1, 2, 5, 5), 3, 37, (3, 3), 1, 0, "the kernel has shape [37] (37 weights); expected [3, 2"),
    ((1, 2, 5, 5), 3, 3 * 4 * 9, (3, 3), 1, 0, "expected [3, 2, 3, 3] (54 weights)"),
    ((1, 2, 5, 5), 3, 3 * 2 * 9, (3, 3), 1, 2, "the bias has shape [2]; expected [3]"),
    ((2, 5, 5), 3, 3 * 2 * 9, (3, 3), 1, 0, "needs an input of rank 4 (NCHW)"),
    ((1, 2, 5, 5, 5), 3, 3 * 2 * 9, (3, 3), 1, 0, "needs an input of rank 4"),
    ((1, 2, 5, 5), 3, 3 * 2 * 27, (3, 3, 3), 1, 0, "needs an input of rank 5 (NCDHW)"),
]


@pytest.mark.parametrize("case", INVALID, ids=lambda c: c[-1][:24])
def test_invalid_convolutions_fail_to_build(case, logger):
    shape, maps, count, kernel_size, groups, bias_count, message = case

    def define(network):
        x = network.add_input("x", trt.float32, shape)
        kernel = np.ones(count, np.float32)
        bias = np.ones(bias_count, np.float32)
        layer = network.add_convolution_nd(x, maps, kernel_size, kernel, bias)
        layer.num_groups = groups
        layer.name = "bad_conv"
        network.mark_output(layer.get_output(0))

    assert build_plan(define, logger) is None
    assert any("bad_conv" in error and message in error for error in logger.errors), logger.errors


def test_deconvolution_padding_larger_than_output_fails(logger):
    def define(network):
        x = network.add_input("x", trt.float32, (1, 1, 2, 2))
        layer = network.add_deconvolution_nd(x, 1, (2, 2), np.ones(4, np.float32))
        layer.padding_nd = (2, 1)
        layer.name = "bad_deconv"
        network.mark_output(layer.get_output(0))

    assert build_plan(define, logger) is None
    assert any("bad_deconv" in e and "leaves no output" in e for e in logger.errors)


@pytest.mark.parametrize(
    ("dtype", "shape", "message"),
    [
        (trt.int32, (1, 2, 5, 5), "the input must be FLOAT, HALF or BF16, got INT32"),
        (trt.float32, (1, -1, 5, 5), "the channel dimension of the input must be known"),
    ],
    ids=["int32", "unknown_channels"],
)
def test_unsupported_inputs_fail(dtype, shape, message, logger):
    def define(network):
        x = network.add_input("x", dtype, shape)
        layer = network.add_convolution_nd(x, 1, (3, 3), np.ones(18, np.float32))
        layer.name = "conv"
        network.mark_output(layer.get_output(0))

    assert build_plan(define, logger) is None
    assert any("conv" in e and message in e for e in logger.errors), logger.errors


@pytest.mark.parametrize("kernel_size", [(3,), (1, 2, 3, 4), (3, 0)], ids=["1d", "4d", "zero"])
def test_unsupported_kernel_sizes_are_refused_at_creation(kernel_size, logger):
    network = trt.Builder(logger).create_network()
    x = network.add_input("x", trt.float32, (1, 1, *[5] * len(kernel_size)))
    weights = np.ones(max(1, math.prod(kernel_size)), np.float32)
    assert network.add_convolution_nd(x, 1, kernel_size, weights) is None
    assert network.add_deconvolution_nd(x, 1, kernel_size, weights) is None
    assert len(logger.errors) == 2 and "kernel_size_nd" in logger.errors[0]
