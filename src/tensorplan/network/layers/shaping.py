"""Layers of the shaping ops, and Permutation (the type of a shuffle's transposes)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from ...types import Dims
from ..layer import ILayer, attribute


class Permutation:
    """The order of a transpose: output dimension i is input dimension `order[i]`.

    `Permutation()` is the identity over TensorRT's 8 dimensions; a list or tuple can be
    used wherever a Permutation is expected.
    """

    MAX_DIMS = 8
    __hash__ = None  # type: ignore[assignment] - mutable, as in TensorRT

    def __init__(self, order: Iterable[int] | None = None) -> None:
        values = list(range(self.MAX_DIMS)) if order is None else [int(v) for v in order]
        if len(values) > self.MAX_DIMS:
            raise ValueError(
                f"a Permutation has at most {self.MAX_DIMS} entries, got {len(values)}"
            )
        self._order = values

    def __len__(self) -> int:
        return len(self._order)

    def __getitem__(self, index: int) -> int:
        return self._order[index]

    def __setitem__(self, index: int, value: int) -> None:
        self._order[index] = int(value)

    def __iter__(self) -> Iterator[int]:
        return iter(self._order)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (Permutation, tuple, list)):
            return tuple(self._order) == tuple(other)
        return NotImplemented

    def __repr__(self) -> str:
        return "(" + ", ".join(str(v) for v in self._order) + ")"

    __str__ = __repr__


class IShuffleLayer(ILayer):
    """Transpose, reshape, transpose; `set_input(1, dims)` gives the reshape dims as a tensor."""

    _op_name = "shuffle"
    first_transpose = attribute("first_transpose", Permutation)
    reshape_dims = attribute("reshape_dims", Dims)
    second_transpose = attribute("second_transpose", Permutation)
    zero_is_placeholder = attribute("zero_is_placeholder")


class IConcatenationLayer(ILayer):
    """Joins its inputs along `axis` (by default rank - 3 of the first input, or 0)."""

    _op_name = "concatenation"
    axis = attribute("axis")


class ISliceLayer(ILayer):
    """Strided slice; inputs 1, 2, 3, 5 (start, shape, stride, axes) may be shape tensors,
    input 4 is the fill value of SampleMode.FILL."""

    _op_name = "slice"
    start = attribute("start", Dims)
    shape = attribute("shape", Dims)
    stride = attribute("stride", Dims)
    mode = attribute("mode")
    axes = attribute("axes", Dims)


class IGatherLayer(ILayer):
    _op_name = "gather"
    axis = attribute("axis")
    mode = attribute("mode")
    num_elementwise_dims = attribute("num_elementwise_dims")


class IShapeLayer(ILayer):
    _op_name = "shape"
