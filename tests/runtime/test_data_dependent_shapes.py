"""Outputs whose shapes depend on input values: non-zero, through IOutputAllocator."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tensorplan as trt
from helpers import OutputAllocator, build_plan, load


def nonzero_then_count(network: trt.INetworkDefinition) -> None:
    """idx = non_zero(x); n = shape(idx)[1] (a downstream layer of data-dependent shape)."""
    x = network.add_input("x", trt.float32, (-1, 4))
    indices = network.add_non_zero(x).get_output(0)
    indices.name = "indices"
    count = network.add_shape(indices).get_output(0)
    count.name = "count"
    network.mark_output(indices)
    network.mark_output(count)


def dynamic_batch(builder, config):
    profile = builder.create_optimization_profile()
    profile.set_shape("x", (1, 4), (2, 4), (8, 4))
    config.add_optimization_profile(profile)


@pytest.fixture(scope="module")
def engine() -> trt.ICudaEngine:
    plan = build_plan(nonzero_then_count, configure=dynamic_batch)
    assert plan is not None
    return load(plan)


def execute(engine, x: np.ndarray):
    context = engine.create_execution_context()
    device = engine._device
    allocator = OutputAllocator(device)
    source = torch.from_numpy(x).to(device)
    assert context.set_input_shape("x", x.shape)
    assert context.set_tensor_address("x", source.data_ptr())
    assert tuple(context.get_tensor_shape("indices")) == (2, -1)
    for name in ("indices", "count"):
        assert context.set_output_allocator(name, allocator)
    assert context.execute_async_v3(0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return allocator


@pytest.mark.parametrize("rows", [1, 3, 8])
def test_non_zero_indices_and_a_shape_computed_from_them(engine, rows):
    x = np.random.default_rng(rows).integers(-1, 2, (rows, 4)).astype(np.float32)
    allocator = execute(engine, x)
    expected = np.stack(np.nonzero(x))
    assert allocator.shapes["indices"] == expected.shape
    np.testing.assert_array_equal(allocator.tensor("indices", torch.int64).cpu().numpy(), expected)
    assert allocator.shapes["count"] == (2,)
    np.testing.assert_array_equal(
        allocator.tensor("count", torch.int64).cpu().numpy(), expected.shape
    )


def test_all_zero_input_gives_an_empty_output(engine):
    allocator = execute(engine, np.zeros((2, 4), np.float32))
    assert allocator.shapes["indices"] == (2, 0)


def test_network_level_shape_is_unknown_and_the_engine_says_so():
    network = trt.Builder(trt.Logger()).create_network()
    nonzero_then_count(network)
    assert tuple(network.get_output(0).shape) == (2, -1)
    assert tuple(network.get_output(1).shape) == (2,)


def test_an_output_without_allocator_is_a_reported_error(engine, logger):
    context = engine.create_execution_context()
    context._logger = logger
    x = torch.ones(2, 4, device=engine._device)
    context.set_input_shape("x", (2, 4))
    context.set_tensor_address("x", x.data_ptr())
    assert not context.execute_async_v3(0)
    assert "set_output_allocator" in logger.errors[-1]


def test_constant_input_is_folded_at_build_time():
    def define(network):
        data = np.array([[0, 1], [2, 0]], np.float32)
        constant = network.add_constant(data.shape, trt.Weights(data)).get_output(0)
        indices = network.add_non_zero(constant).get_output(0)
        out = network.add_identity(indices).get_output(0)
        out.name = "y"
        network.mark_output(out)

    plan = build_plan(define)
    engine = load(plan)
    assert tuple(engine.get_tensor_shape("y")) == (2, 2)
    context = engine.create_execution_context()
    y = torch.empty(2, 2, dtype=torch.int64, device=engine._device)
    context.set_tensor_address("y", y.data_ptr())
    assert context.execute_async_v3(0)
    np.testing.assert_array_equal(y.cpu().numpy(), [[0, 1], [1, 0]])
