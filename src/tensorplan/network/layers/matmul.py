"""Layers of the matrix ops."""

from __future__ import annotations

from ..layer import ILayer, attribute


class IMatrixMultiplyLayer(ILayer):
    _op_name = "matrix_multiply"
    op0 = attribute("op0")
    op1 = attribute("op1")
