"""Channels-last convolution chains: kernels stored KRSC, activations between convolutions
laid out NHWC in the arena (TensorFormat.HWC in the plan), engine inputs and outputs NCHW.
On a GPU the convolutions write into the arena through cuDNN and one Triton kernel applies
bias, residual and ReLU; everywhere the results are those of the NCHW layers."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from tests.plan import planedit

import tensorplan as trt
from helpers import build_plan, load, output, run

RNG = np.random.default_rng(11)
X = RNG.standard_normal((2, 3, 16, 16)).astype(np.float32)
WEIGHTS = {
    "stem": (RNG.standard_normal((8, 3, 3, 3)) * 0.3).astype(np.float32),
    "body": (RNG.standard_normal((8, 8, 3, 3)) * 0.2).astype(np.float32),
    "head": (RNG.standard_normal((5, 8, 1, 1)) * 0.3).astype(np.float32),
}
BIASES = {name: RNG.standard_normal(w.shape[0]).astype(np.float32) for name, w in WEIGHTS.items()}


def conv(network, x, name, relu=True):
    weights = WEIGHTS[name]
    layer = network.add_convolution_nd(
        x, weights.shape[0], weights.shape[2:], weights, BIASES[name]
    )
    layer.padding_nd = (weights.shape[2] // 2,) * 2
    layer.name = name
    y = layer.get_output(0)
    y.name = name
    return network.add_activation(y, trt.ActivationType.RELU).get_output(0) if relu else y


def define(network):
    """stem conv+relu -> max pool -> body conv + residual + relu -> head conv -> outputs: the
    head's output itself (NCHW for the user) and its spatial mean."""
    x = network.add_input("x", trt.float32, X.shape)
    stem = conv(network, x, "stem")
    pool = network.add_pooling_nd(stem, trt.PoolingType.MAX, (2, 2))
    pool.stride_nd = (2, 2)
    pooled = pool.get_output(0)
    pooled.name = "pooled"
    body = conv(network, pooled, "body", relu=False)
    added = network.add_elementwise(body, pooled, trt.ElementWiseOperation.SUM).get_output(0)
    block = network.add_activation(added, trt.ActivationType.RELU).get_output(0)
    head = conv(network, block, "head", relu=False)
    output(network, head, "head")
    mean = network.add_reduce(head, trt.ReduceOperation.AVG, 0b1100, False).get_output(0)
    output(network, mean, "mean")


def reference() -> dict[str, np.ndarray]:
    def layer(x, name):
        w = torch.from_numpy(WEIGHTS[name]).double()
        return F.conv2d(x, w, torch.from_numpy(BIASES[name]).double(), padding=w.shape[2] // 2)

    stem = F.relu(layer(torch.from_numpy(X).double(), "stem"))
    pooled = F.max_pool2d(stem, 2)
    head = layer(F.relu(layer(pooled, "body") + pooled), "head")
    return {"head": head.numpy(), "mean": head.mean((2, 3)).numpy()}


def fp16(builder, config):
    config.set_flag(trt.BuilderFlag.FP16)


@pytest.mark.parametrize(
    ("configure", "tolerance"), [(None, 1e-5), (fp16, 2e-2)], ids=["fp32", "fp16"]
)
def test_convolution_chain_runs_channels_last(configure, tolerance):
    plan = build_plan(define, configure=configure)
    assert plan is not None
    engine = load(plan)
    program = engine._program
    graph = program.graph
    # activations between convolutions are NHWC; the head is an output: NCHW for the user
    laid_out = [
        (node.op, all(v in program.memory.channels_last for v in node.outputs))
        for node in graph.nodes
        if node.op != "cast"  # FP16 builds cast the engine's FLOAT input and outputs
    ]
    assert laid_out == [
        ("conv_bias_act", True),
        ("pool_bias_act", True),  # the stem's bias and ReLU run after the pooling
        ("conv_bias_act", True),
        ("conv_bias_act", False),
        ("reduce", False),
    ]
    # FP16: the input's cast writes NHWC (only the stem reads it); the outputs' casts NCHW
    casts = [n.outputs[0] in program.memory.channels_last for n in graph.nodes if n.op == "cast"]
    assert casts == ([True, False, False, False] if configure else [])
    convolutions = [node for node in graph.nodes if node.op == "conv_bias_act"]
    assert len(convolutions) == 3 and all(n.attrs["channels_last"] for n in convolutions)
    slots = planedit.metadata(bytes(plan))["memory"]["slots"]
    formats = {entry["value"]: entry.get("format") for entry in slots}
    assert {v for v, f in formats.items() if f == "HWC"} == set(program.memory.channels_last)
    got = run(engine, {"x": X})
    expected = reference()
    for name in ("head", "mean"):
        scale = np.abs(expected[name]).max()
        np.testing.assert_allclose(got[name], expected[name], rtol=0, atol=tolerance * scale)
