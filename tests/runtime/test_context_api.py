"""IExecutionContext: shapes, addresses, execution, profiles, and errors reported as TensorRT does."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import runtime_networks as nets
import torch

import tensorplan as trt
from tensorplan.device import execution_device

INVALID_ARGUMENT = 3


@pytest.fixture
def engine(logger) -> trt.ICudaEngine:
    engine = trt.Runtime(logger).deserialize_cuda_engine(nets.plan(profiles=2))
    assert engine is not None
    return engine


@pytest.fixture
def context(engine) -> trt.IExecutionContext:
    context = engine.create_execution_context()
    assert context is not None
    return context


def test_context_members(engine, context):
    assert context.engine is engine
    assert context.name == ""
    context.name = "first"
    assert context.name == "first"
    assert context.active_optimization_profile == 0
    assert context.error_recorder is None


def test_shapes_before_and_after_set_input_shape(context, logger):
    assert not context.all_binding_shapes_specified
    assert context.infer_shapes() == ["x"]
    assert tuple(context.get_tensor_shape("x")) == (-1, 4)
    assert tuple(context.get_tensor_shape("y")) == (-1, 4)
    assert tuple(context.get_tensor_shape("bias")) == (1, 4)
    assert context.set_input_shape("x", (3, 4))
    assert context.all_binding_shapes_specified
    assert context.infer_shapes() == []
    for name in ("x", "y", "z"):
        assert tuple(context.get_tensor_shape(name)) == (3, 4)
    assert tuple(context.get_tensor_strides("y")) == (4, 1)
    assert context.set_input_shape("x", trt.Dims([4, 4]))
    assert tuple(context.get_tensor_shape("z")) == (4, 4)
    assert context.set_input_shape("x", [1, 4])
    assert tuple(context.get_tensor_shape("z")) == (1, 4)
    assert logger.errors == []


SHAPE_ERRORS = {
    "wrong rank": ("x", (3,), "has rank 2 [-1, 4], got shape [3] of rank 1"),
    "static dim": ("x", (3, 5), "Static dimension mismatch while setting input shape for x"),
    "static input": (
        "bias",
        (2, 4),
        "Static dimension mismatch while setting input shape for bias",
    ),
    "above the profile": ("x", (5, 4), "outside optimization profile 0: min [1, 4], max [4, 4]"),
    "below the profile": ("x", (0, 4), "outside optimization profile 0"),
    "an output": ("y", (3, 4), "'y' is not an input tensor"),
    "unknown": ("w", (3, 4), "'w' is not an input tensor"),
    "not integers": ("x", ("a", 4), "is not a list of integers"),
}


@pytest.mark.parametrize(("name", "shape", "message"), SHAPE_ERRORS.values(), ids=SHAPE_ERRORS)
def test_set_input_shape_errors(context, logger, name, shape, message):
    assert context.set_input_shape("x", (2, 4))
    assert context.set_input_shape(name, shape) is False
    api, code, category, detail = nets.take_error(logger)
    assert (api, code, category) == ("IExecutionContext::setInputShape", 3, "API Usage Error")
    assert message in detail
    assert tuple(context.get_tensor_shape("x")) == (2, 4), "a refused shape changes nothing"


def test_get_tensor_shape_of_an_unknown_name(context, logger):
    assert context.get_tensor_shape("w") == trt.Dims()
    api, code, _, detail = nets.take_error(logger)
    assert (api, code) == ("IExecutionContext::getTensorShape", INVALID_ARGUMENT)
    assert "Given invalid tensor name: w" in detail


def test_tensor_addresses(context, logger):
    assert context.get_tensor_address("y") == 0
    assert context.set_tensor_address("y", 4096)
    assert context.get_tensor_address("y") == 4096
    assert context.set_tensor_address("y", np.int64(8192))
    assert context.get_tensor_address("y") == 8192
    assert context.get_tensor_address("w") == 0
    assert logger.errors == []
    assert context.set_tensor_address("w", 4096) is False
    assert "Given invalid tensor name: w" in nets.take_error(logger)[3]
    assert context.set_tensor_address("y", "0x1000") is False
    assert "is not an integer" in nets.take_error(logger)[3]


def test_execute_async_v3(context, logger):
    for rows in (1, 4, 2):  # shapes change between runs
        nets.execute(context, rows, seed=rows)
    assert logger.errors == []


def test_execute_v2_takes_bindings_in_io_order(context, logger):
    x, bias = nets.inputs(3)
    bound = nets.Bound(context, x, bias)
    for name in ("x", "bias", "y", "z"):
        assert context.set_tensor_address(name, 0)
    assert context.execute_v2(bound.bindings)
    nets.check(bound.outputs(), nets.reference(x, bias))
    assert context.get_tensor_address("z") == bound.z.data_ptr()
    assert logger.errors == []


@pytest.mark.parametrize(
    ("bindings", "message"),
    [
        ([1, 2], "got 2 bindings; the engine has 4 IO tensors"),
        (None, "bindings must be a list of integer addresses"),
        ([1, 2, 3, "4"], "bindings must be a list of integer addresses"),
    ],
)
def test_execute_v2_with_bad_bindings(context, logger, bindings, message):
    assert context.set_input_shape("x", (2, 4))
    assert context.execute_v2(bindings) is False
    api, code, _, detail = nets.take_error(logger)
    assert (api, code) == ("IExecutionContext::executeV2", INVALID_ARGUMENT)
    assert message in detail


def test_missing_shapes_and_addresses_are_reported(context, logger):
    x, bias = nets.inputs(2)
    assert context.execute_async_v3(nets.stream()) is False
    api, code, _, detail = nets.take_error(logger)
    assert (api, code) == ("IExecutionContext::enqueueV3", INVALID_ARGUMENT)
    assert "input shapes are not set for ['x']" in detail

    bound = nets.Bound(context, x, bias)
    for name in ("bias", "z"):
        assert context.set_tensor_address(name, 0)
        assert context.execute_async_v3(nets.stream()) is False
        kind = "input" if name == "bias" else "output"
        detail = nets.take_error(logger)[3]
        assert f"Address is not set for {kind} tensor {name}" in detail
        assert context.set_tensor_address(name, getattr(bound, name).data_ptr())
    assert context.execute_async_v3(nets.stream())
    nets.check(bound.outputs(), nets.reference(x, bias))


def test_two_optimization_profiles(context, logger):
    assert context.set_input_shape("x", (3, 4))
    assert context.set_optimization_profile_async(1, nets.stream())
    assert context.active_optimization_profile == 1
    assert context.infer_shapes() == ["x"], "switching profiles forgets dynamic input shapes"
    assert context.set_input_shape("x", (3, 4)) is False
    assert "outside optimization profile 1: min [5, 4], max [16, 4]" in nets.take_error(logger)[3]
    nets.execute(context, rows=16)
    assert context.set_optimization_profile_async(0, nets.stream())
    nets.execute(context, rows=4)
    for index in (2, -1):
        assert context.set_optimization_profile_async(index, nets.stream()) is False
        api, _, _, detail = nets.take_error(logger)
        assert api == "IExecutionContext::setOptimizationProfileAsync"
        assert f"profile index {index} is out of range; the engine has 2 profiles" in detail
    assert context.active_optimization_profile == 0


def test_contexts_of_one_engine_are_independent(engine, logger):
    contexts = [engine.create_execution_context() for _ in range(3)]
    assert contexts[2].set_optimization_profile_async(1, nets.stream())
    cases = [(4, 1), (1, 2), (12, 3)]
    bound = []
    for context, (rows, seed) in zip(contexts, cases, strict=True):
        x, bias = nets.inputs(rows, seed)
        bound.append((nets.Bound(context, x, bias), nets.reference(x, bias)))
    for context in reversed(contexts):
        assert context.execute_async_v3(nets.stream())
    for (outputs, expected), context in zip(bound, contexts, strict=True):
        nets.check(outputs.outputs(), expected)
        assert tuple(context.get_tensor_shape("y")) == expected[0].shape
    assert logger.errors == []


def test_contexts_run_concurrently_in_threads(engine, logger):
    contexts = [engine.create_execution_context() for _ in range(4)]

    def work(index: int) -> None:
        for repeat in range(20):
            nets.execute(contexts[index], rows=1 + (index + repeat) % 4, seed=repeat)

    with ThreadPoolExecutor(len(contexts)) as pool:
        list(pool.map(work, range(len(contexts))))
    assert logger.errors == []


def test_a_contexts_own_error_recorder(context, logger, recorder):
    context.error_recorder = recorder
    assert context.set_input_shape("x", (99, 4)) is False
    assert len(recorder.errors) == 1
    assert recorder.errors[0][0] == trt.ErrorCodeTRT.INVALID_ARGUMENT
    assert logger.errors == []
    assert context.engine.error_recorder is None


def broadcasting_network(network: trt.INetworkDefinition) -> None:
    """x (-1, -1) + a (1, 4) constant: valid at (n, 1) and (n, 4), not at (n, 3)."""
    x = network.add_input("x", trt.float32, (-1, -1))
    w = network.add_constant((1, 4), np.ones((1, 4), np.float32)).get_output(0)
    y = network.add_elementwise(x, w, trt.ElementWiseOperation.SUM).get_output(0)
    y.name = "y"
    network.mark_output(y)


def test_shapes_inside_the_profile_that_do_not_broadcast(logger):
    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 1), (2, 4), (8, 4))
        config.add_optimization_profile(profile)

    plan = nets.build_plan(broadcasting_network, configure=configure)
    context = trt.Runtime(logger).deserialize_cuda_engine(plan).create_execution_context()
    assert context.set_input_shape("x", (2, 3))
    assert tuple(context.get_tensor_shape("y")) == (-1, 4)
    api, code, _, detail = nets.take_error(logger)
    assert (api, code) == ("IExecutionContext::getTensorShape", INVALID_ARGUMENT)
    assert "layer '(Unnamed Layer* 1) [ElementWise]'" in detail
    assert "cannot be broadcast" in detail
    with pytest.raises(RuntimeError, match="shape inference failed"):
        context.infer_shapes()
    assert "IExecutionContext::inferShapes" in nets.take_error(logger)[0]
    x = torch.ones((2, 3), device=execution_device())
    y = torch.empty((2, 4), device=execution_device())
    assert context.execute_v2([x.data_ptr(), y.data_ptr()]) is False
    api, _, _, detail = nets.take_error(logger)
    assert api == "IExecutionContext::enqueueV3"
    assert "cannot be broadcast" in detail
    assert context.set_input_shape("x", (2, 1))
    assert context.execute_v2([x.data_ptr(), y.data_ptr()])
    torch.testing.assert_close(y, torch.full((2, 4), 2.0, device=execution_device()))
