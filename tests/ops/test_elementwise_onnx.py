"""Pointwise layers on ONNX's terms: ONNX's backend node cases and every numeric type, built
into plans and run, against onnx.reference (numpy) on one-node models."""

from __future__ import annotations

import functools
import importlib
import inspect

import numpy as np
import onnx
import pytest
import torch
from onnx.backend.test.case.base import Base
from onnx.reference import ReferenceEvaluator

import tensorplan as trt
from helpers import build_and_run, build_plan
from tensorplan.device import DATATYPES

E = trt.ElementWiseOperation
U = trt.UnaryOperation
RNG = np.random.default_rng(20240611)

SIGNED = [np.int8, np.int16, np.int32, np.int64]
UNSIGNED = [np.uint8, np.uint16, np.uint32, np.uint64]
INTEGERS = SIGNED + UNSIGNED
FLOATS = [np.float16, np.float32, np.float64]

# ONNX operator -> the layer that computes it alone (Mod and BitShift pick by attribute)
ONNX_BINARY = {
    "Add": E.SUM,
    "Sub": E.SUB,
    "Mul": E.PROD,
    "Div": E.DIV,
    "Pow": E.POW,
    "Max": E.MAX,
    "Min": E.MIN,
    "Equal": E.EQUAL,
    "Greater": E.GREATER,
    "Less": E.LESS,
    "And": E.AND,
    "Or": E.OR,
    "Xor": E.XOR,
    "BitwiseAnd": E.BITWISE_AND,
    "BitwiseOr": E.BITWISE_OR,
    "BitwiseXor": E.BITWISE_XOR,
}
ONNX_UNARY = {
    "Abs": U.ABS,
    "Neg": U.NEG,
    "Sign": U.SIGN,
    "Not": U.NOT,
    "BitwiseNot": U.BITWISE_NOT,
    "IsNaN": U.ISNAN,
    "IsInf": U.ISINF,
}
CASE_MODULES = [
    "mod",
    "bitshift",
    "bitwiseand",
    "bitwiseor",
    "bitwisexor",
    "bitwisenot",
    "add",
    "sub",
    "mul",
    "div",
    "pow",
    "max",
    "min",
    "abs",
    "neg",
    "sign",
    "equal",
    "greater",
    "less",
    "and_",
    "or_",
    "xor",
    "not_",
    "isinf",
    "isnan",
]


def onnx_cases() -> list[tuple[str, onnx.NodeProto, list[np.ndarray]]]:
    """Every (name, node, inputs) that ONNX's backend node cases of CASE_MODULES export."""
    cases = []

    def record(node, inputs, outputs, name, **kwargs):
        cases.append((name, node, [np.asarray(x) for x in inputs]))

    for module_name in CASE_MODULES:
        module = importlib.import_module(f"onnx.backend.test.case.node.{module_name}")
        saved, module.expect = module.expect, record
        try:
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, Base) and cls is not Base and cls.__module__ == module.__name__:
                    for attr, export in inspect.getmembers(cls, inspect.isfunction):
                        if attr.startswith("export"):
                            with np.errstate(all="ignore"):
                                export()
        finally:
            module.expect = saved
    return cases


def layer_for(node: onnx.NodeProto, inputs: list[np.ndarray]) -> E | U | None:
    """The operation of the one layer that computes `node`, or None where the ONNX importer
    composes several layers (mixed types, BOOL equality, one-sided IsInf, one input)."""
    attrs = {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}
    if len({x.dtype for x in inputs}) != 1 or inputs[0].dtype.kind in "OSU":
        return None
    if node.op_type == "Mod":
        return E.FMOD if attrs.get("fmod", 0) else E.MOD
    if node.op_type == "BitShift":
        return E.BITSHIFT_LEFT if attrs["direction"] == b"LEFT" else E.BITSHIFT_RIGHT
    if node.op_type in ONNX_BINARY and len(inputs) >= 2:
        if node.op_type == "Equal" and inputs[0].dtype == np.bool_:
            return None
        return ONNX_BINARY[node.op_type]
    if node.op_type in ONNX_UNARY and not attrs:
        return ONNX_UNARY[node.op_type]
    return None


ALL_CASES = onnx_cases()
CASES = [case for case in ALL_CASES if layer_for(case[1], case[2]) is not None]


