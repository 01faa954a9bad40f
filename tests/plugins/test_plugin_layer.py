"""IPluginV3 plugins through the network API: build, serialize, deserialize, execute."""

from __future__ import annotations

import numpy as np
import pytest
from plugin_kit import NAME, NAMESPACE, VERSION, ConcatScale, ConcatScaleCreator, only_error

import tensorplan as trt
from helpers import build_plan, load, run
from plan.planedit import with_metadata
from tensorplan.plugins.dims_expr import DimsExprs
from tensorplan.plugins.interfaces import PluginFieldCollection
from tensorplan.types import DimensionOperation


@pytest.fixture
def creator():
    """ConcatScale's creator in the process-wide registry for the test."""
    creator = ConcatScaleCreator()
    assert trt.get_plugin_registry().register_creator(creator, NAMESPACE)
    ConcatScale.calls.clear()
    yield creator
    trt.get_plugin_registry().deregister_creator(creator)


def concat_network(plugin: ConcatScale, seen: dict | None = None):
    def define(network: trt.INetworkDefinition) -> None:
        a = network.add_input("a", trt.float32, (-1, 3))
        b = network.add_input("b", trt.float32, (2, 3))
        layer = network.add_plugin_v3([a, b], [], plugin)
        if seen is not None:
            seen["layer"] = layer
        network.mark_output(layer.get_output(0))
        network.mark_output(layer.get_output(1))

    return define


def dynamic_rows(builder: trt.Builder, config: trt.IBuilderConfig) -> None:
    profile = builder.create_optimization_profile()
    profile.set_shape("a", (1, 3), (2, 3), (4, 3))
    config.add_optimization_profile(profile)


@pytest.mark.parametrize("rows", [1, 4])
def test_a_plugin_runs_with_the_fields_it_serialized(creator, rows):
    seen = {}
    plan = build_plan(concat_network(ConcatScale(scale=2.5), seen), configure=dynamic_rows)
    layer = seen["layer"]
    assert layer.type == trt.LayerType.PLUGIN_V3 and isinstance(layer.plugin, ConcatScale)
    assert layer.get_output(0).shape == (-1, 3) and layer.get_output(1).dtype == trt.int32
    assert layer.num_inputs == 2 and layer.num_outputs == 2
    a = np.random.default_rng(rows).random((rows, 3), dtype=np.float32)
    b = np.random.default_rng(9).random((2, 3), dtype=np.float32)
    outputs = run(load(plan), {"a": a, "b": b})
    joined, count = (outputs[layer.get_output(i).name] for i in range(2))
    np.testing.assert_allclose(joined, np.concatenate([a, b]) * 2.5, rtol=1e-6)
    assert count.tolist() == [rows + 2]
    assert creator.phases == [trt.TensorRTPhase.RUNTIME]


def test_the_build_configures_the_plugin_and_the_runtime_attaches_it(creator):
    plugin = ConcatScale(workspace=4096, tactics=(7, 3))
    plan = build_plan(concat_network(plugin), configure=dynamic_rows)
    assert ConcatScale.calls == [("configure", [((1, 3), (4, 3)), ((2, 3), (2, 3))])]
    ConcatScale.calls.clear()
    runtime = trt.Runtime(trt.Logger(trt.Logger.ERROR))
    engine = runtime.deserialize_cuda_engine(plan)
    assert engine is not None
    assert ConcatScale.calls == [("attach", None), ("set_tactic", 7)]
    a, b = np.ones((3, 3), np.float32), np.zeros((2, 3), np.float32)
    run(engine, {"a": a, "b": b})
    run(engine, {"a": a, "b": b})
    run(engine, {"a": a[:1], "b": b})
    shapes = [call for call in ConcatScale.calls if call[0] == "shape"]
    assert shapes == [("shape", [(3, 3), (2, 3)]), ("shape", [(1, 3), (2, 3)])]
    assert ("enqueue", True, 7) in ConcatScale.calls


def test_a_serialized_engine_keeps_its_plugin(creator):
    plan = build_plan(concat_network(ConcatScale(scale=-1.0)), configure=dynamic_rows)
    again = load(bytes(load(plan).serialize()))
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    joined = run(again, {"a": a, "b": a})
    np.testing.assert_array_equal(next(iter(joined.values())), -np.concatenate([a, a]))


