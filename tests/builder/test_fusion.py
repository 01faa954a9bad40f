"""Build-time fusion: fused plans hold the fused ops and compute what the layers compute.

Every network is built twice: as is (fused), and with each layer's precision set to FLOAT,
which the builder never fuses through (a precision constraint must hold). Both engines are
compared with an independent torch reference in FP32, with tight tolerances.
"""

from __future__ import annotations

import math
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tensorplan as trt
from helpers import build_plan, load, run
from tensorplan.ir import Node
from tensorplan.ops import get_op
from tensorplan.ops.base import ShapeError, TensorMeta, infer_node

RNG = np.random.default_rng(7)
ACT = trt.ActivationType
ELT = trt.ElementWiseOperation
MATRIX = trt.MatrixOperation


def build_both(define, configure=None):
    """(fused engine, unfused engine) of the network that `define` fills in."""

    def unfused(network):
        define(network)
        for index in range(network.num_layers):
            network.get_layer(index).precision = trt.float32

    engines = []
    for variant in (define, unfused):
        plan = build_plan(variant, configure=configure)
        assert plan is not None, "the build failed"
        engines.append(load(plan))
    return engines


def ops_of(engine) -> list[str]:
    return [node.op for node in engine._program.graph.nodes]


def nodes_of(engine, op: str) -> list[Node]:
    return [node for node in engine._program.graph.nodes if node.op == op]


def check(define, inputs, expected, fused_op, configure=None, rtol=1e-5, atol=1e-5):
    """Both engines match `expected`; the fused one runs `fused_op`, the other does not."""
    fused, unfused = build_both(define, configure)
    assert fused_op in ops_of(fused)
    assert fused_op not in ops_of(unfused)
    for engine in (fused, unfused):
        out = run(engine, inputs)["out"]
        np.testing.assert_allclose(out, expected, rtol=rtol, atol=atol)
    return fused


def constant(network, array):
    return network.add_constant(array.shape, array).get_output(0)


def mark(network, tensor):
    tensor.name = "out"
    network.mark_output(tensor)


def elementwise(network, a, b, op):
    return network.add_elementwise(a, b, op).get_output(0)


# -- convolution: batch norm folding, residual add and activation -----------------------------


CONV_X = RNG.standard_normal((2, 3, 9, 9)).astype(np.float32)
KERNEL = RNG.standard_normal((4, 3, 3, 3)).astype(np.float32) * 0.3
BIAS = RNG.standard_normal(4).astype(np.float32)
MEAN = RNG.standard_normal((1, 4, 1, 1)).astype(np.float32)
STD = RNG.uniform(0.5, 2.0, (1, 4, 1, 1)).astype(np.float32)
GAMMA = RNG.uniform(0.5, 2.0, (1, 4, 1, 1)).astype(np.float32)
BETA = RNG.standard_normal((1, 4, 1, 1)).astype(np.float32)


def torch_batch_norm(y):
    mean, std, gamma, beta = (torch.from_numpy(a) for a in (MEAN, STD, GAMMA, BETA))
    return (y - mean) / std * gamma + beta


def conv_layer(network, x, bias=True):
    layer = network.add_convolution_nd(x, 4, (3, 3), KERNEL, BIAS if bias else None)
    layer.padding_nd = (1, 1)
    return layer.get_output(0)


def torch_conv(x, bias=True):
    return F.conv2d(
        torch.from_numpy(x),
        torch.from_numpy(KERNEL),
        torch.from_numpy(BIAS) if bias else None,
        padding=1,
    )


def batch_norm(network, y):
    """Batch norm as exported layer by layer: (y - mean) / std * gamma + beta."""
    y = elementwise(network, y, constant(network, MEAN), ELT.SUB)
    y = elementwise(network, y, constant(network, STD), ELT.DIV)
    y = elementwise(network, constant(network, GAMMA), y, ELT.PROD)
    return elementwise(network, y, constant(network, BETA), ELT.SUM)


@pytest.mark.parametrize("bias", [True, False])
def test_batch_norm_folds_into_the_convolution(bias):
    def define(network):
        x = network.add_input("x", trt.float32, CONV_X.shape)
        y = batch_norm(network, conv_layer(network, x, bias))
        mark(network, network.add_activation(y, ACT.RELU).get_output(0))

    reference = torch_conv(CONV_X, bias)
    reference = torch.relu(torch_batch_norm(reference)).numpy()
    fused = check(define, {"x": CONV_X}, reference, "conv_bias_act")
    assert ops_of(fused) == ["conv_bias_act"]
    (node,) = fused._program.graph.nodes
    assert node.attrs["activation"] == ACT.RELU
    assert "+" in node.name
    # the kernel is stored channels-last (K, kH, kW, C) for NHWC convolutions
    assert node.attrs["channels_last"]
    stored = fused._program.graph.constants[node.inputs[1]].cpu().numpy()
    scale = (GAMMA / STD).reshape(4, 1, 1, 1)
    np.testing.assert_allclose(stored, (KERNEL * scale).transpose(0, 2, 3, 1), rtol=1e-6)


