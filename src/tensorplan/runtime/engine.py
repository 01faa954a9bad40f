"""ICudaEngine: a deserialized plan, its weights on the device, ready to make contexts."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any

from ..device import storage_itemsize, torch_dtype
from ..errors import report_error
from ..ir import Program
from ..memory import Allocation, IHostMemory
from ..ops import fallback
from ..ops.base import UNKNOWN
from ..plan.writer import write_plan
from ..types import (
    DataType,
    Dims,
    EngineCapability,
    ErrorCodeTRT,
    ExecutionContextAllocationStrategy,
    HardwareCompatibilityLevel,
    ProfilingVerbosity,
    TensorFormat,
    TensorIOMode,
    TensorLocation,
)
from .context import IExecutionContext
from .executor import Executor

if TYPE_CHECKING:
    from .runtime import Runtime


class ICudaEngine:
    """An engine for executing inference on a built network."""

    def __init__(
        self,
        runtime: Runtime,
        program: Program,
        weights: Allocation,
        layout: dict[int, tuple[int, int]],
    ) -> None:
        self._logger = runtime._logger
        self._fallbacks = fallback.FallbackLog(runtime._logger)
        """Slower paths its layers took in any of its contexts, each logged once."""
        self._error_recorder = runtime._error_recorder
        self._allocator = runtime.gpu_allocator
        self._program = program
        self._weights = weights
        self._device = weights.device
        graph = program.graph
        constants = {
            value_id: weights.bytes[offset : offset + nbytes]
            .view(torch_dtype(graph.values[value_id].dtype))
            .view(graph.values[value_id].shape)
            for value_id, (offset, nbytes) in layout.items()
        }
        self._executor = Executor(program, constants, self._device)
        self._io = [*graph.inputs, *graph.outputs]
        self._by_name = {graph.values[v].name: v for v in self._io}
        self._inputs = set(graph.inputs)
        self._hosts = set(program.host_inputs)
        self.weight_streaming_budget = -1

    # -- IO tensors -------------------------------------------------------------------------

    @property
    def num_io_tensors(self) -> int:
        return len(self._io)

    def get_tensor_name(self, index: int) -> str | None:
        if not 0 <= index < len(self._io):
            report_error(
                self,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "ICudaEngine::getIOTensorName",
                f"index {index} is out of range; the engine has {len(self._io)} IO tensors",
            )
            return None
        return self._program.graph.values[self._io[index]].name

    def __getitem__(self, index: int) -> str | None:
        return self.get_tensor_name(index)

    def get_tensor_mode(self, name: str) -> TensorIOMode:
        value_id = self._lookup(name, "getTensorIOMode")
        if value_id is None:
            return TensorIOMode.NONE
        return TensorIOMode.INPUT if value_id in self._inputs else TensorIOMode.OUTPUT

    def get_tensor_shape(self, name: str) -> Dims:
        value_id = self._lookup(name, "getTensorShape")
        return Dims() if value_id is None else Dims(self._program.graph.values[value_id].shape)

    def get_tensor_dtype(self, name: str) -> DataType:
        value_id = self._lookup(name, "getTensorDataType")
        return DataType.FLOAT if value_id is None else self._program.graph.values[value_id].dtype

    def get_tensor_location(self, name: str) -> TensorLocation:
        value_id = self._lookup(name, "getTensorLocation")
        return TensorLocation.HOST if value_id in self._hosts else TensorLocation.DEVICE

    def get_tensor_format(self, name: str, profile_index: int = 0) -> TensorFormat:
        self._lookup(name, "getTensorFormat")
        return TensorFormat.LINEAR

    def get_tensor_format_desc(self, name: str, profile_index: int = 0) -> str:
        value_id = self._lookup(name, "getTensorFormatDesc")
        if value_id is None:
            return ""
        dtype = self._program.graph.values[value_id].dtype
        return f"Row major linear {dtype.name} format"

    def get_tensor_bytes_per_component(self, name: str, profile_index: int = 0) -> int:
        """Bytes of one element in the tensor's buffer: 1 for the sub-byte types, which
        tensorplan keeps one element per byte (docs/dtypes.md), where TensorRT packs them."""
        value_id = self._lookup(name, "getTensorBytesPerComponent")
        return (
            -1 if value_id is None else storage_itemsize(self._program.graph.values[value_id].dtype)
        )

    def get_tensor_components_per_element(self, name: str, profile_index: int = 0) -> int:
        return -1 if self._lookup(name, "getTensorComponentsPerElement") is None else 1

    def get_tensor_vectorized_dim(self, name: str, profile_index: int = 0) -> int:
        self._lookup(name, "getTensorVectorizedDim")
        return -1

    def get_tensor_profile_shape(self, name: str, profile_index: int) -> list[Dims]:
        """[min, opt, max] shapes of an input in a profile; [] with an error otherwise."""
        value_id = self._lookup(name, "getProfileShape")
        if value_id is None:
            return []
        if value_id not in self._inputs:
            report_error(
                self,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "ICudaEngine::getProfileShape",
                f"'{name}' is an output; profiles give shapes of inputs",
            )
            return []
        if not self._check_profile(profile_index, "getProfileShape"):
            return []
        shapes = self._program.profiles[profile_index].shapes.get(name)
        if shapes is None:
            shape = self._program.graph.values[value_id].shape
            shapes = (shape, shape, shape)
        return [Dims(s) for s in shapes]

    def get_tensor_profile_values(self, profile_index: int, name: str) -> list[list[int]]:
        """[min, opt, max] values of a shape-tensor input in a profile; [] otherwise."""
        value_id = self._lookup(name, "getProfileTensorValues")
        if value_id not in self._hosts or not self._check_profile(
            profile_index, "getProfileTensorValues"
        ):
            return []
        return [list(v) for v in self._program.profiles[profile_index].values[name]]

    def is_shape_inference_io(self, name: str) -> bool:
        """True for shape-tensor inputs: their values are read from host memory."""
        return self._by_name.get(name) in self._hosts

    def is_debug_tensor(self, name: str) -> bool:
        return False

    # -- the engine -------------------------------------------------------------------------

    @property
    def name(self) -> str:
        return self._program.name

    @property
    def num_layers(self) -> int:
        return len(self._program.graph.nodes)

    @property
    def num_optimization_profiles(self) -> int:
        return len(self._program.profiles)

    @property
    def device_memory_size(self) -> int:
        return self._program.memory.arena_size

    @property
    def device_memory_size_v2(self) -> int:
        return self._program.memory.arena_size

    def get_device_memory_size_for_profile(self, profile_index: int) -> int:
        valid = self._check_profile(profile_index, "getDeviceMemorySizeForProfile")
        return self._program.memory.arena_size if valid else 0

    def get_device_memory_size_for_profile_v2(self, profile_index: int) -> int:
        return self.get_device_memory_size_for_profile(profile_index)

    @property
    def error_recorder(self) -> Any:
        return self._error_recorder

    @error_recorder.setter
    def error_recorder(self, recorder: Any) -> None:
        self._error_recorder = recorder

    @property
    def has_implicit_batch_dimension(self) -> bool:
        return False

    @property
    def refittable(self) -> bool:
        return False

    @property
    def engine_capability(self) -> EngineCapability:
        return EngineCapability.STANDARD

    @property
    def hardware_compatibility_level(self) -> HardwareCompatibilityLevel:
        return HardwareCompatibilityLevel.NONE

    @property
    def profiling_verbosity(self) -> ProfilingVerbosity:
        return ProfilingVerbosity.LAYER_NAMES_ONLY

    @property
    def num_aux_streams(self) -> int:
        return 0

    @property
    def tactic_sources(self) -> int:
        return 0

    @property
    def streamable_weights_size(self) -> int:
        return 0

    @property
    def minimum_weight_streaming_budget(self) -> int:
        return 0

    def create_execution_context(
        self,
        strategy: ExecutionContextAllocationStrategy = ExecutionContextAllocationStrategy.STATIC,
    ) -> IExecutionContext | None:
        """A context; None with a reported error when its activation memory cannot be had."""
        return IExecutionContext._create(self, ExecutionContextAllocationStrategy(strategy))

    def create_execution_context_without_device_memory(self) -> IExecutionContext | None:
        return self.create_execution_context(ExecutionContextAllocationStrategy.USER_MANAGED)

    def serialize(self) -> IHostMemory:
        """The plan of this engine (weights copied back from the device)."""
        program = self._program
        constants = {
            value_id: tensor.cpu() for value_id, tensor in self._executor.constants.items()
        }
        graph = dataclasses.replace(program.graph, constants=constants)
        return IHostMemory(write_plan(dataclasses.replace(program, graph=graph)))

    def __enter__(self) -> ICudaEngine:
        return self

    def __exit__(self, *args: object) -> None:
        pass

    # -- internals --------------------------------------------------------------------------

    def _lookup(self, name: str, method: str) -> int | None:
        value_id = self._by_name.get(name)
        if value_id is None:
            report_error(
                self,
                ErrorCodeTRT.INVALID_ARGUMENT,
                f"ICudaEngine::{method}",
                f"Given invalid tensor name: {name}. Get valid tensor names with get_tensor_name()",
            )
        return value_id

    def _check_profile(self, profile_index: int, method: str) -> bool:
        if 0 <= profile_index < len(self._program.profiles):
            return True
        report_error(
            self,
            ErrorCodeTRT.INVALID_ARGUMENT,
            f"ICudaEngine::{method}",
            f"profile index {profile_index} is out of range; the engine has "
            f"{len(self._program.profiles)} profiles",
        )
        return False

    def _is_dynamic(self, value_id: int) -> bool:
        return UNKNOWN in self._program.graph.values[value_id].shape
