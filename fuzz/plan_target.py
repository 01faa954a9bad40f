"""The plan target: deserialize plan bytes and, when they load, create a context and run one
inference on zero inputs of the first profile's opt shapes (shape-tensor inputs hold its opt
values), since a plan that loads must also run without crashing.

TensorRT's contract: `deserialize_cuda_engine` returns an engine or None with exactly one
reported error; creating a context and executing return a context or True, or None/False with
a reported error; none of them raises. Execution is on the CPU, into numpy buffers.
"""

from __future__ import annotations

import math

import numpy as np

import tensorplan as trt

from .contract import ErrorList, QuietLogger, expect_errors

MAX_IO_BYTES = 64 << 20
"""The most the harness gives one engine's inputs and outputs together; an engine whose
static shapes need more is loaded but not run (that is the user's memory, not the engine's)."""


def check_plan(data: bytes) -> str:
    """Load `data` and run it once if it loads; the stage reached ('refused', 'no context',
    'too large', 'not run', 'run failed' or 'ran'). Raises when an API breaks its
    contract."""
    recorder = ErrorList()
    runtime = trt.Runtime(QuietLogger())
    runtime.error_recorder = recorder
    engine = runtime.deserialize_cuda_engine(data)
    if engine is None:
        expect_errors(recorder, 0, "deserialize_cuda_engine returned None", exactly=1)
        return "refused"
    reported = recorder.num_errors()
    context = engine.create_execution_context()
    if context is None:
        expect_errors(recorder, reported, "create_execution_context returned None")
        return "no context"
    return _run_on_zeros(engine, context, recorder)


def _run_on_zeros(
    engine: trt.ICudaEngine, context: trt.IExecutionContext, recorder: ErrorList
) -> str:
    names = [engine.get_tensor_name(index) for index in range(engine.num_io_tensors)]
    inputs = [name for name in names if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT]
    outputs = [name for name in names if name not in inputs]
    reported = recorder.num_errors()
    for name in inputs:
        if any(dim < 0 for dim in engine.get_tensor_shape(name)):
            opt = engine.get_tensor_profile_shape(name, 0)[1]
            if not context.set_input_shape(name, opt):
                expect_errors(recorder, reported, f"set_input_shape('{name}') returned False")
                return "not run"
    buffers = ZeroBuffers()
    for name in inputs:
        address = buffers.address(engine, name, context.get_tensor_shape(name))
        if address is None:
            return "too large"
        if engine.is_shape_inference_io(name):
            buffers.fill(
                engine.get_tensor_profile_values(0, name)[1], engine.get_tensor_dtype(name)
            )
        if not context.set_tensor_address(name, address):
            expect_errors(recorder, reported, f"set_tensor_address('{name}') returned False")
            return "not run"
    for name in outputs:
        shape = context.get_tensor_shape(name)
        if any(dim < 0 for dim in shape):  # data-dependent: sized during execution
            if not context.set_output_allocator(name, buffers):
                expect_errors(recorder, reported, f"set_output_allocator('{name}') returned False")
                return "not run"
            continue
        address = buffers.address(engine, name, shape)
        if address is None:
            return "too large"
        if not context.set_tensor_address(name, address):
            expect_errors(recorder, reported, f"set_tensor_address('{name}') returned False")
            return "not run"
    if not context.execute_async_v3(0):
        expect_errors(recorder, reported, "execute_async_v3 returned False")
        return "run failed"
    return "ran"


class ZeroBuffers(trt.IOutputAllocator):
    """Zeroed numpy buffers for an execution's tensors, MAX_IO_BYTES in all; also the output
    allocator of outputs whose shapes depend on data (0, no memory, beyond the budget)."""

    def __init__(self) -> None:
        trt.IOutputAllocator.__init__(self)
        self.arrays: list[np.ndarray] = []
        self.nbytes = 0

    def address(self, engine: trt.ICudaEngine, name: str, shape: trt.Dims) -> int | None:
        """A zeroed buffer for tensor `name` of `shape` (its bytes per element as the engine
        says: sub-byte types take a byte); None beyond the budget."""
        count = math.prod(max(dim, 0) for dim in shape)
        return self._allocate(count * engine.get_tensor_bytes_per_component(name))

    def fill(self, values: list[int], dtype: trt.DataType) -> None:
        """Write `values` into the last buffer, as integers of `dtype` (INT32 or INT64)."""
        integers = self.arrays[-1].view(trt.nptype(dtype))
        integers[: len(values)] = values

    def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int) -> int:
        return self._allocate(size) or 0

    def notify_shape(self, tensor_name: str, shape: trt.Dims) -> None:
        pass

    def _allocate(self, nbytes: int) -> int | None:
        if nbytes < 0 or self.nbytes + nbytes > MAX_IO_BYTES:
            return None
        self.nbytes += nbytes
        self.arrays.append(np.zeros(max(nbytes, 16), dtype=np.uint8))  # 16: views as int64
        return self.arrays[-1].ctypes.data
