"""Layers of the sampling ops: resize and grid sample."""

from __future__ import annotations

from ..layer import ILayer


class IResizeLayer(ILayer):
    _op_name = "resize"


class IGridSampleLayer(ILayer):
    _op_name = "grid_sample"
