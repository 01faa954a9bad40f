"""Casts, built into plans and run, bit for bit against ONNX's reference evaluator: on the
inputs of ONNX's own Cast and CastLike node tests, and on every half-precision value."""

from __future__ import annotations

import importlib.util
import warnings
from unittest import mock

import ml_dtypes
import numpy as np
import onnx.backend.test.case.node
import pytest
from onnx import TensorProto, helper, numpy_helper
from onnx.reference import ReferenceEvaluator

import tensorplan as trt
from helpers import build_and_run, build_plan, dtype_of
from tensorplan.ops import get_op
from tensorplan.ops.base import ShapeError, TensorMeta, infer_node

D = trt.DataType

ONNX_TYPES = {
    TensorProto.FLOAT: D.FLOAT,
    TensorProto.UINT8: D.UINT8,
    TensorProto.INT8: D.INT8,
    TensorProto.UINT16: D.UINT16,
    TensorProto.INT16: D.INT16,
    TensorProto.INT32: D.INT32,
    TensorProto.INT64: D.INT64,
    TensorProto.BOOL: D.BOOL,
    TensorProto.FLOAT16: D.HALF,
    TensorProto.DOUBLE: D.DOUBLE,
    TensorProto.UINT32: D.UINT32,
    TensorProto.UINT64: D.UINT64,
    TensorProto.BFLOAT16: D.BF16,
    TensorProto.FLOAT8E4M3FN: D.FP8,
    TensorProto.FLOAT8E4M3FNUZ: D.FP8_E4M3FNUZ,
    TensorProto.FLOAT8E5M2: D.FP8_E5M2,
    TensorProto.FLOAT8E5M2FNUZ: D.FP8_E5M2FNUZ,
    TensorProto.UINT4: D.UINT4,
    TensorProto.INT4: D.INT4,
    TensorProto.FLOAT4E2M1: D.FP4,
    TensorProto.FLOAT8E8M0: D.E8M0,
    TensorProto.UINT2: D.UINT2,
    TensorProto.INT2: D.INT2,
    TensorProto.FLOAT6E2M3: D.FP6_E2M3,
    TensorProto.FLOAT6E3M2: D.FP6_E3M2,
}
"""ONNX element types and the DataTypes that hold them (the ONNX importer's table)."""

TRT_TO_ONNX = {dtype: elem_type for elem_type, dtype in ONNX_TYPES.items()}

FP8_TYPES = [D.FP8, D.FP8_E5M2, D.FP8_E4M3FNUZ, D.FP8_E5M2FNUZ]
SUB_BYTE_INTEGERS = [D.INT4, D.UINT4, D.INT2, D.UINT2]
NARROW_TYPES = [*FP8_TYPES, D.E8M0, D.FP4, D.FP6_E2M3, D.FP6_E3M2, *SUB_BYTE_INTEGERS]


def onnx_node_cases() -> list[tuple[str, onnx.NodeProto, list]]:
    """ONNX's Cast and CastLike node tests: (name, node, input tensors), as onnx's own
    test-case modules make them, loaded privately so that onnx's global test list is untouched.
    """
    cases = []

    def collect(node, inputs, outputs, name, **kwargs):
        cases.append((name, node, inputs))

    root = onnx.backend.test.case.node.__path__[0]
    for module in ("cast", "castlike"):
        spec = importlib.util.spec_from_file_location(f"_onnx_{module}", f"{root}/{module}.py")
        with mock.patch("onnx.backend.test.case.node.expect", collect), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # onnx's inputs overflow on purpose
            spec.loader.exec_module(importlib.util.module_from_spec(spec))
    return cases


ONNX_CASES = onnx_node_cases()


def reference(node: onnx.NodeProto, inputs: list[np.ndarray]) -> np.ndarray:
    """The node's output by onnx.reference, on a one-node model."""
    graph = helper.make_graph(
        [node],
        "cast",
        [helper.make_tensor_value_info(n, TensorProto.UNDEFINED, None) for n in node.input],
        [helper.make_tensor_value_info(node.output[0], TensorProto.UNDEFINED, None)],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 25)])
    feeds = dict(zip(node.input, inputs, strict=True))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        return ReferenceEvaluator(model).run(None, feeds)[0]


