"""Pooling layers, built into plans and run, against torch and a window-by-window reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tensorplan as trt
from helpers import build_and_run, build_plan

RNG = np.random.default_rng(77)
MODES = list(trt.PaddingMode)
SAME = (trt.PaddingMode.SAME_UPPER, trt.PaddingMode.SAME_LOWER)
MAX, AVERAGE, BLEND = (
    trt.PoolingType.MAX,
    trt.PoolingType.AVERAGE,
    trt.PoolingType.MAX_AVERAGE_BLEND,
)


def pool_reference(
    x, kind, window, stride, pre, post, mode, excludes_padding, blend=0.0, dilation=None
):
    """TensorRT's pooling, one output element at a time (with the `dilation_nd` extension).

    Output sizes and SAME paddings follow TensorRT's PaddingMode formulas. Padding never wins
    a max; an average divides by the window's overlap with the input (excluding padding) or
    with the padded input (including it). Windows without input elements give -inf and 0.
    """
    rank = len(window)
    spatial = x.shape[-rank:]
    dilation = dilation or (1,) * rank
    befores, afters, sizes = [], [], []
    for axis, size in enumerate(spatial):
        s, f = stride[axis], (window[axis] - 1) * dilation[axis] + 1
        if mode in SAME:
            total = max(0, (size - 1) // s * s + f - size)
            before = total // 2 if mode == trt.PaddingMode.SAME_UPPER else total - total // 2
            after, out = total - before, math.ceil(size / s)
        else:
            before, after = pre[axis], post[axis]
            rounding = math.ceil if mode == trt.PaddingMode.EXPLICIT_ROUND_UP else math.floor
            out = rounding((size + before + after - f) / s) + 1
        befores.append(before)
        afters.append(after)
        sizes.append(out)
    lead = x.shape[:-rank]
    result = np.empty((*lead, *sizes), np.float64)
    for index in np.ndindex(*sizes):
        taken, inside, padded = [], 1, 1
        for axis, o in enumerate(index):
            start = o * stride[axis] - befores[axis]
            positions = start + dilation[axis] * np.arange(window[axis])
            within = positions[(positions >= 0) & (positions < spatial[axis])]
            taken.append(within)
            inside *= len(within)
            padded *= np.count_nonzero(
                (positions >= -befores[axis]) & (positions < spatial[axis] + afters[axis])
            )
        values = x[(..., *np.ix_(*taken))].reshape(*lead, -1).astype(np.float64)
        count = inside if excludes_padding else padded
        largest = values.max(-1) if inside else np.full(lead, -np.inf)
        average = values.sum(-1) / count if count else np.zeros(lead)
        if kind == MAX:
            result[(..., *index)] = largest
        elif kind == AVERAGE:
            result[(..., *index)] = average
        else:
            result[(..., *index)] = (1 - blend) * largest + blend * average
    return result


def pool_network(x, kind, window, dtype=trt.float32, input_shape=None, **attributes):
    """A network: input `x` (cast to `dtype`), one pooling layer with `attributes`, output y."""

    def define(network):
        tensor = network.add_input("x", trt.float32, input_shape or x.shape)
        if dtype != trt.float32:
            tensor = network.add_cast(tensor, dtype).get_output(0)
        layer = network.add_pooling_nd(tensor, kind, window)
        layer.name = "pool"
        for key, value in attributes.items():
            setattr(layer, key, value)
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    return define


CASES = [
    # input shape, window, stride, pre, post
    ((2, 3, 9, 11), (3, 2), (2, 3), (1, 0), (0, 1)),
    ((2, 3, 8, 8), (2, 2), (2, 2), (0, 0), (0, 0)),
    ((1, 2, 5, 6, 7), (2, 3, 2), (1, 2, 2), (1, 0, 1), (0, 2, 1)),
    ((3, 7, 9), (3, 3), (2, 2), (1, 1), (1, 1)),
    ((2, 2, 3, 6, 5), (3, 2), (3, 2), (2, 0), (1, 1)),
]
KINDS = [
    (MAX, True, 0.0),
    (AVERAGE, True, 0.0),
    (AVERAGE, False, 0.0),
    (BLEND, True, 0.3),
    (BLEND, False, 0.7),
]


@pytest.mark.parametrize(
    "case", CASES, ids=["2d_asymmetric", "2d_plain", "3d", "rank3_input", "rank5_2d_window"]
)
@pytest.mark.parametrize("mode", MODES, ids=lambda m: m.name)
@pytest.mark.parametrize(
    ("kind", "excludes", "blend"),
    KINDS,
    ids=["max", "average", "average_with_padding", "blend", "blend_with_padding"],
)
def test_matches_reference(case, mode, kind, excludes, blend):
    shape, window, stride, pre, post = case
    x = RNG.standard_normal(shape).astype(np.float32)
    define = pool_network(
        x,
        kind,
        window,
        stride_nd=stride,
        pre_padding=pre,
        post_padding=post,
        padding_mode=mode,
        average_count_excludes_padding=excludes,
        blend_factor=blend,
    )
    expected = pool_reference(x, kind, window, stride, pre, post, mode, excludes, blend)
    y = build_and_run(define, {"x": x})["y"]
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


DILATED = [
    # input shape, window, stride, dilation, pre, post
    ((2, 3, 9, 10), (3, 2), (1, 2), (2, 3), (1, 0), (2, 1)),
    ((1, 2, 7, 6, 8), (2, 2, 3), (2, 1, 1), (3, 2, 2), (0, 1, 1), (1, 0, 2)),
]


@pytest.mark.parametrize("case", DILATED, ids=["2d", "3d"])
@pytest.mark.parametrize(
    "mode",
    [trt.PaddingMode.EXPLICIT_ROUND_DOWN, trt.PaddingMode.EXPLICIT_ROUND_UP, *SAME],
    ids=lambda m: m.name,
)
@pytest.mark.parametrize(
    ("kind", "excludes", "blend"),
    KINDS,
    ids=["max", "average", "average_with_padding", "blend", "blend_with_padding"],
)
def test_dilated_windows_match_reference(case, mode, kind, excludes, blend):
    """The `dilation_nd` extension: every dilation-th element, padding counted as usual."""
    shape, window, stride, dilation, pre, post = case
    x = RNG.standard_normal(shape).astype(np.float32)
    define = pool_network(
        x,
        kind,
        window,
        stride_nd=stride,
        dilation_nd=dilation,
        pre_padding=pre,
        post_padding=post,
        padding_mode=mode,
        average_count_excludes_padding=excludes,
        blend_factor=blend,
    )
    expected = pool_reference(x, kind, window, stride, pre, post, mode, excludes, blend, dilation)
    y = build_and_run(define, {"x": x})["y"]
    assert y.shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("dtype", [trt.float16, trt.bfloat16], ids=["half", "bf16"])
def test_dilated_average_in_reduced_precision(dtype):
    x = RNG.standard_normal((2, 3, 8, 9)).astype(np.float32)
    define = pool_network(x, AVERAGE, (2, 3), dtype=dtype, dilation_nd=(3, 2))
    y = build_and_run(define, {"x": x})["y"].astype(np.float32)
    expected = pool_reference(
        x,
        AVERAGE,
        (2, 3),
        (1, 1),
        (0, 0),
        (0, 0),
        trt.PaddingMode.EXPLICIT_ROUND_DOWN,
        True,
        0,
        (3, 2),
    )
    np.testing.assert_allclose(y, expected, rtol=2e-2, atol=2e-2)


@pytest.mark.parametrize("rank", [2, 3])
@pytest.mark.parametrize("excludes", [True, False], ids=["excludes_padding", "counts_padding"])
def test_matches_torch_pooling(rank, excludes):
    x = RNG.standard_normal((2, 3, *[7] * rank)).astype(np.float32)
    window, stride, padding = (3,) * rank, (2,) * rank, (1,) * rank

    def define(network):
        inp = network.add_input("x", trt.float32, x.shape)
        for name, kind in (("max", MAX), ("avg", AVERAGE)):
            layer = network.add_pooling_nd(inp, kind, window)
            layer.stride_nd = stride
            layer.padding_nd = padding
            layer.average_count_excludes_padding = excludes
            layer.get_output(0).name = name
            network.mark_output(layer.get_output(0))

    out = build_and_run(define, {"x": x})
    t = torch.from_numpy(x)
    max_pool = F.max_pool2d if rank == 2 else F.max_pool3d
    avg_pool = F.avg_pool2d if rank == 2 else F.avg_pool3d
    np.testing.assert_array_equal(out["max"], max_pool(t, window, stride, padding).numpy())
    expected = avg_pool(t, window, stride, padding, count_include_pad=not excludes).numpy()
    np.testing.assert_allclose(out["avg"], expected, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize(
    ("kind", "excludes", "expected"),
    [
        (MAX, True, [[2.0, 5.0, -np.inf]]),
        (AVERAGE, True, [[2.0, 5.0, 0.0]]),
        (AVERAGE, False, [[2.0, 5.0, 0.0]]),
    ],
    ids=["max", "average", "average_with_padding"],
)
def test_round_up_window_past_the_input(kind, excludes, expected):
    # 1 x 5 input, 1 x 1 window, stride 3, ROUND_UP: ceil(4 / 3) + 1 = 3 outputs; the last
    # window starts at 6, past the input and its padding
    x = np.arange(2, 7, dtype=np.float32).reshape(1, 1, 1, 5)
    define = pool_network(
        x,
        kind,
        (1, 1),
        stride_nd=(1, 3),
        padding_mode=trt.PaddingMode.EXPLICIT_ROUND_UP,
        average_count_excludes_padding=excludes,
    )
    y = build_and_run(define, {"x": x})["y"]
    np.testing.assert_array_equal(y[0, 0], expected)


@pytest.mark.parametrize(("window", "rank"), [((2, 2), 2), ((3, 2, 2), 3)], ids=["2d", "3d"])
def test_layer_properties_and_defaults(window, rank):
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network()
    x = network.add_input("x", trt.float32, (1, 2, *([6] * rank)))
    layer = network.add_pooling_nd(x, AVERAGE, window)
    assert layer.type == AVERAGE
    assert layer.window_size_nd == window
    assert layer.stride_nd == (1,) * rank
    assert layer.pre_padding == (0,) * rank
    assert layer.post_padding == (0,) * rank
    assert layer.padding_nd == (0,) * rank
    assert layer.padding_mode == trt.PaddingMode.EXPLICIT_ROUND_DOWN
    assert layer.blend_factor == 0.0
    assert layer.average_count_excludes_padding is True
    assert layer.dilation_nd == (1,) * rank
    assert tuple(layer.get_output(0).shape) == (1, 2, *[6 - w + 1 for w in window])
    layer.padding_nd = (1,) * rank
    assert layer.pre_padding == (1,) * rank and layer.post_padding == (1,) * rank
    layer.type = MAX
    assert layer.type == MAX
    with pytest.raises(ValueError, match="at least 1"):
        layer.window_size_nd = (0,) * rank


@pytest.mark.parametrize(
    ("dtype", "tolerance"), [(trt.float16, 2e-3), (trt.bfloat16, 2e-2)], ids=["half", "bf16"]
)
@pytest.mark.parametrize("shape", [(2, 3, 7, 8), (1, 2, 5, 6, 7)], ids=["2d", "3d"])
@pytest.mark.parametrize("kind", [MAX, AVERAGE, BLEND], ids=lambda k: k.name)
def test_reduced_precision(dtype, tolerance, shape, kind):
    x = RNG.standard_normal(shape).astype(np.float32)
    rank = len(shape) - 2
    window, stride, pre, post = (3,) * rank, (2,) * rank, (1,) * rank, (0,) * rank
    define = pool_network(
        x, kind, window, dtype=dtype, stride_nd=stride, padding_nd=pre, post_padding=post
    )
    mode = trt.PaddingMode.EXPLICIT_ROUND_DOWN
    rounded = torch.from_numpy(x).to(torch.float16 if dtype == trt.float16 else torch.bfloat16)
    expected = pool_reference(rounded.float().numpy(), kind, window, stride, pre, post, mode, True)
    y = build_and_run(define, {"x": x})["y"]
    assert y.dtype == (np.float16 if dtype == trt.float16 else np.float32)
    np.testing.assert_allclose(y.astype(np.float32), expected, rtol=tolerance, atol=tolerance)


@pytest.mark.parametrize(
    "mode", [trt.PaddingMode.EXPLICIT_ROUND_UP, trt.PaddingMode.SAME_UPPER], ids=lambda m: m.name
)
def test_dynamic_batch_and_spatial_dims(mode):
    x = RNG.standard_normal((3, 2, 7, 10)).astype(np.float32)
    options = {"stride_nd": (2, 2), "padding_nd": (1, 1), "padding_mode": mode}
    define = pool_network(x, AVERAGE, (3, 3), input_shape=(-1, 2, -1, -1), **options)

    def check_shape(network):
        define(network)
        assert tuple(network.get_output(0).shape) == (-1, 2, -1, -1)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 2, 4, 4), (2, 2, 8, 8), (4, 2, 12, 12))
        config.add_optimization_profile(profile)

    y = build_and_run(check_shape, {"x": x}, configure=configure)["y"]
    expected = pool_reference(x, AVERAGE, (3, 3), (2, 2), (1, 1), (1, 1), mode, True)
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("dtype", "shape", "window", "attributes", "message"),
    [
        (trt.float32, (1, 1, 4, 4), (5, 3), {}, "the window (5) is larger than the padded input"),
        (trt.float32, (1, 1, 4, 4), (3, 3), {"blend_factor": 1.5}, "blend_factor must be in"),
        (trt.float32, (4, 4), (2, 2), {}, "needs an input of rank 3 or more"),
        (trt.int32, (1, 1, 4, 4), (2, 2), {}, "FLOAT, HALF or BF16 input, got INT32"),
        (trt.float32, (1, 2, 4, 4), (2, 2), {"stride_nd": (1, 1, 1)}, "stride_nd has 3 values"),
        (
            trt.float32,
            (1, 1, 5, 5),
            (3, 3),
            {"dilation_nd": (3, 1)},
            "the window (7) is larger than the padded input",
        ),
        (trt.float32, (1, 1, 5, 5), (2, 2), {"dilation_nd": (1, 1, 1)}, "dilation_nd has 3"),
    ],
    ids=[
        "window_too_large",
        "blend_factor",
        "rank",
        "int32",
        "stride_rank",
        "dilated_window_too_large",
        "dilation_rank",
    ],
)
def test_invalid_pooling_fails_to_build(dtype, shape, window, attributes, message, logger):
    def define(network):
        x = network.add_input("x", dtype, shape)
        layer = network.add_pooling_nd(x, MAX, window)
        layer.name = "bad_pool"
        for key, value in attributes.items():
            setattr(layer, key, value)
        network.mark_output(layer.get_output(0))

    assert build_plan(define, logger) is None
    assert any("bad_pool" in e and message in e for e in logger.errors), logger.errors


@pytest.mark.parametrize("window", [(3,), (2, 2, 2, 2)], ids=["1d", "4d"])
def test_unsupported_window_ranks_are_refused_at_creation(window, logger):
    network = trt.Builder(logger).create_network()
    x = network.add_input("x", trt.float32, (1, 1, *[5] * len(window)))
    assert network.add_pooling_nd(x, MAX, window) is None
    assert len(logger.errors) == 1 and "window_size_nd" in logger.errors[0]
