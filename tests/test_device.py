"""Where tensors live: device choice, pointers seen as tensors, and execution on CUDA streams."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import tensorplan as trt
from helpers import build_plan, load
from tensorplan.device import bytes_at, execution_device, host_bytes, tensor_at


def test_host_pointers_become_tensors_without_copies():
    array = np.arange(6, dtype=np.float32)
    view = tensor_at(array.ctypes.data, (2, 3), torch.float32, torch.device("cpu"))
    view += 1
    np.testing.assert_array_equal(array, np.arange(1, 7))
    assert bytes_at(0, 0, torch.device("cpu")).numel() == 0
    data = bytes(range(10))
    assert host_bytes(memoryview(data))[3].item() == 3


def test_cpu_can_be_forced(monkeypatch):
    monkeypatch.setenv("TENSORPLAN_DEVICE", "cpu")
    assert execution_device() == torch.device("cpu")


def scaled_network(network):
    x = network.add_input("x", trt.float32, (-1, 1024))
    w = network.add_constant((1, 1024), np.full((1, 1024), 3, np.float32)).get_output(0)
    y = network.add_elementwise(x, w, trt.ElementWiseOperation.PROD).get_output(0)
    y = network.add_activation(y, trt.ActivationType.TANH).get_output(0)
    y.name = "y"
    network.mark_output(y)


def profile(builder, config):
    shapes = builder.create_optimization_profile()
    shapes.set_shape("x", (1, 1024), (64, 1024), (256, 1024))
    config.add_optimization_profile(shapes)


@pytest.mark.gpu
def test_engine_runs_on_the_gpu_on_the_callers_stream():
    engine = load(build_plan(scaled_network, configure=profile))
    assert engine._device.type == "cuda"
    contexts = [engine.create_execution_context() for _ in range(2)]
    streams = [torch.cuda.Stream() for _ in contexts]
    inputs = [torch.randn(n, 1024, device="cuda") for n in (256, 7)]
    outputs = [torch.empty_like(x) for x in inputs]
    for context, stream, x, y in zip(contexts, streams, inputs, outputs, strict=True):
        assert context.set_input_shape("x", tuple(x.shape))
        assert context.set_tensor_address("x", x.data_ptr())
        assert context.set_tensor_address("y", y.data_ptr())
        stream.wait_stream(torch.cuda.current_stream())
        assert context.execute_async_v3(stream.cuda_stream)
    for stream, x, y in zip(streams, inputs, outputs, strict=True):
        stream.synchronize()
        torch.testing.assert_close(y, torch.tanh(3 * x))


@pytest.mark.gpu
def test_execute_v2_is_synchronous_on_the_gpu():
    engine = load(build_plan(scaled_network, configure=profile))
    context = engine.create_execution_context()
    x = torch.randn(3, 1024, device="cuda")
    y = torch.empty_like(x)
    assert context.set_input_shape("x", (3, 1024))
    assert context.execute_v2([x.data_ptr(), y.data_ptr()])
    torch.testing.assert_close(y, torch.tanh(3 * x))


@pytest.mark.gpu
def test_weights_and_arena_live_on_the_device():
    engine = load(build_plan(scaled_network, configure=profile))
    assert engine._weights.bytes.device.type == "cuda"
    context = engine.create_execution_context()
    assert context._arena_bytes.device.type == "cuda"