def cast_network(x: np.ndarray, to_type: D, **properties):
    """input -> cast (with layer `properties`) -> output 'y'."""

    def define(network):
        tensor = network.add_input("x", dtype_of(x), x.shape)
        layer = network.add_cast(tensor, to_type)
        for key, value in properties.items():
            setattr(layer, key, value)
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    return define


def assert_same_bits(actual: np.ndarray, expected: np.ndarray) -> None:
    """Equal bit for bit, except that any NaN equals any NaN in types wider than a byte
    (numpy's and torch's float NaN payloads differ; FP8 and smaller NaN codes must match)."""
    assert actual.dtype == expected.dtype and actual.shape == expected.shape
    if actual.dtype.itemsize == 1:
        different = actual.view(np.uint8) != expected.view(np.uint8)
    else:
        bits = f"u{actual.dtype.itemsize}"
        different = actual.view(bits) != expected.view(bits)
        if actual.dtype.kind == "f" or actual.dtype == ml_dtypes.bfloat16:
            different &= ~(np.isnan(actual) & np.isnan(expected))
    where = np.flatnonzero(different)
    assert not len(where), (
        f"{len(where)} of {actual.size} values differ, first at flat index {where[0]}: "
        f"got {actual.flat[where[0]]!r}, expected {expected.flat[where[0]]!r}"
    )


def defined_casts(x: np.ndarray, to: np.dtype) -> np.ndarray:
    """Where ONNX defines the cast of `x` to `to`: everywhere, except that a float that is
    NaN, infinite or out of an integer type's range converts to an undefined value (onnx's
    reference gives whatever numpy and ml_dtypes give, which changes between their versions)."""
    if not (_is_float(x.dtype) and not _is_float(to) and to != np.bool_):
        return np.ones(x.shape, dtype=bool)
    info = ml_dtypes.iinfo(to)
    with np.errstate(invalid="ignore"):
        whole = np.trunc(x.astype(np.float64))
        # float(info.max) + 1 is exact where float(info.max) rounds up (int64)
        return (whole >= float(info.min)) & (whole < float(info.max) + 1)


def _is_float(dtype: np.dtype) -> bool:
    try:
        ml_dtypes.finfo(dtype)
    except ValueError:
        return False
    return True


def assert_same_defined_bits(x: np.ndarray, actual: np.ndarray, expected: np.ndarray) -> None:
    """assert_same_bits where ONNX defines the cast of `x` (see defined_casts)."""
    keep = defined_casts(x, expected.dtype)
    assert_same_bits(actual[keep], expected[keep])


@pytest.mark.parametrize(("name", "node", "tensors"), ONNX_CASES, ids=[c[0] for c in ONNX_CASES])
def test_onnx_cast_node_case(name, node, tensors):
    inputs = [numpy_helper.to_array(t) for t in tensors]
    attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
    to = attrs["to"] if node.op_type == "Cast" else tensors[1].data_type
    properties = {"saturate": bool(attrs.get("saturate", 1))}
    if "round_mode" in attrs:
        properties["round_mode"] = attrs["round_mode"].decode()
    out = build_and_run(cast_network(inputs[0], ONNX_TYPES[to], **properties), {"x": inputs[0]})
    expected = reference(node, inputs)
    if ONNX_TYPES[to] == D.BF16:  # the helpers give BF16 outputs as float32, exactly
        expected = expected.astype(np.float32)
    assert_same_defined_bits(inputs[0], out["y"], expected)


def test_onnx_cases_cover_every_narrow_type():
    targets = {name.rsplit("_to_", 1)[1] for name, _, _ in ONNX_CASES}
    onnx_names = {TensorProto.DataType.Name(TRT_TO_ONNX[t]) for t in NARROW_TYPES}
    assert onnx_names - {"FLOAT6E2M3", "FLOAT6E3M2"} <= targets
    assert any(name.startswith("test_cast_no_saturate") for name, _, _ in ONNX_CASES)
    assert any(name.startswith("test_castlike_") for name, _, _ in ONNX_CASES)


ALL_HALVES = np.arange(1 << 16, dtype=np.uint16).view(np.float16).reshape(256, 256)


def cast_node(to_type: D, **attrs) -> onnx.NodeProto:
    return helper.make_node("Cast", ["x"], ["y"], to=TRT_TO_ONNX[to_type], **attrs)