ACTIVATIONS = [
    (ACT.RELU, 0.0, 0.0, torch.relu),
    (ACT.SIGMOID, 0.0, 0.0, torch.sigmoid),
    (ACT.LEAKY_RELU, 0.1, 0.0, lambda t: F.leaky_relu(t, 0.1)),
    (ACT.CLIP, -0.5, 0.5, lambda t: torch.clamp(t, -0.5, 0.5)),
    (ACT.GELU_ERF, 0.0, 0.0, F.gelu),
]


@pytest.mark.parametrize(
    ("kind", "alpha", "beta", "reference"), ACTIVATIONS, ids=[a[0].name for a in ACTIVATIONS]
)
def test_residual_add_and_activation_fuse(kind, alpha, beta, reference):
    residual = RNG.standard_normal((2, 4, 9, 9)).astype(np.float32)

    def define(network):
        x = network.add_input("x", trt.float32, CONV_X.shape)
        r = network.add_input("r", trt.float32, residual.shape)
        y = elementwise(network, r, conv_layer(network, x), ELT.SUM)
        layer = network.add_activation(y, kind)
        layer.alpha, layer.beta = alpha, beta
        mark(network, layer.get_output(0))

    expected = reference(torch_conv(CONV_X) + torch.from_numpy(residual)).numpy()
    fused = check(define, {"x": CONV_X, "r": residual}, expected, "conv_bias_act")
    (node,) = nodes_of(fused, "conv_bias_act")
    assert len(node.inputs) == 4
    assert (node.attrs["activation"], node.attrs["alpha"], node.attrs["beta"]) == (
        kind,
        pytest.approx(alpha),
        pytest.approx(beta),
    )


def test_residual_without_bias_or_activation():
    residual = RNG.standard_normal((2, 4, 9, 9)).astype(np.float32)

    def define(network):
        x = network.add_input("x", trt.float32, CONV_X.shape)
        r = network.add_input("r", trt.float32, residual.shape)
        mark(network, elementwise(network, conv_layer(network, x, bias=False), r, ELT.SUM))

    expected = (torch_conv(CONV_X, bias=False) + torch.from_numpy(residual)).numpy()
    fused = check(define, {"x": CONV_X, "r": residual}, expected, "conv_bias_act")
    (node,) = nodes_of(fused, "conv_bias_act")
    assert node.inputs[2] is None and node.attrs["activation"] is None


def test_dynamic_batch_through_a_profile():
    def define(network):
        x = network.add_input("x", trt.float32, (-1, 3, 9, 9))
        y = conv_layer(network, x)
        assert tuple(y.shape) == (-1, 4, 9, 9)
        mark(network, network.add_activation(batch_norm(network, y), ACT.RELU).get_output(0))

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 3, 9, 9), (2, 3, 9, 9), (4, 3, 9, 9))
        config.add_optimization_profile(profile)

    x = RNG.standard_normal((3, 3, 9, 9)).astype(np.float32)
    expected = torch.relu(torch_batch_norm(torch_conv(x))).numpy()
    check(define, {"x": x}, expected, "conv_bias_act", configure)


def test_values_read_elsewhere_are_not_fused_away():
    """The convolution's output is a network output too: it must still be computed."""

    def define(network):
        x = network.add_input("x", trt.float32, CONV_X.shape)
        y = conv_layer(network, x)
        y.name = "conv"
        network.mark_output(y)
        mark(network, network.add_activation(y, ACT.RELU).get_output(0))

    plan = build_plan(define)
    engine = load(plan)
    assert ops_of(engine) == ["conv_bias_act", "activation"]
    assert nodes_of(engine, "conv_bias_act")[0].attrs["activation"] is None
    outputs = run(engine, {"x": CONV_X})
    np.testing.assert_allclose(outputs["out"], np.maximum(outputs["conv"], 0), rtol=0, atol=0)


def test_non_per_channel_constant_is_not_folded():
    """A constant varying over space is added, not folded into the bias."""
    offset = RNG.standard_normal((1, 4, 9, 9)).astype(np.float32)

    def define(network):
        x = network.add_input("x", trt.float32, CONV_X.shape)
        mark(
            network,
            elementwise(network, conv_layer(network, x), constant(network, offset), ELT.SUM),
        )

    expected = (torch_conv(CONV_X) + torch.from_numpy(offset)).numpy()
    fused = check(define, {"x": CONV_X}, expected, "conv_bias_act")
    (node,) = nodes_of(fused, "conv_bias_act")
    assert len(node.inputs) == 4


POOLINGS = [
    # window, stride, padding: every window holds an input element
    ((3, 3), (2, 2), (1, 1)),  # ResNet's stem pooling
    ((2, 2), (2, 2), (0, 0)),
    ((3, 2), (1, 2), (2, 1)),
]


def conv_pool(network, x, bias, relu, window, stride, padding):
    y = conv_layer(network, x, bias)
    if relu:
        y = network.add_activation(y, ACT.RELU).get_output(0)
    pool = network.add_pooling_nd(y, trt.PoolingType.MAX, window)
    pool.stride_nd, pool.padding_nd = stride, padding
    return pool.get_output(0)