def test_a_missing_creator_is_an_error_that_names_the_plugin(logger):
    plan = build_plan(concat_network(ConcatScale()), configure=dynamic_rows)
    assert plan is not None  # building needs no creator; deserializing does
    assert trt.Runtime(logger).deserialize_cuda_engine(plan) is None
    error = only_error(logger)
    assert error.startswith("IRuntime::deserializeCudaEngine: Error Code 1: Serialization")
    assert f"'{NAME}' (version '{VERSION}', namespace '{NAMESPACE}')" in error


def test_the_runtime_registry_is_searched_before_its_parent(logger):
    runtime = trt.Runtime(logger)
    local = ConcatScaleCreator()
    assert runtime.get_plugin_registry().register_creator(local, NAMESPACE)
    plan = build_plan(concat_network(ConcatScale()), configure=dynamic_rows)
    assert runtime.deserialize_cuda_engine(plan) is not None
    assert local.phases == [trt.TensorRTPhase.RUNTIME]
    assert trt.get_plugin_registry().get_creator(NAME, VERSION, NAMESPACE) is None
    runtime.get_plugin_registry().parent_search_enabled = False
    assert runtime.get_plugin_registry().get_creator(NAME, VERSION, NAMESPACE) is local


class FailingCreator(ConcatScaleCreator):
    def __init__(self, result) -> None:
        super().__init__()
        self.result = result

    def create_plugin(self, name, fc, phase):
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


@pytest.mark.parametrize(
    ("result", "message"),
    [(None, "create_plugin returned None"), (RuntimeError("no GPU today"), "no GPU today")],
)
def test_a_creator_that_fails_is_reported(logger, result, message):
    runtime = trt.Runtime(logger)
    runtime.get_plugin_registry().register_creator(FailingCreator(result), NAMESPACE)
    plan = build_plan(concat_network(ConcatScale()), configure=dynamic_rows)
    assert runtime.deserialize_cuda_engine(plan) is None
    error = only_error(logger)
    assert "Error Code 6" in error and message in error and NAME in error


class Broken(ConcatScale):
    def __init__(self, fault: str) -> None:
        super().__init__()
        self.fault = fault
        if fault == "outputs":
            self.num_outputs = 3

    def get_capability_interface(self, type):
        if self.fault == "no build" and type == trt.PluginCapabilityType.BUILD:
            return None
        return self

    def get_output_shapes(self, inputs, shape_inputs, builder):
        if self.fault == "shapes":
            raise ValueError("cannot tell")
        if self.fault == "size":
            size = builder.declare_size_tensor(1, builder.constant(2), builder.constant(9))
            return [DimsExprs([size, inputs[0][1]]), DimsExprs([builder.constant(1)])]
        if self.fault == "negative":
            return [DimsExprs([builder.operation(DimensionOperation.SUB, inputs[1][0], inputs[0][0]), inputs[0][1]]), DimsExprs([builder.constant(1)])]  # fmt: skip
        return super().get_output_shapes(inputs, shape_inputs, builder)

    def supports_format_combination(self, pos, in_out, num_inputs):
        return self.fault != "formats"


@pytest.mark.parametrize(
    ("fault", "message"),
    [
        ("outputs", "has num_outputs 3 but described 2 output shapes"),
        ("shapes", "failed to describe its outputs: ValueError('cannot tell')"),
        ("size", "data-dependent (size tensor)"),
        ("formats", "does not support FLOAT in LINEAR format at input/output 0"),
        ("negative", "negative dimension"),
    ],
)
def test_plugins_that_cannot_be_built_fail_the_build(logger, fault, message):
    plan = build_plan(
        concat_network(Broken(fault)), logger, configure=_rows(5 if fault == "negative" else 4)
    )
    assert plan is None
    assert any(message in error for error in logger.errors), logger.errors


def _rows(high: int):
    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("a", (1, 3), (2, 3), (high, 3))
        config.add_optimization_profile(profile)

    return configure


@pytest.mark.parametrize(
    ("plugin", "message"),
    [(object(), "has no CORE capability"), (Broken("no build"), "has no BUILD capability")],
)
def test_add_plugin_v3_refuses_what_is_not_a_plugin(logger, plugin, message):
    network = trt.Builder(logger).create_network()
    x = network.add_input("x", trt.float32, (2,))
    assert network.add_plugin_v3([x], [], plugin) is None
    error = only_error(logger)
    assert error.startswith("INetworkDefinition::addPluginV3: Error Code 3")
    assert message in error


