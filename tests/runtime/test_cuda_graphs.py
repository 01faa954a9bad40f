"""CUDA graphs: tensorplan replays repeated executions as one graph, and callers can capture
a context into their own graph (GPU only)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tensorplan as trt
from helpers import build_plan, load

pytestmark = pytest.mark.gpu


def mlp(network: trt.INetworkDefinition) -> None:
    """y = relu(x @ W + b) @ W2, with a dynamic batch."""
    rng = np.random.default_rng(0)
    x = network.add_input("x", trt.float32, (-1, 64))
    w = network.add_constant((64, 32), rng.standard_normal((64, 32), np.float32)).get_output(0)
    h = network.add_matrix_multiply(x, trt.MatrixOperation.NONE, w, trt.MatrixOperation.NONE)
    h = network.add_activation(h.get_output(0), trt.ActivationType.RELU).get_output(0)
    w2 = network.add_constant((32, 8), rng.standard_normal((32, 8), np.float32)).get_output(0)
    y = network.add_matrix_multiply(h, trt.MatrixOperation.NONE, w2, trt.MatrixOperation.NONE)
    y.get_output(0).name = "y"
    network.mark_output(y.get_output(0))


def reference(network_inputs: torch.Tensor) -> torch.Tensor:
    rng = np.random.default_rng(0)
    w = torch.from_numpy(rng.standard_normal((64, 32), np.float32)).cuda()
    w2 = torch.from_numpy(rng.standard_normal((32, 8), np.float32)).cuda()
    return torch.relu(network_inputs @ w) @ w2


@pytest.fixture(scope="module")
def plan() -> bytes:
    def configure(builder, config):
        profile = builder.create_optimization_profile()
        profile.set_shape("x", (1, 64), (4, 64), (16, 64))
        config.add_optimization_profile(profile)
        config.clear_flag(trt.BuilderFlag.TF32)

    result = build_plan(mlp, configure=configure)
    assert result is not None
    return bytes(result)


def bind(context, x: torch.Tensor, y: torch.Tensor) -> None:
    assert context.set_input_shape("x", tuple(x.shape))
    assert context.set_tensor_address("x", x.data_ptr())
    assert context.set_tensor_address("y", y.data_ptr())


def test_repeated_executions_replay_correctly_with_new_values_and_shapes(plan):
    engine = load(plan)
    context = engine.create_execution_context()
    stream = torch.cuda.Stream()
    for batch in (4, 4, 4, 4, 9, 9, 9, 4):
        x = torch.randn(batch, 64, device="cuda")
        y = torch.empty(batch, 8, device="cuda")
        bind(context, x, y)
        for _ in range(3):  # same addresses, new values each time
            x.normal_()
            stream.wait_stream(torch.cuda.current_stream())
            assert context.execute_async_v3(stream.cuda_stream)
            torch.cuda.current_stream().wait_stream(stream)
            torch.testing.assert_close(y, reference(x), rtol=1e-4, atol=1e-4)
    assert context._graphs._graph is not None  # the last shapes were replayed as a graph


def test_a_caller_can_capture_a_context_into_its_own_graph(plan):
    engine = load(plan)
    context = engine.create_execution_context()
    x = torch.randn(4, 64, device="cuda")
    y = torch.empty(4, 8, device="cuda")
    bind(context, x, y)
    stream = torch.cuda.Stream()
    with torch.cuda.stream(stream):
        assert context.execute_async_v3(stream.cuda_stream)  # warm-up, as with TensorRT
    stream.synchronize()
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, stream=stream):
        assert context.execute_async_v3(stream.cuda_stream)
    for _ in range(2):
        x.normal_()
        graph.replay()
        torch.cuda.synchronize()
        torch.testing.assert_close(y, reference(x), rtol=1e-4, atol=1e-4)


def test_two_contexts_of_one_engine_run_concurrently_on_two_streams(plan):
    engine = load(plan)
    contexts = [engine.create_execution_context() for _ in range(2)]
    streams = [torch.cuda.Stream() for _ in range(2)]
    xs = [torch.randn(16, 64, device="cuda") for _ in range(2)]
    ys = [torch.empty(16, 8, device="cuda") for _ in range(2)]
    torch.cuda.synchronize()
    for _ in range(5):
        for context, stream, x, y in zip(contexts, streams, xs, ys, strict=True):
            bind(context, x, y)
            assert context.execute_async_v3(stream.cuda_stream)
    torch.cuda.synchronize()
    for x, y in zip(xs, ys, strict=True):
        torch.testing.assert_close(y, reference(x), rtol=1e-4, atol=1e-4)