@pytest.mark.parametrize(("window", "stride", "padding"), POOLINGS, ids=str)
@pytest.mark.parametrize(("bias", "relu"), [(True, True), (True, False), (False, True)])
def test_bias_and_relu_move_past_max_pooling(bias, relu, window, stride, padding):
    x = CONV_X.copy()
    x[0, 0, 4, 4] = np.nan  # NaN propagates through the moved ReLU as through the original

    def define(network):
        inp = network.add_input("x", trt.float32, x.shape)
        mark(network, conv_pool(network, inp, bias, relu, window, stride, padding))

    y = torch_conv(x, bias)
    y = torch.relu(y) if relu else y
    padded = F.pad(y, (padding[1], padding[1], padding[0], padding[0]), value=-math.inf)
    expected = F.max_pool2d(padded, window, stride).numpy()
    fused = check(define, {"x": x}, expected, "pool_bias_act")
    assert ops_of(fused) == ["conv_bias_act", "pool_bias_act"]
    conv, pool = fused._program.graph.nodes
    assert len(conv.inputs) == 2 and conv.attrs["activation"] is None
    assert len(pool.inputs) == (2 if bias else 1)
    assert pool.attrs["activation"] == (ACT.RELU if relu else None)


def test_max_pooling_with_windows_of_padding_only_keeps_the_epilogue():
    """A window past the input gives -inf after the ReLU, which relu(-inf + bias) would not."""

    def define(network):
        x = network.add_input("x", trt.float32, CONV_X.shape)
        mark(network, conv_pool(network, x, True, True, (2, 2), (2, 2), (2, 2)))

    engine = load(build_plan(define))
    assert ops_of(engine) == ["conv_bias_act", "pooling"]
    out = run(engine, {"x": CONV_X})["out"]
    expected = F.max_pool2d(
        F.pad(torch.relu(torch_conv(CONV_X)), (2, 2, 2, 2), value=-math.inf), 2, 2
    ).numpy()
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)
    assert np.isneginf(out[..., 0, 0]).all()


def test_pool_bias_act_refuses_windows_of_padding_only_and_other_activations():
    fused = get_op("pool_bias_act")
    attrs = fused.check_attrs({"window_size_nd": (2, 2), "activation": ACT.RELU})
    attrs |= {"stride_nd": (2, 2), "dilation_nd": (1, 1), "post_padding": (0, 0)}
    x, bias = meta((1, 4, 8, 8)), meta((4,))
    assert infer_node(fused, [x, bias], attrs | {"pre_padding": (1, 1)})[0].shape == (1, 4, 4, 4)
    with pytest.raises(ShapeError, match="window"):
        infer_node(fused, [x, bias], attrs | {"pre_padding": (2, 2)})
    with pytest.raises(ShapeError, match="ReLU"):
        infer_node(fused, [x, bias], attrs | {"pre_padding": (0, 0), "activation": ACT.SIGMOID})
    with pytest.raises(ShapeError, match="bias"):
        infer_node(fused, [x, meta((3,))], attrs | {"pre_padding": (0, 0)})


# -- matrix multiply: bias and activation -----------------------------------------------------


MM_X = RNG.standard_normal((2, 5, 16)).astype(np.float32)
WEIGHT = RNG.standard_normal((16, 8)).astype(np.float32) * 0.25
MM_BIAS = RNG.standard_normal(8).astype(np.float32)


@pytest.mark.parametrize("transposed", [False, True])
@pytest.mark.parametrize("with_bias", [True, False])
def test_matmul_bias_activation(transposed, with_bias):
    def define(network):
        x = network.add_input("x", trt.float32, (-1, 5, 16))
        stored = WEIGHT.T.copy() if transposed else WEIGHT
        w = constant(network, stored.reshape(1, *stored.shape))
        op1 = MATRIX.TRANSPOSE if transposed else MATRIX.NONE
        y = network.add_matrix_multiply(x, MATRIX.NONE, w, op1).get_output(0)
        if with_bias:
            y = elementwise(network, constant(network, MM_BIAS.reshape(1, 1, 8)), y, ELT.SUM)
        mark(network, network.add_activation(y, ACT.TANH).get_output(0))

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 5, 16), (2, 5, 16), (4, 5, 16))
        config.add_optimization_profile(profile)

    expected = MM_X @ WEIGHT + (MM_BIAS if with_bias else 0)
    fused = check(define, {"x": MM_X}, np.tanh(expected), "matmul_bias_act", configure)
    assert ops_of(fused) == ["matmul_bias_act"]
    (node,) = fused._program.graph.nodes
    weight = fused._executor.constants[node.inputs[1]]
    assert tuple(weight.shape) == (8, 16)  # torch Linear's layout: one row per output feature


def test_matmul_with_bias_only_and_scalar_bias():
    def define(network):
        x = network.add_input("x", trt.float32, MM_X.shape)
        w = constant(network, WEIGHT.reshape(1, 16, 8))
        y = network.add_matrix_multiply(x, MATRIX.NONE, w, MATRIX.NONE).get_output(0)
        mark(
            network,
            elementwise(
                network, y, constant(network, np.full((1, 1, 1), 0.5, np.float32)), ELT.SUM
            ),
        )

    check(define, {"x": MM_X}, MM_X @ WEIGHT + 0.5, "matmul_bias_act")


def test_matmul_of_two_activations_is_not_a_linear_layer():
    def define(network):
        x = network.add_input("x", trt.float32, MM_X.shape)
        w = network.add_input("w", trt.float32, (1, 16, 8))
        y = network.add_matrix_multiply(x, MATRIX.NONE, w, MATRIX.NONE).get_output(0)
        mark(network, network.add_activation(y, ACT.RELU).get_output(0))

    engine = load(build_plan(define))
    assert ops_of(engine) == ["matrix_multiply", "activation"]