def reference(op_type: str, inputs: list[np.ndarray], **attrs) -> np.ndarray:
    """onnx.reference's result for one `op_type` node over `inputs`."""
    node = onnx.helper.make_node(op_type, [f"x{i}" for i in range(len(inputs))], ["y"], **attrs)
    return reference_of_node(node, inputs)


def reference_of_node(node: onnx.NodeProto, inputs: list[np.ndarray]) -> np.ndarray:
    names = list(node.input)
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node(node.op_type, names, ["y"], domain=node.domain)],
        "one_node",
        [
            onnx.helper.make_tensor_value_info(
                name, onnx.helper.np_dtype_to_tensor_dtype(x.dtype), x.shape
            )
            for name, x in zip(names, inputs, strict=True)
        ],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.UNDEFINED, None)],
    )
    graph.node[0].attribute.extend(node.attribute)
    with np.errstate(all="ignore"):
        return ReferenceEvaluator(onnx.helper.make_model(graph)).run(
            None, dict(zip(names, inputs, strict=True))
        )[0]


def run_layer(operation: E | U, inputs: list[np.ndarray]) -> np.ndarray:
    """Build a network of layers computing `operation` over `inputs` (a chain for more than
    two; ranks aligned with leading 1s as numpy broadcasts), plan it, load it, run it."""
    rank = max(x.ndim for x in inputs)
    arrays = {f"x{i}": x.reshape((1,) * (rank - x.ndim) + x.shape) for i, x in enumerate(inputs)}

    def define(network):
        tensors = [network.add_input(name, datatype(x), x.shape) for name, x in arrays.items()]
        if isinstance(operation, U):
            out = network.add_unary(tensors[0], operation).get_output(0)
        else:
            out = functools.reduce(
                lambda a, b: network.add_elementwise(a, b, operation).get_output(0), tensors
            )
        out.name = "y"
        network.mark_output(out)

    return build_and_run(define, arrays)["y"]


def datatype(array: np.ndarray) -> trt.DataType:
    return DATATYPES[torch.from_numpy(array).dtype]


def assert_matches(actual: np.ndarray, expected: np.ndarray, what: str) -> None:
    """Exact for integers and BOOL; a few units in the last place for floats (NaN == NaN)."""
    assert actual.dtype == expected.dtype, (
        f"{what}: dtype {actual.dtype}, expected {expected.dtype}"
    )
    assert actual.shape == expected.shape, (
        f"{what}: shape {actual.shape}, expected {expected.shape}"
    )
    if expected.dtype.kind == "f":
        rtol = {2: 2e-3, 4: 2e-6, 8: 1e-13}[expected.dtype.itemsize]
        np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0, err_msg=what)
    else:
        np.testing.assert_array_equal(actual, expected, err_msg=what)


# -- ONNX's backend node cases ------------------------------------------------------------------


@pytest.mark.parametrize(("name", "node", "inputs"), CASES, ids=[case[0] for case in CASES])
def test_onnx_backend_case(name, node, inputs):
    actual = run_layer(layer_for(node, inputs), inputs)
    assert_matches(actual, reference_of_node(node, inputs), name)


def test_every_mod_bitshift_and_bitwise_case_runs_as_one_layer():
    families = ("test_mod", "test_bitshift", "test_bitwise")
    wanted = {name for name, _, _ in ALL_CASES if name.startswith(families)}
    covered = {name for name, _, _ in CASES}
    assert len(wanted) >= 60
    assert wanted <= covered, sorted(wanted - covered)


def test_mod_of_zero_takes_the_divisor_sign():
    # numpy's mod: -0.0 or +0.0 after the divisor; inf and NaN operands as numpy gives them
    x = np.array([0.0, -0.0, 0.0, -0.0, -3.0, 3.0, -1.0, np.inf, 1.0, np.nan], dtype=np.float32)
    y = np.array([-2.0, 2.0, 2.0, -2.0, np.inf, -np.inf, -np.inf, 2.0, 0.0, 2.0], dtype=np.float32)
    z = run_layer(E.MOD, [x, y])
    np.testing.assert_array_equal(np.signbit(z[:4]), [True, False, False, True])
    np.testing.assert_array_equal(z[4:7], [np.inf, -np.inf, -1.0])
    assert np.isnan(z[7:]).all()


