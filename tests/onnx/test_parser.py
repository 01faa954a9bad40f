"""OnnxParser: TensorRT's API, layers named after nodes, models through a real plan, and
clear errors (never exceptions) for malformed models."""

from __future__ import annotations

import os

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper
from tests.helpers import load, run
from tests.onnx.conftest import make_model, parse

import tensorplan as trt


def build(builder: trt.Builder, network: trt.INetworkDefinition, profile: dict | None = None):
    config = builder.create_builder_config()
    if profile:
        p = builder.create_optimization_profile()
        for name, shape in profile.items():
            p.set_shape(name, shape, shape, shape)
        config.add_optimization_profile(p)
    plan = builder.build_serialized_network(network, config)
    assert plan is not None, "the build failed"
    return load(plan)


def test_parse_lowers_nodes_onto_named_layers(add_model, logger):
    ok, parser, network, builder = parse(add_model, logger)
    assert ok and parser.num_errors == 0, logger.errors
    names = [network.get_layer(i).name for i in range(network.num_layers)]
    assert "add" in names and "relu" in names
    relu = next(network.get_layer(i) for i in range(network.num_layers) if names[i] == "relu")
    assert isinstance(relu, trt.IActivationLayer) and relu.type == trt.ActivationType.RELU
    assert relu.get_output(0).name == "y"
    assert network.get_output(0).name == "y"
    assert parser.get_layer_output_tensor("relu", 0).name == "y"
    assert parser.get_layer_output_tensor("relu", 1) is None
    assert parser.get_layer_output_tensor("missing", 0) is None
    x = np.array([[0.5, 1.0, -4.0], [-2.0, 3.0, 1.0]], dtype=np.float32)
    out = run(build(builder, network), {"x": x})["y"]
    np.testing.assert_array_equal(out, np.maximum(x + np.array([1.0, -2.0, 3.0]), 0))


def test_dynamic_dims_are_minus_one_and_run_through_a_profile(logger):
    nodes = [helper.make_node("Softmax", ["x"], ["y"], axis=-1)]
    model = make_model(
        nodes, [("x", TensorProto.FLOAT, ["batch", 4])], [("y", TensorProto.FLOAT, ["batch", 4])]
    )
    ok, _, network, builder = parse(model, logger)
    assert ok, logger.errors
    assert tuple(network.get_input(0).shape) == (-1, 4)
    assert tuple(network.get_output(0).shape) == (-1, 4)
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    out = run(build(builder, network, {"x": (3, 4)}), {"x": x})["y"]
    expected = np.exp(x) / np.exp(x).sum(-1, keepdims=True)
    np.testing.assert_allclose(out, expected, rtol=1e-6)


@pytest.mark.parametrize(
    "dtype",
    [
        np.float32,
        np.float16,
        np.float64,
        np.int8,
        np.int16,
        np.int32,
        np.int64,
        np.uint8,
        np.uint16,
        np.uint32,
        np.uint64,
        np.bool_,
    ],
)
def test_initializers_of_every_numeric_dtype(dtype, logger):
    values = np.array([[1, 0, 3], [4, 5, 0]]).astype(dtype)
    elem = helper.np_dtype_to_tensor_dtype(np.dtype(dtype))
    model = make_model(
        [helper.make_node("Identity", ["w"], ["y"])],
        [],
        [("y", elem, [2, 3])],
        [numpy_helper.from_array(values, "w")],
    )
    ok, _, network, builder = parse(model, logger)
    assert ok, logger.errors
    out = run(build(builder, network), {})["y"]
    assert out.dtype == values.dtype
    np.testing.assert_array_equal(out, values)