def gelu_layers(network, x):
    """GELU as torch.onnx exports it: (x * (erf(x / sqrt 2) + 1)) * 0.5."""
    sqrt2 = constant(network, np.full((1, 1, 1), math.sqrt(2), np.float32))
    one = constant(network, np.ones((1, 1, 1), np.float32))
    half = constant(network, np.full((1, 1, 1), 0.5, np.float32))
    erf = network.add_unary(elementwise(network, x, sqrt2, ELT.DIV), trt.UnaryOperation.ERF)
    plus_one = elementwise(network, one, erf.get_output(0), ELT.SUM)
    return elementwise(network, half, elementwise(network, plus_one, x, ELT.PROD), ELT.PROD)


def test_exported_gelu_becomes_one_activation_fused_into_the_matmul():
    def define(network):
        x = network.add_input("x", trt.float32, MM_X.shape)
        w = constant(network, WEIGHT.reshape(1, 16, 8))
        y = network.add_matrix_multiply(x, MATRIX.NONE, w, MATRIX.NONE).get_output(0)
        y = elementwise(network, y, constant(network, MM_BIAS.reshape(1, 1, 8)), ELT.SUM)
        mark(network, gelu_layers(network, y))

    expected = F.gelu(torch.from_numpy(MM_X @ WEIGHT + MM_BIAS)).numpy()
    fused = check(define, {"x": MM_X}, expected, "matmul_bias_act")
    (node,) = fused._program.graph.nodes
    assert node.attrs["activation"] == ACT.GELU_ERF


def test_gelu_alone():
    def define(network):
        mark(network, gelu_layers(network, network.add_input("x", trt.float32, MM_X.shape)))

    fused = check(define, {"x": MM_X}, F.gelu(torch.from_numpy(MM_X)).numpy(), "activation")
    assert ops_of(fused) == ["activation"]


# -- attention --------------------------------------------------------------------------------


Q, K, V = (RNG.standard_normal((2, 3, 5, 8)).astype(np.float32) for _ in range(3))
MASK = np.where(RNG.random((2, 1, 1, 5)) < 0.3, -10000.0, 0.0).astype(np.float32)


def attention_reference(scale, mask):
    scores = Q @ np.swapaxes(K, -1, -2) * scale + (0 if mask is None else mask)
    weights = np.exp(scores - scores.max(-1, keepdims=True))
    return (weights / weights.sum(-1, keepdims=True)) @ V


@pytest.mark.parametrize("key_transposed", [False, True])
@pytest.mark.parametrize("scaling", [None, ELT.DIV, ELT.PROD])
@pytest.mark.parametrize("with_mask", [True, False])
def test_attention_becomes_one_sdpa_call(key_transposed, scaling, with_mask):
    key = np.swapaxes(K, -1, -2).copy() if key_transposed else K

    def define(network):
        q = network.add_input("q", trt.float32, Q.shape)
        k = network.add_input("k", trt.float32, key.shape)
        v = network.add_input("v", trt.float32, V.shape)
        op1 = MATRIX.NONE if key_transposed else MATRIX.TRANSPOSE
        scores = network.add_matrix_multiply(q, MATRIX.NONE, k, op1).get_output(0)
        if scaling is not None:
            factor = math.sqrt(8) if scaling == ELT.DIV else 1 / math.sqrt(8)
            c = constant(network, np.full((1, 1, 1, 1), factor, np.float32))
            scores = elementwise(network, scores, c, scaling)
        if with_mask:
            mask = network.add_input("mask", trt.float32, MASK.shape)
            scores = elementwise(network, mask, scores, ELT.SUM)
        softmax = network.add_softmax(scores)
        softmax.axes = 1 << 3
        out = network.add_matrix_multiply(softmax.get_output(0), MATRIX.NONE, v, MATRIX.NONE)
        mark(network, out.get_output(0))

    inputs = {"q": Q, "k": key, "v": V} | ({"mask": MASK} if with_mask else {})
    scale = 1.0 if scaling is None else 1 / math.sqrt(8)
    expected = attention_reference(scale, MASK if with_mask else None)
    fused = check(define, inputs, expected, "attention")
    assert ops_of(fused) == ["attention"]
    (node,) = fused._program.graph.nodes
    assert node.attrs["scale"] == pytest.approx(scale)
    assert node.attrs["key_transposed"] == key_transposed


