"""Data-movement ops: shuffle (transpose/reshape), concatenation, slice, gather, shape.

These ops also compute TensorRT's shape tensors: with host values on their inputs,
`infer_node` evaluates them on the host, so shape arithmetic folds at build time and is
redone per input shape at run time.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from ..types import DataType, GatherMode, LayerType, SampleMode
from .base import UNKNOWN, Bool, Enum, Int, Ints, Op, ShapeError, TensorMeta
from .shapes import broadcast, normalize_axis, numel, same_dtype

IDENTITY_PERMUTATION = tuple(range(8))
"""TensorRT's default transpose: every dimension stays where it is."""

MAX_CONCAT_INPUTS = 1 << 16

_INDEX_TYPES = frozenset({DataType.INT32, DataType.INT64})


class Shuffle(Op):
    """IShuffleLayer: first transpose, reshape, second transpose.

    Input 1, when set, is a 1-D INT32/INT64 shape tensor that replaces `reshape_dims`.
    In the reshape dims, 0 copies the input dimension at the same index (when
    `zero_is_placeholder`) and one -1 takes whatever size the volume leaves.
    """

    name = "shuffle"
    reduced_precision = True
    reads_channels_last = True
    reads_strided_views = True
    layer_type = LayerType.SHUFFLE
    num_inputs = (1, 2)
    shape_inputs = frozenset({1})
    attrs = {
        "first_transpose": Ints(IDENTITY_PERMUTATION),
        "reshape_dims": Ints(None),
        "second_transpose": Ints(IDENTITY_PERMUTATION),
        "zero_is_placeholder": Bool(True),
    }

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        data = inputs[0]
        dims = inputs[1] if len(inputs) > 1 else None
        first = _permutation(attrs["first_transpose"], data.rank, "first_transpose")
        transposed = tuple(data.shape[p] for p in first)
        if dims is not None:
            _check_shape_tensor(dims, "the reshape dimensions (input 1)")
            if dims.value is not None:
                requested = tuple(int(d) for d in dims.value.tolist())
                reshaped = _reshape(transposed, requested, attrs["zero_is_placeholder"])
            elif dims.shape[0] == UNKNOWN:
                raise ShapeError(
                    "the reshape dimensions (input 1) need a length known at build time"
                )
            else:
                reshaped = (UNKNOWN,) * dims.shape[0]
        elif attrs["reshape_dims"] is not None:
            reshaped = _reshape(transposed, attrs["reshape_dims"], attrs["zero_is_placeholder"])
        else:
            reshaped = transposed
        second = _permutation(attrs["second_transpose"], len(reshaped), "second_transpose")
        return [TensorMeta(data.dtype, tuple(reshaped[p] for p in second))]

    @staticmethod
    def view_kind(
        attrs: dict[str, Any], has_dims_input: bool, ranks: tuple[int, int]
    ) -> str | None:
        """'reshape' when the shuffle only reshapes (a view of a dense input), 'permute' when it
        only transposes (a strided view of any input), None when it must move data."""
        rank, out_rank = ranks
        first = tuple(attrs["first_transpose"][:rank]) == IDENTITY_PERMUTATION[:rank]
        second = tuple(attrs["second_transpose"][:out_rank]) == IDENTITY_PERMUTATION[:out_rank]
        if first and second:
            return "reshape"
        if second and not has_dims_input and attrs["reshape_dims"] is None:
            return "permute"
        return None

    @staticmethod
    def view(data: torch.Tensor, shape: tuple[int, ...], attrs: dict[str, Any]) -> torch.Tensor:
        """The output as a view of `data` (the shuffle's view_kind is not None)."""
        if tuple(attrs["second_transpose"][: len(shape)]) != IDENTITY_PERMUTATION[: len(shape)]:
            raise ValueError("a shuffle with a second transpose is not a view")
        first = tuple(attrs["first_transpose"][: data.dim()])
        if first != IDENTITY_PERMUTATION[: data.dim()]:
            return data.permute(first)
        return data.view(shape)

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        data, out = _movable(inputs[0]), _movable(outputs[0])
        first = attrs["first_transpose"][: data.dim()]
        second = attrs["second_transpose"][: out.dim()]
        if first != IDENTITY_PERMUTATION[: data.dim()]:
            data = data.permute(first)
        if second == IDENTITY_PERMUTATION[: out.dim()]:
            # Reshaping into the contiguous output is free: one copy does all the work.
            out.view(data.shape).copy_(data)
            return
        # The reshape target is the output shape before the second transpose.
        reshaped = [0] * out.dim()
        for position, source in enumerate(second):
            reshaped[source] = out.shape[position]
        out.copy_(data.reshape(reshaped).permute(second))