# -- every numeric type -------------------------------------------------------------------------


def operands(dtype: type, size: int = 40) -> tuple[np.ndarray, np.ndarray]:
    """Random operands over the whole range of `dtype`, with the edges (0, -1, 1, MIN, MAX)
    among the divisors and dividends."""
    if np.dtype(dtype).kind == "f":
        a = (RNG.standard_normal(size) * 10).astype(dtype)
        b = (RNG.standard_normal(size) * 10).astype(dtype)
        edges = np.array([0.0, -0.0, 1.0, -1.0, 0.5], dtype=dtype)
    else:
        info = np.iinfo(dtype)
        a = RNG.integers(info.min, info.max, size, dtype=dtype, endpoint=True)
        b = RNG.integers(info.min, info.max, size, dtype=dtype, endpoint=True)
        edges = np.array([0, 1, info.max, info.min, 7], dtype=dtype)
        if info.min < 0:
            edges[-1] = -1
    a[: len(edges)] = edges[::-1]
    b[: len(edges)] = edges
    b[len(edges) : 2 * len(edges)] = edges
    return a, b


ARITHMETIC = [
    pytest.param(op_type, operation, attrs, id=operation.name)
    for op_type, operation, attrs in [
        ("Add", E.SUM, {}),
        ("Sub", E.SUB, {}),
        ("Mul", E.PROD, {}),
        ("Div", E.DIV, {}),
        ("Max", E.MAX, {}),
        ("Min", E.MIN, {}),
        ("Mod", E.MOD, {}),
        ("Mod", E.FMOD, {"fmod": 1}),
        ("Equal", E.EQUAL, {}),
        ("Greater", E.GREATER, {}),
        ("Less", E.LESS, {}),
    ]
]


@pytest.mark.parametrize("dtype", INTEGERS + FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("op_type", "operation", "attrs"), ARITHMETIC)
def test_binary_on_every_numeric_type(op_type, operation, attrs, dtype):
    a, b = operands(dtype)
    what = f"{operation.name} on {np.dtype(dtype).name}"
    assert_matches(run_layer(operation, [a, b]), reference(op_type, [a, b], **attrs), what)


@pytest.mark.parametrize("dtype", INTEGERS + FLOATS, ids=lambda d: np.dtype(d).name)
def test_pow_on_every_numeric_type(dtype):
    # integer powers wrap as repeated multiplication does; numpy refuses negative exponents
    a, _ = operands(dtype)
    b = RNG.integers(0, 8, a.shape).astype(dtype)
    if np.dtype(dtype).kind == "f":
        a = np.abs(a) % 4
    what = f"POW on {np.dtype(dtype).name}"
    assert_matches(run_layer(E.POW, [a, b]), reference("Pow", [a, b]), what)


@pytest.mark.parametrize("dtype", INTEGERS + FLOATS, ids=lambda d: np.dtype(d).name)
def test_floor_div_on_every_numeric_type(dtype):
    a, b = operands(dtype)
    with np.errstate(all="ignore"):  # numpy gives 0 for x // 0 and wraps MIN // -1, as we do
        expected = np.floor_divide(a, b)
    assert_matches(run_layer(E.FLOOR_DIV, [a, b]), expected, f"FLOOR_DIV on {dtype.__name__}")