@pytest.mark.parametrize(
    ("to_type", "saturate"),
    [(t, True) for t in NARROW_TYPES] + [(t, False) for t in [*FP8_TYPES, D.E8M0]],
    ids=lambda v: getattr(v, "name", f"saturate={v}"),
)
def test_every_half_to_narrow_types(to_type, saturate):
    out = build_and_run(cast_network(ALL_HALVES, to_type, saturate=saturate), {"x": ALL_HALVES})
    expected = reference(cast_node(to_type, saturate=int(saturate)), [ALL_HALVES])
    assert_same_defined_bits(ALL_HALVES, out["y"], expected)


FLOATS = np.array(
    [0.0, -0.0, 1.0, -1.0, 0.124, 0.25, 0.75, 1.5, 3.0, 1.1, 2**-127, 2**-126, 2**-149, 3e-39,
     1.5 * 2.0**127, 2.0**127, 3.4e38, np.inf, -np.inf, np.nan, -np.nan, 5.0, 1.0 + 2**-23,
     1.0 + 2**-1, 1.0 + 2**-1 + 2**-2, 1.0 + 2**-1 + 2**-22, 2.0**-127 + 2**-148],
    dtype=np.float32,
)  # fmt: skip
"""Edge values of E8M0 rounding: ties, subnormals, the last binade, inf and NaN."""


@pytest.mark.parametrize("saturate", [True, False])
@pytest.mark.parametrize("round_mode", ["up", "down", "nearest"])
def test_e8m0_round_modes(round_mode, saturate):
    x = FLOATS.reshape(1, -1)
    properties = {"saturate": saturate, "round_mode": round_mode}
    out = build_and_run(cast_network(x, D.E8M0, **properties), {"x": x})
    node = cast_node(D.E8M0, saturate=int(saturate), round_mode=round_mode)
    assert_same_bits(out["y"], reference(node, [x]))


def every_code(dtype: D) -> np.ndarray:
    """Every value of a narrow type, in its ml_dtypes array."""
    ml_type = helper.tensor_dtype_to_np_dtype(TRT_TO_ONNX[dtype])
    if dtype in SUB_BYTE_INTEGERS:
        info = ml_dtypes.iinfo(ml_type)
        return np.arange(int(info.min), int(info.max) + 1).astype(ml_type).reshape(1, -1)
    bits = {D.FP4: 4, D.FP6_E2M3: 6, D.FP6_E3M2: 6}.get(dtype, 8)
    return np.arange(1 << bits, dtype=np.uint8).reshape(1, -1).view(ml_type)


WIDE_TYPES = [D.FLOAT, D.HALF, D.DOUBLE, D.BF16, D.INT8, D.INT32, D.INT64, D.UINT8, D.BOOL]


@pytest.mark.parametrize("to_type", WIDE_TYPES, ids=lambda t: t.name)
@pytest.mark.parametrize("from_type", NARROW_TYPES, ids=lambda t: t.name)
def test_every_code_of_narrow_types_to_wide_types(from_type, to_type):
    x = every_code(from_type)
    expected = reference(cast_node(to_type), [x])
    out = build_and_run(cast_network(x, to_type), {"x": x})["y"]
    if to_type == D.BF16:
        expected = expected.astype(np.float32)
    assert_same_defined_bits(x, out, expected)