class Concatenation(Op):
    """IConcatenationLayer: inputs of one type and rank, equal in every dim but `axis`."""

    name = "concatenation"
    reduced_precision = True
    layer_type = LayerType.CONCATENATION
    num_inputs = (1, MAX_CONCAT_INPUTS)
    attrs = {"axis": Int(0, low=0)}

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        if any(meta is None for meta in inputs):
            missing = [index for index, meta in enumerate(inputs) if meta is None]
            raise ShapeError(f"inputs {missing} are missing")
        same_dtype(inputs)
        rank = inputs[0].rank
        shapes = ", ".join(str(list(meta.shape)) for meta in inputs)
        if any(meta.rank != rank for meta in inputs):
            raise ShapeError(f"inputs must have the same rank, got shapes {shapes}")
        axis = attrs["axis"]
        if axis >= rank:
            raise ShapeError(f"axis {axis} is out of range for inputs of rank {rank}")
        shape = []
        for dim, sizes in enumerate(zip(*(meta.shape for meta in inputs), strict=True)):
            if dim == axis:
                shape.append(UNKNOWN if UNKNOWN in sizes else sum(sizes))
                continue
            known = {size for size in sizes if size != UNKNOWN}
            if len(known) > 1:
                raise ShapeError(
                    f"inputs must match in every dimension but the axis {axis}; "
                    f"dimension {dim} differs in shapes {shapes}"
                )
            shape.append(known.pop() if known else UNKNOWN)
        return [TensorMeta(inputs[0].dtype, tuple(shape))]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        torch.cat([_movable(x) for x in inputs], dim=attrs["axis"], out=_movable(outputs[0]))


class Slice(Op):
    """ISliceLayer: reads `start + i * stride` for i < size along each sliced axis.

    Inputs 1, 2, 3 and 5 are shape tensors that replace start, shape, stride and axes;
    input 4 is the fill value of SampleMode.FILL (zero when absent). Axes may be
    negative (counted from the end).
    """

    name = "slice"
    reduced_precision = True
    layer_type = LayerType.SLICE
    num_inputs = (1, 6)
    shape_inputs = frozenset({1, 2, 3, 5})
    attrs = {
        "start": Ints(()),
        "shape": Ints(()),
        "stride": Ints(()),
        "mode": Enum(SampleMode, SampleMode.STRICT_BOUNDS),
        "axes": Ints(None),
    }

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        data = inputs[0]
        mode = attrs["mode"]
        fill = _optional(inputs, 4)
        if fill is not None:
            if mode != SampleMode.FILL:
                raise ShapeError(f"a fill value (input 4) needs SampleMode.FILL, not {mode.name}")
            if fill.dtype != data.dtype:
                raise ShapeError(
                    f"the fill value must have the data's type {data.dtype.name}, "
                    f"got {fill.dtype.name}"
                )
            if fill.is_static and numel(fill.shape) != 1:
                raise ShapeError(
                    f"the fill value must be one element, got shape {list(fill.shape)}"
                )
        params = {key: _slice_param(inputs, attrs, index, key) for key, index in _SLICE_PARAMS}
        if params["axes"] is _UNKNOWN_VALUES:
            return [TensorMeta(data.dtype, (UNKNOWN,) * data.rank)]
        axes = _slice_axes(params["axes"], data.rank)
        for key in ("start", "shape", "stride"):
            values = params[key]
            if values is not _UNKNOWN_VALUES and len(values) != len(axes):
                raise ShapeError(
                    f"{key} has {len(values)} values but {len(axes)} axes are sliced "
                    f"(input shape {list(data.shape)})"
                )
        sizes = params["shape"]
        if sizes is not _UNKNOWN_VALUES and any(size < 0 for size in sizes):
            raise ShapeError(f"the slice shape {list(sizes)} has negative sizes")
        shape = list(data.shape)
        for position, axis in enumerate(axes):
            shape[axis] = UNKNOWN if sizes is _UNKNOWN_VALUES else sizes[position]
        if _UNKNOWN_VALUES not in (params["start"], sizes, params["stride"]):
            for position, axis in enumerate(axes):
                _check_bounds(
                    mode,
                    axis,
                    data.shape[axis],
                    params["start"][position],
                    sizes[position],
                    params["stride"][position],
                )
        return [TensorMeta(data.dtype, tuple(shape))]

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        data, out = _movable(inputs[0]), _movable(outputs[0])
        if out.numel() == 0:
            return
        rank = data.dim()
        params = {key: _host_values(inputs, attrs, index, key) for key, index in _SLICE_PARAMS}
        starts, strides = [0] * rank, [1] * rank
        for position, axis in enumerate(_slice_axes(params["axes"], rank)):
            starts[axis] = params["start"][position]
            strides[axis] = params["stride"][position]
        mode = attrs["mode"]
        fill = None
        if mode == SampleMode.FILL:
            given = _optional(inputs, 4)
            fill = (
                _movable(given).reshape(())
                if given is not None
                else torch.zeros((), dtype=out.dtype, device=out.device)
            )
            if data.numel() == 0:
                out.copy_(fill.expand(out.shape))
                return
        result, inside = data, None
        for axis in range(rank):
            start, stride = starts[axis], strides[axis]
            size, dim = out.shape[axis], data.shape[axis]
            last = start + (size - 1) * stride
            if stride > 0 and start >= 0 and last < dim:
                if (start, stride, size) != (0, 1, dim):
                    index = (slice(None),) * axis + (slice(start, last + 1, stride),)
                    result = result[index]
                continue
            coords = start + torch.arange(size, device=data.device) * stride
            if mode == SampleMode.WRAP:
                coords = coords.remainder(dim)
            elif mode == SampleMode.CLAMP:
                coords = coords.clamp(0, dim - 1)
            elif mode == SampleMode.REFLECT:
                coords = _reflect(coords, dim)
            elif mode == SampleMode.FILL:
                valid = ((coords >= 0) & (coords < dim)).view(
                    (1,) * axis + (size,) + (1,) * (rank - axis - 1)
                )
                inside = valid if inside is None else inside & valid
                coords = coords.clamp(0, dim - 1)
            result = result.index_select(axis, coords)
        if inside is not None:
            result = torch.where(inside, result, fill)
        out.copy_(result)