class Reshaper(ConcatScale):
    """out0 = zeros of the shape that shape input 0 holds, plus input 0's first element."""

    def __init__(self) -> None:
        super().__init__()
        self.num_outputs = 1

    def clone(self):
        return Reshaper()

    def get_output_data_types(self, input_types):
        return [trt.float32]

    def get_output_shapes(self, inputs, shape_inputs, builder):
        return [DimsExprs(list(shape_inputs[0]))]

    def get_fields_to_serialize(self):
        return PluginFieldCollection()

    def enqueue(self, input_desc, output_desc, inputs, outputs, workspace, stream):
        import torch

        from tensorplan.device import execution_device, tensor_at

        device = execution_device()
        x = tensor_at(inputs[0], tuple(input_desc[0].dims), torch.float32, device)
        out = tensor_at(outputs[0], tuple(output_desc[0].dims), torch.float32, device)
        out.fill_(float(x.reshape(-1)[0]))


class ReshaperCreator(ConcatScaleCreator):
    def create_plugin(self, name, fc, phase):
        return Reshaper()


@pytest.mark.parametrize("source", ["constant", "shape-tensor input"])
def test_output_shapes_can_come_from_shape_inputs(source):
    creator = ReshaperCreator()
    trt.get_plugin_registry().register_creator(creator, NAMESPACE)
    seen = {}

    def define(network):
        x = network.add_input("x", trt.float32, (1,))
        if source == "constant":
            dims = network.add_constant((2,), np.array([2, 5], np.int32)).get_output(0)
        else:
            dims = network.add_input("dims", trt.int32, (2,))
        layer = network.add_plugin_v3([x], [dims], Reshaper())
        seen["shape"] = layer.get_output(0).shape
        network.mark_output(layer.get_output(0))

    def configure(builder, config):
        if source != "constant":
            profile = builder.create_optimization_profile()
            profile.set_shape_input("dims", (1, 1), (2, 2), (3, 6))
            config.add_optimization_profile(profile)

    try:
        plan = build_plan(define, configure=configure)
        inputs = {"x": np.array([7.0], np.float32)}
        if source != "constant":
            inputs["dims"] = np.array([3, 4], np.int32)
        (result,) = run(load(plan), inputs).values()
    finally:
        trt.get_plugin_registry().deregister_creator(creator)
    expected_shape = (2, 5) if source == "constant" else (3, 4)
    assert seen["shape"] == ((2, 5) if source == "constant" else (-1, -1))
    np.testing.assert_array_equal(result, np.full(expected_shape, 7.0, np.float32))


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda attrs: attrs.update(fields=[{"name": "scale", "type": "FLOAT32", "data": "%%"}]), "not valid base64"),
        (lambda attrs: attrs.update(fields=[{"name": "s", "type": "FLOAT32", "data": "AAA="}]), "not a multiple"),
        (lambda attrs: attrs.update(output_shapes=[[["dim", 7, 0], 3], [1]]), "dimension 0 of input 7"),
        (lambda attrs: attrs.update(output_shapes=[[["op", "POW", 1, 2], 3], [1]]), "not a DimensionOperation"),
        (lambda attrs: attrs.update(output_shapes=[[["op", "FLOOR_DIV", 1, 0], 3], [1]]), "FLOOR_DIV by zero"),
        (lambda attrs: attrs.update(output_dtypes=[0]), "2 output shapes and 1 output types"),
        (lambda attrs: attrs.update(plugin=None), "unknown attributes ['plugin']"),
    ],
)  # fmt: skip
def test_plans_with_bad_plugin_attributes_are_refused(creator, logger, edit, message):
    plan = build_plan(concat_network(ConcatScale()), configure=dynamic_rows)

    def change(meta):
        edit(next(n for n in meta["nodes"] if n["op"] == "plugin_v3")["attrs"])

    assert trt.Runtime(logger).deserialize_cuda_engine(with_metadata(bytes(plan), change)) is None
    assert message in only_error(logger)
    assert ConcatScale.calls == [("configure", [((1, 3), (4, 3)), ((2, 3), (2, 3))])]
