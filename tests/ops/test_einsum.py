"""Einsum layers, built into plans and run, against numpy and onnx.reference."""

from __future__ import annotations

import numpy as np
import pytest
from onnx import TensorProto, helper
from onnx.reference import ReferenceEvaluator

import tensorplan as trt
from helpers import build_and_run, build_plan, dtype_of

RNG = np.random.default_rng(7)

EQUATIONS = [
    ("ij->ji", [(2, 3)]),
    ("ij->", [(2, 3)]),
    ("ik,kj->ij", [(2, 3), (3, 4)]),
    ("i,i->", [(5,), (5,)]),
    ("ik,k->i", [(2, 3), (3,)]),
    ("ijk,ikl->ijl", [(2, 3, 4), (2, 4, 5)]),
    ("ij,jk", [(2, 3), (3, 4)]),
    ("ba", [(2, 3)]),
    ("bij,bjk->bik", [(1, 3, 4), (2, 4, 2)]),
    ("ii->i", [(3, 3)]),
    ("ii", [(3, 3)]),
    ("...ii->...i", [(2, 3, 3)]),
    ("...ij,...jk->...ik", [(2, 1, 3, 4), (5, 4, 2)]),
    ("a...,...->...a", [(2, 3, 4), (4,)]),
    ("ij,jk,kl->il", [(2, 3), (3, 4), (4, 2)]),
    ("Ab,bC->AC", [(2, 3), (3, 4)]),
    (" i j , j k -> i k ", [(2, 3), (3, 4)]),
    ("i,j->ij", [(3,), (4,)]),
]


def einsum_network(equation, arrays):
    def define(network):
        tensors = [
            network.add_input(f"x{index}", trt_type(array), array.shape)
            for index, array in enumerate(arrays)
        ]
        layer = network.add_einsum(tensors, equation)
        layer.get_output(0).name = "out"
        network.mark_output(layer.get_output(0))

    return define


def trt_type(array):
    return trt.DataType.DOUBLE if array.dtype == np.float64 else dtype_of(array)


def inputs_of(arrays):
    return {f"x{index}": array for index, array in enumerate(arrays)}


