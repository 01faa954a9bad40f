"""Reduced precision: FP16/BF16 builder flags, layer precisions and output types in plans."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import tensorplan as trt
from helpers import build_plan, load, run
from tensorplan.ops.pointwise import StepKind, decode_program

RNG = np.random.default_rng(11)
X = RNG.standard_normal((2, 3, 8, 8)).astype(np.float32)
KERNEL = (RNG.standard_normal((16, 3, 3, 3)) * 0.3).astype(np.float32)
BIAS = RNG.standard_normal(16).astype(np.float32)
WEIGHT = (RNG.standard_normal((1, 16, 10)) * 0.3).astype(np.float32)

REDUCED = {trt.BuilderFlag.FP16: trt.float16, trt.BuilderFlag.BF16: trt.bfloat16}
TOLERANCE = {trt.float16: 2e-2, trt.bfloat16: 1e-1}


def conv_pool_matmul(network, dtype=trt.float32):
    """conv -> relu -> average over space -> fully connected -> softmax; names each layer."""
    x = network.add_input("x", dtype, (-1, 3, 8, 8))
    conv = network.add_convolution_nd(x, 16, (3, 3), KERNEL, BIAS)
    conv.name = "conv"
    relu = network.add_activation(conv.get_output(0), trt.ActivationType.RELU)
    relu.name = "relu"
    pooled = network.add_reduce(relu.get_output(0), trt.ReduceOperation.AVG, 0b1100, False)
    pooled.name = "pool"
    rows = network.add_shuffle(pooled.get_output(0))
    rows.reshape_dims = (0, 1, 16)
    weight = network.add_constant(WEIGHT.shape, WEIGHT).get_output(0)
    fc = network.add_matrix_multiply(
        rows.get_output(0), trt.MatrixOperation.NONE, weight, trt.MatrixOperation.NONE
    )
    fc.name = "fc"
    softmax = network.add_softmax(fc.get_output(0))
    softmax.axes = 1 << 2
    softmax.name = "softmax"
    softmax.get_output(0).name = "out"
    network.mark_output(softmax.get_output(0))
    return network


def reference(x: np.ndarray) -> np.ndarray:
    y = torch.relu(F.conv2d(torch.from_numpy(x), torch.from_numpy(KERNEL), torch.from_numpy(BIAS)))
    rows = y.mean((2, 3)).reshape(-1, 1, 16)
    return torch.softmax(rows @ torch.from_numpy(WEIGHT), -1).numpy()


def with_flags(*flags, profile=True):
    def configure(builder, config):
        for flag in flags:
            config.set_flag(flag)
        if profile:
            p = builder.create_optimization_profile()
            p.set_shape("x", (1, 3, 8, 8), (2, 3, 8, 8), (4, 3, 8, 8))
            config.add_optimization_profile(p)

    return configure


def build(define, configure):
    plan = build_plan(define, configure=configure)
    assert plan is not None, "the build failed"
    return plan, load(plan)


def float_constants(engine) -> set[trt.DataType]:
    graph = engine._program.graph
    floats = {trt.float32, trt.float16, trt.bfloat16}
    return {graph.values[v].dtype for v in engine._executor.constants} & floats


def weight_bytes(engine) -> int:
    return sum(t.numel() * t.element_size() for t in engine._executor.constants.values())


def node_types(engine, name: str) -> tuple[list[trt.DataType], list[trt.DataType]]:
    """The input and output types of the node whose name starts with `name`."""
    graph = engine._program.graph
    (node,) = [n for n in graph.nodes if n.name.split(" + ")[0] == name]
    types = [graph.values[v].dtype for v in node.inputs if v is not None]
    return types, [graph.values[v].dtype for v in node.outputs]


def test_tf32_is_on_and_reduced_types_off_by_default():
    config = trt.Builder(trt.Logger()).create_builder_config()
    assert config.get_flag(trt.BuilderFlag.TF32)
    assert not config.get_flag(trt.BuilderFlag.FP16)
    assert not config.get_flag(trt.BuilderFlag.BF16)


def test_without_flags_everything_stays_float():
    _, engine = build(conv_pool_matmul, with_flags())
    assert float_constants(engine) == {trt.float32}
    np.testing.assert_allclose(run(engine, {"x": X})["out"], reference(X), rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("flag", list(REDUCED), ids=lambda f: f.name)
def test_reduced_flag_converts_weights_and_keeps_float_io(flag):
    dtype = REDUCED[flag]
    _, float_engine = build(conv_pool_matmul, with_flags())
    _, engine = build(conv_pool_matmul, with_flags(flag))
    assert engine.get_tensor_dtype("x") == trt.float32
    assert engine.get_tensor_dtype("out") == trt.float32
    assert float_constants(engine) == {dtype}
    assert 2 * weight_bytes(engine) == weight_bytes(float_engine)  # the plan holds 2-byte weights
    for name in ("conv", "fc", "softmax"):
        inputs, outputs = node_types(engine, name)
        assert set(inputs) == {dtype} and outputs == [dtype], name
    x = RNG.standard_normal((3, 3, 8, 8)).astype(np.float32)  # inside the profile
    out = run(engine, {"x": x})["out"]
    assert out.dtype == np.float32
    np.testing.assert_allclose(out, reference(x), rtol=0, atol=TOLERANCE[dtype])
    assert not np.array_equal(out, reference(x))


def test_fp16_wins_over_bf16_when_both_are_set():
    _, engine = build(conv_pool_matmul, with_flags(trt.BuilderFlag.FP16, trt.BuilderFlag.BF16))
    assert float_constants(engine) == {trt.float16}


def test_layer_precision_float_keeps_that_layer_in_float():
    def define(network):
        conv_pool_matmul(network)
        layer = next(
            network.get_layer(i)
            for i in range(network.num_layers)
            if network.get_layer(i).name == "fc"
        )
        layer.precision = trt.float32

    _, engine = build(define, with_flags(trt.BuilderFlag.FP16))
    inputs, outputs = node_types(engine, "fc")
    assert set(inputs) == {trt.float32} and outputs == [trt.float32]
    inputs, outputs = node_types(engine, "conv")
    assert outputs == [trt.float16]
    np.testing.assert_allclose(run(engine, {"x": X})["out"], reference(X), atol=1e-2)


def test_layer_precision_half_without_the_flag():
    def define(network):
        conv_pool_matmul(network)
        network.get_layer(0).precision = trt.float16

    _, engine = build(define, with_flags())
    inputs, outputs = node_types(engine, "conv")
    assert set(inputs) == {trt.float16} and outputs == [trt.float16]
    inputs, outputs = node_types(engine, "fc")
    assert set(inputs) == {trt.float32}
    out = run(engine, {"x": X})["out"]
    np.testing.assert_allclose(out, reference(X), atol=1e-2)
    assert not np.array_equal(out, reference(X))


def test_output_type_float_is_kept_under_fp16():
    def define(network):
        conv_pool_matmul(network)
        network.get_layer(1).set_output_type(0, trt.float32)  # the relu

    _, engine = build(define, with_flags(trt.BuilderFlag.FP16))
    graph = engine._program.graph
    # the relu computes in HALF; its output is converted to FLOAT, then (fused with that
    # conversion) to HALF again for the pooling
    (fused,) = [n for n in graph.nodes if n.op == "pointwise" and "relu [output 0" in n.name]
    steps = decode_program(fused.attrs, len(fused.inputs))
    assert [(s.kind, s.code) for s in steps] == [
        (StepKind.CAST, trt.float32),
        (StepKind.CAST, trt.float16),
    ]
    (relu,) = [n for n in graph.nodes if n.name == "relu"]
    assert fused.inputs == relu.outputs
    assert graph.values[relu.outputs[0]].dtype == trt.float16


def test_output_type_half_on_the_last_layer_makes_a_half_output():
    def define(network):
        conv_pool_matmul(network)
        network.get_layer(network.num_layers - 1).set_output_type(0, trt.float16)

    _, engine = build(define, with_flags())
    assert engine.get_tensor_dtype("out") == trt.float16
    _, outputs = node_types(engine, "fc")
    assert outputs == [trt.float32]
    out = run(engine, {"x": X})["out"]
    assert out.dtype == np.float16
    np.testing.assert_allclose(out.astype(np.float32), reference(X), atol=1e-3)


def test_half_network_inputs_and_outputs_stay_half():
    def define(network):
        x = network.add_input("x", trt.float16, X.shape)
        relu = network.add_activation(x, trt.ActivationType.RELU)
        out = network.add_softmax(relu.get_output(0)).get_output(0)
        out.name = "out"
        network.mark_output(out)

    _, engine = build(define, with_flags(trt.BuilderFlag.FP16, profile=False))
    assert engine.get_tensor_dtype("x") == trt.float16
    assert engine.get_tensor_dtype("out") == trt.float16
    assert [n.op for n in engine._program.graph.nodes] == ["activation", "softmax"]
    out = run(engine, {"x": X.astype(np.float16)})["out"]
    expected = torch.softmax(torch.relu(torch.from_numpy(X)), 1).numpy()
    np.testing.assert_allclose(out.astype(np.float32), expected, atol=2e-3)


def test_reductions_accumulate_in_float():
    """4096 ones in HALF: a HALF accumulator stops at 2048, a FLOAT one reaches 4096."""
    ones = np.ones((2, 4096), np.float32)

    def define(network):
        x = network.add_input("x", trt.float32, ones.shape)
        total = network.add_reduce(x, trt.ReduceOperation.SUM, 0b10, False).get_output(0)
        total.name = "out"
        network.mark_output(total)

    _, engine = build(define, with_flags(trt.BuilderFlag.FP16, profile=False))
    assert node_types(engine, "(Unnamed Layer* 0) [Reduce]")[1] == [trt.float16]
    np.testing.assert_array_equal(run(engine, {"x": ones})["out"], [4096.0, 4096.0])


def test_integer_shape_arithmetic_is_untouched():
    def define(network):
        x = network.add_input("x", trt.float32, (-1, 4))
        shape = network.add_shape(x).get_output(0)
        doubled = network.add_elementwise(shape, shape, trt.ElementWiseOperation.SUM)
        doubled.get_output(0).name = "out"
        network.mark_output(doubled.get_output(0))

    def configure(builder, config):
        config.set_flag(trt.BuilderFlag.FP16)
        p = builder.create_optimization_profile()
        p.set_shape("x", (1, 4), (2, 4), (8, 4))
        config.add_optimization_profile(p)

    _, engine = build(define, configure)
    assert engine.get_tensor_dtype("out") == trt.int64
    out = run(engine, {"x": np.zeros((3, 4), np.float32)})["out"]
    np.testing.assert_array_equal(out, [6, 8])


def test_weights_beyond_the_half_range_are_clamped_not_infinite():
    """A -3.4e38 mask constant times 0 must stay 0 in HALF, not become -inf * 0 = NaN."""
    lowest = np.full((1, 4), np.finfo(np.float32).min, np.float32)
    keep = np.array([[0.0, 1.0, 0.0, 1.0]], np.float32)

    def define(network):
        x = network.add_input("x", trt.float32, keep.shape)
        c = network.add_constant(lowest.shape, lowest).get_output(0)
        out = network.add_elementwise(x, c, trt.ElementWiseOperation.PROD).get_output(0)
        out.name = "out"
        network.mark_output(out)

    _, engine = build(define, with_flags(trt.BuilderFlag.FP16, profile=False))
    out = run(engine, {"x": keep})["out"]
    np.testing.assert_array_equal(out, [[0.0, -65504.0, 0.0, -65504.0]])


def grid_sample_then_lp_pool(network, dtype=trt.float32):
    x = network.add_input("x", trt.float32, X.shape)
    grid = network.add_constant(GRID.shape, trt.Weights(GRID)).get_output(0)
    sampled = network.add_grid_sample(x, grid).get_output(0)
    pooled = network.add_lp_pooling(sampled, (2, 2), 2.0)
    pooled.stride_nd = (2, 2)
    pooled.get_output(0).name = "out"
    network.mark_output(pooled.get_output(0))


GRID = np.random.default_rng(3).uniform(-1, 1, (2, 6, 6, 2)).astype(np.float32)


def grid_sample_lp_pool_reference(x: np.ndarray) -> np.ndarray:
    sampled = F.grid_sample(torch.from_numpy(x), torch.from_numpy(GRID), align_corners=False)
    return F.lp_pool2d(sampled, 2.0, 2, stride=2).numpy()


def test_grid_sample_and_lp_pooling_compute_in_half_under_fp16():
    _, engine = build(grid_sample_then_lp_pool, with_flags(trt.BuilderFlag.FP16, profile=False))
    for layer in ("grid_sample", "lp_pooling"):
        graph = engine._program.graph
        (node,) = [n for n in graph.nodes if n.op == layer]
        assert graph.values[node.inputs[0]].dtype == trt.float16, layer
        assert graph.values[node.outputs[0]].dtype == trt.float16, layer
    np.testing.assert_allclose(
        run(engine, {"x": X})["out"], grid_sample_lp_pool_reference(X), rtol=1e-2, atol=1e-2
    )
