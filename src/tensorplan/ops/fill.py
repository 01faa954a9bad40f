"""The fill op: tensors generated from a shape (linspace, random uniform, random normal).

IFillLayer's inputs are all optional: 0 is the output shape as a 1-D INT32/INT64 shape
tensor (else the `dimensions` attribute), 1 and 2 are alpha and beta as tensors (else the
attributes). Alpha and beta tensors are ordinary device tensors, not shape inputs: their
values are used on the host only when known there (for a LINSPACE result that is itself a
shape tensor, as ONNX Range needs).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ..device import torch_dtype
from ..types import FLOATS_AND_DOUBLE, DataType, FillOperation, LayerType
from .base import MAX_HOST_VALUE_BYTES, UNKNOWN, Attr, Enum, Int, Ints, Op, ShapeError, TensorMeta

_INTEGERS = frozenset({DataType.INT16, DataType.INT32, DataType.INT64})
_INDEX_TYPES = frozenset({DataType.INT32, DataType.INT64})
_OUTPUT_TYPES = {
    # TensorRT: LINSPACE int32/int64/float32, random float16/float32; the rest for ONNX
    FillOperation.LINSPACE: _INTEGERS | FLOATS_AND_DOUBLE,
    FillOperation.RANDOM_UNIFORM: FLOATS_AND_DOUBLE,
    FillOperation.RANDOM_NORMAL: FLOATS_AND_DOUBLE,
}


class Number(Attr):
    """An int or a float, kept as given: int64 alpha/beta stay exact (TensorRT's setAlphaInt64)."""

    def check(self, value: Any) -> int | float:
        if isinstance(value, bool) or not isinstance(value, (int, float, np.number)):
            raise TypeError(f"expected a number, got {value!r}")
        return int(value) if isinstance(value, (int, np.integer)) else float(value)

    def describe(self) -> str:
        return "number (an integer is kept exact)"


class Fill(Op):
    """IFillLayer.

    LINSPACE: `out[i_0, ..., i_n] = alpha + sum_k delta[k] * i_k`. With tensor inputs, alpha
    is a scalar and beta the 1-D `delta` (one per output dim), as TensorRT documents. With the
    scalar `beta` attribute, the values step by beta in row-major order (the flat index), so
    a 1-D fill is `alpha + beta * i`. Integer outputs are computed exactly in int64.
    RANDOM_UNIFORM draws from [alpha, beta), RANDOM_NORMAL from N(alpha, beta**2).

    `seed` (tensorplan extension): None draws fresh values on every execution; an integer
    makes every execution draw the same values (CPU and CUDA streams differ).
    """

    name = "fill"
    layer_type = LayerType.FILL
    num_inputs = (0, 3)
    shape_inputs = frozenset({0})
    attrs = {
        "dimensions": Ints(()),
        "operation": Enum(FillOperation, FillOperation.LINSPACE),
        "alpha": Number(0.0),
        "beta": Number(1.0),
        "to_type": Enum(DataType, DataType.FLOAT),
        "seed": Int(None, low=0),
    }
    foldable = False  # random fills must not become constants; LINSPACE sets its value in infer

    def infer(self, inputs: list[TensorMeta | None], attrs: dict[str, Any]) -> list[TensorMeta]:
        shape_input, alpha, beta = [*inputs, None, None, None][:3]
        operation, to_type = attrs["operation"], attrs["to_type"]
        if to_type not in _OUTPUT_TYPES[operation]:
            allowed = ", ".join(sorted(t.name for t in _OUTPUT_TYPES[operation]))
            raise ShapeError(f"{operation.name} cannot produce {to_type.name}; types: {allowed}")
        shape = _output_shape(shape_input, attrs["dimensions"])
        if (alpha is None) != (beta is None):
            raise ShapeError("alpha (input 1) and beta (input 2) must both be tensors or neither")
        if alpha is None:
            _check_attr_values(attrs, to_type)
        else:
            _check_parameter_tensors(alpha, beta, operation, to_type, len(shape))
        output = TensorMeta(to_type, shape)
        known = alpha is None or (alpha.value is not None and beta.value is not None)
        if (
            operation == FillOperation.LINSPACE
            and known
            and output.is_static
            and output.nbytes <= MAX_HOST_VALUE_BYTES
        ):
            value = torch.empty(shape, dtype=torch_dtype(to_type))
            host = [
                None,
                None if alpha is None else alpha.value,
                None if beta is None else beta.value,
            ]
            self.run(host, [value], attrs)
            return [TensorMeta(to_type, shape, value)]
        return [output]

    def run(
        self, inputs: list[torch.Tensor | None], outputs: list[torch.Tensor], attrs: dict
    ) -> None:
        out = outputs[0]
        alpha = inputs[1] if len(inputs) > 1 else None
        beta = inputs[2] if len(inputs) > 2 else None
        if alpha is None:
            alpha, beta = attrs["alpha"], attrs["beta"]
        operation = attrs["operation"]
        if operation == FillOperation.LINSPACE:
            _linspace(out, alpha, beta)
            return
        generator = None
        if attrs["seed"] is not None:
            generator = torch.Generator(device=out.device).manual_seed(attrs["seed"])
        work = torch.float64 if out.dtype == torch.float64 else torch.float32
        alpha, beta = _as_work(alpha, work, out.device), _as_work(beta, work, out.device)
        if operation == FillOperation.RANDOM_UNIFORM:
            draw = torch.rand(out.shape, dtype=work, device=out.device, generator=generator)
            out.copy_(alpha + (beta - alpha) * draw)
        else:
            draw = torch.randn(out.shape, dtype=work, device=out.device, generator=generator)
            out.copy_(alpha + beta * draw)


def _output_shape(shape_input: TensorMeta | None, dimensions: tuple[int, ...]) -> tuple[int, ...]:
    if shape_input is None:
        if any(d < 0 for d in dimensions):
            raise ShapeError(f"dimensions {list(dimensions)} must not be negative")
        return tuple(dimensions)
    if shape_input.dtype not in _INDEX_TYPES or shape_input.rank != 1:
        raise ShapeError(
            "the shape (input 0) must be a 1-D INT32 or INT64 shape tensor, "
            f"got {shape_input.dtype.name} of shape {list(shape_input.shape)}"
        )
    if shape_input.value is not None:
        shape = tuple(int(d) for d in shape_input.value.tolist())
        if any(d < 0 for d in shape):
            raise ShapeError(f"the shape (input 0) {list(shape)} must not be negative")
        return shape
    if shape_input.shape[0] == UNKNOWN:
        raise ShapeError("the shape (input 0) needs a length known at build time")
    return (UNKNOWN,) * shape_input.shape[0]


def _check_attr_values(attrs: dict[str, Any], to_type: DataType) -> None:
    if to_type in _INTEGERS:
        for key in ("alpha", "beta"):
            value = attrs[key]
            if isinstance(value, float) and not value.is_integer():
                raise ShapeError(f"an {to_type.name} LINSPACE needs an integral {key}, got {value}")


def _check_parameter_tensors(
    alpha: TensorMeta, beta: TensorMeta, operation: FillOperation, to_type: DataType, rank: int
) -> None:
    numeric = (_INTEGERS if to_type in _INTEGERS else _INTEGERS | FLOATS_AND_DOUBLE) | {
        DataType.INT8
    }
    for what, meta in (("alpha (input 1)", alpha), ("beta (input 2)", beta)):
        if meta.dtype not in numeric:
            raise ShapeError(
                f"{what} of type {meta.dtype.name} cannot fill a {to_type.name} output"
            )
    _check_scalar(alpha, "alpha (input 1)")
    if operation != FillOperation.LINSPACE:
        _check_scalar(beta, "beta (input 2)")
    elif beta.rank != 1 or beta.shape[0] not in (rank, UNKNOWN):
        raise ShapeError(
            f"the LINSPACE delta (input 2) must be 1-D with one value per output dimension "
            f"({rank}), got shape {list(beta.shape)}"
        )


def _check_scalar(meta: TensorMeta, what: str) -> None:
    if meta.rank > 1 or (meta.rank == 1 and meta.shape[0] not in (1, UNKNOWN)):
        raise ShapeError(f"{what} must be a scalar, got shape {list(meta.shape)}")


def _linspace(out: torch.Tensor, alpha: Any, beta: Any) -> None:
    """`alpha + sum_k delta[k] * i_k`, in int64 for integer outputs, else float64."""
    work = torch.float64 if out.is_floating_point() else torch.int64
    rank = out.dim()
    if isinstance(beta, torch.Tensor):
        delta = beta.to(device=out.device, dtype=work)
    else:
        strides = [1] * rank
        for axis in range(rank - 2, -1, -1):
            strides[axis] = strides[axis + 1] * out.shape[axis + 1]
        delta = torch.tensor([beta * s for s in strides], dtype=work, device=out.device)
    result = _as_work(alpha, work, out.device).reshape([1] * rank)
    for axis in range(rank):
        view = [1] * rank
        view[axis] = out.shape[axis]
        steps = torch.arange(out.shape[axis], dtype=work, device=out.device).view(view)
        result = result + delta[axis] * steps
    out.copy_(result)


def _as_work(value: Any, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """A scalar parameter (a number or a one-element tensor) as a 0-d tensor on `device`."""
    if isinstance(value, torch.Tensor):
        return value.to(device=device, dtype=dtype).reshape(())
    return torch.tensor(value, dtype=dtype, device=device)


OPS = [Fill()]
