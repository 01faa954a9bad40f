"""Layers of the matrix ops."""

from __future__ import annotations

from ..layer import ILayer, attribute


class IMatrixMultiplyLayer(ILayer):
    """op0(input 0) * op1(input 1), each operand a collection of matrices or vectors."""

    _op_name = "matrix_multiply"
    op0 = attribute("op0")
    op1 = attribute("op1")
