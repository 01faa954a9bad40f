"""Memory: TensorRT's allocator interfaces, the default allocators, and owned allocations.

Every byte an engine or execution context keeps (weights, activation arenas) is acquired
through an allocator: the user's when one is set on the runtime or context, else the
default one for the execution device.
"""

from __future__ import annotations

import contextlib
import operator
import threading
from typing import Any

import torch

from .device import bytes_at
from .errors import report_error
from .types import DataType, ErrorCodeTRT

ALIGNMENT = 256


class IGpuAllocator:
    """Application-implemented allocator; subclass it and override its methods.

    `allocate_async`/`deallocate_async` are what tensorplan calls; by default they call the
    synchronous `allocate`/`deallocate`, so overriding either pair is enough.
    """

    def __init__(self) -> None:
        pass

    def allocate(self, size: int, alignment: int, flags: int) -> int | None:
        raise NotImplementedError("IGpuAllocator.allocate must be implemented by the subclass")

    def allocate_async(self, size: int, alignment: int, flags: int, stream: int) -> int | None:
        return self.allocate(size, alignment, flags)

    def deallocate(self, memory: int) -> bool:
        raise NotImplementedError("IGpuAllocator.deallocate must be implemented by the subclass")

    def deallocate_async(self, memory: int, stream: int) -> bool:
        return self.deallocate(memory)

    def reallocate(self, address: int, alignment: int, new_size: int) -> int | None:
        return None


class IGpuAsyncAllocator(IGpuAllocator):
    """Allocator whose stream-ordered methods are primary; `allocate` uses the default stream."""

    def allocate(self, size: int, alignment: int, flags: int) -> int | None:
        return self.allocate_async(size, alignment, flags, 0)

    def allocate_async(self, size: int, alignment: int, flags: int, stream: int) -> int | None:
        raise NotImplementedError("IGpuAsyncAllocator.allocate_async must be implemented")

    def deallocate(self, memory: int) -> bool:
        return self.deallocate_async(memory, 0)

    def deallocate_async(self, memory: int, stream: int) -> bool:
        raise NotImplementedError("IGpuAsyncAllocator.deallocate_async must be implemented")


class _TorchAllocator(IGpuAllocator):
    """The default allocator: memory from torch, kept alive until deallocated."""

    def __init__(self, device: torch.device) -> None:
        super().__init__()
        self._device = device
        self._blocks: dict[int, torch.Tensor] = {}
        self._lock = threading.Lock()

    def allocate(self, size: int, alignment: int, flags: int) -> int | None:
        alignment = max(int(alignment), 1)
        try:
            block = torch.empty(size + alignment, dtype=torch.uint8, device=self._device)
        except (RuntimeError, MemoryError):
            return None
        address = -(-block.data_ptr() // alignment) * alignment
        with self._lock:
            self._blocks[address] = block
        return address

    def deallocate(self, memory: int) -> bool:
        with self._lock:
            return self._blocks.pop(int(memory), None) is not None


_DEFAULT_ALLOCATORS: dict[torch.device, IGpuAllocator] = {}


def default_allocator(device: torch.device) -> IGpuAllocator:
    """The process-wide default allocator of a device (cudaMalloc-style on GPU, host on CPU)."""
    allocator = _DEFAULT_ALLOCATORS.get(device)
    if allocator is None:
        allocator = _DEFAULT_ALLOCATORS.setdefault(device, _TorchAllocator(device))
    return allocator


class Allocation:
    """Memory owned by an engine or context: acquired from an allocator, returned on release."""

    def __init__(self, allocator: IGpuAllocator, address: int, nbytes: int, device: torch.device):
        self.allocator = allocator
        self.address = address
        self.nbytes = nbytes
        self.device = device
        self.bytes = bytes_at(address, nbytes, device)

    def release(self) -> None:
        """Return the memory to its allocator (once; later calls do nothing)."""
        if self.address:
            address, self.address = self.address, 0
            self.bytes = None
            # a failing user deallocator must not crash teardown
            with contextlib.suppress(Exception):
                self.allocator.deallocate_async(address, 0)

    def __del__(self) -> None:
        self.release()


def allocate(
    owner: Any,
    api: str,
    allocator: IGpuAllocator | None,
    nbytes: int,
    device: torch.device,
    what: str,
) -> Allocation | None:
    """Acquire `nbytes` for `what` from `allocator` (default: the device's).

    A failure (the allocator returns 0/None or raises) is reported as FAILED_ALLOCATION on
    `owner` and gives None.
    """
    allocator = allocator or default_allocator(device)
    if nbytes == 0:
        return Allocation(allocator, 0, 0, device)
    try:
        address = allocator.allocate_async(nbytes, ALIGNMENT, 0, 0)
    except Exception as error:
        detail = f"the allocator raised {error!r} for {nbytes} bytes of {what}"
        report_error(owner, ErrorCodeTRT.FAILED_ALLOCATION, api, detail)
        return None
    if address is None or isinstance(address, bool) or address == 0:
        detail = f"the allocator returned no memory for {nbytes} bytes of {what}"
        report_error(owner, ErrorCodeTRT.FAILED_ALLOCATION, api, detail)
        return None
    try:
        address = operator.index(address)
    except TypeError:
        detail = f"the allocator returned {address!r}, not an address, for {nbytes} bytes of {what}"
        report_error(owner, ErrorCodeTRT.FAILED_ALLOCATION, api, detail)
        return None
    if not 0 < address < 1 << 64 or address % ALIGNMENT:
        # never write through an address that breaks the allocator contract; give it back
        with contextlib.suppress(Exception):
            allocator.deallocate_async(address, 0)
        detail = (
            f"the allocator returned address {address:#x} for {nbytes} bytes of {what}, "
            f"which is not aligned to {ALIGNMENT} bytes"
        )
        report_error(owner, ErrorCodeTRT.FAILED_ALLOCATION, api, detail)
        return None
    return Allocation(allocator, address, nbytes, device)


class IHostMemory(bytes):
    """Library-owned host memory (a serialized plan); it is `bytes`, so any buffer consumer takes it."""

    @property
    def nbytes(self) -> int:
        return len(self)

    @property
    def dtype(self) -> DataType:
        return DataType.UINT8

    def __enter__(self) -> IHostMemory:
        return self

    def __exit__(self, *args: object) -> None:
        pass
