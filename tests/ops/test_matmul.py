"""Matrix multiply layers, built into plans and run, against a numpy product per collection item."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tensorplan as trt
from helpers import build_and_run, build_plan

RNG = np.random.default_rng(2024)
NONE, TRANSPOSE, VECTOR = (
    trt.MatrixOperation.NONE,
    trt.MatrixOperation.TRANSPOSE,
    trt.MatrixOperation.VECTOR,
)


def matmul_reference(a, op0, b, op1):
    """op0(a) * op1(b) with np.dot on each item of the broadcast collections, in float64.

    np.dot gives matrix*matrix, matrix*vector, vector*matrix and vector*vector directly.
    """
    core_a = 1 if op0 == VECTOR else 2
    core_b = 1 if op1 == VECTOR else 2
    batch = np.broadcast_shapes(a.shape[: a.ndim - core_a], b.shape[: b.ndim - core_b])
    a = np.broadcast_to(a, batch + a.shape[a.ndim - core_a :]).astype(np.float64)
    b = np.broadcast_to(b, batch + b.shape[b.ndim - core_b :]).astype(np.float64)
    items = []
    for index in np.ndindex(*batch):
        left = a[index].T if op0 == TRANSPOSE else a[index]
        right = b[index].T if op1 == TRANSPOSE else b[index]
        items.append(np.dot(left, right))
    return np.array(items).reshape(batch + np.shape(items[0]))


def matmul_network(a_shape, op0, b_shape, op1, dtype=trt.float32, name="mm"):
    """Inputs a and b (FLOAT, cast to `dtype`), one matrix multiply layer, output y."""

    def define(network):
        a = network.add_input("a", trt.float32, a_shape)
        b = network.add_input("b", trt.float32, b_shape)
        if dtype != trt.float32:
            a = network.add_cast(a, dtype).get_output(0)
            b = network.add_cast(b, dtype).get_output(0)
        layer = network.add_matrix_multiply(a, op0, b, op1)
        layer.name = name
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    return define


CASES = [
    # shape of a, op0, shape of b, op1, expected output shape
    ((3, 4), NONE, (4, 5), NONE, (3, 5)),
    ((4, 3), TRANSPOSE, (4, 5), NONE, (3, 5)),
    ((3, 4), NONE, (5, 4), TRANSPOSE, (3, 5)),
    ((4, 3), TRANSPOSE, (5, 4), TRANSPOSE, (3, 5)),
    ((2, 3, 4), NONE, (2, 4, 5), NONE, (2, 3, 5)),
    ((2, 1, 3, 4), NONE, (1, 3, 4, 5), NONE, (2, 3, 3, 5)),
    ((1, 4, 3), TRANSPOSE, (2, 5, 4), TRANSPOSE, (2, 3, 5)),
    ((2, 3, 4), NONE, (2, 4), VECTOR, (2, 3)),
    ((2, 4, 3), TRANSPOSE, (1, 4), VECTOR, (2, 3)),
    ((3, 4), VECTOR, (3, 4, 5), NONE, (3, 5)),
    ((1, 4), VECTOR, (2, 5, 4), TRANSPOSE, (2, 5)),
    ((4,), VECTOR, (4,), VECTOR, ()),
    ((3, 4), VECTOR, (1, 4), VECTOR, (3,)),
    ((4,), VECTOR, (4, 5), NONE, (5,)),
    ((3, 4), NONE, (4,), VECTOR, (3,)),
]


def _case_id(case):
    a_shape, op0, b_shape, op1, _ = case
    return f"{list(a_shape)}{op0.name[0]}x{list(b_shape)}{op1.name[0]}"


@pytest.mark.parametrize("case", CASES, ids=[_case_id(c) for c in CASES])
def test_matches_reference(case):
    a_shape, op0, b_shape, op1, expected_shape = case
    a = RNG.standard_normal(a_shape).astype(np.float32)
    b = RNG.standard_normal(b_shape).astype(np.float32)
    y = build_and_run(matmul_network(a_shape, op0, b_shape, op1), {"a": a, "b": b})["y"]
    expected = matmul_reference(a, op0, b, op1)
    assert y.shape == expected_shape == expected.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("dtype", "torch_type", "tolerance"),
    [(trt.float16, torch.float16, 2e-3), (trt.bfloat16, torch.bfloat16, 1e-2)],
    ids=["half", "bf16"],
)
@pytest.mark.parametrize(
    "case", [CASES[5], CASES[8], CASES[12]], ids=["batched", "matrix_vector", "vectors"]
)
def test_reduced_precision(dtype, torch_type, tolerance, case):
    a_shape, op0, b_shape, op1, _ = case
    a = RNG.standard_normal(a_shape).astype(np.float32)
    b = RNG.standard_normal(b_shape).astype(np.float32)
    y = build_and_run(matmul_network(a_shape, op0, b_shape, op1, dtype), {"a": a, "b": b})["y"]
    rounded = [torch.from_numpy(v).to(torch_type).float().numpy() for v in (a, b)]
    expected = matmul_reference(rounded[0], op0, rounded[1], op1)
    assert y.dtype == (np.float16 if dtype == trt.float16 else np.float32)
    np.testing.assert_allclose(y.astype(np.float32), expected, rtol=tolerance, atol=tolerance * 4)


def test_layer_properties():
    network = trt.Builder(trt.Logger(trt.Logger.ERROR)).create_network()
    a = network.add_input("a", trt.float32, (2, 3, 4))
    b = network.add_input("b", trt.float32, (2, 3, 4))
    layer = network.add_matrix_multiply(a, TRANSPOSE, b, NONE)
    assert layer.type == trt.LayerType.MATRIX_MULTIPLY
    assert (layer.op0, layer.op1) == (TRANSPOSE, NONE)
    assert layer.num_inputs == 2 and layer.num_outputs == 1
    assert tuple(layer.get_output(0).shape) == (2, 4, 4)
    layer.op0, layer.op1 = NONE, TRANSPOSE
    assert tuple(layer.get_output(0).shape) == (2, 3, 3)
    layer.op0, layer.op1 = VECTOR, VECTOR
    assert tuple(layer.get_output(0).shape) == (2, 3)
    with pytest.raises(ValueError):
        layer.op0 = 7


def test_dynamic_shapes():
    a = RNG.standard_normal((3, 2, 5, 4)).astype(np.float32)
    b = RNG.standard_normal((1, 2, 6, 4)).astype(np.float32)
    define = matmul_network((-1, 2, -1, 4), NONE, (1, 2, -1, 4), TRANSPOSE)

    def check_shape(network):
        define(network)
        assert tuple(network.get_output(0).shape) == (-1, 2, -1, -1)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("a", (1, 2, 1, 4), (2, 2, 4, 4), (4, 2, 8, 4))
        profile.set_shape("b", (1, 2, 1, 4), (1, 2, 4, 4), (1, 2, 8, 4))
        config.add_optimization_profile(profile)

    y = build_and_run(check_shape, {"a": a, "b": b}, configure=configure)["y"]
    np.testing.assert_allclose(y, matmul_reference(a, NONE, b, TRANSPOSE), rtol=1e-5, atol=1e-5)


def test_constant_operand():
    a = RNG.standard_normal((2, 3, 4)).astype(np.float32)
    weights = RNG.standard_normal((1, 4, 2)).astype(np.float32)

    def define(network):
        x = network.add_input("a", trt.float32, a.shape)
        w = network.add_constant(weights.shape, weights).get_output(0)
        out = network.add_matrix_multiply(x, NONE, w, NONE).get_output(0)
        out.name = "y"
        network.mark_output(out)

    y = build_and_run(define, {"a": a})["y"]
    np.testing.assert_allclose(y, matmul_reference(a, NONE, weights, NONE), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("a_shape", "op0", "b_shape", "op1", "message"),
    [
        ((3, 4), NONE, (5, 6), NONE, "inner dimensions do not match: 4 for input 0"),
        ((3, 4), TRANSPOSE, (4, 5), NONE, "inner dimensions do not match: 3 for input 0"),
        ((2, 3), NONE, (4,), VECTOR, "inner dimensions do not match"),
        ((2, 3, 4), NONE, (4, 5), NONE, "same number of collection dimensions"),
        ((2, 3, 4), NONE, (4,), VECTOR, "same number of collection dimensions"),
        ((2, 3, 4), NONE, (3, 4, 5), NONE, "do not broadcast"),
        ((4,), NONE, (4, 5), NONE, "needs rank 2 or more"),
        ((4, 5), NONE, (5,), TRANSPOSE, "needs rank 2 or more"),
        ((), VECTOR, (4,), VECTOR, "needs rank 1 or more"),
    ],
    ids=[
        "inner",
        "inner_transposed",
        "inner_vector",
        "collection_ranks",
        "collection_ranks_vector",
        "collection_broadcast",
        "rank1_matrix",
        "rank1_transposed",
        "scalar_vector",
    ],
)
def test_invalid_shapes_fail_to_build(a_shape, op0, b_shape, op1, message, logger):
    define = matmul_network(a_shape, op0, b_shape, op1, name="bad_mm")
    assert build_plan(define, logger) is None
    assert any("bad_mm" in e and message in e for e in logger.errors), logger.errors


@pytest.mark.parametrize(
    ("types", "message"),
    [
        ((trt.int32, trt.int32), "FLOAT, HALF or BF16 inputs, got INT32"),
        ((trt.float32, trt.float16), "inputs must have the same type, got FLOAT, HALF"),
    ],
    ids=["int32", "mixed"],
)
def test_invalid_types_fail_to_build(types, message, logger):
    def define(network):
        a = network.add_input("a", types[0], (2, 2))
        b = network.add_input("b", types[1], (2, 2))
        layer = network.add_matrix_multiply(a, NONE, b, NONE)
        layer.name = "bad_mm"
        network.mark_output(layer.get_output(0))

    assert build_plan(define, logger) is None
    assert any("bad_mm" in e and message in e for e in logger.errors), logger.errors
