"""ONNX's backend interface (onnx.backend.base) over tensorplan: every run goes through a
real plan.

prepare() parses the model; the first run() with concrete inputs builds it (an
optimization profile with min = opt = max = the given shapes where the model has dynamic
dims, and the given values for shape-tensor inputs), serializes the plan, deserializes
it with Runtime and executes it with an execution context. Engines are cached per input
signature. Graph inputs that the parser can only take as build-time constants (ONNX's
node tests feed Slice starts, reduction axes and the like as inputs) are made
initializers from the values given to run: that engine is specialized to those values,
as a min = opt = max profile is to its shapes.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import ml_dtypes
import numpy as np
import onnx
import torch
from onnx.backend.base import Backend, BackendRep, Device, DeviceType

from ..builder.builder import Builder
from ..device import torch_dtype
from ..logging import ILogger
from ..runtime.output_allocator import IOutputAllocator
from ..runtime.runtime import Runtime
from ..types import DataType, TensorIOMode
from .parser import OnnxParser

MAX_CONSTANT_ROUNDS = 8
"""How many times preparing may turn requested graph inputs into constants and retry."""

_ML_DTYPES = {
    torch.bfloat16: ml_dtypes.bfloat16,
    torch.float8_e4m3fn: ml_dtypes.float8_e4m3fn,
    torch.float8_e5m2: ml_dtypes.float8_e5m2,
    torch.float8_e4m3fnuz: ml_dtypes.float8_e4m3fnuz,
    torch.float8_e5m2fnuz: ml_dtypes.float8_e5m2fnuz,
    torch.float8_e8m0fnu: ml_dtypes.float8_e8m0fnu,
}

_SUB_BYTE = {
    DataType.INT4: (ml_dtypes.int4, None),
    DataType.UINT4: (ml_dtypes.uint4, None),
    DataType.INT2: (ml_dtypes.int2, None),
    DataType.UINT2: (ml_dtypes.uint2, None),
    DataType.FP4: (ml_dtypes.float4_e2m1fn, 0x0F),
    DataType.FP6_E2M3: (ml_dtypes.float6_e2m3fn, 0x3F),
    DataType.FP6_E3M2: (ml_dtypes.float6_e3m2fn, 0x3F),
}
"""Sub-byte DataTypes (a value, or a float's code under the mask, per byte: docs/dtypes.md)
and the ml_dtypes types ONNX uses for them."""


class BackendError(RuntimeError):
    """A model the backend cannot prepare or run; the message has the parser's or builder's
    errors."""


class CollectingLogger(ILogger):
    """Keeps error messages so that failures can say why."""

    def __init__(self) -> None:
        ILogger.__init__(self)
        self.errors: list[str] = []

    def log(self, severity: ILogger.Severity, msg: str) -> None:
        if severity <= ILogger.Severity.ERROR:
            self.errors.append(msg)


class TensorplanRep(BackendRep):
    """A prepared model: builds one engine per input signature and runs it."""

    def __init__(self, model: onnx.ModelProto, device: str) -> None:
        self._model = model
        self._device = device
        initializers = {t.name for t in model.graph.initializer}
        self.input_names = [v.name for v in model.graph.input if v.name not in initializers]
        self.output_names = [v.name for v in model.graph.output]
        self._by_values: dict[tuple, set[str]] = {}
        """Per input shapes: the inputs whose values the engine is specialized to."""
        self._engines: dict[tuple, tuple[Any, set[str]]] = {}
        self._logger = CollectingLogger()

    def run(self, inputs: Any, **kwargs: Any) -> tuple[np.ndarray, ...]:
        feeds = self._feeds(inputs)
        shapes = _signature(feeds, set())
        key = _signature(feeds, self._by_values.get(shapes, set()))
        if key not in self._engines:
            engine, constants, by_values = self._build(feeds)
            self._by_values[shapes] = by_values
            key = _signature(feeds, by_values)
            self._engines[key] = (engine, constants)
        engine, constants = self._engines[key]
        self._logger.errors.clear()
        with _on_device(self._device):
            try:
                outputs = execute(engine, {n: a for n, a in feeds.items() if n not in constants})
            except BackendError as error:
                raise BackendError(f"{error}: {'; '.join(self._logger.errors)}") from None
        return tuple(outputs[name] for name in self.output_names)

    def _feeds(self, inputs: Any) -> dict[str, np.ndarray]:
        if isinstance(inputs, Mapping):
            return {name: np.asarray(inputs[name]) for name in self.input_names}
        if isinstance(inputs, np.ndarray):
            inputs = [inputs]
        if len(inputs) != len(self.input_names):
            raise BackendError(
                f"the model has {len(self.input_names)} inputs {self.input_names}, "
                f"{len(inputs)} were given"
            )
        return {name: np.asarray(a) for name, a in zip(self.input_names, inputs, strict=True)}

    def _build(self, feeds: dict[str, np.ndarray]) -> tuple[Any, set[str], set[str]]:
        """Parse (making requested inputs constants), build, serialize, deserialize: the
        engine, the inputs made constants, and every input whose values it depends on."""
        constants: set[str] = set()
        for _ in range(MAX_CONSTANT_ROUNDS):
            logger = CollectingLogger()
            builder = Builder(logger)
            network = builder.create_network()
            parser = OnnxParser(network, logger)
            model = _with_constants(self._model, feeds, constants)
            if parser.parse(model.SerializeToString()):
                break
            requested = parser._constant_requests - constants
            if not requested or not requested <= set(feeds):
                raise BackendError("; ".join(logger.errors))
            constants |= requested
        else:
            raise BackendError("; ".join(logger.errors))
        config = builder.create_builder_config()
        profile = builder.create_optimization_profile()
        by_values = set(constants)
        dynamic = False
        for index in range(network.num_inputs):
            tensor = network.get_input(index)
            array = feeds[tensor.name]
            if tensor.is_shape_tensor:
                values = [int(v) for v in array.reshape(-1)]
                profile.set_shape_input(tensor.name, values, values, values)
                by_values.add(tensor.name)
                dynamic = True
            if -1 in tuple(tensor.shape):
                profile.set_shape(tensor.name, array.shape, array.shape, array.shape)
                dynamic = True
        if dynamic:
            config.add_optimization_profile(profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise BackendError("; ".join(logger.errors))
        with _on_device(self._device):
            engine = Runtime(self._logger).deserialize_cuda_engine(plan)
        if engine is None:
            raise BackendError("; ".join(logger.errors))
        return engine, constants, by_values


class TensorplanBackend(Backend):
    """onnx.backend.base.Backend for tensorplan; devices "CPU" and, with a GPU, "CUDA"."""

    @classmethod
    def is_compatible(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> bool:
        return cls.supports_device(device)

    @classmethod
    def prepare(cls, model: onnx.ModelProto, device: str = "CPU", **kwargs: Any) -> TensorplanRep:
        if not cls.supports_device(device):
            raise BackendError(f"device '{device}' is not available")
        if isinstance(model, (bytes, bytearray)):
            model = onnx.load_model_from_string(bytes(model))
        return TensorplanRep(model, device)

    @classmethod
    def run_model(
        cls, model: onnx.ModelProto, inputs: Any, device: str = "CPU", **kwargs: Any
    ) -> tuple[np.ndarray, ...]:
        return cls.prepare(model, device, **kwargs).run(inputs)

    @classmethod
    def run_node(
        cls,
        node: onnx.NodeProto,
        inputs: Any,
        device: str = "CPU",
        outputs_info: Sequence[tuple[np.dtype, tuple[int, ...]]] | None = None,
        **kwargs: Any,
    ) -> tuple[np.ndarray, ...]:
        """Run one node: a model around it with an input per given array."""
        arrays = list(inputs.values()) if isinstance(inputs, Mapping) else list(inputs)
        names = [name for name in node.input if name][: len(arrays)]
        graph_inputs = [
            onnx.helper.make_tensor_value_info(
                name, onnx.helper.np_dtype_to_tensor_dtype(np.asarray(a).dtype), np.shape(a)
            )
            for name, a in zip(names, arrays, strict=True)
        ]
        graph_outputs = [onnx.helper.make_empty_tensor_value_info(name) for name in node.output]
        graph = onnx.helper.make_graph([node], "run_node", graph_inputs, graph_outputs)
        model = onnx.helper.make_model(graph)
        return cls.prepare(model, device, **kwargs).run(arrays)

    @classmethod
    def supports_device(cls, device: str) -> bool:
        kind = Device(device).type
        if kind == DeviceType.CPU:
            return True
        return kind == DeviceType.CUDA and torch.cuda.is_available()


prepare = TensorplanBackend.prepare
run_model = TensorplanBackend.run_model
run_node = TensorplanBackend.run_node
supports_device = TensorplanBackend.supports_device


def execute(engine: Any, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Run an engine once: inputs by name (shape-tensor inputs from host memory), outputs
    by name as numpy arrays of the ONNX element types."""
    context = engine.create_execution_context()
    if context is None:
        raise BackendError("could not create an execution context")
    device = engine._device
    keep: list[Any] = []
    for index in range(engine.num_io_tensors):
        name = engine.get_tensor_name(index)
        if engine.get_tensor_mode(name) != TensorIOMode.INPUT:
            continue
        array = np.require(feeds[name], requirements="C")  # keeps 0-d arrays 0-d
        if not context.set_input_shape(name, array.shape):
            raise BackendError(f"input '{name}' of shape {list(array.shape)} was refused")
        if engine.is_shape_inference_io(name):
            keep.append(array)
            address = array.ctypes.data
        else:
            tensor = _to_torch(array, engine.get_tensor_dtype(name)).to(device)
            keep.append(tensor)
            address = tensor.data_ptr()
        context.set_tensor_address(name, address)
    outputs: dict[str, torch.Tensor] = {}
    allocator = _OutputBuffers(device)
    for name in _output_names(engine):
        shape = tuple(context.get_tensor_shape(name))
        dtype = torch_dtype(engine.get_tensor_dtype(name))
        if any(d < 0 for d in shape):  # data-dependent: sized while the engine runs
            context.set_output_allocator(name, allocator)
            continue
        outputs[name] = torch.empty(shape, dtype=dtype, device=device)
        context.set_tensor_address(name, outputs[name].data_ptr())
    stream = torch.cuda.current_stream().cuda_stream if device.type == "cuda" else 0
    if not context.execute_async_v3(stream):
        raise BackendError("execution failed")
    if device.type == "cuda":
        torch.cuda.synchronize()
    for name, shape in allocator.shapes.items():
        dtype = torch_dtype(engine.get_tensor_dtype(name))
        nbytes = int(np.prod(shape)) * torch.empty((), dtype=dtype).element_size()
        outputs[name] = allocator.buffers[name][:nbytes].view(dtype).reshape(shape)
    return {
        name: _to_numpy(outputs[name], engine.get_tensor_dtype(name))
        for name in _output_names(engine)
    }


class _OutputBuffers(IOutputAllocator):
    """Device buffers for outputs whose shapes the engine decides while it runs."""

    def __init__(self, device: torch.device) -> None:
        IOutputAllocator.__init__(self)
        self.device = device
        self.buffers: dict[str, torch.Tensor] = {}
        self.shapes: dict[str, tuple[int, ...]] = {}

    def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int) -> int:
        self.buffers[tensor_name] = torch.empty(max(size, 1), dtype=torch.uint8, device=self.device)
        return self.buffers[tensor_name].data_ptr()

    def notify_shape(self, tensor_name: str, shape: Any) -> None:
        self.shapes[tensor_name] = tuple(shape)


