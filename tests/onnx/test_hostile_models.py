"""Hostile ONNX models: each parse ends quickly, in bounded memory, with False and a
ParserError that names the node and the limit (or True where the model is fine)."""

from __future__ import annotations

import time

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper, numpy_helper

import tensorplan as trt
from tensorplan.builder import fusion
from tensorplan.onnx import graph as onnx_graph
from tensorplan.plan.format import MAX_RANK, MAX_TENSOR_BYTES
from tensorplan.types import ErrorCode

OPSET = [helper.make_opsetid("", 17)]


def parse(model: onnx.ModelProto | bytes) -> tuple[bool, trt.OnnxParser, trt.INetworkDefinition]:
    logger = trt.Logger(trt.Logger.INTERNAL_ERROR)
    network = trt.Builder(logger).create_network()
    parser = trt.OnnxParser(network, logger)
    data = model if isinstance(model, bytes) else model.SerializeToString()
    return parser.parse(data), parser, network


def model_of(nodes, inputs, outputs, initializers=(), **kwargs) -> onnx.ModelProto:
    graph = helper.make_graph(nodes, "hostile", inputs, outputs, list(initializers))
    kwargs.setdefault("opset_imports", OPSET)
    return helper.make_model(graph, **kwargs)


def tensor(name: str, shape, elem_type=TensorProto.FLOAT) -> onnx.ValueInfoProto:
    return helper.make_tensor_value_info(name, elem_type, shape)


def only_error(parser: trt.OnnxParser) -> trt.ParserError:
    assert parser.num_errors == 1
    return parser.get_error(0)


def scan(name: str, steps_input: str, output: str, body: onnx.GraphProto) -> onnx.NodeProto:
    return helper.make_node(
        "Scan", [steps_input], [output], name=name, num_scan_inputs=1, body=body
    )


def identity_body(inner: list[onnx.NodeProto] = ()) -> onnx.GraphProto:
    """A Scan body from x_in (a [1] slice, or [n, 1] rows for a nested Scan) to x_out."""
    nodes = list(inner) or [helper.make_node("Identity", ["x_in"], ["x_out"])]
    return helper.make_graph(nodes, "body", [tensor("x_in", None)], [tensor("x_out", None)])


# -- unrolled steps ---------------------------------------------------------------------------


def test_a_scan_of_a_million_steps_is_refused_before_unrolling():
    model = model_of(
        [scan("long", "x", "y", identity_body())],
        [tensor("x", [1_000_000, 1])],
        [tensor("y", None)],
    )
    started = time.perf_counter()
    ok, parser, _ = parse(model)
    assert time.perf_counter() - started < 5
    assert not ok
    error = only_error(parser)
    assert error.code() == ErrorCode.UNSUPPORTED_NODE
    assert (error.node(), error.node_name(), error.node_operator()) == (0, "long", "Scan")
    assert "1000000 steps" in error.desc()
    assert f"{onnx_graph.MAX_UNROLLED_STEPS} (MAX_UNROLLED_STEPS" in error.desc()


def test_a_scan_claiming_two_billion_scan_inputs_is_an_error():
    node = scan("claims", "x", "y", identity_body())
    node.attribute[1].i = 1 << 31  # num_scan_inputs: its default axes were a list of 2**31
    ok, parser, _ = parse(model_of([node], [tensor("x", [4, 3])], [tensor("y", None)]))
    assert not ok
    error = only_error(parser)
    assert (error.code(), error.node_name()) == (ErrorCode.INVALID_NODE, "claims")
    assert "num_scan_inputs is 2147483648" in error.desc()


def test_a_split_claiming_two_billion_outputs_is_an_error():
    node = helper.make_node("Split", ["x"], ["a", "b"], name="claims", axis=0, num_outputs=1 << 31)
    model = model_of(
        [node],
        [tensor("x", [4, 3])],
        [tensor("a", None), tensor("b", None)],
        opset_imports=[helper.make_opsetid("", 18)],
    )
    started = time.perf_counter()
    ok, parser, _ = parse(model)
    assert time.perf_counter() - started < 5  # the chunk list had 2**31 entries
    assert not ok
    error = only_error(parser)
    assert (error.code(), error.node_name()) == (ErrorCode.INVALID_NODE, "claims")
    assert "num_outputs is 2147483648 but the node has 2 outputs" in error.desc()


