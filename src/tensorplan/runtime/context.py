"""IExecutionContext: input shapes, tensor addresses, and execution on a stream."""

from __future__ import annotations

import math
import operator
from typing import TYPE_CHECKING, Any

import torch

from ..device import bytes_at, tensor_at, torch_dtype
from ..errors import report_error
from ..ir import GraphError
from ..memory import ALIGNMENT, allocate
from ..ops import fallback
from ..ops.base import UNKNOWN, TensorMeta
from ..types import Dims, ErrorCodeTRT, ExecutionContextAllocationStrategy, as_shape
from .cuda_graph import GraphRunner
from .executor import ExecutionError, run_steps, tf32_mode
from .output_allocator import IOutputAllocator

if TYPE_CHECKING:
    from .engine import ICudaEngine

ENQUEUE = "IExecutionContext::enqueueV3"


class IExecutionContext:
    """Context for executing inference using an ICudaEngine; several may share one engine."""

    @classmethod
    def _create(
        cls, engine: ICudaEngine, strategy: ExecutionContextAllocationStrategy
    ) -> IExecutionContext | None:
        arena = None
        if strategy != ExecutionContextAllocationStrategy.USER_MANAGED:
            arena = allocate(
                engine,
                "ICudaEngine::createExecutionContext",
                engine._allocator,
                engine.device_memory_size_v2,
                engine._device,
                "activation memory",
            )
            if arena is None:
                return None
        return cls(engine, strategy, arena)

    def __init__(
        self, engine: ICudaEngine, strategy: ExecutionContextAllocationStrategy, arena: Any
    ) -> None:
        self._engine = engine
        self._executor = engine._executor
        self._logger = engine._logger
        self._error_recorder = engine._error_recorder
        self._strategy = strategy
        self._arena = arena
        self._arena_bytes: torch.Tensor | None = None
        if arena is not None:
            self._arena_bytes = arena.bytes
        elif engine.device_memory_size_v2 == 0:  # nothing to give: USER_MANAGED is ready
            self._arena_bytes = bytes_at(0, 0, engine._device)
        graph = engine._program.graph
        self._values = graph.values
        self._inputs = list(graph.inputs)
        self._outputs = list(graph.outputs)
        self._hosts = engine._hosts
        self._shapes: dict[int, tuple[int, ...]] = {
            v: graph.values[v].shape for v in graph.inputs if UNKNOWN not in graph.values[v].shape
        }
        self._addresses: dict[int, int] = {}
        self._output_allocators: dict[int, IOutputAllocator] = {}
        self._allocated: dict[int, int] = {}
        """Output addresses last given by output allocators (passed back to them to reuse)."""
        self._stream_handle = 0
        self._profile = 0
        self._prepared: tuple[tuple, Any] | None = None
        self._streams: dict[int, torch.cuda.ExternalStream] = {}
        self._graphs = GraphRunner(engine._device)
        self.name = ""
        self.debug_sync = False
        self.profiler = None
        self.enqueue_emits_profile = True
        self.persistent_cache_limit = 0
        self.nvtx_verbosity = None
        self.temporary_allocator = None
        self.unfused_tensors_debug_state = False

    # -- properties -------------------------------------------------------------------------

    @property
    def engine(self) -> ICudaEngine:
        return self._engine

    @property
    def error_recorder(self) -> Any:
        return self._error_recorder

    @error_recorder.setter
    def error_recorder(self, recorder: Any) -> None:
        self._error_recorder = recorder

    @property
    def active_optimization_profile(self) -> int:
        return self._profile

    @property
    def all_binding_shapes_specified(self) -> bool:
        return all(v in self._shapes for v in self._inputs)

    @property
    def all_shape_inputs_specified(self) -> bool:
        """Whether every shape-tensor input has its host address (where its values are read)."""
        return all(v in self._addresses for v in self._hosts)

    # -- shapes -----------------------------------------------------------------------------

    def set_input_shape(self, name: str, shape: Any) -> bool:
        """Set the shape of an input for the next execution; False (reported) if it does not fit."""
        api = "IExecutionContext::setInputShape"
        value_id = self._engine._by_name.get(name)
        if value_id is None or value_id not in self._inputs:
            return self._fail(api, f"'{name}' is not an input tensor of the engine")
        try:
            dims = as_shape(shape)
        except (TypeError, ValueError):
            return self._fail(api, f"shape {shape!r} of input '{name}' is not a list of integers")
        declared = self._values[value_id].shape
        if len(dims) != len(declared):
            return self._fail(
                api,
                f"input '{name}' has rank {len(declared)} {list(declared)}, "
                f"got shape {list(dims)} of rank {len(dims)}",
            )
        for axis, (d, fixed) in enumerate(zip(dims, declared, strict=True)):
            if fixed != UNKNOWN and d != fixed:
                return self._fail(
                    api,
                    f"Static dimension mismatch while setting input shape for {name}. "
                    f"Set dimensions are {list(dims)}. Expected dimensions are {list(declared)} "
                    f"(dimension {axis})",
                )
        ranges = self._engine._program.profiles[self._profile].shapes.get(name)
        if ranges is not None:
            low, _, high = ranges
            if not all(a <= d <= b for a, d, b in zip(low, dims, high, strict=True)):
                return self._fail(
                    api,
                    f"shape {list(dims)} of input '{name}' is outside optimization profile "
                    f"{self._profile}: min {list(low)}, max {list(high)}",
                )
        self._shapes[value_id] = dims
        return True

    def get_tensor_shape(self, name: str) -> Dims:
        """An input's set shape, or an output's shape for the current input shapes."""
        value_id = self._engine._by_name.get(name)
        if value_id is None:
            report_error(
                self,
                ErrorCodeTRT.INVALID_ARGUMENT,
                "IExecutionContext::getTensorShape",
                f"Given invalid tensor name: {name}. Get valid tensor names with get_tensor_name()",
            )
            return Dims()
        if value_id in self._shapes:
            return Dims(self._shapes[value_id])
        if value_id in self._outputs and self.all_binding_shapes_specified:
            metas = self._infer("IExecutionContext::getTensorShape")
            if metas is not None:
                return Dims(metas[value_id].shape)
        return Dims(self._values[value_id].shape)

    def get_tensor_strides(self, name: str) -> Dims:
        shape = list(self.get_tensor_shape(name))
        strides = []
        stride = 1
        for d in reversed(shape):
            strides.append(stride)
            stride *= max(d, 1)
        return Dims(strides[::-1])

    def infer_shapes(self) -> list[str]:
        """Names of inputs whose shapes are missing; [] once every shape can be computed.

        RuntimeError (after the error is reported) when inference fails for another reason,
        as TensorRT documents.
        """
        missing = [self._values[v].name for v in self._inputs if v not in self._shapes]
        missing += [self._values[v].name for v in self._hosts if v not in self._addresses]
        if not missing and self._infer("IExecutionContext::inferShapes") is None:
            raise RuntimeError("shape inference failed; the error recorder or logger has the cause")
        return missing

    def set_optimization_profile_async(self, profile_index: int, stream_handle: int) -> bool:
        api = "IExecutionContext::setOptimizationProfileAsync"
        if not 0 <= profile_index < self._engine.num_optimization_profiles:
            return self._fail(
                api,
                f"profile index {profile_index} is out of range; the engine has "
                f"{self._engine.num_optimization_profiles} profiles",
            )
        if profile_index != self._profile:
            self._profile = profile_index
            self._shapes = {
                v: s for v, s in self._shapes.items() if UNKNOWN not in self._values[v].shape
            }
        return True

    # -- memory -----------------------------------------------------------------------------

    def set_tensor_address(self, name: str, memory: int) -> bool:
        value_id = self._engine._by_name.get(name)
        if value_id is None:
            return self._fail(
                "IExecutionContext::setTensorAddress",
                f"Given invalid tensor name: {name}. Get valid tensor names with get_tensor_name()",
            )
        try:
            self._addresses[value_id] = operator.index(memory)
        except TypeError:
            return self._fail(
                "IExecutionContext::setTensorAddress",
                f"address {memory!r} of '{name}' is not an integer",
            )
        return True

    def set_output_allocator(self, name: str, output_allocator: IOutputAllocator | None) -> bool:
        """Give an output an allocator (None removes it); outputs whose shapes depend on data
        need one."""
        api = "IExecutionContext::setOutputAllocator"
        value_id = self._engine._by_name.get(name)
        if value_id is None or value_id not in self._outputs:
            return self._fail(api, f"'{name}' is not an output tensor of the engine")
        if output_allocator is None:
            self._output_allocators.pop(value_id, None)
        else:
            self._output_allocators[value_id] = output_allocator
        return True

    def get_output_allocator(self, name: str) -> IOutputAllocator | None:
        return self._output_allocators.get(self._engine._by_name.get(name))

    def get_tensor_address(self, name: str) -> int:
        value_id = self._engine._by_name.get(name)
        return 0 if value_id is None else self._addresses.get(value_id, 0)

    def set_device_memory(self, memory: int, size: int) -> None:
        """Give the context activation memory of `size` bytes at `memory` (USER_MANAGED).

        The memory stays the caller's: it must outlive the executions that use it.
        """
        api = "IExecutionContext::setDeviceMemoryV2"
        needed = self._engine.device_memory_size_v2
        try:
            memory, size = operator.index(memory), operator.index(size)
        except TypeError:
            self._fail(api, f"memory {memory!r} and size {size!r} must be integers")
            return
        if size < needed:
            self._fail(
                api, f"{size} bytes of device memory are less than the {needed} the engine needs"
            )
            return
        if needed and not 0 < memory < 1 << 64:
            self._fail(api, f"the device memory address {memory:#x} is not valid")
            return
        if memory % ALIGNMENT:
            self._fail(
                api, f"the device memory address {memory:#x} is not {ALIGNMENT}-byte aligned"
            )
            return
        self._arena_bytes = bytes_at(memory, needed, self._engine._device)
        self._prepared = None

    def update_device_memory_size_for_shapes(self) -> int:
        return self._engine.device_memory_size_v2

    # -- execution --------------------------------------------------------------------------

    def execute_async_v3(self, stream_handle: int) -> bool:
        """Enqueue inference on a CUDA stream (any value on the CPU); True when enqueued."""
        steps = self._prepare(ENQUEUE)
        if steps is None:
            return False
        self._stream_handle = int(stream_handle)
        try:
            with fallback.reporting(self._engine._fallbacks):
                self._enqueue(steps, int(stream_handle))
        except ExecutionError as error:
            report_error(self, ErrorCodeTRT.FAILED_EXECUTION, ENQUEUE, str(error))
            return False
        return True

    def _enqueue(self, steps: Any, stream_handle: int) -> None:
        if self._engine._device.type == "cuda":
            stream = self._stream(stream_handle)
            with torch.cuda.stream(stream), tf32_mode(self._engine._program.tf32):
                if self._executor.data_dependent:
                    self._run(steps)
                else:
                    self._graphs.run(self._prepared[0], lambda: run_steps(steps), stream)
        else:
            self._run(steps)

    def execute_v2(self, bindings: list[int]) -> bool:
        """Synchronous inference with addresses given in IO tensor order."""
        api = "IExecutionContext::executeV2"
        try:
            addresses = [operator.index(address) for address in bindings]
        except TypeError:
            return self._fail(
                api, f"bindings must be a list of integer addresses, got {bindings!r}"
            )
        if len(addresses) != len(self._engine._io):
            return self._fail(
                api,
                f"got {len(addresses)} bindings; the engine has {len(self._engine._io)} IO tensors",
            )
        self._addresses.update(zip(self._engine._io, addresses, strict=True))
        ok = self.execute_async_v3(0)
        if ok and self._engine._device.type == "cuda":
            torch.cuda.current_stream().synchronize()
            torch.cuda.default_stream().synchronize()
        return ok

    def _run(self, prepared: Any) -> None:
        if not self._executor.data_dependent:
            run_steps(prepared)
            return
        metas, io = prepared
        self._executor.run_dynamic(metas, self._arena_bytes, io, self._output_tensor)

    def _output_tensor(self, value_id: int, meta: TensorMeta) -> torch.Tensor:
        """Memory for an output whose shape execution just decided, from its allocator."""
        address = self._allocate_output(value_id, meta)
        return tensor_at(address, meta.shape, torch_dtype(meta.dtype), self._engine._device)

    def _allocate_output(self, value_id: int, meta: TensorMeta) -> int:
        """An output's address from its IOutputAllocator, which is told the shape."""
        name = self._values[value_id].name
        allocator = self._output_allocators[value_id]
        size = meta.nbytes
        address = allocator.reallocate_output_async(
            name, self._allocated.get(value_id, 0), size, ALIGNMENT, self._stream_handle
        )
        try:
            address = operator.index(address or 0)
        except TypeError:
            raise ExecutionError(f"the output allocator of '{name}' returned {address!r}") from None
        if size and not 0 < address < 1 << 64:
            raise ExecutionError(
                f"the output allocator of '{name}' gave no memory for {size} bytes"
            )
        allocator.notify_shape(name, Dims(meta.shape))
        return address

    def _stream(self, handle: int) -> torch.cuda.Stream:
        if handle == 0:
            return torch.cuda.default_stream(self._engine._device)
        stream = self._streams.get(handle)
        if stream is None:
            stream = self._streams[handle] = torch.cuda.ExternalStream(handle, self._engine._device)
        return stream

    def _prepare(self, api: str) -> Any:
        """What executing needs for the current shapes and addresses: the step list, or the
        metas and IO tensors of a program with data-dependent shapes; None with a reported
        error."""
        missing = [self._values[v].name for v in self._inputs if v not in self._shapes]
        if missing:
            return self._refuse(
                api, f"input shapes are not set for {missing}; call set_input_shape"
            )
        metas = self._infer(api)
        if metas is None:
            return None
        if self._arena_bytes is None:
            return self._refuse(api, "the context has no device memory; call set_device_memory")
        addresses = []
        for value_id in self._inputs + self._outputs:
            address = self._addresses.get(value_id, 0)
            if not metas[value_id].is_static:  # its size is known only while executing
                if value_id not in self._output_allocators:
                    return self._refuse(
                        api,
                        f"output tensor {self._values[value_id].name} has a data-dependent shape; "
                        "call set_output_allocator before enqueue/execute",
                    )
                addresses.append(0)
                continue
            if not address and value_id in self._output_allocators:
                try:
                    address = self._allocate_output(value_id, metas[value_id])
                except ExecutionError as error:
                    return self._refuse(api, str(error))
            if not address and metas[value_id].nbytes:
                kind = "input" if value_id in self._inputs else "output"
                return self._refuse(
                    api,
                    f"Address is not set for {kind} tensor {self._values[value_id].name}. "
                    "Call set_tensor_address before enqueue/execute.",
                )
            addresses.append(address)
        key = (
            tuple(self._shapes[v] for v in self._inputs),
            tuple(addresses),
            self._arena_bytes.data_ptr(),
            tuple(tuple(metas[v].value.reshape(-1).tolist()) for v in self._hosts),
        )
        if self._prepared is not None and self._prepared[0] == key:
            return self._prepared[1]
        for value_id, (_, size) in self._engine._program.memory.slots.items():
            if metas[value_id].is_static and metas[value_id].nbytes > size:
                return self._refuse(
                    api,
                    f"activation '{self._values[value_id].name}' needs {metas[value_id].nbytes} "
                    f"bytes at these input shapes, more than the {size} the plan planned",
                )
        io = {
            value_id: metas[value_id].value.to(self._engine._device)
            if value_id in self._hosts
            else self._executor.io_tensor(address, metas[value_id])
            for value_id, address in zip(self._inputs + self._outputs, addresses, strict=True)
            if metas[value_id].is_static
        }
        if self._executor.data_dependent:
            self._prepared = (key, (metas, io))
            return (metas, io)
        steps = self._executor.steps(metas, self._arena_bytes, io)
        self._prepared = (key, steps)
        return steps

    def _refuse(self, api: str, detail: str) -> None:
        report_error(self, ErrorCodeTRT.INVALID_ARGUMENT, api, detail)

    def _infer(self, api: str) -> list[TensorMeta] | None:
        shapes = [self._shapes[v] for v in self._inputs]
        values = self._host_values(api)
        if values is None:
            return None
        try:
            return self._executor.infer(shapes, values)
        except GraphError as error:
            report_error(self, ErrorCodeTRT.INVALID_ARGUMENT, api, str(error))
        except Exception as error:  # an op's shape rule failed: a reported error, not a crash
            report_error(
                self, ErrorCodeTRT.INTERNAL_ERROR, api, f"shape inference failed: {error!r}"
            )
        return None

    def _host_values(self, api: str) -> dict[int, torch.Tensor] | None:
        """The values of the shape-tensor inputs, read from their host addresses and checked
        against the active profile; None with a reported error."""
        values = {}
        profile = self._engine._program.profiles[self._profile]
        for value_id in sorted(self._hosts):
            value = self._values[value_id]
            address = self._addresses.get(value_id, 0)
            shape = self._shapes[value_id]
            if not address and math.prod(shape):
                return self._refuse(
                    api,
                    f"shape tensor input '{value.name}' has no address; call set_tensor_address "
                    "with host memory that holds its values",
                )
            host = tensor_at(address, shape, torch_dtype(value.dtype), torch.device("cpu"))
            values[value_id] = host.clone()
            low, _, high = profile.values[value.name]
            flat = values[value_id].reshape(-1).tolist()
            if len(flat) != len(low) or not all(
                a <= v <= b for a, v, b in zip(low, flat, high, strict=True)
            ):
                return self._refuse(
                    api,
                    f"values {flat} of shape tensor input '{value.name}' are outside optimization "
                    f"profile {self._profile}: min {list(low)}, max {list(high)}",
                )
        return values

    def _fail(self, api: str, detail: str) -> bool:
        report_error(self, ErrorCodeTRT.INVALID_ARGUMENT, api, detail)
        return False

    def __enter__(self) -> IExecutionContext:
        return self

    def __exit__(self, *args: object) -> None:
        pass
