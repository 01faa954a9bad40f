"""All memory of engines and contexts comes from the runtime's allocator and goes back to it."""

from __future__ import annotations

import gc

import numpy as np
import pytest
import runtime_networks as nets
import torch

import tensorplan as trt
import tensorplan.memory
from tensorplan.device import execution_device

GARBAGE = 0xAB
OUT_OF_MEMORY = (5, "Out Of Memory")


class CountingAllocator(trt.IGpuAllocator):
    """Hands out torch memory filled with garbage, and remembers what is outstanding."""

    def __init__(self) -> None:
        trt.IGpuAllocator.__init__(self)
        self.blocks: dict[int, tuple[torch.Tensor, int]] = {}
        self.requests: list[tuple[int, int]] = []
        self.freed: list[int] = []

    def allocate(self, size: int, alignment: int, flags: int) -> int:
        self.requests.append((size, alignment))
        block = torch.full(
            (size + alignment,), GARBAGE, dtype=torch.uint8, device=execution_device()
        )
        address = -(-block.data_ptr() // alignment) * alignment
        self.blocks[address] = (block[address - block.data_ptr() :][:size], size)
        return address

    def deallocate(self, memory: int) -> bool:
        self.freed.append(memory)
        return self.blocks.pop(memory, None) is not None

    @property
    def outstanding(self) -> int:
        return sum(size for _, size in self.blocks.values())

    def block_of(self, size: int) -> np.ndarray:
        (block,) = [b for b, s in self.blocks.values() if s == size]
        return block.cpu().numpy()


class AsyncCountingAllocator(trt.IGpuAsyncAllocator):
    """The same accounting through the stream-ordered interface."""

    def __init__(self) -> None:
        trt.IGpuAsyncAllocator.__init__(self)
        self.inner = CountingAllocator()
        self.streams: set[int] = set()

    def allocate_async(self, size: int, alignment: int, flags: int, stream: int) -> int:
        self.streams.add(stream)
        return self.inner.allocate(size, alignment, flags)

    def deallocate_async(self, memory: int, stream: int) -> bool:
        self.streams.add(stream)
        return self.inner.deallocate(memory)


@pytest.fixture
def no_default_allocator(monkeypatch):
    """Fail loudly if anything falls back to the default allocator."""

    def forbidden(device: torch.device) -> None:
        raise AssertionError("the default allocator was used")

    monkeypatch.setattr(tensorplan.memory, "default_allocator", forbidden)


def test_every_byte_comes_from_the_allocator_and_goes_back(logger, no_default_allocator):
    allocator = CountingAllocator()
    runtime = trt.Runtime(logger)
    runtime.gpu_allocator = allocator
    assert runtime.gpu_allocator is allocator
    engine = runtime.deserialize_cuda_engine(nets.plan())
    assert allocator.requests == [(nets.WEIGHT_BYTES, 256)]
    np.testing.assert_array_equal(allocator.block_of(nets.WEIGHT_BYTES).view(np.float32), nets.W[0])

    arena = engine.device_memory_size_v2
    assert arena > 0
    contexts = [engine.create_execution_context() for _ in range(2)]
    assert allocator.requests[1:] == [(arena, 256), (arena, 256)]
    assert allocator.outstanding == nets.WEIGHT_BYTES + 2 * arena
    for rows, context in zip((3, 4), contexts, strict=True):
        nets.execute(context, rows)
    arena_blocks = [b for b, s in allocator.blocks.values() if s == arena]
    assert all((block != GARBAGE).any() for block in arena_blocks), "activations live elsewhere"

    del contexts, context
    gc.collect()
    assert allocator.outstanding == nets.WEIGHT_BYTES
    del engine
    gc.collect()
    assert allocator.outstanding == 0
    assert len(allocator.freed) == 3
    assert logger.errors == []


def test_an_async_allocator(logger, no_default_allocator):
    allocator = AsyncCountingAllocator()
    runtime = trt.Runtime(logger)
    runtime.gpu_allocator = allocator
    engine = runtime.deserialize_cuda_engine(nets.plan())
    context = engine.create_execution_context()
    nets.execute(context, rows=2)
    assert allocator.inner.outstanding == nets.WEIGHT_BYTES + engine.device_memory_size_v2
    del context, engine
    gc.collect()
    assert allocator.inner.outstanding == 0
    assert allocator.streams == {0}


class ReturnsNothing(CountingAllocator):
    def __init__(self, result: object, fail_after: int = 0) -> None:
        super().__init__()
        self.result, self.fail_after = result, fail_after

    def allocate(self, size: int, alignment: int, flags: int) -> object:
        if len(self.requests) < self.fail_after:
            return super().allocate(size, alignment, flags)
        self.requests.append((size, alignment))
        if isinstance(self.result, Exception):
            raise self.result
        return self.result


FAILURES = {
    "0": (0, "returned no memory"),
    "None": (None, "returned no memory"),
    "False": (False, "returned no memory"),
    "raises": (MemoryError("device full"), "raised MemoryError('device full')"),
    "a string": ("0x1000", "returned '0x1000', not an address"),
    "misaligned": (1 << 20 | 8, "not aligned to 256 bytes"),
    "negative": (-256, "not aligned"),
}


@pytest.mark.parametrize(("result", "message"), FAILURES.values(), ids=FAILURES.keys())
def test_failed_weights_allocation(logger, recorder, result, message):
    runtime = trt.Runtime(logger)
    runtime.error_recorder = recorder
    runtime.gpu_allocator = ReturnsNothing(result)
    assert runtime.deserialize_cuda_engine(nets.plan()) is None
    assert len(recorder.errors) == 1
    api, code, category, detail = nets.parse_error(recorder.errors[0][1])
    assert recorder.errors[0][0] == trt.ErrorCodeTRT.FAILED_ALLOCATION
    assert (api, (code, category)) == ("IRuntime::deserializeCudaEngine", OUT_OF_MEMORY)
    assert message in detail
    assert f"{nets.WEIGHT_BYTES} bytes of weights" in detail
    assert logger.errors == []


@pytest.mark.parametrize(("result", "message"), FAILURES.values(), ids=FAILURES.keys())
def test_failed_arena_allocation(logger, result, message):
    allocator = ReturnsNothing(result, fail_after=1)
    runtime = trt.Runtime(logger)
    runtime.gpu_allocator = allocator
    engine = runtime.deserialize_cuda_engine(nets.plan())
    assert engine is not None
    assert engine.create_execution_context() is None
    assert len(logger.errors) == 1
    api, code, category, detail = nets.parse_error(logger.errors[0])
    assert (api, (code, category)) == ("ICudaEngine::createExecutionContext", OUT_OF_MEMORY)
    assert f"{engine.device_memory_size_v2} bytes of activation memory" in detail
    assert message in detail
    if message == "not aligned to 256 bytes":
        assert allocator.freed == [result], "a refused address goes back to the allocator"


def test_a_deallocator_that_raises_does_not_break_teardown(logger):
    class Grumpy(CountingAllocator):
        def deallocate(self, memory: int) -> bool:
            super().deallocate(memory)
            raise RuntimeError("nope")

    allocator = Grumpy()
    runtime = trt.Runtime(logger)
    runtime.gpu_allocator = allocator
    engine = runtime.deserialize_cuda_engine(nets.plan())
    nets.execute(engine.create_execution_context(), rows=1)
    del engine
    gc.collect()
    assert allocator.outstanding == 0


def test_user_managed_contexts_take_no_arena(logger, no_default_allocator):
    allocator = CountingAllocator()
    runtime = trt.Runtime(logger)
    runtime.gpu_allocator = allocator
    engine = runtime.deserialize_cuda_engine(nets.plan())
    strategy = trt.ExecutionContextAllocationStrategy.USER_MANAGED
    contexts = [
        engine.create_execution_context(strategy),
        engine.create_execution_context_without_device_memory(),
    ]
    assert len(allocator.requests) == 1  # the weights only
    arena = engine.device_memory_size_v2
    for context in contexts:
        x, bias = nets.inputs(3)
        bound = nets.Bound(context, x, bias)
        assert not context.execute_async_v3(nets.stream())
        api, code, _, detail = nets.take_error(logger)
        assert (api, code) == ("IExecutionContext::enqueueV3", 3)
        assert "set_device_memory" in detail

        block = torch.full((arena + 512,), GARBAGE, dtype=torch.uint8, device=execution_device())
        memory = block[-block.data_ptr() % 256 :][: arena + 256]
        context.set_device_memory(memory.data_ptr(), arena - 1)
        api, code, _, detail = nets.take_error(logger)
        assert (api, code) == ("IExecutionContext::setDeviceMemoryV2", 3)
        assert f"{arena - 1} bytes of device memory are less than the {arena}" in detail
        context.set_device_memory(memory.data_ptr() + 1, arena)
        assert "not 256-byte aligned" in nets.take_error(logger)[3]

        context.set_device_memory(memory.data_ptr(), memory.numel())
        assert context.execute_async_v3(nets.stream()), logger.errors
        nets.check(bound.outputs(), nets.reference(x, bias))
        assert (memory[:arena] != GARBAGE).any(), "the activations did not use the given memory"
    assert len(allocator.requests) == 1
    assert logger.errors == []


def test_a_user_managed_context_of_an_engine_without_activations(logger):
    def define(network):
        x = network.add_input("x", trt.float32, (2, 2))
        y = network.add_unary(x, trt.UnaryOperation.NEG).get_output(0)
        y.name = "y"
        network.mark_output(y)

    plan = nets.build_plan(define)
    engine = trt.Runtime(logger).deserialize_cuda_engine(plan)
    assert engine.device_memory_size_v2 == 0
    context = engine.create_execution_context(trt.ExecutionContextAllocationStrategy.USER_MANAGED)
    x = torch.arange(4.0, device=execution_device()).reshape(2, 2)
    y = torch.empty_like(x)
    assert context.execute_v2([x.data_ptr(), y.data_ptr()])
    torch.testing.assert_close(y, -x)
    assert logger.errors == []