def test_split_sizes_must_match_the_outputs():
    sizes = numpy_helper.from_array(np.ones(1000, np.int64), "sizes")
    node = helper.make_node("Split", ["x", "sizes"], ["a", "b"], name="sizes", axis=0)
    model = model_of(
        [node], [tensor("x", [1000, 3])], [tensor("a", None), tensor("b", None)], [sizes]
    )
    ok, parser, _ = parse(model)
    assert not ok
    assert "split gives 1000 sizes but the node has 2 outputs" in only_error(parser).desc()


def test_nested_scans_count_their_steps_together():
    # 64 outer steps of 32 inner ones: each Scan is under the limit, together they are 2,112
    inner = scan("inner", "x_in", "x_out", identity_body())
    body = identity_body([inner])
    model = model_of(
        [scan("outer", "x", "y", body)], [tensor("x", [64, 32, 1])], [tensor("y", None)]
    )
    ok, parser, _ = parse(model)
    assert not ok
    error = only_error(parser)
    assert error.code() == ErrorCode.UNSUPPORTED_NODE
    assert "MAX_UNROLLED_STEPS" in error.desc()


def test_nested_scans_within_the_limit_unroll():
    inner = scan("inner", "x_in", "x_out", identity_body())
    model = model_of(
        [scan("outer", "x", "y", identity_body([inner]))],
        [tensor("x", [4, 3, 1])],
        [tensor("y", None)],
    )
    ok, _, network = parse(model)
    assert ok
    assert tuple(network.get_output(0).shape) == (4, 3, 1)


def test_unrolling_is_refused_past_the_expanded_node_limit():
    """1,000 steps of a 21-node body: under the step limit, but 21,000 copies of nodes that
    the file holds once (a small file making a large network is bounded by what it adds)."""
    trips = numpy_helper.from_array(np.array(1000, np.int64), "trips")
    names = ["v_in", *(f"v{i}" for i in range(19)), "v_out"]
    chain = [helper.make_node("Identity", [names[i]], [names[i + 1]]) for i in range(20)]
    body = helper.make_graph(
        [helper.make_node("Identity", ["cond_in"], ["cond_out"]), *chain],
        "body",
        [
            tensor("i", [], TensorProto.INT64),
            tensor("cond_in", [], TensorProto.BOOL),
            tensor("v_in", [1]),
        ],
        [tensor("cond_out", [], TensorProto.BOOL), tensor("v_out", [1])],
    )
    loop = helper.make_node("Loop", ["trips", "", "x"], ["y"], name="long", body=body)
    model = model_of([loop], [tensor("x", [1])], [tensor("y", None)], [trips])
    started = time.perf_counter()
    ok, parser, _ = parse(model)
    assert time.perf_counter() - started < 5
    assert not ok
    error = only_error(parser)
    assert error.code() == ErrorCode.UNSUPPORTED_GRAPH
    assert f"more than {onnx_graph.MAX_EXPANDED_NODES} nodes beyond the model's 22" in error.desc()


def test_loops_share_the_unrolled_step_limit():
    trips = numpy_helper.from_array(np.array(1000, np.int64), "trips")
    body = helper.make_graph(
        [
            helper.make_node("Identity", ["cond_in"], ["cond_out"]),
            helper.make_node("Identity", ["v_in"], ["v_out"]),
        ],
        "body",
        [
            tensor("i", [], TensorProto.INT64),
            tensor("cond_in", [], TensorProto.BOOL),
            tensor("v_in", [1]),
        ],
        [tensor("cond_out", [], TensorProto.BOOL), tensor("v_out", [1])],
    )
    loops = [
        helper.make_node("Loop", ["trips", "", "x"], ["a"], name="first", body=body),
        helper.make_node("Loop", ["trips", "", "a"], ["y"], name="second", body=body),
    ]
    ok, parser, _ = parse(model_of(loops, [tensor("x", [1])], [tensor("y", [1])], [trips]))
    assert not ok
    error = only_error(parser)
    assert (error.node_name(), error.code()) == ("second", ErrorCode.UNSUPPORTED_NODE)
    assert "to 1025" in error.desc()


# -- node count and nesting -------------------------------------------------------------------