class Gather(Op):
    """IGatherLayer in its three modes (ONNX Gather, GatherElements, GatherND).

    Negative indices count from the end of their axis, as in ONNX; indices out of range
    (past either end) produce zeros, as TensorRT documents ("zero will be stored for OOB
    access"), in every mode.
    """

    name = "gather"
    reduced_precision = True
    layer_type = LayerType.GATHER
    num_inputs = (2, 2)
    attrs = {
        "axis": Int(0, low=0),
        "mode": Enum(GatherMode, GatherMode.DEFAULT),
        "num_elementwise_dims": Int(0, low=0),
    }

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        data, indices = inputs
        if indices.dtype not in _INDEX_TYPES:
            raise ShapeError(f"indices must be INT32 or INT64, got {indices.dtype.name}")
        if data.rank < 1:
            raise ShapeError("the data input must have rank 1 or more, got a scalar")
        mode, axis = attrs["mode"], attrs["axis"]
        batch = attrs["num_elementwise_dims"]
        if mode == GatherMode.ND:
            shape = _gather_nd_shape(data.shape, indices.shape, batch)
        elif axis >= data.rank:
            raise ShapeError(f"axis {axis} is out of range for data of rank {data.rank}")
        elif mode == GatherMode.ELEMENT:
            shape = _gather_element_shape(data.shape, indices.shape, axis, batch)
        else:
            shape = _gather_default_shape(data.shape, indices.shape, axis, batch)
        return [TensorMeta(data.dtype, shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        data, out = _movable(inputs[0]), _movable(outputs[0])
        indices = inputs[1].long()
        if out.numel() == 0:
            return
        mode, axis = attrs["mode"], attrs["axis"]
        if mode == GatherMode.ND:
            _gather_nd(data, indices, attrs["num_elementwise_dims"], out)
        elif data.shape[axis] == 0:
            out.zero_()
        elif mode == GatherMode.ELEMENT:
            safe, valid = _safe_indices(indices, data.shape[axis])
            out.copy_(torch.where(valid, torch.gather(data, axis, safe), _zero(data)))
        else:
            _gather_default(data, indices, axis, attrs["num_elementwise_dims"], out)


class Shape(Op):
    """IShapeLayer: the input's dimensions as a 1-D INT64 tensor (TensorRT 10).

    Its value is known whenever the input's shape is, which makes it a shape tensor whose
    consumers fold at build time (static shapes) or are computed on the host per input
    shape at run time.
    """

    name = "shape"
    any_input_type = True
    layer_type = LayerType.SHAPE

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (data,) = inputs
        value = torch.tensor(data.shape, dtype=torch.int64) if data.is_static else None
        return [TensorMeta(DataType.INT64, (data.rank,), value)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        outputs[0].copy_(torch.tensor(inputs[0].shape, dtype=torch.int64))


# -- shuffle helpers ----------------------------------------------------------------------


def _permutation(order: Sequence[int], rank: int, what: str) -> tuple[int, ...]:
    """The first `rank` entries of a transpose (TensorRT ignores the rest), checked."""
    if len(order) < rank:
        raise ShapeError(f"{what} {list(order)} has fewer entries than the rank {rank}")
    used = tuple(order[:rank])
    if sorted(used) != list(range(rank)):
        raise ShapeError(f"{what} {list(used)} is not a permutation of the {rank} dimensions")
    return used


def _reshape(shape: tuple[int, ...], dims: Sequence[int], placeholder: bool) -> tuple[int, ...]:
    """The dims of reshaping `shape` to `dims`, resolving 0 (placeholder) and -1.

    Unknown input dims copied by a 0 cancel out, so (0, -1) of (-1, 3, 4) gives (-1, 12).
    """
    copied = {index for index, d in enumerate(dims) if d == 0 and placeholder}
    if any(index >= len(shape) for index in copied):
        raise ShapeError(
            f"reshape dims {list(dims)} copy dimension {max(copied)} (a 0) "
            f"but the input {list(shape)} has rank {len(shape)}"
        )
    if any(d < -1 for d in dims):
        raise ShapeError(f"reshape dims {list(dims)} have values below -1")
    wildcards = [index for index, d in enumerate(dims) if d == -1]
    if len(wildcards) > 1:
        raise ShapeError(f"reshape dims {list(dims)} have more than one -1")
    result = [shape[index] if index in copied else d for index, d in enumerate(dims)]
    rest_in = [d for index, d in enumerate(shape) if index not in copied]
    rest_out = [d for index, d in enumerate(result) if index not in copied and d != -1]
    if 0 in (shape[index] for index in copied):
        volumes = (0, 0)
    elif UNKNOWN in rest_in:
        return tuple(result)
    else:
        volumes = (numel(rest_in), numel(rest_out))
    if wildcards:
        if volumes[1] == 0:
            raise ShapeError(
                f"reshape dims {list(dims)} cannot infer the -1 of input {list(shape)}: "
                "the other dimensions have no elements"
            )
        if volumes[0] % volumes[1]:
            raise ShapeError(
                f"input {list(shape)} cannot be reshaped to {list(dims)}: "
                f"{volumes[0]} elements do not divide into parts of {volumes[1]}"
            )
        result[wildcards[0]] = volumes[0] // volumes[1]
    elif volumes[0] != volumes[1]:
        raise ShapeError(
            f"input {list(shape)} with {numel(shape)} elements cannot be reshaped "
            f"to {list(dims)} with {numel(result)} elements"
        )
    return tuple(result)


def _check_shape_tensor(meta: TensorMeta, what: str) -> None:
    if meta.dtype not in _INDEX_TYPES or meta.rank != 1:
        raise ShapeError(
            f"{what} must be a 1-D INT32 or INT64 shape tensor, "
            f"got {meta.dtype.name} of shape {list(meta.shape)}"
        )


# -- slice helpers ------------------------------------------------------------------------

_SLICE_PARAMS = (("start", 1), ("shape", 2), ("stride", 3), ("axes", 5))
_UNKNOWN_VALUES: Any = object()
"""A dynamic slice parameter whose values are not known yet (network level)."""


def _optional(items: Sequence[Any], index: int) -> Any:
    return items[index] if index < len(items) else None


def _slice_param(
    inputs: list[TensorMeta | None], attrs: dict[str, Any], index: int, key: str
) -> tuple[int, ...] | None:
    """A parameter from its shape tensor (when set) or the attribute; _UNKNOWN_VALUES if not known."""
    meta = _optional(inputs, index)
    if meta is None:
        return attrs[key]
    _check_shape_tensor(meta, f"the {key} tensor (input {index})")
    if meta.value is None:
        return _UNKNOWN_VALUES
    return tuple(int(v) for v in meta.value.tolist())


def _host_values(
    inputs: list[torch.Tensor | None], attrs: dict[str, Any], index: int, key: str
) -> tuple[int, ...] | None:
    """A parameter at run time: shape inputs arrive as host tensors."""
    tensor = _optional(inputs, index)
    return attrs[key] if tensor is None else tuple(int(v) for v in tensor.tolist())


def _slice_axes(axes: Sequence[int] | None, rank: int) -> tuple[int, ...]:
    if axes is None:
        return tuple(range(rank))
    normalized = tuple(normalize_axis(axis, rank, "slice axis") for axis in axes)
    if len(set(normalized)) != len(normalized):
        raise ShapeError(f"slice axes {list(axes)} name an axis twice")
    return normalized


def _check_bounds(
    mode: SampleMode, axis: int, dim: int, start: int, size: int, stride: int
) -> None:
    if size == 0 or dim == UNKNOWN or mode == SampleMode.FILL:
        return
    if dim == 0:
        raise ShapeError(
            f"axis {axis} of the input is empty, so a slice of size {size} has nothing to "
            f"read in {mode.name} mode"
        )
    last = start + (size - 1) * stride
    if mode == SampleMode.STRICT_BOUNDS and not (0 <= start < dim and 0 <= last < dim):
        raise ShapeError(
            f"the slice reads coordinates {start} to {last} of axis {axis}, which has size {dim} "
            "(out of bounds in STRICT_BOUNDS mode; WRAP, CLAMP, FILL or REFLECT read past the edge)"
        )


def _reflect(coords: torch.Tensor, dim: int) -> torch.Tensor:
    """TensorRT's REFLECT: mirror about the edge elements' centres, repeated indefinitely."""
    if dim == 1:
        return torch.zeros_like(coords)
    period = 2 * (dim - 1)
    folded = coords.remainder(period)
    return torch.where(folded >= dim, period - folded, folded)


# -- gather helpers -----------------------------------------------------------------------


def _gather_default_shape(
    data: tuple[int, ...], indices: tuple[int, ...], axis: int, batch: int
) -> tuple[int, ...]:
    if batch > 1:
        raise ShapeError(f"num_elementwise_dims must be 0 or 1 in DEFAULT mode, got {batch}")
    if batch == 0:
        return data[:axis] + indices + data[axis + 1 :]
    if axis == 0:
        raise ShapeError("axis 0 is the elementwise dimension; gather on axis 1 or later")
    if not indices:
        raise ShapeError("indices must have rank 1 or more with one elementwise dimension")
    (leading,) = broadcast([data[:1], indices[:1]])
    return (leading, *data[1:axis], *indices[1:], *data[axis + 1 :])


def _gather_element_shape(
    data: tuple[int, ...], indices: tuple[int, ...], axis: int, batch: int
) -> tuple[int, ...]:
    if batch != 0:
        raise ShapeError(f"num_elementwise_dims must be 0 in ELEMENT mode, got {batch}")
    if len(indices) != len(data):
        raise ShapeError(
            f"indices {list(indices)} must have the rank of the data {list(data)} in ELEMENT mode"
        )
    for dim, (size, limit) in enumerate(zip(indices, data, strict=True)):
        if dim != axis and UNKNOWN not in (size, limit) and size > limit:
            raise ShapeError(
                f"indices {list(indices)} are larger than the data {list(data)} "
                f"in dimension {dim}, which is not the gather axis {axis}"
            )
    return indices


def _gather_nd_shape(
    data: tuple[int, ...], indices: tuple[int, ...], batch: int
) -> tuple[int, ...]:
    if batch >= len(data):
        raise ShapeError(
            f"num_elementwise_dims {batch} must be less than the data rank {len(data)} in ND mode"
        )
    if len(indices) <= batch:
        raise ShapeError(
            f"indices {list(indices)} need rank above num_elementwise_dims {batch} in ND mode"
        )
    depth = indices[-1]
    if depth == UNKNOWN:
        raise ShapeError("in ND mode the last dimension of the indices must be known at build time")
    if batch + depth > len(data):
        raise ShapeError(
            f"indices {list(indices)} index {depth} dimensions past the {batch} elementwise ones, "
            f"but the data {list(data)} has rank {len(data)}"
        )
    for dim in range(batch):
        if UNKNOWN not in (data[dim], indices[dim]) and data[dim] != indices[dim]:
            raise ShapeError(
                f"elementwise dimension {dim} differs between data {list(data)} "
                f"and indices {list(indices)}"
            )
    leading = tuple(data[dim] if indices[dim] == UNKNOWN else indices[dim] for dim in range(batch))
    return leading + indices[batch:-1] + data[batch + depth :]


def _safe_indices(indices: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Indices with negatives counted from the end, out-of-range ones replaced by 0, and
    the mask of those that were in range."""
    indices = torch.where(indices < 0, indices + size, indices)
    valid = (indices >= 0) & (indices < size)
    return torch.where(valid, indices, torch.zeros_like(indices)), valid


def _gather_default(
    data: torch.Tensor, indices: torch.Tensor, axis: int, batch: int, out: torch.Tensor
) -> None:
    safe, valid = _safe_indices(indices, data.shape[axis])
    if batch == 0:
        picked = data.index_select(axis, safe.reshape(-1)).reshape(out.shape)
        mask = valid.reshape((1,) * axis + indices.shape + (1,) * (data.dim() - axis - 1))
        out.copy_(torch.where(mask, picked, _zero(data)))
        return
    # One elementwise dim: data[b, ..., indices[b, ...], ...] with broadcast on b.
    leading = max(data.shape[0], indices.shape[0])
    data = data.expand((leading, *data.shape[1:]))
    safe = safe.expand((leading, *safe.shape[1:]))
    valid = valid.expand((leading, *valid.shape[1:]))
    rows = torch.arange(leading, device=data.device).view((leading,) + (1,) * (safe.dim() - 1))
    # Advanced indexing puts the index dims first: (b, indices..., data dims before and after axis).
    picked = data.movedim(axis, 1)[rows, safe]
    depth = safe.dim() - 1
    before = list(range(depth + 1, depth + axis))
    order = [0, *before, *range(1, depth + 1), *range(depth + axis, picked.dim())]
    picked = picked.permute(order)
    mask = valid.reshape((leading,) + (1,) * (axis - 1) + valid.shape[1:])
    mask = mask.reshape(mask.shape + (1,) * (picked.dim() - mask.dim()))
    out.copy_(torch.where(mask, picked, _zero(data)))


def _gather_nd(data: torch.Tensor, indices: torch.Tensor, batch: int, out: torch.Tensor) -> None:
    """ONNX GatherND with `batch` leading elementwise dims, zeros for out-of-range tuples."""
    depth = indices.shape[-1]
    indexed = data.shape[batch : batch + depth]
    count = numel(indexed)
    if count == 0:
        out.zero_()
        return
    batches = numel(data.shape[:batch])
    limits = torch.tensor(indexed, dtype=torch.int64, device=data.device)
    tuples = indices.reshape(batches, numel(indices.shape[batch:-1]), depth)
    tuples = torch.where(tuples < 0, tuples + limits, tuples)
    valid = ((tuples >= 0) & (tuples < limits)).all(dim=-1)
    strides = torch.tensor(
        [numel(indexed[position + 1 :]) for position in range(depth)],
        dtype=torch.int64,
        device=data.device,
    )
    flat = torch.where(valid.unsqueeze(-1), tuples, torch.zeros_like(tuples))
    flat = (flat * strides).sum(dim=-1)
    rows = torch.arange(batches, device=data.device).unsqueeze(-1)
    picked = data.reshape(batches, count, -1)[rows, flat]
    out.copy_(torch.where(valid.unsqueeze(-1), picked, _zero(data)).reshape(out.shape))


def _zero(like: torch.Tensor) -> torch.Tensor:
    return torch.zeros((), dtype=like.dtype, device=like.device)


# -- all ops ------------------------------------------------------------------------------

_STORAGE_TYPES = {
    torch.float8_e4m3fn: torch.uint8,
    torch.float8_e5m2: torch.uint8,
    torch.float8_e4m3fnuz: torch.uint8,
    torch.float8_e5m2fnuz: torch.uint8,
    torch.uint16: torch.int16,
    torch.uint32: torch.int32,
    torch.uint64: torch.int64,
}
"""Types torch cannot index or copy between layouts, moved as integers of the same width."""


def _movable(tensor: torch.Tensor) -> torch.Tensor:
    """The tensor viewed as a type every torch data-movement kernel supports (no copy)."""
    storage = _STORAGE_TYPES.get(tensor.dtype)
    return tensor if storage is None else tensor.view(storage)


OPS = [Shuffle(), Concatenation(), Slice(), Gather(), Shape()]
