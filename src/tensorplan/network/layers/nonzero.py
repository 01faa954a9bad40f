"""Layers whose output shapes depend on input values."""

from __future__ import annotations

from ..layer import ILayer


class INonZeroLayer(ILayer):
    """The indices of the non-zero elements of its input: shape [rank, count], INT64, where
    `count` is data-dependent (-1 until execution; read it from an IOutputAllocator)."""

    _op_name = "non_zero"
