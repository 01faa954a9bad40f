"""The built-in seed set: a few ONNX models and the plans tensorplan builds from them and from
small networks of the network API, enough to start fuzzing with no test-suite run."""

from __future__ import annotations

import hashlib
import os
from importlib import resources

import numpy as np
import onnx
from onnx import TensorProto, helper

import tensorplan as trt

from .contract import QuietLogger
from .onnx_target import build_parsed

OPSET = helper.make_opsetid("", 17)


def onnx_seeds() -> list[bytes]:
    """The shipped example CNN and small models with control flow, Range and a function."""
    example = resources.files("tensorplan.examples").joinpath("small_cnn.onnx").read_bytes()
    models = [_if_model(), _loop_model(), _scan_model(), _range_model(), _function_model()]
    return [example] + [model.SerializeToString() for model in models]


def plan_seeds() -> list[bytes]:
    """Plans of small network-API networks (static, dynamic with a profile, a shape-tensor
    input) and of every ONNX seed that builds."""
    plans = [_build(define) for define in (_mlp, _conv_net, _shaping_net)]
    plans += [_build(_dynamic_net, _dynamic_profile), _build(_shape_input_net, _shape_profile)]
    plans += [_build_onnx(model) for model in onnx_seeds()]
    return [bytes(plan) for plan in plans if plan is not None]


def write_seeds(directory: str, seeds: list[bytes]) -> None:
    """Write each seed as a file named by its SHA-1, as libFuzzer names corpus files."""
    os.makedirs(directory, exist_ok=True)
    for seed in seeds:
        with open(os.path.join(directory, hashlib.sha1(seed).hexdigest()), "wb") as file:
            file.write(seed)


# -- network-API networks ---------------------------------------------------------------------


def _build(define, configure=None) -> trt.IHostMemory | None:
    builder = trt.Builder(QuietLogger())
    network = builder.create_network()
    define(network)
    config = builder.create_builder_config()
    if configure is not None:
        configure(builder, config)
    return builder.build_serialized_network(network, config)


def _build_onnx(model: bytes) -> trt.IHostMemory | None:
    builder = trt.Builder(QuietLogger())
    network = builder.create_network()
    if not trt.OnnxParser(network, QuietLogger()).parse(model):
        return None
    return build_parsed(builder, network)


def _constant(network: trt.INetworkDefinition, array: np.ndarray) -> trt.ITensor:
    return network.add_constant(array.shape, trt.Weights(np.ascontiguousarray(array))).get_output(0)


def _output(network: trt.INetworkDefinition, tensor: trt.ITensor, name: str) -> None:
    tensor.name = name
    network.mark_output(tensor)


def _mlp(network: trt.INetworkDefinition) -> None:
    """softmax(relu(x @ w + b)): a fused matmul with bias and activation."""
    x = network.add_input("x", trt.float32, (2, 8))
    w = _constant(network, np.linspace(-1, 1, 32, dtype=np.float32).reshape(8, 4))
    b = _constant(network, np.arange(4, dtype=np.float32).reshape(1, 4))
    none = trt.MatrixOperation.NONE
    y = network.add_matrix_multiply(x, none, w, none).get_output(0)
    y = network.add_elementwise(y, b, trt.ElementWiseOperation.SUM).get_output(0)
    y = network.add_activation(y, trt.ActivationType.RELU).get_output(0)
    _output(network, network.add_softmax(y).get_output(0), "y")


def _conv_net(network: trt.INetworkDefinition) -> None:
    """Convolution, ReLU, max pooling and a flattening reshape: channels-last slots and a view."""
    x = network.add_input("x", trt.float32, (1, 3, 8, 8))
    kernel = np.linspace(-0.5, 0.5, 4 * 3 * 3 * 3, dtype=np.float32)
    conv = network.add_convolution_nd(x, 4, (3, 3), kernel, np.ones(4, np.float32))
    conv.padding_nd = (1, 1)
    y = network.add_activation(conv.get_output(0), trt.ActivationType.RELU).get_output(0)
    pool = network.add_pooling_nd(y, trt.PoolingType.MAX, (2, 2))
    pool.stride_nd = (2, 2)
    flat = network.add_shuffle(pool.get_output(0))
    flat.reshape_dims = (1, -1)
    _output(network, flat.get_output(0), "y")


