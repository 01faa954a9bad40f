"""Build a network into a plan, load it with a Runtime, and run it: the path every test takes."""

from __future__ import annotations

from collections.abc import Callable, Mapping

import ml_dtypes
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
    # references are computed in FP32: keep GPUs from TF32 (on by default, as in TensorRT)
    config.clear_flag(trt.BuilderFlag.TF32)
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
            array = _storage(np.require(np.asarray(inputs[name]), requirements="C"))  # keeps 0-D
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
    return {name: _numpy(tensor, engine.get_tensor_dtype(name)) for name, tensor in outputs.items()}


def constant(network: trt.INetworkDefinition, array: np.ndarray) -> trt.ITensor:
    """A constant layer's output holding `array`."""
    return network.add_constant(array.shape, trt.Weights(np.ascontiguousarray(array))).get_output(0)


def keep_layers_apart(network: trt.INetworkDefinition) -> None:
    """Set every layer's precision (to its FLOAT), which the builder never fuses through:
    the plan then runs one node per layer, with activations in between (for tests of plan
    structure and activation memory rather than of fusion)."""
    for index in range(network.num_layers):
        network.get_layer(index).precision = trt.float32


def output(network: trt.INetworkDefinition, tensor: trt.ITensor, name: str = "y") -> None:
    """Name `tensor` and mark it as a network output."""
    tensor.name = name
    network.mark_output(tensor)


def build_and_run(
    define: Callable[[trt.INetworkDefinition], None],
    inputs: Mapping[str, np.ndarray],
    configure: Callable[[trt.Builder, trt.IBuilderConfig], None] | None = None,
) -> dict[str, np.ndarray]:
    """Build, serialize, deserialize and execute: the outputs by name."""
    plan = build_plan(define, configure=configure)
    assert plan is not None, "the build failed"
    return run(load(plan), inputs)


class OutputAllocator(trt.IOutputAllocator):
    """Gives each output a buffer of the asked size and keeps the shape it is told."""

    def __init__(self, device: torch.device) -> None:
        trt.IOutputAllocator.__init__(self)
        self.device = device
        self.buffers: dict[str, torch.Tensor] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}

    def reallocate_output(self, tensor_name, memory, size, alignment):
        self.buffers[tensor_name] = torch.empty(max(size, 1), dtype=torch.uint8, device=self.device)
        return self.buffers[tensor_name].data_ptr()

    def notify_shape(self, tensor_name, shape):
        self.shapes[tensor_name] = tuple(shape)

    def tensor(self, name: str, dtype: torch.dtype) -> torch.Tensor:
        """The output `name` as written, in its told shape."""
        shape = self.shapes[name]
        count = int(np.prod(shape))
        return self.buffers[name][: count * dtype.itemsize].view(dtype).reshape(shape)


def run_with_allocator(
    engine: trt.ICudaEngine, inputs: Mapping[str, np.ndarray]
) -> dict[str, np.ndarray]:
    """Execute with every output's memory from an IOutputAllocator; the outputs by name."""
    context = engine.create_execution_context()
    device = engine._device
    allocator = OutputAllocator(device)
    keep = []
    outputs = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
            array = np.require(np.asarray(inputs[name]), requirements="C")
            host = engine.get_tensor_location(name) == trt.TensorLocation.HOST
            tensor = torch.from_numpy(array.copy()).to("cpu" if host else device)
            keep.append(tensor)
            assert context.set_input_shape(name, array.shape)
            assert context.set_tensor_address(name, tensor.data_ptr())
        else:
            outputs.append(name)
            assert context.set_output_allocator(name, allocator)
    assert context.execute_async_v3(0)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return {
        name: allocator.tensor(name, torch_dtype(engine.get_tensor_dtype(name))).cpu().numpy()
        for name in outputs
    }


def _numpy(tensor: torch.Tensor, dtype: trt.DataType) -> np.ndarray:
    """An output as numpy: BF16 as float32; FP8, E8M0 and the sub-byte types as ml_dtypes."""
    if tensor.dtype == torch.bfloat16:
        return tensor.float().cpu().numpy()
    if dtype in _SUB_BYTE_INTEGERS:
        return tensor.cpu().numpy().astype(_ML_DTYPES[dtype])
    if dtype in _ML_DTYPES:  # their bit codes, a byte each
        return tensor.view(torch.uint8).cpu().numpy().view(_ML_DTYPES[dtype])
    return tensor.cpu().numpy()


def _storage(array: np.ndarray) -> np.ndarray:
    """An ml_dtypes array as tensorplan stores its type: the sub-byte integers as int8/uint8
    values, bfloat16 and the narrow floats as their bit codes; other arrays unchanged."""
    dtype = _DATATYPE_OF_ML.get(array.dtype)
    if dtype is None:
        return array
    if dtype in _SUB_BYTE_INTEGERS:
        return array.astype(
            np.int8 if dtype in (trt.DataType.INT4, trt.DataType.INT2) else np.uint8
        )
    return array.view(np.uint16 if dtype == trt.bfloat16 else np.uint8)


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
        **_DATATYPE_OF_ML,
    }[array.dtype]


_ML_DTYPES = {
    trt.bfloat16: ml_dtypes.bfloat16,
    trt.DataType.FP8: ml_dtypes.float8_e4m3fn,
    trt.DataType.FP8_E5M2: ml_dtypes.float8_e5m2,
    trt.DataType.FP8_E4M3FNUZ: ml_dtypes.float8_e4m3fnuz,
    trt.DataType.FP8_E5M2FNUZ: ml_dtypes.float8_e5m2fnuz,
    trt.DataType.E8M0: ml_dtypes.float8_e8m0fnu,
    trt.DataType.FP4: ml_dtypes.float4_e2m1fn,
    trt.DataType.FP6_E2M3: ml_dtypes.float6_e2m3fn,
    trt.DataType.FP6_E3M2: ml_dtypes.float6_e3m2fn,
    trt.DataType.INT4: ml_dtypes.int4,
    trt.DataType.UINT4: ml_dtypes.uint4,
    trt.DataType.INT2: ml_dtypes.int2,
    trt.DataType.UINT2: ml_dtypes.uint2,
}
"""The ml_dtypes type (onnx.numpy_helper's arrays) of the types numpy lacks."""

_DATATYPE_OF_ML = {np.dtype(ml): dtype for dtype, ml in _ML_DTYPES.items()}
_SUB_BYTE_INTEGERS = frozenset(
    {trt.DataType.INT4, trt.DataType.UINT4, trt.DataType.INT2, trt.DataType.UINT2}
)


__all__ = [
    "OutputAllocator",
    "build_and_run",
    "build_plan",
    "constant",
    "dtype_of",
    "load",
    "output",
    "run",
    "run_with_allocator",
    "torch_dtype",
]
