"""Build a network into a plan, load it with a Runtime, and run it: the path every test takes."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

import tensorplan as trt
from tensorplan.device import torch_dtype


def build_plan(
    define: Callable[[trt.INetworkDefinition], None],
    logger: trt.ILogger | None = None,
    configure: Callable[[trt.Builder, trt.IBuilderConfig], None] | None = None,
) -> trt.IHostMemory | None:
    """Build the network that `define` fills in; the plan, or None if the build failed."""
    builder = trt.Builder(logger or trt.Logger(trt.Logger.ERROR))
    network = builder.create_network()
    define(network)
    config = builder.create_builder_config()
    if configure is not None:
        configure(builder, config)
    return builder.build_serialized_network(network, config)


def load(plan: bytes, logger: trt.ILogger | None = None) -> trt.ICudaEngine:
    """Deserialize a plan with a fresh Runtime; the test fails if it cannot."""
    engine = trt.Runtime(logger or trt.Logger(trt.Logger.ERROR)).deserialize_cuda_engine(plan)
    assert engine is not None, "the plan did not deserialize"
    return engine


def run(engine: trt.ICudaEngine, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Execute once with `inputs` (by name) on the engine's device (shape-tensor inputs in host
    memory, as TensorRT wants them); the outputs by name."""
    context = engine.create_execution_context()
    assert context is not None
    device = engine._device
    keep = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            array = np.require(np.asarray(inputs[name]), requirements="C")  # keeps 0-D
            assert context.set_input_shape(name, array.shape)
            host = engine.get_tensor_location(name) == trt.TensorLocation.HOST
            tensor = torch.from_numpy(array.copy()).to("cpu" if host else device)
            keep.append(tensor)
            assert context.set_tensor_address(name, tensor.data_ptr())
    outputs = {}
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.OUTPUT:
            shape = tuple(context.get_tensor_shape(name))
            dtype = torch_dtype(engine.get_tensor_dtype(name))
            outputs[name] = torch.empty(shape, dtype=dtype, device=device)
            assert context.set_tensor_address(name, outputs[name].data_ptr())
    stream = torch.cuda.current_stream().cuda_stream if device.type == "cuda" else 0
    assert context.execute_async_v3(stream)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {name: _numpy(tensor) for name, tensor in outputs.items()}


def build_and_run(
    define: Callable[[trt.INetworkDefinition], None],
    inputs: Mapping[str, np.ndarray],
    configure: Callable[[trt.Builder, trt.IBuilderConfig], None] | None = None,
) -> dict[str, np.ndarray]:
    """Build, serialize, deserialize and execute: the outputs by name."""
    plan = build_plan(define, configure=configure)
    assert plan is not None, "the build failed"
    return run(load(plan), inputs)


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    if tensor.dtype == torch.bfloat16:
        return tensor.float().cpu().numpy()
    return tensor.cpu().numpy()


def dtype_of(array: np.ndarray) -> trt.DataType:
    return {
        np.dtype(np.float32): trt.float32,
        np.dtype(np.float16): trt.float16,
        np.dtype(np.float64): trt.DataType.DOUBLE,
        np.dtype(np.int32): trt.int32,
        np.dtype(np.int64): trt.int64,
        np.dtype(np.int8): trt.int8,
        np.dtype(np.uint8): trt.uint8,
        np.dtype(np.bool_): trt.bool,
    }[array.dtype]


__all__ = ["build_and_run", "build_plan", "dtype_of", "load", "run", "torch_dtype"]