def _shaping_net(network: trt.INetworkDefinition) -> None:
    """Transpose, slice, gather, top-k, a reduction and a cast to HALF."""
    x = network.add_input("x", trt.float32, (2, 3, 4))
    transpose = network.add_shuffle(x)
    transpose.first_transpose = (2, 0, 1)
    y = network.add_slice(transpose.get_output(0), (0, 0, 1), (3, 2, 2), (1, 1, 1)).get_output(0)
    indices = _constant(network, np.array([1, 0], dtype=np.int32))
    y = network.add_gather(y, indices, 0).get_output(0)
    y = network.add_unary(y, trt.UnaryOperation.EXP).get_output(0)
    top = network.add_topk(y, trt.TopKOperation.MAX, 1, 1 << 2)
    _output(network, top.get_output(0), "values")
    _output(network, top.get_output(1), "indices")
    total = network.add_reduce(x, trt.ReduceOperation.SUM, 1 << 1, True).get_output(0)
    _output(network, network.add_cast(total, trt.float16).get_output(0), "total")


def _dynamic_net(network: trt.INetworkDefinition) -> None:
    """A dynamic batch through layers kept apart (one node and one arena slot each)."""
    x = network.add_input("x", trt.float32, (-1, 4))
    w = _constant(network, np.full((1, 4), 0.5, np.float32))
    y = network.add_elementwise(x, w, trt.ElementWiseOperation.PROD).get_output(0)
    y = network.add_activation(y, trt.ActivationType.TANH).get_output(0)
    y = network.add_concatenation([y, x]).get_output(0)
    _output(network, y, "y")
    for index in range(network.num_layers):
        network.get_layer(index).precision = trt.float32


def _dynamic_profile(builder: trt.Builder, config: trt.IBuilderConfig) -> None:
    for low, opt, high in (((1, 4), (2, 4), (8, 4)), ((9, 4), (12, 4), (16, 4))):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", low, opt, high)
        config.add_optimization_profile(profile)


def _shape_input_net(network: trt.INetworkDefinition) -> None:
    """x reshaped to the dims an INT32 shape-tensor input holds."""
    x = network.add_input("x", trt.float32, (2, 6))
    dims = network.add_input("dims", trt.int32, (2,))
    reshape = network.add_shuffle(x)
    reshape.set_input(1, dims)
    _output(network, reshape.get_output(0), "y")


def _shape_profile(builder: trt.Builder, config: trt.IBuilderConfig) -> None:
    profile = builder.create_optimization_profile()
    profile.set_shape_input("dims", (3, 4), (3, 4), (3, 4))
    config.add_optimization_profile(profile)


# -- ONNX models ------------------------------------------------------------------------------


def _model(graph: onnx.GraphProto) -> onnx.ModelProto:
    return helper.make_model(graph, opset_imports=[OPSET])


def _value(name: str, elem_type: int, shape: list) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, shape)


def _if_model() -> onnx.ModelProto:
    """y = x + 1 if cond else x * 2, cond an initializer (TensorRT needs it at build time)."""
    one = helper.make_tensor("one", TensorProto.FLOAT, [1], [1.0])
    two = helper.make_tensor("two", TensorProto.FLOAT, [1], [2.0])
    then_branch = helper.make_graph(
        [helper.make_node("Add", ["x", "one"], ["then_y"])],
        "then",
        [],
        [_value("then_y", TensorProto.FLOAT, [2, 3])],
        [one],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Mul", ["x", "two"], ["else_y"])],
        "else",
        [],
        [_value("else_y", TensorProto.FLOAT, [2, 3])],
        [two],
    )
    node = helper.make_node("If", ["cond"], ["y"], then_branch=then_branch, else_branch=else_branch)
    graph = helper.make_graph(
        [node],
        "if",
        [_value("x", TensorProto.FLOAT, [2, 3])],
        [_value("y", TensorProto.FLOAT, [2, 3])],
        [helper.make_tensor("cond", TensorProto.BOOL, [], [True])],
    )
    return _model(graph)