def test_a_graph_over_the_node_limit_is_refused(monkeypatch):
    monkeypatch.setattr(onnx_graph, "MAX_NODES", 10)
    names = ["x"] + [f"t{i}" for i in range(11)]
    nodes = [helper.make_node("Relu", [names[i]], [names[i + 1]]) for i in range(11)]
    ok, parser, _ = parse(model_of(nodes, [tensor("x", [2])], [tensor("t10", [2])]))
    assert not ok
    error = only_error(parser)
    assert error.code() == ErrorCode.UNSUPPORTED_GRAPH
    assert "11 nodes" in error.desc() and "at most 10 (MAX_NODES)" in error.desc()


def test_unrolled_copies_count_toward_the_node_limit(monkeypatch):
    monkeypatch.setattr(onnx_graph, "MAX_NODES", 50)
    model = model_of(
        [scan("long", "x", "y", identity_body())], [tensor("x", [100, 1])], [tensor("y", None)]
    )
    ok, parser, _ = parse(model)
    assert not ok
    error = only_error(parser)
    assert error.code() == ErrorCode.UNSUPPORTED_GRAPH
    assert "reached 50 nodes (MAX_NODES)" in error.desc()


def function(name: str, calls: str) -> onnx.FunctionProto:
    return helper.make_function(
        "custom",
        name,
        ["a"],
        ["b"],
        [helper.make_node(calls, ["a"], ["b"], domain="custom")],
        [*OPSET, helper.make_opsetid("custom", 1)],
    )


@pytest.mark.parametrize(
    "functions",
    [[function("Self", "Self")], [function("Self", "Other"), function("Other", "Self")]],
    ids=["calls itself", "mutual recursion"],
)
def test_a_recursive_function_is_an_error(functions):
    model = model_of(
        [helper.make_node("Self", ["x"], ["y"], name="call", domain="custom")],
        [tensor("x", [2])],
        [tensor("y", [2])],
        opset_imports=[*OPSET, helper.make_opsetid("custom", 1)],
        functions=functions,
    )
    ok, parser, _ = parse(model)
    assert not ok
    error = only_error(parser)
    assert error.code() == ErrorCode.UNSUPPORTED_GRAPH
    assert (error.node(), error.node_name()) == (0, "call")
    assert f"more than {onnx_graph.MAX_NESTING_DEPTH} deep" in error.desc()


def nested_ifs(depth: int) -> onnx.ModelProto:
    """If nodes each inlining the next in its then-branch, `depth` deep, around an Identity."""
    truth = helper.make_tensor("truth", TensorProto.BOOL, [], [True])
    leaf = helper.make_graph(
        [helper.make_node("Identity", ["x"], ["out"])], "leaf", [], [tensor("out", [2])]
    )
    branch = leaf
    for level in range(depth):
        node = helper.make_node(
            "If", ["truth"], ["out"], name=f"if{level}", then_branch=branch, else_branch=leaf
        )
        branch = helper.make_graph([node], f"level{level}", [], [tensor("out", [2])])
    return model_of(list(branch.node), [tensor("x", [2])], [tensor("out", [2])], [truth])


def test_subgraphs_nested_over_the_limit_are_an_error(monkeypatch):
    monkeypatch.setattr(onnx_graph, "MAX_NESTING_DEPTH", 3)
    assert parse(nested_ifs(3))[0]
    ok, parser, _ = parse(nested_ifs(4))
    assert not ok
    error = only_error(parser)
    assert error.code() == ErrorCode.UNSUPPORTED_GRAPH
    assert "subgraphs nest more than 3 deep here (MAX_NESTING_DEPTH)" in error.desc()


def test_a_protobuf_nested_past_its_decoder_limit_is_refused():
    def field(number: int, payload: bytes) -> bytes:  # a length-delimited protobuf field
        return _varint(number << 3 | 2) + _varint(len(payload)) + payload

    graph = b""
    for _ in range(200):  # graph.node[0].attribute[0].g, 600 messages deep
        graph = field(1, field(5, field(6, graph)))
    ok, parser, _ = parse(_varint(1 << 3) + _varint(8) + field(7, graph))  # ir_version 8
    assert not ok
    assert only_error(parser).code() == ErrorCode.MODEL_DESERIALIZE_FAILED