def test_external_data_is_read_next_to_the_model(tmp_path, logger):
    weights = np.arange(12, dtype=np.float32).reshape(3, 4)
    model = make_model(
        [helper.make_node("MatMul", ["x", "w"], ["y"])],
        [("x", TensorProto.FLOAT, [2, 3])],
        [("y", TensorProto.FLOAT, [2, 4])],
        [numpy_helper.from_array(weights, "w")],
    )
    path = str(tmp_path / "model.onnx")
    onnx.save_model(model, path, save_as_external_data=True, size_threshold=0, location="w.bin")
    assert os.path.exists(tmp_path / "w.bin")
    builder = trt.Builder(logger)
    network = builder.create_network()
    parser = trt.OnnxParser(network, logger)
    assert parser.parse_from_file(path), logger.errors
    x = np.ones((2, 3), dtype=np.float32)
    np.testing.assert_allclose(run(build(builder, network), {"x": x})["y"], x @ weights)
    # without the path the data file cannot be found: a clear error, not an exception
    other = trt.OnnxParser(trt.Builder(logger).create_network(), logger)
    with open(path, "rb") as file:
        assert not other.parse(file.read(), str(tmp_path / "elsewhere" / "model.onnx"))
    assert "external file 'w.bin'" in other.get_error(0).desc()


def test_function_bodies_expand_when_no_importer_exists(logger):
    # MeanVarianceNormalization has no importer: its schema's function body is imported
    node = helper.make_node("MeanVarianceNormalization", ["x"], ["y"], axes=[1], name="mvn")
    model = make_model(
        [node], [("x", TensorProto.FLOAT, [2, 5])], [("y", TensorProto.FLOAT, [2, 5])]
    )
    ok, _, network, builder = parse(model, logger)
    assert ok, logger.errors
    assert all(network.get_layer(i).name.startswith("mvn/") for i in range(network.num_layers))
    x = np.random.default_rng(2).standard_normal((2, 5)).astype(np.float32)
    expected = (x - x.mean(1, keepdims=True)) / np.sqrt(x.var(1, keepdims=True) + 1e-9)
    out = run(build(builder, network), {"x": x})["y"]
    np.testing.assert_allclose(out, expected, rtol=1e-5, atol=1e-6)


def _truncated(model: onnx.ModelProto) -> bytes:
    return model.SerializeToString()[:-7]


def _cyclic() -> onnx.ModelProto:
    nodes = [
        helper.make_node("Add", ["x", "b"], ["a"], name="first"),
        helper.make_node("Relu", ["a"], ["b"], name="second"),
    ]
    return make_model(nodes, [("x", TensorProto.FLOAT, [2])], [("b", TensorProto.FLOAT, [2])])


def _unknown_op() -> onnx.ModelProto:
    node = helper.make_node("FrobnicateTensor", ["x"], ["y"], name="mystery")
    return make_model([node], [("x", TensorProto.FLOAT, [2])], [("y", TensorProto.FLOAT, [2])])


def _missing_initializer() -> onnx.ModelProto:
    node = helper.make_node("Add", ["x", "weights"], ["y"], name="adder")
    return make_model([node], [("x", TensorProto.FLOAT, [2])], [("y", TensorProto.FLOAT, [2])])


def _wrong_attribute_type() -> onnx.ModelProto:
    node = helper.make_node("Softmax", ["x"], ["y"], name="soft", axis=1.5)
    return make_model([node], [("x", TensorProto.FLOAT, [2])], [("y", TensorProto.FLOAT, [2])])


def _bad_shapes() -> onnx.ModelProto:
    node = helper.make_node("Add", ["x", "z"], ["y"], name="mismatch")
    return make_model(
        [node],
        [("x", TensorProto.FLOAT, [2, 3]), ("z", TensorProto.FLOAT, [4])],
        [("y", TensorProto.FLOAT, None)],
    )