@pytest.mark.parametrize(("equation", "shapes"), EQUATIONS, ids=[e for e, _ in EQUATIONS])
def test_float_einsum_matches_numpy(equation, shapes):
    arrays = [RNG.standard_normal(shape).astype(np.float32) for shape in shapes]
    out = build_and_run(einsum_network(equation, arrays), inputs_of(arrays))["out"]
    np.testing.assert_allclose(out, np.einsum(equation, *arrays), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("np_type", [np.int32, np.int64, np.int8])
@pytest.mark.parametrize(
    ("equation", "shapes"),
    [
        ("ik,kj->ij", [(2, 3), (3, 4)]),
        ("...ii->...i", [(2, 3, 3)]),
        ("bij,bjk", [(1, 2, 3), (2, 3, 2)]),
    ],
)
def test_integer_einsum_is_exact(np_type, equation, shapes):
    arrays = [RNG.integers(-4, 5, shape).astype(np_type) for shape in shapes]
    out = build_and_run(einsum_network(equation, arrays), inputs_of(arrays))["out"]
    assert out.dtype == np_type
    np.testing.assert_array_equal(out, np.einsum(equation, *arrays).astype(np_type))


def test_large_int64_values_stay_exact():
    a = np.array([[2**40 + 1, 3]], np.int64)
    b = np.array([[2**20 + 7], [5]], np.int64)
    out = build_and_run(einsum_network("ij,jk->ik", [a, b]), {"x0": a, "x1": b})["out"]
    np.testing.assert_array_equal(out, a @ b)


@pytest.mark.parametrize("np_type", [np.float16, np.float64])
def test_half_and_double(np_type):
    arrays = [RNG.standard_normal(s).astype(np_type) for s in [(3, 4), (4, 2)]]
    out = build_and_run(einsum_network("ij,jk->ik", arrays), inputs_of(arrays))["out"]
    assert out.dtype == np_type
    tolerance = 5e-3 if np_type == np.float16 else 1e-12
    expected = np.einsum("ij,jk->ik", *(a.astype(np.float64) for a in arrays))
    np.testing.assert_allclose(out, expected, rtol=tolerance, atol=tolerance)


def test_dynamic_shapes_through_a_profile():
    seen = {}

    def define(network):
        a = network.add_input("a", trt.float32, (-1, 3, 4))
        b = network.add_input("b", trt.float32, (-1, 4, 5))
        layer = network.add_einsum([a, b], "bij,bjk->bki")
        assert layer.equation == "bij,bjk->bki"
        seen["shape"] = tuple(layer.get_output(0).shape)
        layer.get_output(0).name = "out"
        network.mark_output(layer.get_output(0))

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("a", (1, 3, 4), (2, 3, 4), (4, 3, 4))
        profile.set_shape("b", (1, 4, 5), (2, 4, 5), (4, 4, 5))
        config.add_optimization_profile(profile)

    a = RNG.standard_normal((3, 3, 4)).astype(np.float32)
    b = RNG.standard_normal((3, 4, 5)).astype(np.float32)
    out = build_and_run(define, {"a": a, "b": b}, configure)["out"]
    assert seen["shape"] == (-1, 5, 3)
    np.testing.assert_allclose(out, np.einsum("bij,bjk->bki", a, b), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("equation", "shapes"),
    [("bij,bjk->bik", [(2, 3, 4), (2, 4, 5)]), ("i,i", [(6,), (6,)]), ("ii->i", [(4, 4)])],
)
def test_matches_onnx_reference(equation, shapes):
    arrays = [RNG.standard_normal(shape).astype(np.float32) for shape in shapes]
    names = [f"x{index}" for index in range(len(arrays))]
    node = helper.make_node("Einsum", names, ["out"], equation=equation)
    graph = helper.make_graph(
        [node],
        "einsum",
        [
            helper.make_tensor_value_info(n, TensorProto.FLOAT, a.shape)
            for n, a in zip(names, arrays, strict=True)
        ],
        [helper.make_tensor_value_info("out", TensorProto.FLOAT, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    (expected,) = ReferenceEvaluator(model).run(None, inputs_of(arrays))
    out = build_and_run(einsum_network(equation, arrays), inputs_of(arrays))["out"]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(
    ("equation", "shapes", "message"),
    [
        ("ij,jk->ik", [(2, 3), (4, 5)], "label 'j' has sizes [3, 4]"),
        ("ij,jk", [(2, 3)], "names 2 operands but the layer has 1 inputs"),
        ("ijk->ij", [(2, 3)], "does not fit input 0 of shape [2, 3]"),
        ("i1->i", [(2, 3)], "has characters ['1']"),
        ("ij->iz", [(2, 3)], "output labels ['z'] are in no input"),
        ("ij->ii", [(2, 3)], "repeats output labels ['i']"),
        ("ii->i", [(2, 3)], "a diagonal needs equal sizes"),
        ("...i->i", [(2, 3)], "the output needs '...'"),
        ("i->i->i", [(2,)], "more than one '->'"),
    ],
)
def test_invalid_equations_fail_to_build(logger, equation, shapes, message):
    arrays = [np.zeros(shape, np.float32) for shape in shapes]
    assert build_plan(einsum_network(equation, arrays), logger) is None
    assert any("Einsum" in m and message in m for m in logger.errors), logger.errors


def test_bool_and_mixed_types_are_refused(logger):
    arrays = [np.zeros((2, 2), bool)]
    assert build_plan(einsum_network("ij->ji", arrays), logger) is None
    assert any("does not take BOOL" in m for m in logger.errors), logger.errors
    logger.messages.clear()
    arrays = [np.zeros((2, 2), np.float32), np.zeros((2, 2), np.int32)]
    assert build_plan(einsum_network("ij,jk", arrays), logger) is None
    assert any("same type" in m for m in logger.errors), logger.errors
