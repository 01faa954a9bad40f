"""Network inputs that are shape tensors: values in host memory that shape the network."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tensorplan as trt
from helpers import build_plan, load, run


def reshape_by_input(network: trt.INetworkDefinition) -> None:
    """y = reshape(x, dims): `dims` is an INT64 network input, so it is a shape tensor."""
    x = network.add_input("x", trt.float32, (-1,))
    dims = network.add_input("dims", trt.int64, (2,))
    shuffle = network.add_shuffle(x)
    shuffle.set_input(1, dims)
    network.mark_output(shuffle.get_output(0))
    shuffle.get_output(0).name = "y"


def profile_values(low, opt, high):
    def configure(builder: trt.Builder, config: trt.IBuilderConfig) -> None:
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1,), (6,), (36,))
        profile.set_shape_input("dims", low, opt, high)
        config.add_optimization_profile(profile)

    return configure


@pytest.fixture(scope="module")
def engine() -> trt.ICudaEngine:
    plan = build_plan(reshape_by_input, configure=profile_values((1, 1), (2, 3), (6, 6)))
    assert plan is not None
    return load(plan)


def test_the_input_is_a_host_shape_tensor_in_the_network_and_the_engine(engine):
    network = trt.Builder(trt.Logger()).create_network()
    reshape_by_input(network)
    assert network.get_input(1).is_shape_tensor
    assert not network.get_input(0).is_shape_tensor
    assert engine.is_shape_inference_io("dims")
    assert not engine.is_shape_inference_io("x")
    assert engine.get_tensor_location("dims") == trt.TensorLocation.HOST
    assert engine.get_tensor_location("x") == trt.TensorLocation.DEVICE
    assert engine.get_tensor_profile_values(0, "dims") == [[1, 1], [2, 3], [6, 6]]
    assert engine.get_tensor_profile_values(0, "x") == []


@pytest.mark.parametrize("dims", [(2, 3), (3, 2), (1, 6), (6, 1)])
def test_one_engine_reshapes_by_the_values_given_at_run_time(engine, dims):
    x = np.arange(6, dtype=np.float32)
    out = run(engine, {"x": x, "dims": np.array(dims, dtype=np.int64)})
    np.testing.assert_array_equal(out["y"], x.reshape(dims))


def test_values_are_read_at_each_execution_from_the_same_address(engine):
    context = engine.create_execution_context()
    x = torch.arange(6, dtype=torch.float32, device=engine._device)
    dims = np.array([2, 3], dtype=np.int64)
    context.set_input_shape("x", (6,))
    context.set_input_shape("dims", (2,))
    context.set_tensor_address("x", x.data_ptr())
    context.set_tensor_address("dims", dims.ctypes.data)
    assert context.all_shape_inputs_specified
    assert tuple(context.get_tensor_shape("y")) == (2, 3)
    dims[:] = (3, 2)
    assert tuple(context.get_tensor_shape("y")) == (3, 2)
    y = torch.empty(3, 2, device=engine._device)
    context.set_tensor_address("y", y.data_ptr())
    assert context.execute_async_v3(0)
    if y.is_cuda:
        torch.cuda.synchronize()
    assert torch.equal(y.cpu(), torch.arange(6.0).reshape(3, 2))


def test_values_outside_the_profile_are_refused(engine, logger):
    context = engine.create_execution_context()
    context.error_recorder = None
    context._logger = logger
    dims = np.array([12, 1], dtype=np.int64)
    context.set_input_shape("x", (6,))
    context.set_input_shape("dims", (2,))
    context.set_tensor_address("dims", dims.ctypes.data)
    assert tuple(context.get_tensor_shape("y")) == (-1, -1)
    assert "outside optimization profile 0" in logger.errors[-1]


def test_a_missing_address_is_reported_by_infer_shapes(engine):
    context = engine.create_execution_context()
    context.set_input_shape("x", (6,))
    context.set_input_shape("dims", (2,))
    assert not context.all_shape_inputs_specified
    assert context.infer_shapes() == ["dims"]


def test_a_build_without_values_for_a_shape_tensor_input_fails(logger):
    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1,), (6,), (36,))
        config.add_optimization_profile(profile)

    assert build_plan(reshape_by_input, logger, configure) is None
    assert "'dims' is a shape tensor" in logger.errors[-1]
    assert "set_shape_input" in logger.errors[-1]


@pytest.mark.parametrize(
    ("low", "opt", "high", "message"),
    [
        ((1,), (2,), (3,), "must have 2 elements"),
        ((2, 3), (1, 1), (6, 6), "min <= opt <= max"),
    ],
)
def test_bad_profile_values_fail_the_build(logger, low, opt, high, message):
    assert build_plan(reshape_by_input, logger, profile_values(low, opt, high)) is None
    assert message in logger.errors[-1]


def test_profile_values_survive_serialization(engine):
    again = load(engine.serialize())
    assert again.get_tensor_profile_values(0, "dims") == [[1, 1], [2, 3], [6, 6]]
    out = run(again, {"x": np.arange(6, dtype=np.float32), "dims": np.array([3, 2])})
    assert out["y"].shape == (3, 2)


def test_a_scalar_shape_tensor_input():
    """A 0-D shape tensor (ONNX's CumSum axis, say) is read like a 1-D one."""

    def define(network):
        x = network.add_input("x", trt.float32, (2, 3))
        axis = network.add_input("axis", trt.int32, ())
        layer = network.add_cumulative(x, axis, trt.CumulativeOperation.SUM, False, False)
        layer.get_output(0).name = "y"
        network.mark_output(layer.get_output(0))

    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape_input("axis", (0,), (1,), (1,))
        config.add_optimization_profile(profile)

    engine = load(build_plan(define, configure=configure))
    x = np.arange(6, dtype=np.float32).reshape(2, 3)
    for axis in (0, 1):
        out = run(engine, {"x": x, "axis": np.array(axis, dtype=np.int32)})
        np.testing.assert_array_equal(out["y"], np.cumsum(x, axis=axis))
