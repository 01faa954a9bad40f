"""IOutputAllocator: memory for outputs whose size is known only during execution."""

from __future__ import annotations

from ..types import Dims


class IOutputAllocator:
    """Application-implemented allocator of output tensors, as TensorRT's.

    The context calls `reallocate_output_async` (by default: `reallocate_output`) when an
    output's size becomes known, then `notify_shape` with its shape.
    """

    def __init__(self) -> None:
        pass

    def reallocate_output(self, tensor_name: str, memory: int, size: int, alignment: int) -> int:
        """Address of at least `size` bytes for `tensor_name` (`memory` is the current one, 0
        if none); 0 when there is no memory."""
        raise NotImplementedError("IOutputAllocator.reallocate_output must be implemented")

    def reallocate_output_async(
        self, tensor_name: str, memory: int, size: int, alignment: int, stream: int
    ) -> int:
        return self.reallocate_output(tensor_name, memory, size, alignment)

    def notify_shape(self, tensor_name: str, shape: Dims) -> None:
        """Called with the output's final shape once it is known."""