def test_heads_merged_after_attention_are_written_in_order_by_the_attention():
    """softmax(q k^T) v, transposed to (batch, L, heads, E) and reshaped to (batch, L, heads*E):
    the attention writes (batch, L, heads, E) and the reshape is a view of it."""

    def define(network):
        q, k, v = (network.add_input(n, trt.float32, Q.shape) for n in "qkv")
        scores = network.add_matrix_multiply(q, MATRIX.NONE, k, MATRIX.TRANSPOSE).get_output(0)
        softmax = network.add_softmax(scores)
        softmax.axes = 1 << 3
        out = network.add_matrix_multiply(softmax.get_output(0), MATRIX.NONE, v, MATRIX.NONE)
        transpose = network.add_shuffle(out.get_output(0))
        transpose.first_transpose = (0, 2, 1, 3)
        merged = network.add_shuffle(transpose.get_output(0))
        merged.reshape_dims = (2, 5, 24)
        relu = network.add_activation(merged.get_output(0), ACT.RELU)
        mark(network, relu.get_output(0))

    expected = np.maximum(attention_reference(1.0, None).transpose(0, 2, 1, 3), 0)
    fused = check(define, {"q": Q, "k": K, "v": V}, expected.reshape(2, 5, 24), "attention")
    assert ops_of(fused) == ["attention", "shuffle", "activation"]
    attention, merge, _ = fused._program.graph.nodes
    assert attention.attrs["heads_last"]
    assert merge.outputs[0] in fused._program.memory.views


def test_attention_with_query_and_key_scaled_before_the_product():
    """torch's ONNX export of scaled_dot_product_attention: q and k^T each times sqrt(scale)."""
    root = np.full((1, 1, 1, 1), 8**-0.25, np.float32)

    def define(network):
        q = network.add_input("q", trt.float32, Q.shape)
        k = network.add_input("k", trt.float32, K.shape)
        v = network.add_input("v", trt.float32, V.shape)
        q = elementwise(network, q, constant(network, root), ELT.PROD)
        k = elementwise(network, constant(network, root), k, ELT.PROD)
        scores = network.add_matrix_multiply(q, MATRIX.NONE, k, MATRIX.TRANSPOSE).get_output(0)
        softmax = network.add_softmax(scores)
        softmax.axes = 1 << 3
        out = network.add_matrix_multiply(softmax.get_output(0), MATRIX.NONE, v, MATRIX.NONE)
        mark(network, out.get_output(0))

    expected = attention_reference(1 / math.sqrt(8), None)
    fused = check(define, {"q": Q, "k": K, "v": V}, expected, "attention")
    assert ops_of(fused) == ["attention"]
    assert fused._program.graph.nodes[0].attrs["scale"] == pytest.approx(1 / math.sqrt(8))


CAUSAL = np.triu(np.full((1, 1, 5, 5), -np.inf, np.float32), 1)  # transformers' causal mask


def nan_guarded_attention(mask_input: bool):
    """GPT-2's export through torch's SDPA: softmax(q k^T / sqrt(E) + causal mask), then
    where(isnan(p), 0, p), then @ v."""

    def define(network):
        q, k, v = (network.add_input(n, trt.float32, Q.shape) for n in "qkv")
        scores = network.add_matrix_multiply(q, MATRIX.NONE, k, MATRIX.TRANSPOSE).get_output(0)
        c = constant(network, np.full((1, 1, 1, 1), math.sqrt(8), np.float32))
        scores = elementwise(network, scores, c, ELT.DIV)
        if mask_input:
            mask = network.add_input("mask", trt.float32, CAUSAL.shape)
        else:
            mask = constant(network, CAUSAL)
        softmax = network.add_softmax(elementwise(network, scores, mask, ELT.SUM))
        softmax.axes = 1 << 3
        weights = softmax.get_output(0)
        isnan = network.add_unary(weights, trt.UnaryOperation.ISNAN).get_output(0)
        zero = constant(network, np.zeros((1, 1, 1, 1), np.float32))
        guarded = network.add_select(isnan, zero, weights).get_output(0)
        out = network.add_matrix_multiply(guarded, MATRIX.NONE, v, MATRIX.NONE)
        mark(network, out.get_output(0))

    return define


@pytest.mark.parametrize("mask_input", [False, True])
def test_the_nan_guard_of_torchs_sdpa_export_fuses_with_a_constant_causal_mask(mask_input):
    inputs = {"q": Q, "k": K, "v": V} | ({"mask": CAUSAL} if mask_input else {})
    expected = attention_reference(1 / math.sqrt(8), CAUSAL)
    if mask_input:  # a run-time mask may mask whole rows, where the guard's zeros count
        engine = load(build_plan(nan_guarded_attention(True)))
        assert "attention" not in ops_of(engine) and "select" in ops_of(engine)
        got = run(engine, inputs)["out"]
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)
        return
    fused = check(nan_guarded_attention(False), inputs, expected, "attention")
    assert ops_of(fused) == ["attention"]
    assert fused._program.graph.nodes[0].attrs["scale"] == pytest.approx(1 / math.sqrt(8))


def test_a_constant_mask_that_masks_a_whole_row_keeps_the_nan_guard(monkeypatch):
    whole_row = CAUSAL.copy()
    whole_row[..., 0, :] = -np.inf  # row 0's weights are NaN: the guard makes them 0
    monkeypatch.setattr(sys.modules[__name__], "CAUSAL", whole_row)
    engine = load(build_plan(nan_guarded_attention(False)))
    assert "attention" not in ops_of(engine)
    scores = Q @ np.swapaxes(K, -1, -2) / math.sqrt(8) + whole_row
    with np.errstate(invalid="ignore"):
        weights = np.exp(scores - scores.max(-1, keepdims=True))
        weights = np.nan_to_num(weights / weights.sum(-1, keepdims=True), nan=0.0)
    got = run(engine, {"q": Q, "k": K, "v": V})["out"]
    np.testing.assert_allclose(got, weights @ V, rtol=1e-5, atol=1e-5)
    assert not got[..., 0, :].any()


