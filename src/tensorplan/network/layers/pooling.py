"""Layers of the pooling ops."""

from __future__ import annotations

from ...types import Dims
from ..layer import attribute
from .conv import WindowLayer


class IPoolingLayer(WindowLayer):
    _op_name = "pooling"
    _size_key = "window_size_nd"
    type = attribute("type")
    window_size_nd = attribute("window_size_nd", Dims)
    dilation_nd = attribute("dilation_nd", Dims)
    """Extension (TensorRT has none): the window's dilation, default all 1 (ONNX pooling)."""
    blend_factor = attribute("blend_factor")
    average_count_excludes_padding = attribute("average_count_excludes_padding")
