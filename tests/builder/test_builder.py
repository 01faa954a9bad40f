"""The builder: configs, profiles, build errors, constant folding, dead code, memory plans."""

from __future__ import annotations

import numpy as np
import pytest

import tensorplan as trt
from helpers import build_and_run, build_plan, keep_layers_apart, load, run
from tensorplan.builder.memory_plan import plan_memory
from tensorplan.ir import Graph, Node, infer_graph
from tensorplan.ops.base import TensorMeta


def unary_chain(length, shape=(256,)):
    def define(network):
        tensor = network.add_input("x", trt.float32, shape)
        for _ in range(length):
            tensor = network.add_unary(tensor, trt.UnaryOperation.NEG).get_output(0)
        tensor.name = "y"
        network.mark_output(tensor)
        keep_layers_apart(network)

    return define


def test_config_defaults_and_flags(logger):
    config = trt.Builder(logger).create_builder_config()
    assert config.flags == 1 << int(trt.BuilderFlag.TF32)
    assert config.get_flag(trt.BuilderFlag.TF32)
    config.set_flag(trt.BuilderFlag.FP16)
    assert config.get_flag(trt.BuilderFlag.FP16)
    config.clear_flag(trt.BuilderFlag.FP16)
    assert not config.get_flag(trt.BuilderFlag.FP16)
    assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) > 0
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, 1 << 20)
    assert config.get_memory_pool_limit(trt.MemoryPoolType.WORKSPACE) == 1 << 20
    assert config.num_optimization_profiles == 0
    assert config.DLA_core == -1
    assert config.default_device_type == trt.DeviceType.GPU
    config.reset()
    assert config.flags == 1 << int(trt.BuilderFlag.TF32)


def test_builder_members(logger):
    builder = trt.Builder(logger)
    assert builder.logger is logger
    assert builder.num_DLA_cores == 0
    assert builder.max_threads == 1
    assert isinstance(builder.platform_has_fast_fp16, bool)
    assert builder.get_plugin_registry() is trt.get_plugin_registry()
    with pytest.raises(TypeError):
        trt.Builder(None)


def test_a_chain_reuses_activation_memory():
    engine = load(build_plan(unary_chain(6)))
    assert engine.num_layers == 6
    # five 1 KiB activations, but at most two are alive at once
    assert engine.device_memory_size == 2 * 1024
    x = np.arange(256, dtype=np.float32)
    np.testing.assert_array_equal(run(engine, {"x": x})["y"], x)


def test_memory_plan_never_overlaps_live_tensors():
    rng = np.random.default_rng(7)
    graph = Graph()
    first = graph.add_value("x", trt.float32, (4,))
    graph.inputs = [first]
    values = [first]
    for index in range(40):
        shape = (int(rng.integers(1, 300)),)
        a = values[int(rng.integers(0, len(values)))]
        out = graph.add_value(f"v{index}", trt.float32, shape)
        graph.nodes.append(Node(f"n{index}", "identity", {}, [a], [out]))
        values.append(out)
    graph.outputs = [values[-1]]
    metas = [TensorMeta(v.dtype, v.shape) for v in graph.values]
    plan = plan_memory(graph, [metas])
    last_use = {}
    for index, node in enumerate(graph.nodes):
        for value in node.inputs:
            last_use[value] = index
    live = {
        v: (index, max(index, last_use.get(v, index)))
        for index, node in enumerate(graph.nodes)
        for v in node.outputs
        if v in plan.slots
    }
    for a, (a_off, a_size) in plan.slots.items():
        assert a_size >= metas[a].nbytes and a_off % 256 == 0
        assert a_off + a_size <= plan.arena_size
        for b, (b_off, b_size) in plan.slots.items():
            if a < b and live[a][0] <= live[b][1] and live[b][0] <= live[a][1]:
                assert a_off + a_size <= b_off or b_off + b_size <= a_off, (a, b)


def test_constants_are_folded_at_build_time():
    def define(network):
        x = network.add_input("x", trt.float32, (3,))
        a = network.add_constant((3,), np.array([1, 2, 3], np.float32)).get_output(0)
        b = network.add_constant((3,), np.array([10, 20, 30], np.float32)).get_output(0)
        ab = network.add_elementwise(a, b, trt.ElementWiseOperation.PROD).get_output(0)
        root = network.add_unary(ab, trt.UnaryOperation.SQRT).get_output(0)
        y = network.add_elementwise(x, root, trt.ElementWiseOperation.SUM).get_output(0)
        y.name = "y"
        network.mark_output(y)

    engine = load(build_plan(define))
    assert engine.num_layers == 1
    x = np.array([1, 1, 1], np.float32)
    expected = x + np.sqrt(np.array([10, 40, 90], np.float32))
    np.testing.assert_allclose(run(engine, {"x": x})["y"], expected, rtol=1e-6)


def test_a_constant_output_and_unused_layers():
    def define(network):
        x = network.add_input("x", trt.float32, (2,))
        network.add_unary(x, trt.UnaryOperation.EXP)  # nothing reads it: removed
        c = network.add_constant((2,), np.array([4, 5], np.float32)).get_output(0)
        c.name = "c"
        network.mark_output(c)
        y = network.add_identity(x).get_output(0)
        y.name = "y"
        network.mark_output(y)

    engine = load(build_plan(define))
    assert engine.num_layers == 2
    out = run(engine, {"x": np.array([7, 8], np.float32)})
    np.testing.assert_array_equal(out["c"], [4, 5])
    np.testing.assert_array_equal(out["y"], [7, 8])