@pytest.mark.parametrize("factor", [0.0, math.inf, math.nan])
@pytest.mark.parametrize("scaling", [ELT.DIV, ELT.PROD])
def test_scores_scaled_by_zero_or_non_finite_are_not_attention(scaling, factor):
    """scores / 0 made a scale of 1 / 0 (a ZeroDivisionError in the builder, found by the
    ONNX fuzz target); such scores are the graph's to compute, NaNs and all."""

    def define(network):
        q, k, v = (network.add_input(n, trt.float32, Q.shape) for n in "qkv")
        scores = network.add_matrix_multiply(q, MATRIX.NONE, k, MATRIX.TRANSPOSE).get_output(0)
        c = constant(network, np.full((1, 1, 1, 1), factor, np.float32))
        softmax = network.add_softmax(elementwise(network, scores, c, scaling))
        softmax.axes = 1 << 3
        out = network.add_matrix_multiply(softmax.get_output(0), MATRIX.NONE, v, MATRIX.NONE)
        mark(network, out.get_output(0))

    engine = load(build_plan(define))
    assert "attention" not in ops_of(engine)
    scores = torch.from_numpy(Q @ np.swapaxes(K, -1, -2))
    scaled = scores / factor if scaling == ELT.DIV else scores * factor
    expected = (torch.softmax(scaled, -1) @ torch.from_numpy(V)).numpy()
    got = run(engine, {"q": Q, "k": K, "v": V})[engine.get_tensor_name(3)]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-5)


def test_softmax_over_another_axis_is_not_attention():
    def define(network):
        q = network.add_input("q", trt.float32, Q.shape)
        k = network.add_input("k", trt.float32, K.shape)
        scores = network.add_matrix_multiply(q, MATRIX.NONE, k, MATRIX.TRANSPOSE).get_output(0)
        softmax = network.add_softmax(scores)
        softmax.axes = 1 << 2
        v = network.add_input("v", trt.float32, V.shape)
        out = network.add_matrix_multiply(softmax.get_output(0), MATRIX.NONE, v, MATRIX.NONE)
        mark(network, out.get_output(0))

    assert "attention" not in ops_of(load(build_plan(define)))


# -- layer normalization ----------------------------------------------------------------------


LN_X = RNG.standard_normal((2, 5, 16)).astype(np.float32) * 3 + 1
LN_SCALE = RNG.uniform(0.5, 2.0, (1, 1, 16)).astype(np.float32)
LN_BIAS = RNG.standard_normal((1, 1, 16)).astype(np.float32)


def layer_norm_network(precision):
    def define(network):
        x = network.add_input("x", trt.float32, LN_X.shape)
        layer = network.add_normalization(
            x, constant(network, LN_SCALE), constant(network, LN_BIAS), 1 << 2
        )
        layer.epsilon = 1e-3
        layer.compute_precision = precision
        mark(network, layer.get_output(0))

    return define


def test_layer_normalization_becomes_one_kernel():
    expected = F.layer_norm(
        torch.from_numpy(LN_X),
        (16,),
        torch.from_numpy(LN_SCALE.reshape(16)),
        torch.from_numpy(LN_BIAS.reshape(16)),
        1e-3,
    ).numpy()
    fused = check(layer_norm_network(trt.float32), {"x": LN_X}, expected, "layer_norm")
    (node,) = fused._program.graph.nodes
    assert node.attrs == {"epsilon": pytest.approx(1e-3), "dims": 1}


@pytest.mark.parametrize("residual_shape", [LN_X.shape, (1, 5, 16)], ids=["same", "broadcast"])
def test_residual_add_before_layer_norm_joins_its_kernel(residual_shape):
    residual = RNG.standard_normal(residual_shape).astype(np.float32)

    def define(network):
        x = network.add_input("x", trt.float32, LN_X.shape)
        r = network.add_input("r", trt.float32, residual.shape)
        summed = elementwise(network, x, r, ELT.SUM)
        layer = network.add_normalization(
            summed, constant(network, LN_SCALE), constant(network, LN_BIAS), 1 << 2
        )
        layer.epsilon = 1e-3
        mark(network, layer.get_output(0))

    expected = F.layer_norm(
        torch.from_numpy(LN_X + residual),
        (16,),
        torch.from_numpy(LN_SCALE.reshape(16)),
        torch.from_numpy(LN_BIAS.reshape(16)),
        1e-3,
    ).numpy()
    fused = check(define, {"x": LN_X, "r": residual}, expected, "layer_norm")
    assert ops_of(fused) == ["layer_norm"]
    assert len(nodes_of(fused, "layer_norm")[0].inputs) == 4


def test_half_compute_precision_keeps_the_normalization():
    engine = load(build_plan(layer_norm_network(trt.float16)))
    assert ops_of(engine) == ["normalization"]


# -- RMS normalization ------------------------------------------------------------------------


