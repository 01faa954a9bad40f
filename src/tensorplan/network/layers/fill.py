"""The fill layer: tensors generated from a shape."""

from __future__ import annotations

from ..layer import ILayer


class IFillLayer(ILayer):
    _op_name = "fill"
