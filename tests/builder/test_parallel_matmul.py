"""GEMMs of one input by weights of one shape (query, key and value projections) run as one
batched GEMM whose outputs the memory plan puts back to back."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tensorplan as trt
from helpers import build_plan, constant, keep_layers_apart, load, output, run
from tensorplan.ops import get_op
from tensorplan.ops.base import ShapeError, TensorMeta, infer_node

RNG = np.random.default_rng(5)
X = RNG.standard_normal((2, 5, 8)).astype(np.float32)
WEIGHTS = [RNG.standard_normal((8, 6)).astype(np.float32) for _ in range(3)]
BIASES = [RNG.standard_normal((1, 1, 6)).astype(np.float32) for _ in range(3)]
ELT = trt.ElementWiseOperation


def projections(network, x, count=3, activation=None):
    results = []
    for weight, bias in zip(WEIGHTS[:count], BIASES[:count], strict=True):
        y = network.add_matrix_multiply(
            x, trt.MatrixOperation.NONE, constant(network, weight[None]), trt.MatrixOperation.NONE
        ).get_output(0)
        y = network.add_elementwise(y, constant(network, bias), ELT.SUM).get_output(0)
        if activation is not None:
            y = network.add_activation(y, activation).get_output(0)
        results.append(y)
    return results


def reference(count=3, activation=lambda t: t):
    x = torch.from_numpy(X)
    return [
        activation(x @ torch.from_numpy(w) + torch.from_numpy(b))
        for w, b in zip(WEIGHTS[:count], BIASES[:count], strict=True)
    ]


def combine(network, parts):
    """q * k - v: the three results read by later layers, as attention reads them."""
    y = network.add_elementwise(parts[0], parts[1], ELT.PROD).get_output(0)
    return network.add_elementwise(y, parts[2], ELT.SUB).get_output(0)


def grouped(engine):
    return [n for n in engine._program.graph.nodes if n.op == "matmul_bias_act"]


@pytest.mark.parametrize(
    ("activation", "torch_activation"),
    [(None, lambda t: t), (trt.ActivationType.SIGMOID, torch.sigmoid)],
)
def test_three_projections_are_one_batched_gemm(activation, torch_activation):
    def define(network):
        x = network.add_input("x", trt.float32, X.shape)
        output(network, combine(network, projections(network, x, activation=activation)))

    def apart(network):
        define(network)
        keep_layers_apart(network)

    q, k, v = reference(activation=torch_activation)
    expected = (q * k - v).numpy()
    engine = load(build_plan(define))
    (node,) = grouped(engine)
    assert node.attrs["splits"] == 3 and len(node.outputs) == 3
    slots = [engine._program.memory.slots[v] for v in node.outputs]
    assert [offset - slots[0][0] for offset, _ in slots] == [0, slots[0][1], 2 * slots[0][1]]
    np.testing.assert_allclose(run(engine, {"x": X})["y"], expected, rtol=1e-5, atol=1e-5)
    unfused = load(build_plan(apart))
    assert not grouped(unfused)
    np.testing.assert_allclose(run(unfused, {"x": X})["y"], expected, rtol=1e-5, atol=1e-5)


def test_outputs_that_are_not_back_to_back_are_computed_one_by_one():
    """One projection is a network output (memory of the caller): three GEMMs, same results."""

    def define(network):
        x = network.add_input("x", trt.float32, X.shape)
        parts = projections(network, x)
        output(network, parts[0], "q")
        output(network, combine(network, parts))

    engine = load(build_plan(define))
    (node,) = grouped(engine)
    assert node.attrs["splits"] == 3
    results = run(engine, {"x": X})
    q, k, v = reference()
    np.testing.assert_allclose(results["q"], q.numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(results["y"], (q * k - v).numpy(), rtol=1e-5, atol=1e-5)


def test_fp16_engines_group_too():
    def define(network):
        x = network.add_input("x", trt.float32, X.shape)
        output(network, combine(network, projections(network, x)))

    def fp16(builder, config):
        config.set_flag(trt.BuilderFlag.FP16)

    engine = load(build_plan(define, configure=fp16))
    (node,) = grouped(engine)
    assert node.attrs["splits"] == 3
    assert engine._program.graph.values[node.outputs[0]].dtype == trt.float16
    q, k, v = reference()
    np.testing.assert_allclose(run(engine, {"x": X})["y"], (q * k - v).numpy(), atol=2e-2)


def test_weights_of_other_shapes_or_epilogues_stay_apart():
    wide = RNG.standard_normal((8, 7)).astype(np.float32)

    def define(network):
        x = network.add_input("x", trt.float32, X.shape)
        (a,) = projections(network, x, count=1)
        (b,) = projections(network, x, count=1, activation=trt.ActivationType.RELU)
        c = network.add_matrix_multiply(
            x, trt.MatrixOperation.NONE, constant(network, wide[None]), trt.MatrixOperation.NONE
        ).get_output(0)
        output(network, network.add_elementwise(a, b, ELT.SUM).get_output(0))
        output(network, c, "c")

    engine = load(build_plan(define))
    assert all(n.attrs["splits"] == 1 for n in grouped(engine))
    (a,) = reference(count=1)
    results = run(engine, {"x": X})
    np.testing.assert_allclose(results["y"], (a + torch.relu(a)).numpy(), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(results["c"], X @ wide, rtol=1e-5, atol=1e-5)


def test_a_stacked_weight_must_divide_into_the_splits():
    op = get_op("matmul_bias_act")
    attrs = op.check_attrs({"splits": 4})
    metas = [TensorMeta(trt.float32, (2, 8)), TensorMeta(trt.float32, (18, 8))]
    with pytest.raises(ShapeError, match=r"does not stack 4 equal weights"):
        infer_node(op, metas, attrs)
    empty = [metas[0], TensorMeta(trt.float32, (0, 8))]
    with pytest.raises(ShapeError, match=r"does not stack 1000000 equal weights"):
        infer_node(op, empty, op.check_attrs({"splits": 10**6}))  # refused before any output
    three = infer_node(op, metas, op.check_attrs({"splits": 3}))
    assert [m.shape for m in three] == [(2, 6)] * 3