def _varint(value: int) -> bytes:
    encoded = bytearray()
    while value >= 0x80:
        encoded.append(value & 0x7F | 0x80)
        value >>= 7
    return bytes(encoded + bytes([value]))


def test_an_attribute_claiming_a_huge_tensor_is_refused():
    claimed = TensorProto(name="value", data_type=TensorProto.FLOAT, dims=[1 << 40])
    node = helper.make_node("Constant", [], ["y"], name="huge", value=claimed)
    ok, parser, _ = parse(model_of([node], [], [tensor("y", None)]))
    assert not ok
    error = only_error(parser)
    assert (error.code(), error.node_name()) == (ErrorCode.INVALID_VALUE, "huge")


# -- folding of model-given counts ------------------------------------------------------------


def range_model(start, limit, delta, dtype=np.int64) -> onnx.ModelProto:
    initializers = [
        numpy_helper.from_array(np.array(value, dtype), name)
        for name, value in (("start", start), ("limit", limit), ("delta", delta))
    ]
    node = helper.make_node("Range", ["start", "limit", "delta"], ["y"], name="range")
    return model_of([node], [], [tensor("y", None)], initializers)


def producer(network: trt.INetworkDefinition, tensor: trt.ITensor) -> trt.ILayer:
    layers = (network.get_layer(i) for i in range(network.num_layers))
    return next(layer for layer in layers if layer.get_output(0) is tensor)


def test_a_range_too_big_to_fold_is_computed_at_run_time():
    ok, _, network = parse(range_model(0, 2_000_000_000, 1))  # 16 GB as a host constant
    assert ok
    assert tuple(network.get_output(0).shape) == (2_000_000_000,)
    assert producer(network, network.get_output(0)).type == trt.LayerType.FILL


def test_a_small_range_is_still_a_constant():
    ok, _, network = parse(range_model(1.0, 2.0, 0.25, np.float32))
    assert ok
    layer = producer(network, network.get_output(0))
    assert layer.type == trt.LayerType.CONSTANT
    assert layer.weights.numpy().tolist() == [1.0, 1.25, 1.5, 1.75]


@pytest.mark.parametrize(
    ("start", "limit", "delta"),
    [(0.0, np.inf, 1.0), (0.0, 1e30, 1e-30), (0, 1 << 62, 1)],
    ids=["infinite", "float overflow", "over MAX_TENSOR_BYTES"],
)
def test_a_range_no_tensor_can_hold_is_refused(start, limit, delta):
    dtype = np.int64 if isinstance(start, int) else np.float32
    ok, parser, _ = parse(range_model(start, limit, delta, dtype))
    assert not ok
    error = only_error(parser)
    assert (error.code(), error.node_name()) == (ErrorCode.INVALID_VALUE, "range")
    assert f"{MAX_TENSOR_BYTES} bytes a tensor may have (MAX_TENSOR_BYTES)" in error.desc()


@pytest.mark.parametrize("op", ["EyeLike", "Trilu"])
def test_masks_sized_by_the_input_are_not_made_on_the_host(op):
    node = helper.make_node(op, ["x"], ["y"])  # 10^10 elements: 80 GB as a float64 eye
    ok, _, network = parse(model_of([node], [tensor("x", [100_000, 100_000])], [tensor("y", None)]))
    assert ok
    assert tuple(network.get_output(0).shape) == (100_000, 100_000)


# -- external data, ranks -----------------------------------------------------------------------


def test_an_external_data_location_that_is_not_utf8_is_an_error():
    weights = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1])
    weights.data_location = TensorProto.EXTERNAL
    weights.external_data.add(key="location", value="LOCATION")
    model = model_of(
        [helper.make_node("Relu", ["w"], ["y"])], [], [tensor("y", [1])], [weights]
    ).SerializeToString()
    ok, parser, _ = parse(model.replace(b"LOCATION", b"\xff\xfe.bin\x80\x81"))
    assert not ok
    error = only_error(parser)
    assert error.code() == ErrorCode.MODEL_DESERIALIZE_FAILED
    assert "field 'onnx.StringStringEntryProto.value'" in error.desc()
    assert "not valid UTF-8" in error.desc()


