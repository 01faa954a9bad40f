"""Shape arithmetic shared by the ops' inference rules; UNKNOWN (-1) dims propagate."""

from __future__ import annotations

from collections.abc import Sequence

from .base import UNKNOWN, ShapeError, TensorMeta


def broadcast(shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    """TensorRT's broadcast: equal ranks; each dim equal across inputs or 1."""
    ranks = {len(shape) for shape in shapes}
    if len(ranks) != 1:
        raise ShapeError(
            "inputs must have the same rank to broadcast, got shapes "
            + ", ".join(str(list(s)) for s in shapes)
        )
    result = []
    for axis, dims in enumerate(zip(*shapes, strict=True)):
        known = {d for d in dims if d != UNKNOWN and d != 1}
        if len(known) > 1:
            raise ShapeError(
                f"dimension {axis} cannot be broadcast: sizes {sorted(known)} in shapes "
                + ", ".join(str(list(s)) for s in shapes)
            )
        if known:
            result.append(known.pop())
        elif UNKNOWN in dims:
            result.append(UNKNOWN)
        else:
            result.append(1)
    return tuple(result)


def same_dtype(inputs: Sequence[TensorMeta], what: str = "inputs") -> None:
    """All metas share one dtype; ShapeError naming the types otherwise."""
    dtypes = {meta.dtype for meta in inputs}
    if len(dtypes) > 1:
        names = ", ".join(meta.dtype.name for meta in inputs)
        raise ShapeError(f"{what} must have the same type, got {names}")


def normalize_axis(axis: int, rank: int, what: str = "axis") -> int:
    """An axis in [-rank, rank) as an index in [0, rank)."""
    if not -rank <= axis < rank:
        raise ShapeError(f"{what} {axis} is out of range for rank {rank}")
    return axis % rank


def axes_from_mask(mask: int, rank: int) -> tuple[int, ...]:
    """TensorRT's axis bitmask as a tuple of axes; ShapeError for bits past the rank."""
    if mask < 0 or mask >> rank:
        raise ShapeError(f"axes bitmask {mask:#b} names axes past the rank {rank}")
    return tuple(axis for axis in range(rank) if mask >> axis & 1)


def numel(shape: Sequence[int]) -> int:
    """Number of elements of a static shape."""
    result = 1
    for d in shape:
        result *= d
    return result