@pytest.mark.parametrize(
    ("make", "code", "node", "operator", "words"),
    [
        (lambda m: b"", trt.ErrorCode.MODEL_DESERIALIZE_FAILED, -1, "", "empty"),
        (
            lambda m: np.random.default_rng(1).bytes(300),
            trt.ErrorCode.MODEL_DESERIALIZE_FAILED,
            -1,
            "",
            "not an ONNX model",
        ),
        (_truncated, trt.ErrorCode.MODEL_DESERIALIZE_FAILED, -1, "", "truncated"),
        (lambda m: _missing_initializer(), trt.ErrorCode.INVALID_GRAPH, 0, "Add", "'weights'"),
        (
            lambda m: _unknown_op(),
            trt.ErrorCode.UNSUPPORTED_NODE,
            0,
            "FrobnicateTensor",
            "no importer",
        ),
        (
            lambda m: _wrong_attribute_type(),
            trt.ErrorCode.UNSUPPORTED_NODE_ATTR,
            0,
            "Softmax",
            "'axis'",
        ),
        (lambda m: _cyclic(), trt.ErrorCode.INVALID_GRAPH, 1, "Relu", "cycle"),
        (lambda m: _bad_shapes(), trt.ErrorCode.INVALID_NODE, 0, "Add", "broadcast"),
    ],
    ids=[
        "empty",
        "random",
        "truncated",
        "missing-initializer",
        "unknown-op",
        "wrong-attribute-type",
        "cycle",
        "bad-shapes",
    ],
)
def test_malformed_models_give_parser_errors(add_model, logger, make, code, node, operator, words):
    data = make(add_model)
    ok, parser, _, _ = parse(data if isinstance(data, bytes) else data.SerializeToString(), logger)
    assert not ok
    assert parser.num_errors >= 1
    error = parser.get_error(0)
    assert error.code() == code
    assert error.node() == node
    assert error.node_operator() == operator
    assert words in error.desc()
    assert words in str(error) and code.name in str(error)
    assert any(words in message for message in logger.errors)
    parser.clear_errors()
    assert parser.num_errors == 0 and parser.get_error(0) is None


def test_unsupported_opset_is_refused(logger):
    node = helper.make_node("Relu", ["x"], ["y"])
    model = make_model(
        [node], [("x", TensorProto.FLOAT, [2])], [("y", TensorProto.FLOAT, [2])], opset=6
    )
    ok, parser, _, _ = parse(model, logger)
    assert not ok
    assert parser.get_error(0).code() == trt.ErrorCode.UNSUPPORTED_GRAPH
    assert "opset 6" in parser.get_error(0).desc()


def test_support_queries(add_model, logger):
    parser = trt.OnnxParser(trt.Builder(logger).create_network(), logger)
    assert parser.supports_operator("Conv")
    assert parser.supports_operator("MeanVarianceNormalization")  # by its function body
    assert not parser.supports_operator("FrobnicateTensor")
    supported, subgraphs = parser.supports_model(add_model.SerializeToString())
    assert supported and subgraphs == [([0, 1], True)]
    supported, subgraphs = parser.supports_model(_unknown_op().SerializeToString())
    assert not supported and subgraphs == [([0], False)]
    assert parser.num_subgraphs == 1 and not parser.is_subgraph_supported(0)
    assert parser.get_subgraph_nodes(0) == [0]


def test_flags_and_plugin_libraries(logger):
    parser = trt.OnnxParser(trt.Builder(logger).create_network(), logger)
    assert parser.get_flag(trt.OnnxParserFlag.NATIVE_INSTANCENORM)  # TensorRT 10's default
    parser.clear_flag(trt.OnnxParserFlag.NATIVE_INSTANCENORM)
    assert not parser.get_flag(trt.OnnxParserFlag.NATIVE_INSTANCENORM)
    parser.set_flag(trt.OnnxParserFlag.ENABLE_UINT8_AND_ASYMMETRIC_QUANTIZATION_DLA)
    assert parser.flags == 1 << int(trt.OnnxParserFlag.ENABLE_UINT8_AND_ASYMMETRIC_QUANTIZATION_DLA)
    assert parser.get_used_vc_plugin_libraries() == []


def test_user_initializers_replace_the_model_weights(add_model, logger):
    builder = trt.Builder(logger)
    network = builder.create_network()
    parser = trt.OnnxParser(network, logger)
    assert parser.load_model_proto(add_model.SerializeToString())
    bias = np.array([10.0, 20.0, 30.0], dtype=np.float32)
    assert not parser.load_initializer("bias", bias.ctypes.data, 8)  # wrong size
    assert parser.load_initializer("bias", bias.ctypes.data, bias.nbytes)
    assert parser.parse_model_proto(), logger.errors
    x = np.zeros((2, 3), dtype=np.float32)
    np.testing.assert_array_equal(run(build(builder, network), {"x": x})["y"], x + bias)


def test_the_network_and_engine_take_the_graph_name(add_model, logger):
    add_model.graph.name = "my graph"
    ok, _, network, builder = parse(add_model, logger)
    assert ok, logger.errors
    assert network.name == "my graph"
    assert build(builder, network).name == "my graph"