def test_a_constant_output_that_a_layer_also_reads():
    """The output gets a copy; the layer keeps reading the constant (it read a value that no
    longer existed, a KeyError at build time the ONNX fuzzer found)."""

    def define(network):
        x = network.add_input("x", trt.float32, (2,))
        c = network.add_constant((2,), np.array([4, 5], np.float32)).get_output(0)
        c.name = "c"
        network.mark_output(c)
        y = network.add_elementwise(x, c, trt.ElementWiseOperation.SUM).get_output(0)
        y.name = "y"
        network.mark_output(y)

    out = run(load(build_plan(define)), {"x": np.array([7, 8], np.float32)})
    np.testing.assert_array_equal(out["c"], [4, 5])
    np.testing.assert_array_equal(out["y"], [11, 13])


@pytest.mark.parametrize(
    ("define", "message"),
    [
        (lambda n: n.add_input("x", trt.float32, (2,)), "no outputs"),
        (
            lambda n: n.mark_output(n.add_input("x", trt.float32, (2,))),
            "both a network input and an output",
        ),
        (
            lambda n: n.mark_output(
                n.add_activation(
                    n.add_input("x", trt.float32, (-1, 2)), trt.ActivationType.RELU
                ).get_output(0)
            ),
            "no optimization profile",
        ),
    ],
)
def test_build_errors_are_reported(logger, define, message):
    assert build_plan(define, logger) is None
    assert len(logger.errors) == 1
    assert logger.errors[0].startswith("IBuilder::buildSerializedNetwork: Error Code 4:")
    assert message in logger.errors[0]


def dynamic_relu(network):
    x = network.add_input("x", trt.float32, (-1, 3))
    y = network.add_activation(x, trt.ActivationType.RELU).get_output(0)
    y.name = "y"
    network.mark_output(y)


def test_dynamic_shapes_through_a_profile():
    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 3), (4, 3), (8, 3))
        assert config.add_optimization_profile(profile) == 0

    plan = build_plan(dynamic_relu, configure=configure)
    engine = load(plan)
    assert engine.get_tensor_shape("x") == (-1, 3)
    assert engine.get_tensor_profile_shape("x", 0) == [(1, 3), (4, 3), (8, 3)]
    assert engine.device_memory_size == 0
    for batch in (1, 5, 8):
        x = np.linspace(-1, 1, batch * 3, dtype=np.float32).reshape(batch, 3)
        np.testing.assert_array_equal(run(engine, {"x": x})["y"], np.maximum(x, 0))


def test_profile_errors(logger):
    builder = trt.Builder(logger)
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (4, 3), (2, 3), (8, 3))
    assert not profile
    assert "min <= opt <= max" in logger.errors[-1]
    assert builder.create_builder_config().add_optimization_profile(profile) == -1

    def wrong_rank(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 3, 1), (1, 3, 1), (1, 3, 1))
        config.add_optimization_profile(profile)

    assert build_plan(dynamic_relu, logger, wrong_rank) is None
    assert "does not match its dimensions" in logger.errors[-1]

    def other_input(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("z", (1,), (1,), (1,))
        config.add_optimization_profile(profile)

    assert build_plan(dynamic_relu, logger, other_input) is None
    assert "sets no shapes for input 'x'" in logger.errors[-1]


def test_builder_error_recorder_and_engine_shortcuts(logger, recorder):
    builder = trt.Builder(logger)
    builder.error_recorder = recorder
    network = builder.create_network()
    network.add_input("x", trt.float32, (2,))
    config = builder.create_builder_config()
    assert not builder.is_network_supported(network, config)
    assert builder.build_serialized_network(network, config) is None
    assert recorder.num_errors() == 1 and not logger.errors
    relu = network.add_activation(network.get_input(0), trt.ActivationType.RELU)
    network.mark_output(relu.get_output(0))
    assert builder.is_network_supported(network, config)
    engine = builder.build_engine_with_config(network, config)
    assert isinstance(engine, trt.ICudaEngine)


def test_set_output_type_on_an_output_tensor():
    def define(network):
        x = network.add_input("x", trt.float32, (2,))
        y = network.add_identity(x).get_output(0)
        y.name = "y"
        y.dtype = trt.int32
        network.mark_output(y)

    out = build_and_run(define, {"x": np.array([1.9, -2.9], np.float32)})["y"]
    assert out.dtype == np.int32
    np.testing.assert_array_equal(out, [1, -2])


def test_shape_inference_names_the_layer_at_profile_shapes():
    graph = Graph()
    a = graph.add_value("a", trt.float32, (-1,))
    b = graph.add_value("b", trt.float32, (3,))
    out = graph.add_value("out", trt.float32, (-1,))
    graph.inputs = [a, b]
    graph.nodes = [
        Node("adder", "elementwise", {"op": trt.ElementWiseOperation.SUM}, [a, b], [out])
    ]
    graph.outputs = [out]
    assert infer_graph(graph, {a: (3,)})[out].shape == (3,)
    with pytest.raises(ValueError, match="layer 'adder'"):
        infer_graph(graph, {a: (4,)})