def _output_names(engine: Any) -> list[str]:
    names = (engine.get_tensor_name(i) for i in range(engine.num_io_tensors))
    return [name for name in names if engine.get_tensor_mode(name) == TensorIOMode.OUTPUT]


def _to_torch(array: np.ndarray, dtype: DataType) -> torch.Tensor:
    target = torch_dtype(dtype)
    if dtype in _SUB_BYTE:
        _, mask = _SUB_BYTE[dtype]
        if mask is not None:  # a float's code
            return torch.from_numpy(array.view(np.uint8) & mask)
        return torch.from_numpy(array.astype(np.int8 if target == torch.int8 else np.uint8))
    if target in _ML_DTYPES:  # ml_dtypes arrays: the same bits, seen through an integer view
        bits = torch.from_numpy(array.view(np.uint8 if array.itemsize == 1 else np.int16).copy())
        return bits.view(target)
    return torch.from_numpy(array.copy()).to(target)


def _to_numpy(tensor: torch.Tensor, dtype: DataType) -> np.ndarray:
    tensor = tensor.cpu()
    if dtype in _SUB_BYTE:
        ml_type, mask = _SUB_BYTE[dtype]
        return tensor.numpy().view(ml_type) if mask is not None else tensor.numpy().astype(ml_type)
    if tensor.dtype in _ML_DTYPES:
        bits = tensor.view(torch.uint8 if tensor.element_size() == 1 else torch.int16)
        return bits.numpy().view(_ML_DTYPES[tensor.dtype])
    return tensor.numpy()


