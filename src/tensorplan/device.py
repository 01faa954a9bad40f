"""Where tensors live: the execution device, torch dtypes, and raw pointers seen as tensors.

On a GPU, addresses are device pointers; on the CPU they are host pointers. Both become
torch tensors here without copying, so the same kernels run on either.
"""

from __future__ import annotations

import ctypes
import os

import numpy as np
import torch

from .types import DataType

TORCH_DTYPES = {
    DataType.FLOAT: torch.float32,
    DataType.HALF: torch.float16,
    DataType.BF16: torch.bfloat16,
    DataType.INT8: torch.int8,
    DataType.INT32: torch.int32,
    DataType.INT64: torch.int64,
    DataType.BOOL: torch.bool,
    DataType.UINT8: torch.uint8,
    DataType.FP8: torch.float8_e4m3fn,
    DataType.DOUBLE: torch.float64,
    DataType.INT16: torch.int16,
    DataType.UINT16: torch.uint16,
    DataType.UINT32: torch.uint32,
    DataType.UINT64: torch.uint64,
    DataType.FP8_E5M2: torch.float8_e5m2,
    DataType.FP8_E4M3FNUZ: torch.float8_e4m3fnuz,
    DataType.FP8_E5M2FNUZ: torch.float8_e5m2fnuz,
}

DATATYPES = {torch_dtype: trt_type for trt_type, torch_dtype in TORCH_DTYPES.items()}


def torch_dtype(trt_type: DataType) -> torch.dtype:
    """The torch dtype of a DataType; TypeError for types tensorplan does not compute in."""
    try:
        return TORCH_DTYPES[DataType(trt_type)]
    except KeyError:
        raise TypeError(f"DataType.{DataType(trt_type).name} is not supported") from None


def execution_device() -> torch.device:
    """CUDA when torch sees a GPU, else the CPU; `TENSORPLAN_DEVICE=cpu` forces the CPU."""
    choice = os.environ.get("TENSORPLAN_DEVICE", "").strip().lower()
    if choice == "cpu" or not torch.cuda.is_available():
        return torch.device("cpu")
    return torch.device("cuda", torch.cuda.current_device())


class _CudaMemory:
    """A device address range exposed through `__cuda_array_interface__` (version 3)."""

    def __init__(self, address: int, nbytes: int) -> None:
        self.__cuda_array_interface__ = {
            "shape": (nbytes,),
            "typestr": "|u1",
            "data": (address, False),
            "version": 3,
        }


def bytes_at(address: int, nbytes: int, device: torch.device) -> torch.Tensor:
    """A uint8 tensor over `nbytes` at `address` on `device`, sharing the memory (no copy)."""
    if nbytes == 0:
        return torch.empty(0, dtype=torch.uint8, device=device)
    if device.type == "cuda":
        return torch.as_tensor(_CudaMemory(address, nbytes), device=device)
    return torch.frombuffer((ctypes.c_ubyte * nbytes).from_address(address), dtype=torch.uint8)


def tensor_at(
    address: int, shape: tuple[int, ...], dtype: torch.dtype, device: torch.device
) -> torch.Tensor:
    """A contiguous tensor of `shape` and `dtype` over the memory at `address` (no copy)."""
    numel = 1
    for d in shape:
        numel *= d
    itemsize = torch.empty((), dtype=dtype).element_size()
    return bytes_at(address, numel * itemsize, device).view(dtype).view(shape)


def host_bytes(data: memoryview) -> torch.Tensor:
    """A uint8 CPU tensor over bytes the caller keeps alive (no copy; never written)."""
    if len(data) == 0:
        return torch.empty(0, dtype=torch.uint8)
    address = np.frombuffer(data, dtype=np.uint8).ctypes.data
    return bytes_at(address, len(data), torch.device("cpu"))
