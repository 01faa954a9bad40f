"""ONNX matrix products: MatMul (numpy's matmul rules) and Gemm (matmul + scaled bias)."""

from __future__ import annotations

from ...network.tensor import ITensor
from ...types import ElementWiseOperation, MatrixOperation
from ..context import ImportContext, OnnxNode
from .pointwise import in_float

E = ElementWiseOperation
M = MatrixOperation


def matmul(ctx: ImportContext, node: OnnxNode) -> ITensor:
    a, b = node.inputs
    return in_float(ctx, a, lambda x: multiply(ctx, x, ctx.cast(b, ctx.dtype(x))))


def multiply(
    ctx: ImportContext, a: ITensor, b: ITensor, op0: M = M.NONE, op1: M = M.NONE
) -> ITensor:
    """numpy.matmul: 1-D operands are vectors, batch dims broadcast after rank alignment."""
    rank_a, rank_b = ctx.rank(a), ctx.rank(b)
    if rank_a == 1:
        op0 = M.VECTOR
        a = ctx.prepend_ones(a, rank_b - 2)
    if rank_b == 1:
        op1 = M.VECTOR
        b = ctx.prepend_ones(b, rank_a - 2)
    if rank_a > 1 and rank_b > 1:
        a, b = ctx.align_ranks([a, b])
    return ctx.network.add_matrix_multiply(a, op0, b, op1).get_output(0)


def gemm(ctx: ImportContext, node: OnnxNode) -> ITensor:
    """alpha * op(A) @ op(B) + beta * C, C broadcast to the product."""
    a, b, c = node.inputs[0], node.inputs[1], node.input(2)
    alpha = node.attr("alpha", "float", 1.0)
    beta = node.attr("beta", "float", 1.0)
    op0 = M.TRANSPOSE if node.attr("transA", "int", 0) else M.NONE
    op1 = M.TRANSPOSE if node.attr("transB", "int", 0) else M.NONE

    def compute(x: ITensor) -> ITensor:
        y = ctx.network.add_matrix_multiply(x, op0, ctx.cast(b, ctx.dtype(x)), op1).get_output(0)
        if alpha != 1.0:
            y = ctx.binary(y, ctx.scalar_like(alpha, y), E.PROD)
        if c is not None:
            bias = ctx.cast(c, ctx.dtype(x))
            if beta != 1.0:
                bias = ctx.binary(bias, ctx.scalar_like(beta, bias), E.PROD)
            y = ctx.binary(y, bias, E.SUM)
        return y

    return in_float(ctx, a, compute)


IMPORTERS = {"MatMul": matmul, "Gemm": gemm}