def test_a_node_name_that_is_not_utf8_is_an_error():
    model = model_of(
        [helper.make_node("Relu", ["x"], ["y"], name="NAME")],
        [tensor("x", [1])],
        [tensor("y", [1])],
    ).SerializeToString()
    ok, parser, _ = parse(model.replace(b"NAME", b"\xc3\x28\xa0\xa1"))
    assert not ok
    error = only_error(parser)
    assert error.code() == ErrorCode.MODEL_DESERIALIZE_FAILED
    assert "field 'onnx.NodeProto.name'" in error.desc()


def test_an_external_data_location_too_long_for_the_file_system_is_an_error(tmp_path):
    weights = TensorProto(name="w", data_type=TensorProto.FLOAT, dims=[1])
    weights.data_location = TensorProto.EXTERNAL
    weights.external_data.add(key="location", value="a" * 5000)
    model = model_of([helper.make_node("Relu", ["w"], ["y"])], [], [tensor("y", [1])], [weights])
    logger = trt.Logger(trt.Logger.INTERNAL_ERROR)
    parser = trt.OnnxParser(trt.Builder(logger).create_network(), logger)
    assert not parser.parse(model.SerializeToString(), str(tmp_path / "model.onnx"))
    error = only_error(parser)
    assert error.code() == ErrorCode.INVALID_VALUE
    assert "tensor 'w' keeps its data in the external file" in error.desc()


def test_an_input_of_rank_over_max_rank_is_refused():
    ok, parser, _ = parse(
        model_of(
            [helper.make_node("Relu", ["x"], ["y"])], [tensor("x", [1] * 9)], [tensor("y", None)]
        )
    )
    assert not ok
    error = only_error(parser)
    assert error.code() == ErrorCode.UNSUPPORTED_GRAPH
    assert "'x' has 9 dimensions" in error.desc() and f"at most {MAX_RANK}" in error.desc()


def test_a_node_making_rank_over_max_rank_is_refused():
    axes = numpy_helper.from_array(np.array([0], np.int64), "axes")
    node = helper.make_node("Unsqueeze", ["x", "axes"], ["y"], name="grow")
    ok, parser, _ = parse(model_of([node], [tensor("x", [1] * 8)], [tensor("y", None)], [axes]))
    assert not ok
    error = only_error(parser)
    assert (error.code(), error.node_name()) == (ErrorCode.INVALID_NODE, "grow")
    assert f"9 dimensions; at most {MAX_RANK} are supported" in error.desc()


# -- linear time ---------------------------------------------------------------------------------


def chain_of(nodes: int, op: str = "Relu") -> onnx.ModelProto:
    """`nodes` nodes of `op` in a row; Add adds one constant, which every node reads."""
    names = ["x"] + [f"t{i}" for i in range(nodes - 1)] + ["y"]
    operands = ["one"] if op == "Add" else []
    chain = [helper.make_node(op, [names[i], *operands], [names[i + 1]]) for i in range(nodes)]
    one = numpy_helper.from_array(np.ones((1, 8), np.float32), "one")
    return model_of(chain, [tensor("x", [1, 8])], [tensor("y", [1, 8])], [one] if operands else [])


@pytest.mark.parametrize("op", ["Relu", "Add"])
def test_pointwise_fusion_visits_each_node_of_a_long_chain_about_once(monkeypatch, op):
    calls = []
    original = fusion.fuse_pointwise_chain
    monkeypatch.setattr(
        fusion,
        "fuse_pointwise_chain",
        lambda chains, node: calls.append(node) or original(chains, node),
    )
    ok, _, network = parse(chain_of(2000, op))
    assert ok
    builder = network.builder
    assert builder.build_serialized_network(network, builder.create_builder_config()) is not None
    # one visit per node, and one more for each chain's new end (rescanning every node after
    # each of the 63 fusions took 63 visits per node; so did revisiting every reader of the
    # constant that each Add reads)
    assert len(calls) == 2000 + 2000 // 32


def test_a_20k_node_chain_parses_and_builds_in_linear_time():
    model = chain_of(20_000)
    started = time.perf_counter()
    ok, _, network = parse(model)
    assert ok
    builder = network.builder
    plan = builder.build_serialized_network(network, builder.create_builder_config())
    assert plan is not None
    assert time.perf_counter() - started < 15  # about 2 s; quadratic parsing alone took 16 s