def _signature(feeds: Mapping[str, np.ndarray], constants: set[str]) -> tuple:
    return tuple(
        (name, array.shape, array.dtype.str, array.tobytes() if name in constants else None)
        for name, array in feeds.items()
    )


def _with_constants(
    model: onnx.ModelProto, feeds: Mapping[str, np.ndarray], names: set[str]
) -> onnx.ModelProto:
    """The model with the graph inputs `names` turned into initializers of the given values."""
    if not names:
        return model
    frozen = onnx.ModelProto()
    frozen.CopyFrom(model)
    kept = [v for v in frozen.graph.input if v.name not in names]
    del frozen.graph.input[:]
    frozen.graph.input.extend(kept)
    for name in sorted(names):
        frozen.graph.initializer.append(onnx.numpy_helper.from_array(feeds[name], name))
    return frozen


@contextlib.contextmanager
def _on_device(device: str) -> Iterator[None]:
    """Engines deserialized and run for device "CPU" stay on the CPU even with a GPU."""
    if Device(device).type != DeviceType.CPU:
        yield
        return
    saved = os.environ.get("TENSORPLAN_DEVICE")
    os.environ["TENSORPLAN_DEVICE"] = "cpu"
    try:
        yield
    finally:
        if saved is None:
            del os.environ["TENSORPLAN_DEVICE"]
        else:
            os.environ["TENSORPLAN_DEVICE"] = saved