RMS_X = RNG.standard_normal((2, 5, 4, 6)).astype(np.float32) * 3 + 1
RMS_SCALES = {
    1: RNG.uniform(0.5, 2.0, (1, 1, 1, 6)).astype(np.float32),
    2: RNG.uniform(0.5, 2.0, (1, 1, 4, 6)).astype(np.float32),
}
RMS_EPSILON = 1e-3
RMS_FORMS = ["onnx", "torch", "recip"]
"""How the chain is written: "onnx" as our importer writes RMSNormalization (x * x, x / sqrt,
then * scale); "torch" as torch.onnx.export writes LlamaRMSNorm (pow(x, 2), x * (1 / sqrt),
scale first); "recip" with a reciprocal layer (pow(x, 2), recip(sqrt) * x, scale first)."""


def rms_norm_layers(network, x, scale, form, dims=1, axes=None, casts=False):
    """x / sqrt(mean(x^2 over `axes`, default the last `dims`) + eps) * scale, as `form`
    writes it; with `casts`, the statistics in FLOAT between casts (ONNX's stash type)."""
    rank = len(x.shape)
    if axes is None:
        axes = ((1 << rank) - 1) ^ ((1 << (rank - dims)) - 1)

    def scalar(value):
        return constant(network, np.full((1,) * rank, value, np.float32))

    v = network.add_cast(x, trt.float32).get_output(0) if casts else x
    if form == "onnx":
        square = elementwise(network, v, v, ELT.PROD)
    else:
        square = elementwise(network, v, scalar(2), ELT.POW)
    mean = network.add_reduce(square, trt.ReduceOperation.AVG, axes, True).get_output(0)
    shifted = elementwise(network, mean, scalar(RMS_EPSILON), ELT.SUM)
    root = network.add_unary(shifted, trt.UnaryOperation.SQRT).get_output(0)
    if form == "onnx":
        normalized = elementwise(network, v, root, ELT.DIV)
    elif form == "torch":
        normalized = elementwise(
            network, v, elementwise(network, scalar(1), root, ELT.DIV), ELT.PROD
        )
    else:
        inverse = network.add_unary(root, trt.UnaryOperation.RECIP).get_output(0)
        normalized = elementwise(network, inverse, v, ELT.PROD)
    if casts:
        normalized = network.add_cast(normalized, x.dtype).get_output(0)
    if form == "onnx":
        return elementwise(network, normalized, constant(network, scale), ELT.PROD)
    return elementwise(network, constant(network, scale), normalized, ELT.PROD)


def rms_reference(x, scale, axes):
    x = torch.from_numpy(x.astype(np.float64))
    mean_square = (x * x).mean(axes, keepdim=True)
    return (
        x / torch.sqrt(mean_square + RMS_EPSILON) * torch.from_numpy(scale.astype(np.float64))
    ).numpy()


@pytest.mark.parametrize("dims", [1, 2])
@pytest.mark.parametrize("form", RMS_FORMS)
def test_rms_normalization_becomes_one_kernel(form, dims):
    scale = RMS_SCALES[dims]

    def define(network):
        x = network.add_input("x", trt.float32, RMS_X.shape)
        mark(network, rms_norm_layers(network, x, scale, form, dims))

    expected = rms_reference(RMS_X, scale, tuple(range(4 - dims, 4)))
    fused = check(define, {"x": RMS_X}, expected, "rms_norm")
    (node,) = fused._program.graph.nodes
    assert node.op == "rms_norm"
    assert node.attrs == {"epsilon": pytest.approx(RMS_EPSILON), "dims": dims}


def test_rms_norm_scale_shared_along_a_normalized_axis_is_expanded():
    scale = RMS_SCALES[1]  # (1, 1, 1, 6): one value per column, shared by the 4 rows

    def define(network):
        x = network.add_input("x", trt.float32, RMS_X.shape)
        mark(network, rms_norm_layers(network, x, scale, "onnx", dims=2))

    fused = check(define, {"x": RMS_X}, rms_reference(RMS_X, scale, (2, 3)), "rms_norm")
    (node,) = nodes_of(fused, "rms_norm")
    stored = fused._program.graph.constants[node.inputs[1]].cpu().numpy()
    np.testing.assert_array_equal(stored, np.broadcast_to(scale.reshape(6), (4, 6)))


@pytest.mark.parametrize("form", RMS_FORMS)
@pytest.mark.parametrize("dtype", [np.float32, np.float16])
def test_rms_norm_in_an_fp16_engine(form, dtype):
    """A HALF input between casts (statistics in FLOAT, as ONNX's stash type asks) becomes
    one kernel on the HALF tensors; a FLOAT network fuses under the FP16 flag too."""
    x_values, scale = RMS_X.astype(dtype), RMS_SCALES[1].astype(dtype)
    half = dtype == np.float16

    def define(network):
        x = network.add_input("x", trt.float16 if half else trt.float32, RMS_X.shape)
        mark(network, rms_norm_layers(network, x, scale, form, casts=half))

    def configure(builder, config):
        config.set_flag(trt.BuilderFlag.FP16)

    expected = rms_reference(x_values, scale, (3,))
    fused = check(define, {"x": x_values}, expected, "rms_norm", configure, rtol=5e-3, atol=5e-3)
    if half:
        assert ops_of(fused) == ["rms_norm"]  # the casts went into the kernel
        (node,) = fused._program.graph.nodes
        assert fused._program.graph.values[node.inputs[0]].dtype == trt.float16


