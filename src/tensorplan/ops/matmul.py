"""Matrix multiplication: batched matrix and vector products with TensorRT's broadcast.

Each operand is a collection of matrices (NONE, TRANSPOSE: the last two dims) or of vectors
(VECTOR: the last dim). The collection dims of the two operands must have the same rank and
broadcast where one of them is 1 (NvInfer.h, IMatrixMultiplyLayer and MatrixOperation).
"""

from __future__ import annotations

from typing import Any

import torch

from ..types import FLOATS, LayerType, MatrixOperation
from .base import UNKNOWN, Enum, Op, ShapeError, TensorMeta
from .shapes import broadcast, same_dtype


class MatrixMultiply(Op):
    """IMatrixMultiplyLayer: op0(input0) * op1(input1) over broadcast collections.

    matrix * matrix -> matrix, matrix * vector -> vector, vector * matrix -> vector,
    vector * vector -> scalar; INT32 inputs are not valid (NvInfer.h addMatrixMultiply).
    """

    name = "matrix_multiply"
    reduced_precision = True
    layer_type = LayerType.MATRIX_MULTIPLY
    num_inputs = (2, 2)
    attrs = {
        "op0": Enum(MatrixOperation, MatrixOperation.NONE),
        "op1": Enum(MatrixOperation, MatrixOperation.NONE),
    }

    def infer(self, inputs: list[TensorMeta], attrs: dict[str, Any]) -> list[TensorMeta]:
        a, b = inputs
        same_dtype(inputs)
        if a.dtype not in FLOATS:
            raise ShapeError(
                f"matrix multiply needs FLOAT, HALF or BF16 inputs, got {a.dtype.name}"
            )
        op0, op1 = attrs["op0"], attrs["op1"]
        batch_a, m, k_a = _operand(a, op0, "input 0", left=True)
        batch_b, k_b, n = _operand(b, op1, "input 1", left=False)
        if len(batch_a) != len(batch_b):
            raise ShapeError(
                f"the operands must have the same number of collection dimensions: input 0 "
                f"{list(a.shape)} ({op0.name}) has {len(batch_a)}, input 1 {list(b.shape)} "
                f"({op1.name}) has {len(batch_b)}"
            )
        if UNKNOWN not in (k_a, k_b) and k_a != k_b:
            raise ShapeError(
                f"the inner dimensions do not match: {k_a} for input 0 {list(a.shape)} "
                f"({op0.name}) and {k_b} for input 1 {list(b.shape)} ({op1.name})"
            )
        try:
            batch = broadcast([batch_a, batch_b])
        except ShapeError:
            raise ShapeError(
                f"the collection dimensions {list(batch_a)} of input 0 {list(a.shape)} and "
                f"{list(batch_b)} of input 1 {list(b.shape)} do not broadcast (each pair must be "
                "equal or contain a 1)"
            ) from None
        matrix = tuple(d for d in (m, n) if d is not None)
        return [TensorMeta(a.dtype, (*batch, *matrix))]

    def run(self, inputs: list[torch.Tensor], outputs: list[torch.Tensor], attrs: dict) -> None:
        a, b = inputs
        op0, op1 = attrs["op0"], attrs["op1"]
        # vectors become 1-row (left) or 1-column (right) matrices; torch broadcasts the batch
        a = a.unsqueeze(-2) if op0 == MatrixOperation.VECTOR else a
        b = b.unsqueeze(-1) if op1 == MatrixOperation.VECTOR else b
        a = a.transpose(-1, -2) if op0 == MatrixOperation.TRANSPOSE else a
        b = b.transpose(-1, -2) if op1 == MatrixOperation.TRANSPOSE else b
        out = outputs[0]
        shape = (*out.shape[: out.dim() - _matrix_rank(op0, op1)], a.shape[-2], b.shape[-1])
        torch.matmul(a, b, out=out.view(shape))


def _operand(
    meta: TensorMeta, operation: MatrixOperation, what: str, left: bool
) -> tuple[tuple[int, ...], int | None, int | None]:
    """The collection dims, rows and columns of op(x); a vector has no rows (left operand:
    a row vector) or no columns (right operand: a column vector)."""
    shape = meta.shape
    if operation == MatrixOperation.VECTOR:
        if meta.rank < 1:
            raise ShapeError(f"{what} is a VECTOR operand and needs rank 1 or more, got a scalar")
        return (shape[:-1], None, shape[-1]) if left else (shape[:-1], shape[-1], None)
    if meta.rank < 2:
        raise ShapeError(
            f"{what} is a {operation.name} operand and needs rank 2 or more, got shape "
            f"{list(shape)} (use MatrixOperation.VECTOR for vectors)"
        )
    rows, columns = shape[-2:]
    if operation == MatrixOperation.TRANSPOSE:
        rows, columns = columns, rows
    return shape[:-2], rows, columns


def _matrix_rank(op0: MatrixOperation, op1: MatrixOperation) -> int:
    """How many trailing dims of the output are matrix dims (not collection dims)."""
    return (op0 != MatrixOperation.VECTOR) + (op1 != MatrixOperation.VECTOR)


OPS = [MatrixMultiply()]