def _loop_model() -> onnx.ModelProto:
    """Three iterations of v = v + x, with every v as a scan output."""
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Add", ["v_in", "x"], ["v_out"]),
            helper.make_node("Identity", ["v_out"], ["scan"]),
        ],
        "body",
        [
            _value("i", TensorProto.INT64, []),
            _value("cond_in", TensorProto.BOOL, []),
            _value("v_in", TensorProto.FLOAT, [2]),
        ],
        [
            _value("cond_out", TensorProto.BOOL, []),
            _value("v_out", TensorProto.FLOAT, [2]),
            _value("scan", TensorProto.FLOAT, [2]),
        ],
    )
    initializers = [
        helper.make_tensor("trips", TensorProto.INT64, [], [3]),
        helper.make_tensor("keep_going", TensorProto.BOOL, [], [True]),
        helper.make_tensor("v0", TensorProto.FLOAT, [2], [0.0, 1.0]),
    ]
    node = helper.make_node("Loop", ["trips", "keep_going", "v0"], ["v", "history"], body=body)
    graph = helper.make_graph(
        [node],
        "loop",
        [_value("x", TensorProto.FLOAT, [2])],
        [_value("v", TensorProto.FLOAT, [2]), _value("history", TensorProto.FLOAT, [3, 2])],
        initializers,
    )
    return _model(graph)


def _scan_model() -> onnx.ModelProto:
    """The running sum of the rows of x."""
    body = helper.make_graph(
        [
            helper.make_node("Add", ["sum_in", "row"], ["sum_out"]),
            helper.make_node("Identity", ["sum_out"], ["running"]),
        ],
        "body",
        [_value("sum_in", TensorProto.FLOAT, [3]), _value("row", TensorProto.FLOAT, [3])],
        [_value("sum_out", TensorProto.FLOAT, [3]), _value("running", TensorProto.FLOAT, [3])],
    )
    node = helper.make_node("Scan", ["zero", "x"], ["total", "sums"], body=body, num_scan_inputs=1)
    graph = helper.make_graph(
        [node],
        "scan",
        [_value("x", TensorProto.FLOAT, [4, 3])],
        [_value("total", TensorProto.FLOAT, [3]), _value("sums", TensorProto.FLOAT, [4, 3])],
        [helper.make_tensor("zero", TensorProto.FLOAT, [3], [0.0, 0.0, 0.0])],
    )
    return _model(graph)


def _range_model() -> onnx.ModelProto:
    """y = x * range(0, 10, 2), the range's length from constants."""
    initializers = [
        helper.make_tensor("start", TensorProto.FLOAT, [], [0.0]),
        helper.make_tensor("limit", TensorProto.FLOAT, [], [10.0]),
        helper.make_tensor("delta", TensorProto.FLOAT, [], [2.0]),
    ]
    graph = helper.make_graph(
        [
            helper.make_node("Range", ["start", "limit", "delta"], ["steps"]),
            helper.make_node("Mul", ["x", "steps"], ["y"]),
        ],
        "range",
        [_value("x", TensorProto.FLOAT, [5])],
        [_value("y", TensorProto.FLOAT, [5])],
        initializers,
    )
    return _model(graph)


def _function_model() -> onnx.ModelProto:
    """y = LeakyClip(x), a model-local function of the domain "local" with an attribute."""
    function = helper.make_function(
        "local",
        "LeakyClip",
        ["a"],
        ["b"],
        [
            helper.make_node("Constant", [], ["low"], value_float=-1.0),
            helper.make_node("Constant", [], ["high"], value_float=1.0),
            helper.make_node("LeakyRelu", ["a"], ["leaky"], alpha=0.1),
            helper.make_node("Clip", ["leaky", "low", "high"], ["b"]),
        ],
        [OPSET],
    )
    graph = helper.make_graph(
        [helper.make_node("LeakyClip", ["x"], ["y"], domain="local")],
        "function",
        [_value("x", TensorProto.FLOAT, [2, 2])],
        [_value("y", TensorProto.FLOAT, [2, 2])],
    )
    local = helper.make_opsetid("local", 1)
    return helper.make_model(graph, opset_imports=[OPSET, local], functions=[function])