@pytest.mark.parametrize(
    ("shape", "scale", "fuses"),
    [((-1, 5, 4, 6), RMS_SCALES[1], True), ((2, 5, 4, -1), np.full((1, 1, 1, 1), 1.5), False)],
    ids=["dynamic batch", "dynamic width"],
)
def test_rms_norm_needs_static_normalized_dims(shape, scale, fuses):
    scale = scale.astype(np.float32)

    def define(network):
        x = network.add_input("x", trt.float32, shape)
        y = rms_norm_layers(network, x, scale, "torch")
        assert tuple(y.shape) == shape
        mark(network, y)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        low = tuple(1 if d == -1 else d for d in shape)
        high = tuple(8 if d == -1 else d for d in shape)
        profile.set_shape("x", low, RMS_X.shape, high)
        config.add_optimization_profile(profile)

    engine = load(build_plan(define, configure=configure))
    assert ("rms_norm" in ops_of(engine)) == fuses
    out = run(engine, {"x": RMS_X})["out"]
    np.testing.assert_allclose(out, rms_reference(RMS_X, scale, (3,)), rtol=1e-5, atol=1e-5)


def test_rms_norm_chains_that_must_not_fuse():
    """The mean also a network output; a mean over a leading axis; a scale varying along
    a leading axis: each computed layer by layer, still right."""
    along_batch = RNG.uniform(0.5, 2.0, (2, 1, 1, 6)).astype(np.float32)

    def define(network):
        x = network.add_input("x", trt.float32, RMS_X.shape)
        for name, y in (
            ("mean_read", rms_norm_layers(network, x, RMS_SCALES[1], "onnx")),
            ("leading_axis", rms_norm_layers(network, x, RMS_SCALES[1], "torch", axes=1 << 2)),
            ("batch_scale", rms_norm_layers(network, x, along_batch, "recip")),
        ):
            y.name = name
            network.mark_output(y)
        mean = next(
            network.get_layer(i).get_output(0)
            for i in range(network.num_layers)
            if network.get_layer(i).type == trt.LayerType.REDUCE
        )
        mean.name = "mean"
        network.mark_output(mean)

    engine = load(build_plan(define))
    assert "rms_norm" not in ops_of(engine)
    got = run(engine, {"x": RMS_X})
    expected = {
        "mean_read": rms_reference(RMS_X, RMS_SCALES[1], (3,)),
        "mean": (RMS_X.astype(np.float64) ** 2).mean(3, keepdims=True),
        "leading_axis": rms_reference(RMS_X, RMS_SCALES[1], (2,)),
        "batch_scale": rms_reference(RMS_X, along_batch, (3,)),
    }
    for name, values in expected.items():
        np.testing.assert_allclose(got[name], values, rtol=1e-5, atol=1e-5, err_msg=name)


# -- the fused ops' own shape rules -----------------------------------------------------------


def meta(shape, dtype=trt.float32):
    return TensorMeta(dtype, tuple(shape))


@pytest.mark.parametrize(
    ("op", "inputs", "attrs", "message"),
    [
        ("attention", [(2, 5, 8), (2, 5, 4), (2, 5, 8)], {}, "depths differ"),
        ("attention", [(2, 5, 8), (2, 6, 8), (2, 5, 8)], {}, "lengths differ"),
        ("attention", [(2, 5, 8), (2, 5, 8), (2, 5, 8), (2, 3, 5)], {}, "mask"),
        ("attention", [(2, 5, 8), (2, 5, 8), (2, 5, 8)], {"heads_last": True}, "rank-4"),
        ("matmul_bias_act", [(2, 16), (8, 15)], {}, "16 features"),
        ("matmul_bias_act", [(2, 16), (8, 16), (7,)], {}, "bias"),
        ("layer_norm", [(2, 16), (15,), (16,)], {"dims": 1}, "scale"),
        ("layer_norm", [(2, 16), (16,), (16,)], {"dims": 3}, "rank"),
        ("layer_norm", [(2, 16), (16,), (16,), (16,)], {"dims": 1}, "differ in rank"),
        ("rms_norm", [(2, 16), (15,)], {"dims": 1}, r"scale has shape \[15\]"),
        ("rms_norm", [(2, 4, 6), (2, 4, 6)], {"dims": 2}, r"scale has shape \[2, 4, 6\]"),
        ("rms_norm", [(2, 16), (16,)], {"dims": 3}, "rank"),
    ],
)
def test_fused_ops_refuse_inputs_that_do_not_fit(op, inputs, attrs, message):
    fused = get_op(op)
    with pytest.raises(ShapeError, match=message):
        infer_node(fused, [meta(s) for s in inputs], fused.check_attrs(attrs))


def test_conv_bias_act_refuses_a_residual_larger_than_its_output():
    fused = get_op("conv_bias_act")
    attrs = fused.check_attrs({"num_output_maps": 4, "kernel_size_nd": (1, 1)})
    attrs |= {
        "stride_nd": (1, 1),
        "dilation_nd": (1, 1),
        "pre_padding": (0, 0),
        "post_padding": (0, 0),
    }
    inputs = [meta((1, 3, 5, 5)), meta((4, 3, 1, 1)), None, meta((2, 4, 5, 5))]
    with pytest.raises(ShapeError, match="residual"):
        infer_node(fused, inputs, attrs)