@pytest.mark.parametrize("dtype", INTEGERS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(
    ("op_type", "operation"),
    [("BitwiseAnd", E.BITWISE_AND), ("BitwiseOr", E.BITWISE_OR), ("BitwiseXor", E.BITWISE_XOR)],
)
def test_bitwise_on_every_integer_type(op_type, operation, dtype):
    a, b = operands(dtype)
    what = f"{operation.name} on {np.dtype(dtype).name}"
    assert_matches(run_layer(operation, [a, b]), reference(op_type, [a, b]), what)


@pytest.mark.parametrize("dtype", INTEGERS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize("direction", ["LEFT", "RIGHT"])
def test_bitshift_on_every_integer_type(direction, dtype):
    # shift amounts below 0 (signed types), inside the width, and at or past it
    bits = np.iinfo(dtype).bits
    a, _ = operands(dtype)
    low = -3 if np.dtype(dtype).kind == "i" else 0
    b = RNG.integers(low, bits + 4, a.shape).astype(dtype)
    if dtype == np.uint64:
        b[:3] = [2**63, 2**64 - 1, 2**63 + 1]  # negative as int64 bits: still out of range
    operation = E.BITSHIFT_LEFT if direction == "LEFT" else E.BITSHIFT_RIGHT
    expected = reference("BitShift", [a, b], direction=direction)
    assert_matches(run_layer(operation, [a, b]), expected, f"{direction} on {dtype.__name__}")


UNARY = [
    pytest.param(op_type, operation, dtype, id=f"{operation.name}-{np.dtype(dtype).name}")
    for op_type, operation, dtypes in [
        ("Abs", U.ABS, INTEGERS + FLOATS),
        ("Neg", U.NEG, INTEGERS + FLOATS),
        ("Sign", U.SIGN, INTEGERS + FLOATS),
        ("BitwiseNot", U.BITWISE_NOT, INTEGERS),
    ]
    for dtype in dtypes
]


@pytest.mark.parametrize(("op_type", "operation", "dtype"), UNARY)
def test_unary_on_every_numeric_type(op_type, operation, dtype):
    x, _ = operands(dtype)
    what = f"{operation.name} on {np.dtype(dtype).name}"
    assert_matches(run_layer(operation, [x]), reference(op_type, [x]), what)


@pytest.mark.parametrize("dtype", FLOATS, ids=lambda d: np.dtype(d).name)
@pytest.mark.parametrize(("op_type", "operation"), [("IsInf", U.ISINF), ("IsNaN", U.ISNAN)])
def test_isinf_isnan_on_every_float_type(op_type, operation, dtype):
    x = np.array([[1.0, np.inf, -np.inf, np.nan, 0.0, -2.5]], dtype=dtype)
    assert_matches(run_layer(operation, [x]), reference(op_type, [x]), f"{op_type} on {dtype}")


@pytest.mark.parametrize(
    ("op_type", "operation"), [("And", E.AND), ("Or", E.OR), ("Xor", E.XOR), ("Not", U.NOT)]
)
def test_logical_matches_onnx(op_type, operation):
    a = RNG.integers(0, 2, (3, 4)).astype(bool)
    b = RNG.integers(0, 2, (1, 4)).astype(bool)
    inputs = [a] if operation == U.NOT else [a, b]
    assert_matches(run_layer(operation, inputs), reference(op_type, inputs), op_type)


# -- integer semantics where TensorRT is silent -------------------------------------------------


@pytest.mark.parametrize("dtype", [np.int8, np.int32, np.int64, np.uint32, np.uint64])
def test_integer_division_by_zero_gives_zero_and_min_by_minus_one_wraps(dtype):
    # where C traps (SIGFPE) and numpy warns; numpy's results
    info = np.iinfo(dtype)
    a = np.array([7, info.min, info.max, 5], dtype=dtype)
    b = np.array([0, 0, 0, 0], dtype=dtype)
    for operation in (E.DIV, E.FLOOR_DIV, E.MOD, E.FMOD):
        np.testing.assert_array_equal(run_layer(operation, [a, b]), [0, 0, 0, 0], operation.name)
    if info.min < 0:
        a = np.array([info.min, 7], dtype=dtype)
        b = np.array([-1, -1], dtype=dtype)
        np.testing.assert_array_equal(run_layer(E.DIV, [a, b]), [info.min, -7])
        np.testing.assert_array_equal(run_layer(E.FLOOR_DIV, [a, b]), [info.min, -7])
        np.testing.assert_array_equal(run_layer(E.MOD, [a, b]), [0, 0])


def test_integer_div_truncates_and_mod_follows_the_divisor_as_onnx():
    a = np.array([-7, 7, -7, 7], dtype=np.int32)
    b = np.array([2, -2, -2, 2], dtype=np.int32)
    np.testing.assert_array_equal(run_layer(E.DIV, [a, b]), [-3, -3, 3, 3])
    np.testing.assert_array_equal(run_layer(E.MOD, [a, b]), [1, -1, -1, 1])
    np.testing.assert_array_equal(run_layer(E.FMOD, [a, b]), [-1, 1, -1, 1])


def test_integer_pow_wraps_and_negative_exponents_truncate():
    # numpy refuses integer negative powers; tensorplan gives C's truncated 1 / x**n
    a = np.array([3, 2, 1, -1, -1, 5], dtype=np.int8)
    b = np.array([5, -1, -3, -3, -2, 0], dtype=np.int8)
    np.testing.assert_array_equal(run_layer(E.POW, [a, b]), [-13, 0, 1, -1, 1, 1])


# -- the network API: dynamic shapes, constants, layer properties, refusals --------------------


def test_mod_with_dynamic_shapes_through_a_profile():
    a = RNG.integers(-50, 50, (3, 5)).astype(np.int32)
    b = np.array([[7, -7, 3, -3, 0]], dtype=np.int32)
    seen = {}

    def define(network):
        x = network.add_input("a", trt.int32, (-1, 5))
        y = network.add_input("b", trt.int32, (1, 5))
        out = network.add_elementwise(x, y, E.MOD).get_output(0)
        seen["shape"] = tuple(out.shape)
        out.name = "out"
        network.mark_output(out)

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("a", (1, 5), (3, 5), (8, 5))
        config.add_optimization_profile(profile)

    out = build_and_run(define, {"a": a, "b": b}, configure=configure)["out"]
    assert seen["shape"] == (-1, 5)
    np.testing.assert_array_equal(out, reference("Mod", [a, b]))


def test_constant_operands_fold_at_build_time_with_the_same_result():
    a = np.array([[16, -16, 1, -1]], dtype=np.int32)
    b = np.array([[2, 2, 31, 40]], dtype=np.int32)

    def define(network):
        x = network.add_constant(a.shape, trt.Weights(a)).get_output(0)
        y = network.add_constant(b.shape, trt.Weights(b)).get_output(0)
        for name, operation in [("left", E.BITSHIFT_LEFT), ("right", E.BITSHIFT_RIGHT)]:
            out = network.add_elementwise(x, y, operation).get_output(0)
            out.name = name
            network.mark_output(out)
        flipped = network.add_unary(x, U.BITWISE_NOT).get_output(0)
        flipped.name = "not"
        network.mark_output(flipped)

    out = build_and_run(define, {})
    np.testing.assert_array_equal(out["left"], [[64, -64, -(2**31), 0]])
    np.testing.assert_array_equal(out["right"], [[4, -4, 0, -1]])
    np.testing.assert_array_equal(out["not"], ~a)


def test_layer_op_can_be_changed_to_an_extension():
    a = np.array([[12, 10]], dtype=np.uint8)
    b = np.array([[10, 6]], dtype=np.uint8)
    seen = {}

    def define(network):
        x = network.add_input("a", trt.uint8, a.shape)
        y = network.add_input("b", trt.uint8, b.shape)
        layer = network.add_elementwise(x, y, E.SUM)
        seen["default"] = layer.op
        layer.op = E.BITWISE_XOR
        seen["set"] = layer.op
        layer.get_output(0).name = "out"
        network.mark_output(layer.get_output(0))

    out = build_and_run(define, {"a": a, "b": b})["out"]
    assert seen == {"default": E.SUM, "set": E.BITWISE_XOR}
    np.testing.assert_array_equal(out, [[6, 12]])


@pytest.mark.parametrize(
    ("operation", "dtype", "message"),
    [
        (E.BITWISE_AND, trt.float32, "BITWISE_AND needs integer inputs, got FLOAT"),
        (E.BITSHIFT_LEFT, trt.bool, "BITSHIFT_LEFT needs integer inputs, got BOOL"),
        (E.MOD, trt.bool, "MOD does not take BOOL inputs"),
        (U.BITWISE_NOT, trt.float16, "BITWISE_NOT needs an integer input, got HALF"),
        (U.EXP, trt.int32, "EXP needs a floating-point input, got INT32"),
    ],
    ids=lambda v: getattr(v, "name", None),
)
def test_wrong_input_types_fail_to_build(logger, operation, dtype, message):
    def define(network):
        x = network.add_input("a", dtype, (2, 3))
        if isinstance(operation, U):
            layer = network.add_unary(x, operation)
        else:
            layer = network.add_elementwise(x, network.add_input("b", dtype, (2, 3)), operation)
        layer.name = "the_layer"
        network.mark_output(layer.get_output(0))

    assert build_plan(define, logger) is None
    assert any("the_layer" in m and message in m for m in logger.errors), logger.errors