def test_double_to_half_rounds_once_like_numpy():
    # halfway cases between halves once rounded to float32: rounding twice would go to even
    x = np.array([[1 + 2**-11 + 2**-40, -(1 + 2**-11 + 2**-40), 1 + 3 * 2**-11 - 2**-40,
                   65520.0 - 2**-30, 2**-25 + 2**-60, 1e300, np.nan]])  # fmt: skip
    out = build_and_run(cast_network(x, D.HALF), {"x": x})["y"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        assert_same_bits(out, x.astype(np.float16))


@pytest.mark.parametrize(
    ("x", "to_type", "expected"),
    [
        (np.array([[-9.0, 8.0, 7.9, -8.5, 100.0, 1e10, np.nan]]), D.INT4, [0, 0, 7, -8, 0, 0, 0]),
        (np.array([[-1.0, 16.0, 15.5, -0.5, np.inf]], np.float32), D.UINT4, [0, 0, 15, 0, 0]),
        (np.array([[200, -3, 255, 2]], np.int32), D.INT2, [0, 1, -1, -2]),
        (np.array([[True, False]]), D.UINT2, [1, 0]),
    ],
    ids=["float-INT4", "float-UINT4", "int-INT2", "bool-UINT2"],
)
def test_sub_byte_integers_convert_like_ml_dtypes(x, to_type, expected):
    """Floats truncate, and give 0 out of range; integers and booleans wrap."""
    out = build_and_run(cast_network(x, to_type), {"x": x})["y"]
    np.testing.assert_array_equal(out.astype(np.int32), [expected])


def test_layer_defaults_and_extension_properties():
    def define(network):
        x = network.add_input("x", trt.float32, (2,))
        layer = network.add_cast(x, D.FP8)
        assert layer.type == trt.LayerType.CAST
        assert (layer.to_type, layer.saturate, layer.round_mode) == (D.FP8, True, "up")
        layer.to_type = D.E8M0
        layer.round_mode = "nearest"
        assert layer.to_type == D.E8M0 and layer.get_output(0).dtype == D.E8M0
        with pytest.raises(ValueError, match="up, down, nearest"):
            layer.round_mode = "even"
        with pytest.raises(TypeError):
            layer.saturate = 1
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    x = np.array([3.0, 1.5], np.float32)
    out = build_and_run(define, {"x": x})["y"]
    np.testing.assert_array_equal(out.astype(np.float32), [4.0, 2.0])


def test_dynamic_shapes_through_a_profile():
    def define(network):
        x = network.add_input("x", trt.float32, (-1, 3))
        layer = network.add_cast(x, D.FP4)
        assert tuple(layer.get_output(0).shape) == (-1, 3)
        back = network.add_cast(layer.get_output(0), trt.float16)
        back.get_output(0).name = "y"
        network.mark_output(back.get_output(0))

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 3), (2, 3), (5, 3))
        config.add_optimization_profile(profile)

    x = np.array([[0.3, -2.6, 7.0], [0.25, 0.75, -1e9], [1.75, 5.0, np.nan]], np.float32)
    out = build_and_run(define, {"x": x}, configure)["y"]
    expected = x.astype(ml_dtypes.float4_e2m1fn).astype(np.float16)
    assert_same_bits(out, expected)


def test_casts_of_constants_are_folded_exactly():
    values = np.array([[0.3, -2.6, 7.0, -0.0]], np.float32)

    def define(network):
        constant = network.add_constant(values.shape, trt.Weights(values)).get_output(0)
        codes = network.add_cast(constant, D.FP6_E3M2).get_output(0)
        out = network.add_cast(codes, trt.float32).get_output(0)
        out.name = "y"
        network.mark_output(out)

    out = build_and_run(define, {})["y"]
    assert_same_bits(out, values.astype(ml_dtypes.float6_e3m2fn).astype(np.float32))


def test_sub_byte_inputs_take_a_byte_per_element():
    x = np.array([[-8, 7, -1]], np.int8).astype(ml_dtypes.int4)  # 3 elements: 3 bytes, not 1.5
    out = build_and_run(cast_network(x, trt.float32), {"x": x})["y"]
    np.testing.assert_array_equal(out, [[-8.0, 7.0, -1.0]])


@pytest.mark.parametrize(
    ("dtype", "add"),
    [
        (D.INT4, lambda n, x: n.add_elementwise(x, x, trt.ElementWiseOperation.SUM)),
        (D.FP8, lambda n, x: n.add_unary(x, trt.UnaryOperation.ABS)),
        (D.FP4, lambda n, x: n.add_select(n.add_input("c", trt.bool, (2,)), x, x)),
    ],
    ids=["elementwise-INT4", "unary-FP8", "select-FP4"],
)
def test_ops_other_than_cast_refuse_narrow_types(logger, dtype, add):
    def define(network):
        x = network.add_input("x", dtype, (2,))
        layer = add(network, x)
        layer.name = "narrow"
        network.mark_output(layer.get_output(0))

    assert build_plan(define, logger) is None
    assert any("narrow" in m and f"{dtype.name} inputs" in m for m in logger.errors)


def test_a_cast_of_bit_codes_must_name_their_type():
    op = get_op("cast")
    attrs = op.check_attrs({"to_type": D.FLOAT})
    with pytest.raises(ShapeError, match="from_type=FP4"):
        infer_node(op, [TensorMeta(D.FP4, (2,))], attrs)
    attrs = op.check_attrs({"to_type": D.FLOAT, "from_type": D.FP4})
    assert infer_node(op, [TensorMeta(D.FP4, (2,))], attrs)[0].dtype == D.FLOAT
