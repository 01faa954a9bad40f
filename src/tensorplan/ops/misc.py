"""Extension ops for ONNX operators no TensorRT layer expresses: Unique, LpPool, Det.

Each has layer_type LayerType.PLUGIN (TensorRT would run it as a plugin) and follows the ONNX
operator of the same name (ONNX's opset 11+ Unique, opset 18 LpPool, opset 11 Det).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

from ..device import storage_itemsize
from ..types import FLOATS, DataType, LayerType, PaddingMode
from .base import UNKNOWN, Bool, Enum, Float, Int, Ints, Op, ShapeError, TensorMeta
from .conv import pad_arg, window_geometry
from .shapes import normalize_axis, numel

MAX_WINDOW_RANK = 3


class OptionalInt(Int):
    """An integer attribute that may also be None (not given)."""

    def __init__(self) -> None:
        super().__init__(default=None)

    def check(self, value: Any) -> int | None:
        return None if value is None else super().check(value)


class Unique(Op):
    """ONNX Unique: the unique elements (axis None: of the flattened input) or unique slices
    along `axis`. Outputs Y, indices (first occurrence of each in the input), inverse_indices
    (for each input element or slice, its index in Y) and counts, all INT64 but Y.
    `sorted` True gives Y in ascending order (slices: lexicographically), False in order of
    first occurrence."""

    name = "unique"
    layer_type = LayerType.PLUGIN
    num_outputs = 4
    data_dependent = True
    attrs = {"axis": OptionalInt(), "sorted": Bool(True)}

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (x,) = inputs
        if attrs["axis"] is None:
            values = (UNKNOWN,)
            length = numel(x.shape) if x.is_static else UNKNOWN
        else:
            if x.rank == 0:
                raise ShapeError("a 0-D input has no axis; leave axis unset")
            axis = normalize_axis(attrs["axis"], x.rank)
            values = (*x.shape[:axis], UNKNOWN, *x.shape[axis + 1 :])
            length = x.shape[axis]
        return [
            TensorMeta(x.dtype, values),
            TensorMeta(DataType.INT64, (UNKNOWN,)),
            TensorMeta(DataType.INT64, (length,)),
            TensorMeta(DataType.INT64, (UNKNOWN,)),
        ]

    def run_dynamic(self, inputs: list[torch.Tensor], attrs: dict[str, Any]) -> list[torch.Tensor]:
        (x,) = inputs
        axis = attrs["axis"]
        if axis is None:
            x, axis = x.reshape(-1), 0
        axis = axis % x.dim()
        values, inverse, counts = torch.unique(
            x, sorted=True, return_inverse=True, return_counts=True, dim=axis
        )
        positions = torch.arange(inverse.numel(), device=x.device)
        first = torch.full_like(counts, inverse.numel()).scatter_reduce(
            0, inverse, positions, reduce="amin"
        )
        if not attrs["sorted"]:
            order = torch.argsort(first)
            rank = torch.empty_like(order)
            rank[order] = torch.arange(order.numel(), device=x.device)
            values = values.index_select(axis, order)
            first, counts, inverse = first[order], counts[order], rank[inverse]
        return [values.contiguous(), first, inverse, counts]


class LpPooling(Op):
    """ONNX LpPool over the trailing 1 to 3 dims: (sum of |x|^p over each window)^(1/p),
    padding counting as zeros.

    padding_mode: EXPLICIT_ROUND_DOWN (ONNX ceil_mode 0), EXPLICIT_ROUND_UP (ceil_mode 1,
    with ONNX's rule that no window starts past the input and its pre-padding), SAME_UPPER
    and SAME_LOWER (ONNX auto_pad; explicit paddings are ignored). ONNX's VALID is
    EXPLICIT_ROUND_DOWN without padding.
    """

    name = "lp_pooling"
    reduced_precision = True
    layer_type = LayerType.PLUGIN
    attrs = {
        "window_size_nd": Ints(max_len=MAX_WINDOW_RANK),
        "stride_nd": Ints(max_len=MAX_WINDOW_RANK),
        "dilation_nd": Ints(max_len=MAX_WINDOW_RANK),
        "pre_padding": Ints(max_len=MAX_WINDOW_RANK),
        "post_padding": Ints(max_len=MAX_WINDOW_RANK),
        "padding_mode": Enum(PaddingMode, PaddingMode.EXPLICIT_ROUND_DOWN),
        "p": Float(2.0),
    }

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (x,) = inputs
        window = _window(attrs)
        rank = len(window["window_size_nd"])
        if x.rank < rank + 1:
            raise ShapeError(
                f"a {rank}D Lp pooling needs an input of rank {rank + 1} or more, got shape "
                f"{list(x.shape)}"
            )
        if x.dtype not in FLOATS:
            raise ShapeError(f"Lp pooling needs a FLOAT, HALF or BF16 input, got {x.dtype.name}")
        if attrs["p"] <= 0:
            raise ShapeError(f"p must be positive, got {attrs['p']}")
        sizes = [
            _lp_geometry(size, axis, window, attrs)[0] for axis, size in enumerate(x.shape[-rank:])
        ]
        return [TensorMeta(x.dtype, (*x.shape[:-rank], *sizes))]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x = inputs[0]
        window = _window(attrs)
        size = window["window_size_nd"]
        rank = len(size)
        geometry = [_lp_geometry(s, axis, window, attrs) for axis, s in enumerate(x.shape[-rank:])]
        p = attrs["p"]
        powered = x.reshape(-1, 1, *x.shape[-rank:]).float().abs().pow(p)
        padded = F.pad(powered, pad_arg([g[1] for g in geometry], [g[2] for g in geometry]))
        ones = torch.ones((1, 1, *size), dtype=torch.float32, device=x.device)
        conv = (F.conv1d, F.conv2d, F.conv3d)[rank - 1]
        sums = conv(padded, ones, stride=window["stride_nd"], dilation=window["dilation_nd"])
        outputs[0].copy_(sums.pow(1.0 / p).view(outputs[0].shape))


class Det(Op):
    """ONNX Det: the determinants of the square matrices in the last two dims."""

    name = "det"
    layer_type = LayerType.PLUGIN

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (x,) = inputs
        if x.dtype not in (DataType.FLOAT, DataType.HALF, DataType.DOUBLE):
            raise ShapeError(f"det needs a FLOAT, HALF or DOUBLE input, got {x.dtype.name}")
        rows, cols = x.shape[-2:] if x.rank >= 2 else (0, 1)
        if x.rank < 2 or (UNKNOWN not in (rows, cols) and rows != cols):
            raise ShapeError(f"det needs square matrices in the last two dims, got {list(x.shape)}")
        return [TensorMeta(x.dtype, x.shape[:-2])]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x = inputs[0]
        wide = torch.float64 if x.dtype == torch.float64 else torch.float32
        outputs[0].copy_(torch.linalg.det(x.to(wide)))


class MaxUnpool(Op):
    """ONNX MaxUnpool: input values scattered to the positions `indices` (into the whole
    unpooled tensor, flattened) of a zero tensor of the shape MaxPool had; with the optional
    output_shape (input 2, a shape tensor, full rank) that tensor is zero-padded at the end
    of each dim to it. Attributes kernel_shape, strides and pads (begins, then ends) as ONNX."""

    name = "max_unpool"
    layer_type = LayerType.PLUGIN
    num_inputs = (2, 3)
    shape_inputs = frozenset({2})
    attrs = {
        "kernel_shape": Ints(max_len=MAX_WINDOW_RANK),
        "strides": Ints(max_len=MAX_WINDOW_RANK),
        "pads": Ints(max_len=2 * MAX_WINDOW_RANK),
    }

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, indices = inputs[:2]
        unpooled = _unpooled_shape(x.shape, attrs)
        if indices.dtype not in (DataType.INT32, DataType.INT64) or not _same_dims(
            indices.shape, x.shape
        ):
            raise ShapeError(
                f"indices must be INT32 or INT64 of the input's shape {list(x.shape)}, got "
                f"{indices.dtype.name} of shape {list(indices.shape)}"
            )
        target = inputs[2] if len(inputs) > 2 else None
        if target is None:
            return [TensorMeta(x.dtype, unpooled)]
        if target.value is None:
            return [TensorMeta(x.dtype, (UNKNOWN,) * x.rank)]
        shape = tuple(int(v) for v in target.value.reshape(-1))
        if len(shape) != x.rank or any(
            u != UNKNOWN and s < u for s, u in zip(shape, unpooled, strict=True)
        ):
            raise ShapeError(
                f"output_shape {list(shape)} must have rank {x.rank} and hold the unpooled "
                f"shape {list(unpooled)}"
            )
        return [TensorMeta(x.dtype, shape)]

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        x, indices = inputs[:2]
        unpooled = _unpooled_shape(tuple(x.shape), attrs)
        flat = torch.zeros(numel(unpooled), dtype=x.dtype, device=x.device)
        flat.scatter_(0, indices.reshape(-1).long(), x.reshape(-1))
        out = outputs[0]
        out.zero_()
        corner = out[tuple(slice(0, size) for size in unpooled)]
        corner.copy_(flat.view(unpooled))


class Col2Im(Op):
    """ONNX Col2Im: blocks [N, C * prod(block_shape), L] summed back into images
    [N, C, *image_shape]; image_shape and block_shape are inputs 1 and 2 (1-D shape
    tensors); dilations, pads (begins, then ends) and strides are attributes as ONNX."""

    name = "col2im"
    layer_type = LayerType.PLUGIN
    num_inputs = (3, 3)
    shape_inputs = frozenset({1, 2})
    attrs = {
        "dilations": Ints(max_len=8),
        "pads": Ints(max_len=16),
        "strides": Ints(max_len=8),
    }

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        x, image, block = inputs
        if x.rank != 3:
            raise ShapeError(f"the input must be [N, C * block size, blocks], got {list(x.shape)}")
        for meta, what in ((image, "image_shape"), (block, "block_shape")):
            if meta.rank != 1 or meta.dtype not in (DataType.INT32, DataType.INT64):
                raise ShapeError(
                    f"{what} must be a 1-D INT32 or INT64 tensor, got {list(meta.shape)}"
                )
        if image.value is None or block.value is None:
            rank = max(image.shape[0], block.shape[0])
            return [TensorMeta(x.dtype, (x.shape[0], UNKNOWN, *(UNKNOWN,) * max(rank, 0)))]
        geometry = _col2im_geometry(image.value.tolist(), block.value.tolist(), attrs)
        kernel = numel(geometry["block"])
        blocks = numel(geometry["counts"])
        channels, length = x.shape[1], x.shape[2]
        if channels != UNKNOWN and channels % kernel:
            raise ShapeError(f"dim 1 ({channels}) must be a multiple of the block size {kernel}")
        if length not in (UNKNOWN, blocks):
            raise ShapeError(
                f"dim 2 ({length}) must be the number of blocks {blocks} "
                f"({' x '.join(map(str, geometry['counts']))})"
            )
        planes = UNKNOWN if channels == UNKNOWN else channels // kernel
        return [TensorMeta(x.dtype, (x.shape[0], planes, *geometry["image"]))]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        x = inputs[0]
        geometry = _col2im_geometry(inputs[1].tolist(), inputs[2].tolist(), attrs)
        padded = [
            i + b + e
            for i, b, e in zip(geometry["image"], geometry["begin"], geometry["end"], strict=True)
        ]
        # the flat index in the padded image of each (block offset, block) pair
        index = torch.zeros((1, 1), dtype=torch.int64, device=x.device)
        for axis, size in enumerate(padded):
            offsets = (
                torch.arange(geometry["block"][axis], device=x.device) * geometry["dilations"][axis]
            )
            starts = (
                torch.arange(geometry["counts"][axis], device=x.device) * geometry["strides"][axis]
            )
            index = (
                index[:, None, :, None] * size
                + (offsets[:, None] + starts[None, :])[None, :, None, :]
            )
            index = index.reshape(index.shape[0] * index.shape[1], -1)
        batch = x.shape[0]
        planes = outputs[0].shape[1]
        image = torch.zeros((batch, planes, numel(padded)), dtype=x.dtype, device=x.device)
        columns = x.reshape(batch, planes, -1)
        image.scatter_add_(2, index.reshape(1, 1, -1).expand_as(columns), columns)
        image = image.view(batch, planes, *padded)
        for axis, (begin, size) in enumerate(
            zip(geometry["begin"], geometry["image"], strict=True)
        ):
            image = image.narrow(axis + 2, begin, size)
        outputs[0].copy_(image)


def _window(attrs: dict[str, Any]) -> dict[str, tuple[int, ...]]:
    """The window attributes with defaults filled in; ShapeError when they disagree."""
    size = attrs["window_size_nd"]
    rank = len(size)
    if not 1 <= rank <= MAX_WINDOW_RANK or min(size) < 1:
        raise ShapeError(f"window_size_nd must be 1 to 3 positive sizes, got {list(size)}")
    window = {"window_size_nd": size}
    for key, default, low in (
        ("stride_nd", 1, 1),
        ("dilation_nd", 1, 1),
        ("pre_padding", 0, 0),
        ("post_padding", 0, 0),
    ):
        value = attrs[key] or (default,) * rank
        if len(value) != rank or min(value) < low:
            raise ShapeError(
                f"{key} must have {rank} values (as window_size_nd) of at least {low}, "
                f"got {list(value)}"
            )
        window[key] = value
    return window


def _lp_geometry(
    size: int, axis: int, window: dict[str, tuple[int, ...]], attrs: dict[str, Any]
) -> tuple[int, int, int]:
    """(Output size, pre-padding, padding after the input) of one pooled dim, as ONNX."""
    stride = window["stride_nd"][axis]
    extent = (window["window_size_nd"][axis] - 1) * window["dilation_nd"][axis] + 1
    mode = attrs["padding_mode"]
    out, pre, _, end = window_geometry(
        size,
        extent,
        stride,
        window["pre_padding"][axis],
        window["post_padding"][axis],
        mode,
        f"pooled dimension {axis}: the window",
    )
    if (
        mode == PaddingMode.EXPLICIT_ROUND_UP
        and out != UNKNOWN
        and (out - 1) * stride >= size + pre
    ):
        out -= 1  # ONNX: the last window starts inside the input or its pre-padding
        end -= stride
    return out, pre, end


class BitCast(Op):
    """Extension (ONNX BitCast): the input's bytes read as `to_type`, which must have the
    same element size (sub-byte and bit-coded types are refused)."""

    name = "bitcast"
    layer_type = LayerType.PLUGIN
    attrs = {"to_type": Enum(DataType, DataType.FLOAT)}

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        (x,) = inputs
        to_type = attrs["to_type"]
        for dtype in (x.dtype, to_type):
            if dtype.itemsize != storage_itemsize(dtype):  # sub-byte: stored a value per byte
                raise ShapeError(f"cannot bit-cast {dtype.name}: its storage is not its bits")
        if x.dtype.itemsize != to_type.itemsize:
            raise ShapeError(
                f"cannot bit-cast {x.dtype.name} ({x.dtype.itemsize} bytes) to {to_type.name} "
                f"({to_type.itemsize} bytes): element sizes must match"
            )
        return [TensorMeta(to_type, x.shape)]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        outputs[0].copy_(inputs[0].view(outputs[0].dtype))


OPS: list[Op] = [Unique(), LpPooling(), Det(), MaxUnpool(), Col2Im(), BitCast()]


def _unpooled_shape(shape: tuple[int, ...], attrs: dict[str, Any]) -> tuple[int, ...]:
    """The shape of MaxUnpool's output before output_shape: MaxPool's input shape."""
    kernel = attrs["kernel_shape"]
    rank = len(kernel)
    strides = attrs["strides"] or (1,) * rank
    pads = attrs["pads"] or (0,) * (2 * rank)
    if not 1 <= rank <= MAX_WINDOW_RANK or len(strides) != rank or len(pads) != 2 * rank:
        raise ShapeError(
            f"kernel_shape {list(kernel)} needs 1 to 3 values, strides as many and pads twice "
            f"as many, got strides {list(strides)} and pads {list(pads)}"
        )
    if len(shape) != rank + 2:
        raise ShapeError(f"the input must be [N, C, ...] of rank {rank + 2}, got {list(shape)}")
    spatial = [
        UNKNOWN if size == UNKNOWN else (size - 1) * s - pads[i] - pads[rank + i] + kernel[i]
        for i, (size, s) in enumerate(zip(shape[2:], strides, strict=True))
    ]
    return (*shape[:2], *spatial)


def _col2im_geometry(
    image: list[int], block: list[int], attrs: dict[str, Any]
) -> dict[str, list[int]]:
    """Col2Im's per-dim sizes, with defaults filled in; ShapeError when they disagree."""
    rank = len(image)
    dilations = list(attrs["dilations"] or (1,) * rank)
    strides = list(attrs["strides"] or (1,) * rank)
    pads = list(attrs["pads"] or (0,) * (2 * rank))
    if (
        len(block) != rank
        or len(dilations) != rank
        or len(strides) != rank
        or len(pads) != 2 * rank
    ):
        raise ShapeError(
            f"image_shape {image}, block_shape {block}, dilations {dilations}, strides {strides} "
            f"and pads {pads} (twice as many) must agree in length"
        )
    if min(image + block + dilations + strides, default=1) < 1 or min(pads, default=0) < 0:
        raise ShapeError("sizes, dilations and strides must be positive and pads non-negative")
    counts = [
        (size + pads[i] + pads[rank + i] - dilations[i] * (block[i] - 1) - 1) // strides[i] + 1
        for i, size in enumerate(image)
    ]
    if min(counts, default=1) < 1:
        raise ShapeError(f"block_shape {block} does not fit in image_shape {image} with its pads")
    return {
        "image": image,
        "block": block,
        "dilations": dilations,
        "strides": strides,
        "begin": pads[:rank],
        "end": pads[rank:],
        "counts": counts,
    }


def _same_dims(a: tuple[int, ...], b: tuple[int, ...]) -> bool:
    return len(a) == len(b) and all(x == y or UNKNOWN in (x, y) for x, y in zip(a, b, strict=True))
